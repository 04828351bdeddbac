//! The relay and the consumer fed the sample DynamoDB-stream and SQS events from events/,
//! with in-memory adapters of their ports.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use notifications::OutboxMessage;
use notifications::consumer::{
    Continuations, DeadLetters, FANOUT_CHUNK, Inbox, MAX_FANOUT_CHUNKS, consume,
};
use notifications::relay::{OutboxItem, Publisher, Sequencer, relay};
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

/// The relay's sequence items, in memory.
#[derive(Default)]
struct MemorySequencer {
    published: Mutex<std::collections::HashMap<String, u64>>,
}

impl Sequencer for MemorySequencer {
    async fn published(&self, aggregate: &str) -> anyhow::Result<u64> {
        Ok(*self.published.lock().unwrap().get(aggregate).unwrap_or(&0))
    }
    async fn advance(&self, aggregate: &str, seq: u64) -> anyhow::Result<()> {
        let mut p = self.published.lock().unwrap();
        let e = p.entry(aggregate.to_owned()).or_default();
        *e = (*e).max(seq);
        Ok(())
    }
}

const GAP: std::time::Duration = std::time::Duration::from_secs(5);

/// A stream batch of outbox inserts of `(aggregate, seq)` messages (seq 0: unnumbered), with
/// stream sequence numbers 1, 2, …
fn numbered_stream(messages: &[(&str, u64)]) -> Event {
    let mut event = stream_event();
    let template = event.records[0].clone();
    event.records = messages
        .iter()
        .enumerate()
        .map(|(i, (aggregate, seq))| {
            let mut r = template.clone();
            let mut m = serde_json::json!({
                "id": format!("{aggregate}-{seq}-{i}"), "type": "join.created", "aggregate_id": aggregate,
                "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": ["usr_1"], "summary": "s", "data": {}
            });
            if *seq > 0 {
                m["seq"] = serde_json::json!(seq);
            }
            let mut image = serde_json::to_value(&r.change.new_image).unwrap();
            image["message"] = serde_json::json!({ "S": m.to_string() });
            r.change.new_image = serde_json::from_value(image).unwrap();
            r.change.sequence_number = Some(format!("{}", i + 1));
            r
        })
        .collect();
    event
}

/// Asserts that the relay reported one failure, the record `sequence_number`: the stream
/// retries the batch from it.
fn assert_retried_from(response: &DynamoDbEventResponse, sequence_number: &str) {
    let failed: Vec<Option<&str>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref())
        .collect();
    assert_eq!(failed, [Some(sequence_number)]);
}

fn published_ids(p: &Published) -> Vec<String> {
    p.bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.0.clone())
        .collect()
}

#[derive(Default)]
struct MemoryInbox {
    items: Mutex<HashSet<(String, String)>>,
    /// Deliveries attempted (a repeat of a delivered item counts too).
    attempts: Mutex<usize>,
    /// Users whose inbox write fails (a transient error).
    failing_users: HashSet<String>,
    attendees: Vec<String>,
    /// Stop (as a killed process would) after this many deliveries.
    stop_after: Option<usize>,
    /// Told when it stops.
    stopped: tokio::sync::Notify,
    /// What happened, in order: `push <users>` here, `continue <chunk>` in [`MemoryDlq`]
    /// when they share it.
    journal: Arc<Mutex<Vec<String>>>,
}

impl Inbox for MemoryInbox {
    async fn push(&self, users: &[String], _message: &OutboxMessage) {
        self.journal
            .lock()
            .unwrap()
            .push(format!("push {}", users.len()));
    }

