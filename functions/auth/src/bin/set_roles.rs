use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "set_roles",
        |c| Policy::api_write(c, Role::Admin),
        |auth, req| async move { auth::api::set_roles(&auth, req).await },
    )
    .await
}
