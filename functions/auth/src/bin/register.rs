use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "register",
        auth::api::Auth::new,
        |c| Policy::auth_endpoint(c, "auth:register"),
        |auth, req| async move { auth::api::register(&auth, req).await },
    )
    .await
}
