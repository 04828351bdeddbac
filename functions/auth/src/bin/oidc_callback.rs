use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "oidc_callback",
        auth::oidc::SignIn::new,
        |c| Policy::auth_endpoint(c, "auth:oidc_callback"),
        |si, req| async move { auth::oidc::callback(&si, req).await },
    )
    .await
}
