use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve_pages(
        "my_joins",
        joins::api::Joins::new,
        |c| Policy::api(c, Role::Attendee),
        |joins, req| async move { joins::api::my_joins(&joins, req).await },
    )
    .await
}
