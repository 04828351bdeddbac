use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "readyz",
        ops::probe,
        |_| Policy::open(),
        |app, _req| async move { ops::readiness::readyz(&app).await },
    )
    .await
}
