#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = std::sync::Arc::new(shared::init("healthz").await?);
    let handler_app = app.clone();
    shared::http::run(&app, shared::http::Policy::open(), move |req| {
        let app = handler_app.clone();
        async move { ops::healthz(&app, req).await }
    })
    .await
}
