use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "set_roles",
        auth::api::Auth::new,
        |c| Policy::api_write(c, Role::Admin),
        |auth, req| async move { auth::api::set_roles(&auth, req).await },
    )
    .await
}
