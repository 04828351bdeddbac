use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::serve(
        "create_event",
        events::api::Events::new,
        |c| Policy::idempotent_write(c, Role::Organizer),
        |events, req| async move { events::api::create(&events, req).await },
    )
    .await
}
