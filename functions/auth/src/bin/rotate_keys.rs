use auth::rotation::Rotator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve("rotate_keys", Rotator::new, |r, event| async move {
        r.handle(event).await
    })
    .await
}
