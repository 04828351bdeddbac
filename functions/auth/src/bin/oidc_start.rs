use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "oidc_start",
        auth::oidc::SignIn::starting,
        |c| Policy::auth_endpoint(c, "auth:oidc_start"),
        |si, req| async move { auth::oidc::start(&si, req).await },
    )
    .await
}
