use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "jwks",
        auth::api::Auth::new,
        |_| Policy::open(),
        |auth, _req| async move { auth::api::jwks(&auth).await },
    )
    .await
}
