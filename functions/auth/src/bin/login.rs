use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "login",
        |c| Policy::auth_endpoint(c, "auth:login"),
        |auth, req| async move { auth::api::login(&auth, req).await },
    )
    .await
}
