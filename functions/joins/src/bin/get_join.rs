use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "get_join",
        |app| Ok(std::sync::Arc::new(seating::dynamo::DynamoSeats::new(app))),
        |c| Policy::api(c, Role::Attendee),
        |seats, req| async move { joins::api::my_place(&seats, req).await },
    )
    .await
}
