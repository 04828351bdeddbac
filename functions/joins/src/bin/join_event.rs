use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve(
        "join_event",
        |c| Policy::api_write(c, Role::Attendee),
        |events, req| async move { joins::api::join(&events, req).await },
    )
    .await
}
