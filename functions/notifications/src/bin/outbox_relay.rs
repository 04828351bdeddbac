use notifications::relay::Relay;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve("outbox_relay", Relay::new, |r, event| async move {
        r.handle(event).await
    })
    .await
}
