use notifications::relay::{DynamoSequencer, GAP_WAIT, SqsPublisher, relay};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("outbox-relay").await?;
    let publisher = std::sync::Arc::new(SqsPublisher {
        sqs: app.clients.sqs.clone(),
        queue_url: app.config.outbox_queue_url.clone(),
    });
    let sequencer = std::sync::Arc::new(DynamoSequencer {
        ddb: app.clients.dynamodb.clone(),
        table: app.config.table_name.clone(),
    });
    shared::runtime::run_events(&app, move |event, _ctx| {
        let (publisher, sequencer) = (publisher.clone(), sequencer.clone());
        async move { Ok(relay(publisher.as_ref(), sequencer.as_ref(), event, GAP_WAIT).await) }
    })
    .await
}
