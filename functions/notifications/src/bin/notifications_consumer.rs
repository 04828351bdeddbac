use notifications::consumer::{DynamoInbox, consume};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = shared::init("notifications-consumer").await?;
    let inbox = std::sync::Arc::new(DynamoInbox {
        dynamodb: app.clients.dynamodb.clone(),
        table: app.config.table_name.clone(),
    });
    shared::runtime::run_events(&app, move |event, _ctx| {
        let inbox = inbox.clone();
        async move { Ok(consume(inbox.as_ref(), event).await) }
    })
    .await
}
