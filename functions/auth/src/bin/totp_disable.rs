use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "totp_disable",
        auth::api::Auth::new,
        |c| Policy::sensitive(c, Role::Attendee, "auth:totp_disable"),
        |auth, req| async move { auth::api::totp_disable(&auth, req).await },
    )
    .await
}
