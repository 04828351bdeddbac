use notifications::relay::{SqsPublisher, relay};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("outbox-relay").await?;
    let publisher = std::sync::Arc::new(SqsPublisher {
        sqs: app.clients.sqs.clone(),
        queue_url: app.config.outbox_queue_url.clone(),
    });
    shared::runtime::run_events(&app, move |event, _ctx| {
        let publisher = publisher.clone();
        async move { Ok(relay(publisher.as_ref(), event).await) }
    })
    .await
}
