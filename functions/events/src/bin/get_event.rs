use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve("get_event", Policy::public_api, |events, req| async move {
        events::api::get(&events, req).await
    })
    .await
}
