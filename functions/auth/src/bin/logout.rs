use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "logout",
        auth::api::Auth::new,
        |c| Policy::revocation(c, Role::Attendee),
        |auth, req| async move { auth::api::logout(&auth, req).await },
    )
    .await
}
