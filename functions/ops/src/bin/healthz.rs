use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "healthz",
        ops::probe,
        |_| Policy::open(),
        |app, req| async move { ops::healthz(&app, req).await },
    )
    .await
}