    async fn deliver(&self, user_id: &str, message: &OutboxMessage) -> anyhow::Result<bool> {
        if self.failing_users.contains(user_id) {
            anyhow::bail!("inbox write throttled");
        }
        let n = {
            let mut a = self.attempts.lock().unwrap();
            *a += 1;
            *a
        };
        if self.stop_after.is_some_and(|k| n > k) {
            // The process is gone: this future never completes.
            self.stopped.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(self
            .items
            .lock()
            .unwrap()
            .insert((user_id.to_owned(), message.id.clone())))
    }

    /// A chunk of the attendees, by index: `after` is the index where it starts.
    async fn attendees(
        &self,
        _event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<(Vec<String>, Option<String>)> {
        let start: usize = after.map_or(0, |a| a.parse().unwrap());
        let end = (start + limit).min(self.attendees.len());
        let next = (end < self.attendees.len()).then(|| end.to_string());
        Ok((self.attendees[start..end].to_vec(), next))
    }
}

#[derive(Default)]
struct MemoryDlq {
    dead: Mutex<Vec<(String, String)>>,
    /// The continuations queued (their bodies).
    continued: Mutex<Vec<String>>,
    journal: Arc<Mutex<Vec<String>>>,
}

impl Continuations for MemoryDlq {
    async fn continue_fanout(
        &self,
        message: &OutboxMessage,
        after: &str,
        chunk: u64,
        _trace: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut next = message.clone();
        next.data["fanout_after"] = after.into();
        next.data["fanout_chunk"] = chunk.into();
        self.journal
            .lock()
            .unwrap()
            .push(format!("continue {chunk}"));
        self.continued
            .lock()
            .unwrap()
            .push(serde_json::to_string(&next)?);
        Ok(())
    }
}

impl DeadLetters for MemoryDlq {
    async fn dead_letter(&self, record: &SqsMessage, reason: &str) -> anyhow::Result<()> {
        self.dead.lock().unwrap().push((
            record.message_id.clone().unwrap_or_default(),
            reason.to_owned(),
        ));
        Ok(())
    }
}

/// A batch of `n` well-formed messages, each to its own user and to "usr_shared".
fn batch(n: usize) -> SqsEvent {
    let mut event = sqs_event();
    let template = event.records[0].clone();
    event.records = (0..n)
        .map(|i| {
            let mut r = template.clone();
            r.message_id = Some(format!("m-{i}"));
            r.body = Some(
                serde_json::json!({
                    "id": format!("{i:032x}"), "type": "join.created", "aggregate_id": "evt_1",
                    "occurred_at": "2026-11-23T10:00:00.000000Z",
                    "recipients": [format!("usr_{i}"), "usr_shared"], "summary": "s", "data": {}
                })
                .to_string(),
            );
            r
        })
        .collect();
    event
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
    let response = relay(&publisher, &MemorySequencer::default(), stream_event(), GAP).await;
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
    let response = relay(&publisher, &MemorySequencer::default(), stream_event(), GAP).await;
    assert_retried_from(&response, "111");
}

#[tokio::test]
async fn numbered_messages_of_one_event_are_published_in_number_order_within_a_batch() {
    let publisher = Published::default();
    let sequencer = MemorySequencer::default();
    // The shard gave the event's messages 3, 1, 2 (records of different items); another
    // event's and an unnumbered message keep their places.
    let batch = numbered_stream(&[
        ("evt_a", 3),
        ("evt_b", 1),
        ("evt_a", 1),
        ("usr_x", 0),
        ("evt_a", 2),
    ]);
    let response = relay(&publisher, &sequencer, batch, GAP).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        published_ids(&publisher),
        [
            "evt_a-1-2",
            "evt_b-1-1",
            "evt_a-2-4",
            "usr_x-0-3",
            "evt_a-3-0"
        ]
    );
    assert_eq!(sequencer.published("evt_a").await.unwrap(), 3);
}

#[tokio::test]
async fn a_message_waits_for_its_predecessor_published_from_another_shard() {
    let publisher = Published::default();
    let sequencer = MemorySequencer::default();
    // Shard B holds message 2 of the event; shard A, whose relay runs a little later, holds 1.
    let shard_b = relay(
        &publisher,
        &sequencer,
        numbered_stream(&[("evt_a", 2)]),
        GAP,
    );
    let shard_a = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        relay(
            &publisher,
            &sequencer,
            numbered_stream(&[("evt_a", 1)]),
            GAP,
        )
        .await
    };
    let (b, a) = tokio::join!(shard_b, shard_a);
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    assert_eq!(published_ids(&publisher), ["evt_a-1-0", "evt_a-2-0"]);
}

#[tokio::test]
async fn a_lost_predecessor_holds_its_successor_back_only_for_the_gap_wait() {
    let publisher = Published::default();
    let sequencer = MemorySequencer::default();
    sequencer.advance("evt_a", 3).await.unwrap();
    // 4 never comes (it went to the RelayFailureQueue): 5 goes out after the wait, and 6
    // right after it; a repeat of 2 (a retried batch) is published again and moves nothing back.
    let batch = numbered_stream(&[("evt_a", 5), ("evt_a", 6), ("evt_a", 2)]);
    let wait = std::time::Duration::from_millis(200);
    let started = std::time::Instant::now();
    let response = relay(&publisher, &sequencer, batch, wait).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(started.elapsed() >= wait, "it waited for 4");
    assert_eq!(
        published_ids(&publisher),
        ["evt_a-2-2", "evt_a-5-0", "evt_a-6-1"]
    );
    assert_eq!(sequencer.published("evt_a").await.unwrap(), 6);
}

