use notifications::consumer::{DynamoInbox, SqsDeadLetters, consume};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("notifications-consumer").await?;
    let max_receives = notifications::consumer::max_receives_from_env()?;
    let inbox = std::sync::Arc::new(DynamoInbox {
        dynamodb: app.clients.dynamodb.clone(),
        table: app.config.table_name.clone(),
    });
    let dead = std::sync::Arc::new(SqsDeadLetters {
        sqs: app.clients.sqs.clone(),
        dlq_url: app.config.outbox_dlq_url.clone(),
    });
    shared::runtime::run_events(&app, move |event, _ctx| {
        let (inbox, dead) = (inbox.clone(), dead.clone());
        async move { Ok(consume(inbox.as_ref(), dead.as_ref(), max_receives, event).await) }
    })
    .await
}
