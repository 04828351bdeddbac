#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = std::sync::Arc::new(shared::init("readyz").await?);
    let handler_app = app.clone();
    shared::http::run(&app, shared::http::Policy::open(), move |_req| {
        let app = handler_app.clone();
        async move { ops::readiness::readyz(&app).await }
    })
    .await
}
