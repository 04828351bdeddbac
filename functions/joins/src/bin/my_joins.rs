use shared::auth::Role;
use shared::http::Policy;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve(
        "my_joins",
        |c| Policy::api(c, Role::Attendee),
        |events, req| async move { joins::api::my_joins(&events, req).await },
    )
    .await
}