#[tokio::test]
async fn an_event_waiting_for_its_predecessor_does_not_hold_back_another_event() {
    let publisher = Published::default();
    let response = relay(
        &publisher,
        &MemorySequencer::default(),
        numbered_stream(&[("evt_a", 2), ("evt_b", 1)]),
        std::time::Duration::from_millis(300),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(published_ids(&publisher), ["evt_b-1-1", "evt_a-2-0"]);
}

#[tokio::test]
async fn an_unreachable_sequence_table_never_holds_a_message_back() {
    struct Down;
    impl Sequencer for Down {
        async fn published(&self, _: &str) -> anyhow::Result<u64> {
            anyhow::bail!("dispatch failure: DynamoDB unreachable")
        }
        async fn advance(&self, _: &str, _: u64) -> anyhow::Result<()> {
            anyhow::bail!("dispatch failure: DynamoDB unreachable")
        }
    }
    let publisher = Published::default();
    let started = std::time::Instant::now();
    let response = relay(
        &publisher,
        &Down,
        numbered_stream(&[("evt_a", 7), ("evt_a", 8), ("evt_b", 3)]),
        GAP,
    )
    .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "nothing fails for the bookkeeping"
    );
    assert_eq!(
        published_ids(&publisher),
        ["evt_a-7-0", "evt_a-8-1", "evt_b-3-2"]
    );
    assert!(started.elapsed() < GAP, "and nothing waits for it");
}

