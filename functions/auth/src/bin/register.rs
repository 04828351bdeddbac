use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "register",
        |c| Policy::auth_endpoint(c, "auth:register"),
        |auth, req| async move { auth::api::register(&auth, req).await },
    )
    .await
}
