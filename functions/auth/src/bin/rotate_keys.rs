use auth::rotation::{RotationEvent, rotate};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("rotate-keys").await?;
    let sm = app.clients.secrets.clone();
    shared::runtime::run_events(&app, move |event: RotationEvent, _ctx| {
        let sm = sm.clone();
        async move { rotate(&sm, &event).await }
    })
    .await
}
