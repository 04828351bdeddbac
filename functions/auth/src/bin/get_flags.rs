use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "get_flags",
        auth::api::Auth::new,
        |c| Policy::api(c, Role::Admin),
        |auth, req| async move { auth::flags_admin::get_flags(&auth, req).await },
    )
    .await
}
