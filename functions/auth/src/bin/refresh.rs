use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "refresh",
        auth::api::Auth::new,
        |c| Policy::auth_endpoint(c, "auth:refresh"),
        |auth, req| async move { auth::api::refresh(&auth, req).await },
    )
    .await
}
