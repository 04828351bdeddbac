use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "list_notifications",
        notifications::api::Notifications::new,
        |c| Policy::api(c, Role::Attendee),
        |n, req| async move { notifications::api::list(&n, req).await },
    )
    .await
}
