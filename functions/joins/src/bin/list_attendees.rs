use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve(
        "list_attendees",
        |c| Policy::api(c, Role::Attendee),
        |events, req| async move { joins::api::attendees(&events, req).await },
    )
    .await
}
