use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve(
        "list_events",
        Policy::public_api,
        |events, req| async move { events::api::list(&events, req).await },
    )
    .await
}
