use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "list_attendees",
        joins::api::Joins::new,
        |c| Policy::api(c, Role::Attendee),
        |joins, req| async move { joins::api::attendees(&joins, req).await },
    )
    .await
}
