use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "mfa_verify",
        auth::api::Auth::new,
        |c| Policy::auth_endpoint(c, "auth:mfa_verify"),
        |auth, req| async move { auth::api::mfa_verify(&auth, req).await },
    )
    .await
}
