use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth::serve(
        "totp_activate",
        |c| Policy::api_write(c, Role::Attendee),
        |auth, req| async move { auth::api::totp_activate(&auth, req).await },
    )
    .await
}
