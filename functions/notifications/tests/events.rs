//! The relay and the consumer fed the sample DynamoDB-stream and SQS events from events/,
//! with in-memory adapters of their ports.

use std::collections::HashSet;
use std::sync::Mutex;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use notifications::OutboxMessage;
use notifications::consumer::{Inbox, consume};
use notifications::relay::{OutboxItem, Publisher, relay};
use shared::testing::sample_event;

#[derive(Default)]
struct Published {
    bodies: Mutex<Vec<(String, String)>>,
    fail: bool,
}

impl Publisher for Published {
    async fn publish(&self, item: &OutboxItem, message: &OutboxMessage) -> anyhow::Result<()> {
        if self.fail {
            anyhow::bail!("queue unavailable");
        }
        self.bodies
            .lock()
            .unwrap()
            .push((message.id.clone(), item.message.clone()));
        Ok(())
    }
}

#[derive(Default)]
struct MemoryInbox {
    items: Mutex<HashSet<(String, String)>>,
}

impl Inbox for MemoryInbox {
    async fn deliver(&self, user_id: &str, message: &OutboxMessage) -> anyhow::Result<bool> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .insert((user_id.to_owned(), message.id.clone())))
    }
}

fn stream_event() -> Event {
    serde_json::from_value(sample_event("dynamodb-stream-outbox-insert.json")).unwrap()
}

fn sqs_event() -> SqsEvent {
    serde_json::from_value(sample_event("sqs-outbox-message.json")).unwrap()
}

#[tokio::test]
async fn the_relay_publishes_each_outbox_insert_exactly_as_written_and_skips_other_records() {
    let publisher = Published::default();
    let response = relay(&publisher, stream_event()).await;
    assert!(response.batch_item_failures.is_empty());
    let sample = sample_event("dynamodb-stream-outbox-insert.json");
    let written = sample["Records"][0]["dynamodb"]["NewImage"]["message"]["S"]
        .as_str()
        .unwrap();
    let bodies = publisher.bodies.lock().unwrap();
    assert_eq!(
        bodies.len(),
        1,
        "the MODIFY of a non-outbox item is not published"
    );
    assert_eq!(bodies[0].0, "01JD0000000000000000000001");
    assert_eq!(bodies[0].1, written, "published byte for byte");
}

#[tokio::test]
async fn a_failed_publish_is_reported_by_sequence_number_for_the_stream_to_retry() {
    let publisher = Published {
        fail: true,
        ..Default::default()
    };
    let response = relay(&publisher, stream_event()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some("111")
    );
}

#[tokio::test]
async fn the_consumer_delivers_once_even_when_the_message_is_redelivered() {
    let inbox = MemoryInbox::default();
    assert!(
        consume(&inbox, sqs_event())
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        consume(&inbox, sqs_event())
            .await
            .batch_item_failures
            .is_empty()
    );
    let items = inbox.items.lock().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items.contains(&(
        "usr_01JD00000000000000000000BB".to_owned(),
        "01JD0000000000000000000001".to_owned()
    )));
}

#[tokio::test]
async fn a_malformed_message_is_reported_as_a_batch_item_failure_alone() {
    let mut event = sqs_event();
    let mut bad = event.records[0].clone();
    bad.message_id = Some("bad-1".into());
    bad.body = Some("{not json".into());
    event.records.insert(0, bad);
    let inbox = MemoryInbox::default();
    let response = consume(&inbox, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad-1"]);
    assert_eq!(
        inbox.items.lock().unwrap().len(),
        1,
        "the good message of the batch is processed"
    );
}