#[tokio::test]
async fn gaps_of_many_events_in_one_batch_share_one_wait() {
    let publisher = Published::default();
    let sequencer = MemorySequencer::default();
    // Ten events, each missing its first message: the batch waits once, not ten times.
    let events: Vec<String> = (0..10).map(|i| format!("evt_{i}")).collect();
    let batch: Vec<(&str, u64)> = events.iter().map(|e| (e.as_str(), 2)).collect();
    let wait = std::time::Duration::from_millis(300);
    let started = std::time::Instant::now();
    let response = relay(&publisher, &sequencer, numbered_stream(&batch), wait).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(published_ids(&publisher).len(), 10);
    assert!(
        started.elapsed() < wait * 3,
        "one shared wait, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failure_after_reordering_reports_the_earliest_unpublished_record() {
    #[derive(Default)]
    struct FailOn(Published, &'static str);
    impl Publisher for FailOn {
        async fn publish(&self, item: &OutboxItem, message: &OutboxMessage) -> anyhow::Result<()> {
            if message.id == self.1 {
                anyhow::bail!("queue unavailable");
            }
            self.0.publish(item, message).await
        }
    }
    let publisher = FailOn(Published::default(), "evt_a-2-0");
    // Stream order: 2 (record 1), 1 (record 2). Published order: 1, then 2 fails: record 1
    // is the earliest not published, so the stream retries from it (and 1 again, deduplicated).
    let response = relay(
        &publisher,
        &MemorySequencer::default(),
        numbered_stream(&[("evt_a", 2), ("evt_a", 1)]),
        GAP,
    )
    .await;
    assert_eq!(published_ids(&publisher.0), ["evt_a-1-1"]);
    assert_retried_from(&response, "1");
}

#[tokio::test]
async fn the_consumer_delivers_once_even_when_the_message_is_redelivered() {
    let (inbox, dlq) = (MemoryInbox::default(), MemoryDlq::default());
    for _ in 0..2 {
        let response = consume(&inbox, (&dlq, &dlq), 5, sqs_event()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let items = inbox.items.lock().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items.contains(&(
        "usr_01JD00000000000000000000BB".to_owned(),
        "01JD0000000000000000000001".to_owned()
    )));
}

#[tokio::test]
async fn a_malformed_message_goes_to_the_dlq_at_once_and_the_rest_of_the_batch_is_processed() {
    let mut event = sqs_event();
    let mut bad = event.records[0].clone();
    bad.message_id = Some("bad-1".into());
    bad.body = Some("{not json".into());
    event.records.insert(0, bad);
    let (inbox, dlq) = (MemoryInbox::default(), MemoryDlq::default());
    let response = consume(&inbox, (&dlq, &dlq), 5, event).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a malformed message is not retried"
    );
    let dead = dlq.dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "bad-1");
    assert!(dead[0].1.contains("not an outbox message"), "{}", dead[0].1);
    assert_eq!(
        inbox.items.lock().unwrap().len(),
        1,
        "the good message of the batch is processed"
    );
}

#[tokio::test]
async fn a_failed_message_holds_back_the_rest_of_its_group_and_only_its_group() {
    let inbox = MemoryInbox {
        failing_users: HashSet::from(["usr_1".to_owned(), "usr_3".to_owned()]),
        ..Default::default()
    };
    let dlq = MemoryDlq::default();
    // One event's messages (one message group): m-1 fails, so m-2..m-4 must wait for it.
    let response = consume(&inbox, (&dlq, &dlq), 5, batch(5)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m-1", "m-2", "m-3", "m-4"],
        "in order, from the failed one"
    );
    {
        let items = inbox.items.lock().unwrap();
        assert!(items.contains(&("usr_0".to_owned(), format!("{:032x}", 0))));
        assert!(
            !items.iter().any(|i| i.0 == "usr_2" || i.0 == "usr_4"),
            "nothing after the failure was delivered out of order"
        );
    }
    // Messages of different events (groups) do not wait for each other.
    let mut event = batch(5);
    for (i, r) in event.records.iter_mut().enumerate() {
        r.attributes
            .insert("MessageGroupId".into(), format!("evt_{i}"));
    }
    let inbox = MemoryInbox {
        failing_users: HashSet::from(["usr_1".to_owned(), "usr_3".to_owned()]),
        ..Default::default()
    };
    let response = consume(&inbox, (&dlq, &dlq), 5, event).await;
    let mut failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort();
    assert_eq!(failed, ["m-1", "m-3"]);
    let items = inbox.items.lock().unwrap();
    for i in [0, 2, 4] {
        assert!(items.contains(&(format!("usr_{i}"), format!("{i:032x}"))));
    }
    assert!(
        dlq.dead.lock().unwrap().is_empty(),
        "transient failures are retried, not dead"
    );
}

#[tokio::test]
async fn a_consumer_stopped_mid_batch_loses_nothing_and_duplicates_nothing_when_the_batch_returns()
{
    let first = MemoryInbox {
        stop_after: Some(7),
        ..Default::default()
    };
    let dlq = MemoryDlq::default();
    // The process dies during the eighth delivery: the invocation never answers.
    // The invocation is abandoned the moment the "process" stops (no timer involved).
    let answered = tokio::select! {
        _ = consume(&first, (&dlq, &dlq), 5, batch(6)) => true,
        _ = first.stopped.notified() => false,
    };
    assert!(!answered, "the first invocation was cut off");
    let delivered_before = first.items.lock().unwrap().clone();
    assert_eq!(delivered_before.len(), 7);
    // The queue returns the whole batch; the inbox keeps what the first attempt wrote.
    let second = MemoryInbox {
        items: Mutex::new(delivered_before),
        ..Default::default()
    };
    let response = consume(&second, (&dlq, &dlq), 5, batch(6)).await;
    assert!(response.batch_item_failures.is_empty());
    let items = second.items.lock().unwrap();
    assert_eq!(items.len(), 12, "6 messages x 2 recipients, each once");
    assert_eq!(
        *second.attempts.lock().unwrap(),
        12,
        "every delivery was attempted again"
    );
}

#[tokio::test]
async fn a_fanout_message_reaches_every_attendee() {
    let inbox = MemoryInbox {
        attendees: vec!["usr_a".into(), "usr_b".into(), "usr_c".into()],
        ..Default::default()
    };
    let mut event = sqs_event();
    event.records[0].body = Some(
        serde_json::json!({
            "id": "c0ffee", "type": "event.cancelled", "aggregate_id": "evt_1",
            "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [],
            "summary": "cancelled", "data": {"fanout": "attendees"}
        })
        .to_string(),
    );
    let response = consume(
        &inbox,
        (&MemoryDlq::default(), &MemoryDlq::default()),
        5,
        event,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let mut users: Vec<String> = inbox
        .items
        .lock()
        .unwrap()
        .iter()
        .map(|i| i.0.clone())
        .collect();
    users.sort();
    assert_eq!(users, ["usr_a", "usr_b", "usr_c"]);
}

#[tokio::test]
async fn a_fanout_to_a_large_audience_goes_on_in_bounded_chunks_and_a_retried_chunk_adds_nothing() {
    let audience = 2 * FANOUT_CHUNK + 500;
    let inbox = MemoryInbox {
        attendees: (0..audience).map(|i| format!("usr_{i:05}")).collect(),
        ..Default::default()
    };
    let queues = MemoryDlq::default();
    let mut body = serde_json::json!({
        "id": "c0ffee", "type": "event.cancelled", "aggregate_id": "evt_1",
        "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [],
        "summary": "cancelled", "data": {"fanout": "attendees"}
    })
    .to_string();
    let mut invocations = 0;
    loop {
        let mut event = sqs_event();
        event.records[0].body = Some(body.clone());
        let before = *inbox.attempts.lock().unwrap();
        let response = consume(&inbox, (&queues, &queues), 5, event.clone()).await;
        assert!(response.batch_item_failures.is_empty());
        invocations += 1;
        let written = *inbox.attempts.lock().unwrap() - before;
        assert!(written <= FANOUT_CHUNK, "one invocation wrote {written}");
        if invocations == 2 {
            // The queue delivers this chunk again: the same items, and the same continuation.
            let items = inbox.items.lock().unwrap().len();
            consume(&inbox, (&queues, &queues), 5, event).await;
            assert_eq!(inbox.items.lock().unwrap().len(), items);
            let continued = queues.continued.lock().unwrap();
            assert_eq!(
                continued[continued.len() - 1],
                continued[continued.len() - 2]
            );
        }
        match queues.continued.lock().unwrap().last() {
            Some(next) if *next != body => body = next.clone(),
            _ => break,
        }
    }
    assert_eq!(invocations, 3, "2 500 attendees in chunks of 1 000");
    let items = inbox.items.lock().unwrap();
    assert_eq!(items.len(), audience, "every attendee once");
    assert!(items.iter().all(|(_, id)| id == "c0ffee"));
    assert!(queues.dead.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_fanout_that_claims_more_chunks_than_any_event_has_goes_to_the_dlq() {
    let inbox = MemoryInbox {
        attendees: vec!["usr_a".into()],
        ..Default::default()
    };
    let queues = MemoryDlq::default();
    let mut event = sqs_event();
    event.records[0].body = Some(
        serde_json::json!({
            "id": "c0ffee", "type": "event.cancelled", "aggregate_id": "evt_1",
            "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [], "summary": "s",
            "data": {"fanout": "attendees", "fanout_after": "0", "fanout_chunk": MAX_FANOUT_CHUNKS}
        })
        .to_string(),
    );
    let response = consume(&inbox, (&queues, &queues), 5, event).await;
    assert!(response.batch_item_failures.is_empty(), "not retried");
    assert_eq!(queues.dead.lock().unwrap().len(), 1);
    assert!(inbox.items.lock().unwrap().is_empty());
}

/// Realtime (issue 17): what was written is pushed once — a redelivery that finds it written
/// pushes nothing — and a fan-out chunk's pushes come after its continuation is queued, so a
/// slow push can never hold the rest of the audience back.
#[tokio::test]
async fn pushes_follow_the_writes_and_never_hold_back_a_fan_outs_continuation() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let inbox = MemoryInbox {
        attendees: (0..FANOUT_CHUNK + 10)
            .map(|i| format!("usr_{i:05}"))
            .collect(),
        journal: journal.clone(),
        ..Default::default()
    };
    let queues = MemoryDlq {
        journal: journal.clone(),
        ..Default::default()
    };
    for _ in 0..2 {
        let response = consume(&inbox, (&queues, &queues), 5, sqs_event()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(*journal.lock().unwrap(), ["push 1", "push 0"]);
    journal.lock().unwrap().clear();
    let mut event = sqs_event();
    event.records[0].body = Some(
        serde_json::json!({
            "id": "c0ffee", "type": "event.cancelled", "aggregate_id": "evt_1",
            "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [],
            "summary": "cancelled", "data": {"fanout": "attendees"}
        })
        .to_string(),
    );
    consume(&inbox, (&queues, &queues), 5, event).await;
    assert_eq!(
        *journal.lock().unwrap(),
        ["continue 1".to_owned(), format!("push {FANOUT_CHUNK}")]
    );
}
