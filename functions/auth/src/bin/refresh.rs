use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "refresh",
        |c| Policy::auth_endpoint(c, "auth:refresh"),
        |auth, req| async move { auth::api::refresh(&auth, req).await },
    )
    .await
}
