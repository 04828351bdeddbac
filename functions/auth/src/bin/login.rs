use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "login",
        auth::api::Auth::new,
        |c| Policy::auth_endpoint(c, "auth:login"),
        |auth, req| async move { auth::api::login(&auth, req).await },
    )
    .await
}
