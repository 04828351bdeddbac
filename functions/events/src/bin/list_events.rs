use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "list_events",
        events::api::Events::new,
        Policy::public_api,
        |events, req| async move { events::api::list(&events, req).await },
    )
    .await
}
