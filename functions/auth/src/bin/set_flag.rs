use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "set_flag",
        auth::api::Auth::new,
        |c| Policy::api_write(c, Role::Admin),
        |auth, req| async move { auth::flags_admin::set_flag(&auth, req).await },
    )
    .await
}
