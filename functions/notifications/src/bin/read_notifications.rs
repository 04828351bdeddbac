use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "read_notifications",
        notifications::api::Notifications::new,
        |c| Policy::api_write(c, Role::Attendee),
        |n, req| async move { notifications::api::mark_read(&n, req).await },
    )
    .await
}
