use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "unlink_identity",
        auth::api::Auth::new,
        |c| Policy::sensitive(c, Role::Attendee, "auth:unlink_identity"),
        |auth, req| async move { auth::oidc::unlink(&auth, req).await },
    )
    .await
}
