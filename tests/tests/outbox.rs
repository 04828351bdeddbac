//! The event sources of the local stack: an outbox item committed to the table reaches the
//! queue through the stream relay, and the consumer turns it into an inbox item that carries
//! the trace of the write.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::Stack;

#[tokio::test]
async fn a_committed_outbox_item_reaches_the_recipients_inbox_once_with_its_trace() {
    let stack = Stack::get();
    let ddb = stack.dynamodb().await;
    let table = stack.env("TABLE_NAME");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let user = format!("usr_{}", uuid::Uuid::new_v4().simple());
    let trace = "Root=1-6b040000-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    let message = serde_json::json!({
        "id": id, "type": "event.changed", "aggregate_id": "evt_e2e", "occurred_at": "2026-11-23T10:00:00Z",
        "recipients": [user], "summary": "The venue changed", "data": {}
    })
    .to_string();
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("OUTBOX#{id}")))
        .item("sk", AttributeValue::S("OUTBOX".into()))
        .item("message", AttributeValue::S(message))
        .item("trace", AttributeValue::S(trace.into()))
        .send()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let items = loop {
        let out = ddb
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
            .send()
            .await
            .unwrap();
        if out.count() > 0 || Instant::now() > deadline {
            break out.items.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(items.len(), 1, "exactly one notification");
    let item = &items[0];
    assert_eq!(item["message_id"].as_s().unwrap(), &id);
    assert_eq!(
        item["trace_id"].as_s().unwrap(),
        "1-6b040000-0123456789abcdef01234567",
        "the writer's trace continues in the consumer"
    );
}
