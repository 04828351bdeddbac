use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "batch_get_events",
        events::api::Events::new,
        Policy::public_api,
        |events, req| async move { events::api::batch(&events, req).await },
    )
    .await
}
