use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "link_identity",
        auth::api::Auth::new,
        |c| Policy::sensitive(c, Role::Attendee, "auth:link_identity"),
        |auth, req| async move { auth::oidc::link(&auth, req).await },
    )
    .await
}
