use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "get_event",
        events::api::Events::new,
        Policy::public_api,
        |events, req| async move { events::api::get(&events, req).await },
    )
    .await
}
