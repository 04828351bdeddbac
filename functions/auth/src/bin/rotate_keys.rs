use auth::rotation::{RotationEvent, rotate};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("rotate-keys").await?;
    let sm = app.clients.secrets.clone();
    let public: std::sync::Arc<str> = app.config.public_keys_secret_id.as_str().into();
    shared::runtime::run_events(&app, move |event: RotationEvent, _ctx| {
        let (sm, public) = (sm.clone(), public.clone());
        async move { rotate(&sm, &public, &event).await }
    })
    .await
}
