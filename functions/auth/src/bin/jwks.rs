use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "jwks",
        |_| Policy::open(),
        |auth, _req| async move { auth::api::jwks(&auth).await },
    )
    .await
}
