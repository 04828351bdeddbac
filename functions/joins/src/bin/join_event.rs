use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "join_event",
        joins::api::Joins::new,
        |c| Policy::idempotent_write(c, Role::Attendee),
        |joins, req| async move { joins::api::join(&joins, req).await },
    )
    .await
}
