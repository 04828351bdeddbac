use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve(
        "batch_get_events",
        Policy::public_api,
        |events, req| async move { events::api::batch(&events, req).await },
    )
    .await
}
