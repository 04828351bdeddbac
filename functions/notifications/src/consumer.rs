//! The notifications consumer: outbox messages → one inbox item per recipient. Idempotent by
//! message id (the inbox item's key is derived from it), so a redelivered message never makes
//! a second notification. Failed messages are reported one by one; the queue redelivers only
//! those and moves them to the DLQ after 5 receives.
//!
//! A message for every attendee of an event (`fanout = "attendees"`) is delivered in chunks of
//! [`FANOUT_CHUNK`] attendees, written with BatchWriteItem: one invocation does one chunk and
//! queues the rest as a continuation of the same message (`fanout_after` = where the next chunk
//! starts, `fanout_chunk` = its number), so the work per invocation stays bounded whatever the
//! audience. A chunk's items are stamped with the time its message was first received, so a
//! redelivered chunk writes exactly the same items again (nothing read becomes unread).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::relay::TRACE_ATTRIBUTE;
use shared::outbox::OutboxMessage;
use shared::queue::FifoQueue;

pub use crate::inbox::InboxItem;

/// Where inbox items are written.
pub trait Inbox: Sync {
    /// Writes the notification for `user_id` unless it exists; `Ok(false)` when it already did.
    fn deliver(
        &self,
        user_id: &str,
        message: &OutboxMessage,
    ) -> impl std::future::Future<Output = anyhow::Result<bool>> + Send;
    /// Up to `limit` of the attendees (seats, then the waitlist) of `event_id` after `after`,
    /// for `fanout = "attendees"` messages: their user ids, and where the next chunk starts
    /// (None: this was the last).
    fn attendees(
        &self,
        event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl std::future::Future<Output = anyhow::Result<(Vec<String>, Option<String>)>> + Send;
    /// Pushes `message`, just written to the inboxes of `users`, to their live connections
    /// (crate::push). Never fails: the inbox has it. By default nothing (no realtime channel).
    fn push(
        &self,
        _users: &[String],
        _message: &OutboxMessage,
    ) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }
    /// Writes the notification for each of `users`, delivered at `delivered_at`. A retried
    /// chunk writes the same items again (same keys, same contents): never a second
    /// notification. By default one [`Inbox::deliver`] each (the first delivery's time stands).
    fn deliver_all(
        &self,
        users: &[String],
        message: &OutboxMessage,
        _delivered_at: &str,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        async move {
            for user in users {
                self.deliver(user, message).await?;
            }
            Ok(())
        }
    }
}

/// Attendees one fan-out message notifies in one invocation; the rest go on in a continuation
/// (1 000: 40 BatchWriteItem requests, a few seconds at most).
pub const FANOUT_CHUNK: usize = 1000;

/// BatchWriteItem requests of one chunk in flight at once.
const FANOUT_CONCURRENCY: usize = 8;

/// Chunks a fan-out may take (a million attendees): a message claiming a later chunk is
/// malformed (a continuation loop), and goes to the DLQ.
pub const MAX_FANOUT_CHUNKS: u64 = 1000;

/// Where the rest of a fan-out goes: back on the outbox queue, in the event's message group.
pub trait Continuations {
    /// Queues chunk number `chunk` of the fan-out of `message`, from `after` on. Sending the
    /// same continuation again (a retried chunk) is deduplicated by (message, chunk).
    fn continue_fanout(
        &self,
        message: &OutboxMessage,
        after: &str,
        chunk: u64,
        trace: Option<&str>,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// The outbox queue: the same message, with `fanout_after`, in the event's group; deduplicated
/// by (message, chunk).
impl Continuations for FifoQueue {
    async fn continue_fanout(
        &self,
        message: &OutboxMessage,
        after: &str,
        chunk: u64,
        trace: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut next = message.clone();
        if let Some(data) = next.data.as_object_mut() {
            data.insert("fanout_after".into(), after.into());
            data.insert("fanout_chunk".into(), chunk.into());
        }
        let dedup = shared::ids::digest_hex(&format!("{}\n{chunk}", message.id));
        let mut attributes = vec![("type", message.kind.as_str())];
        attributes.extend(trace.map(|t| (TRACE_ATTRIBUTE, t)));
        let body = serde_json::to_string(&next)?;
        self.send(&body, &message.aggregate_id, &dedup, &attributes)
            .await
    }
}

/// The inbox in the table (see [`InboxItem`]).
pub struct DynamoInbox {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    /// Pushes what was written to the users' live connections (crate::push).
    pub pusher: crate::push::Pusher,
}

impl Inbox for DynamoInbox {
    async fn push(&self, users: &[String], message: &OutboxMessage) {
        self.pusher.push(users, message).await
    }

    async fn attendees(
        &self,
        event_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<(Vec<String>, Option<String>)> {
        use seating::SeatReader;
        let seats = seating::dynamo::DynamoSeats {
            ddb: self.dynamodb.clone(),
            table: self.table.clone(),
        };
        let (page, more) = seats.attendees(event_id, after, limit).await?;
        let next = more.then(|| page.last().map(|a| a.sk.clone())).flatten();
        Ok((page.into_iter().map(|a| a.user_id).collect(), next))
    }

    /// BatchWriteItem, 25 items a request, [`FANOUT_CONCURRENCY`] requests at once, each
    /// request's unprocessed items sent again with backoff (an error once its budget is spent:
    /// the message is redelivered and the chunk written again).
    async fn deliver_all(
        &self,
        users: &[String],
        message: &OutboxMessage,
        delivered_at: &str,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        // One request may not name an item twice (a user who left a seat and rejoined the
        // waitlist between the chunk's two reads).
        let mut seen = std::collections::HashSet::new();
        let users: Vec<&String> = users.iter().filter(|u| seen.insert(*u)).collect();
        let mut requests = Vec::new();
        for chunk in users.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for user in chunk {
                let mut item = InboxItem::new(user, message);
                item.delivered_at = delivered_at.to_owned();
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(shared::ddb::to_item(&item)?))
                    .build()?;
                writes.push(
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(put)
                        .build(),
                );
            }
            requests.push(writes);
        }
        let mut results = futures_util::stream::iter(requests)
            .map(|writes| shared::ddb::batch_write(&self.dynamodb, &self.table, writes))
            .buffer_unordered(FANOUT_CONCURRENCY);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(())
    }

    async fn deliver(&self, user_id: &str, message: &OutboxMessage) -> anyhow::Result<bool> {
        let item = InboxItem::new(user_id, message);
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(shared::ddb::to_item(&item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Ok(shared::ddb::written(result)?)
    }
}

/// Where messages that can never be processed go at once (the outbox DLQ).
pub trait DeadLetters {
    fn dead_letter(
        &self,
        record: &SqsMessage,
        reason: &str,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// The outbox DLQ (FIFO: the message id deduplicates a repeat).
impl DeadLetters for FifoQueue {
    async fn dead_letter(&self, record: &SqsMessage, reason: &str) -> anyhow::Result<()> {
        self.send(
            record.body.as_deref().unwrap_or_default(),
            "malformed",
            record.message_id.as_deref().unwrap_or_default(),
            &[("dead-reason", reason)],
        )
        .await
    }
}

/// The types that notify someone; other types are processed without an inbox item.
pub const NOTIFYING: [&str; 6] = [
    "join.created",
    "join.waitlisted",
    "join.promoted",
    "join.refused",
    "event.cancelled",
    "event.changed",
];

/// Why a message failed.
#[derive(Debug)]
pub enum Failure {
    /// It can never be processed: it goes to the DLQ at once and is not retried.
    Malformed(String),
    /// It may work next time: the queue redelivers it (up to its receive limit).
    Transient(anyhow::Error),
}

/// The consumer as deployed: the inbox and the DLQ in AWS, and the queue's maxReceiveCount.
pub struct Consumer {
    pub inbox: DynamoInbox,
    pub dead: FifoQueue,
    /// The outbox queue, for the continuations of large fan-outs.
    pub outbox: FifoQueue,
    pub max_receives: u32,
}

impl Consumer {
    /// Fails at start, naming `OUTBOX_MAX_RECEIVES`, when it is not set.
    pub fn new(app: &shared::App) -> anyhow::Result<std::sync::Arc<Self>> {
        Ok(std::sync::Arc::new(Consumer {
            inbox: DynamoInbox {
                dynamodb: app.clients.dynamodb.clone(),
                table: app.config.table_name.clone(),
                pusher: crate::push::Pusher::new(app, &realtime_endpoint_from_env()?),
            },
            dead: FifoQueue {
                sqs: app.clients.sqs().clone(),
                url: app.config.outbox_dlq_url.clone(),
            },
            outbox: FifoQueue {
                sqs: app.clients.sqs().clone(),
                url: app.config.outbox_queue_url.clone(),
            },
            max_receives: max_receives_from_env()?,
        }))
    }

    pub async fn handle(&self, event: SqsEvent) -> anyhow::Result<SqsBatchResponse> {
        self.inbox.pusher.start_invocation();
        let queues = (&self.dead, &self.outbox);
        Ok(consume(&self.inbox, queues, self.max_receives, event).await)
    }
}

/// Processes a batch; returns the ids of the messages to redeliver. `max_receives` is the
/// queue's maxReceiveCount: a message failing on that receive is counted dead (the queue moves
/// it to the DLQ). The queue is FIFO with one message group per event: once a message of a
/// group fails, the later messages of that group in the batch are not processed and are
/// reported failed too, so that the group is redelivered from the failed one, in order
/// (AWS's rule for FIFO partial batch responses). Other groups go on.
pub async fn consume(
    inbox: &impl Inbox,
    (dead, continuations): (&impl DeadLetters, &impl Continuations),
    max_receives: u32,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut stopped_groups: std::collections::HashSet<String> = Default::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned();
        if group.as_ref().is_some_and(|g| stopped_groups.contains(g)) {
            metrics::counter!("ConsumerHeldBack").increment(1);
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
            continue;
        }
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let failed = match consume_one(inbox, continuations, &record).await {
            Ok(()) => false,
            Err(Failure::Malformed(reason)) => match dead.dead_letter(&record, &reason).await {
                Ok(()) => {
                    metrics::counter!("OutboxDead", "reason" => "malformed").increment(1);
                    tracing::error!(message_id = %id, reason = %reason, "malformed message sent to the DLQ");
                    false
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, error.cause_chain = %shared::error_chain_anyhow(&e), "malformed message could not reach the DLQ; it will be redelivered");
                    true
                }
            },
            Err(Failure::Transient(e)) => {
                if receives >= max_receives {
                    metrics::counter!("OutboxDead", "reason" => "retries_exhausted").increment(1);
                    tracing::error!(message_id = %id, receives, error.cause_chain = %shared::error_chain_anyhow(&e), "message failed on its last receive; the queue moves it to the DLQ");
                } else {
                    tracing::warn!(message_id = %id, receives, error.cause_chain = %shared::error_chain_anyhow(&e), "message failed; it will be redelivered");
                }
                true
            }
        };
        if failed {
            if let Some(g) = group {
                stopped_groups.insert(g);
            }
            metrics::counter!("ConsumerFailed").increment(1);
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn consume_one(
    inbox: &impl Inbox,
    continuations: &impl Continuations,
    record: &SqsMessage,
) -> Result<(), Failure> {
    // A segment of the writer's trace in X-Ray, the relay's child (see shared::xray).
    let span = tracing::info_span!(
        "notifications.consume",
        otel.kind = "server",
        message_id = record.message_id.as_deref().unwrap_or_default(),
        message_type = tracing::field::Empty,
        aggregate_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    // SQS's AWSTraceHeader names the SendMessage that sent it (shared::xray); the message
    // attribute, the sender's span (messages sent before, or by a sender not tracing).
    let trace = record
        .attributes
        .get("AWSTraceHeader")
        .map(String::as_str)
        .or_else(|| {
            record
                .message_attributes
                .get(TRACE_ATTRIBUTE)
                .and_then(|a| a.string_value.as_deref())
        });
    // Its log lines carry the writer's trace id (the runbook's lines-of-a-trace query).
    shared::telemetry::continue_trace(&span, trace);
    async {
        let body = record.body.as_deref().unwrap_or("");
        let message: OutboxMessage = serde_json::from_str(body)
            .map_err(|e| Failure::Malformed(format!("not an outbox message: {e}")))?;
        let span = tracing::Span::current();
        span.record("message_type", message.kind.as_str());
        span.record("aggregate_id", message.aggregate_id.as_str());
        let fanout = message.data.get("fanout").and_then(|v| v.as_str());
        let notifies = NOTIFYING.contains(&message.kind.as_str());
        let mut delivered = 0;
        let recipients = match fanout {
            Some("attendees") => {
                let after = message.data.get("fanout_after").and_then(|v| v.as_str());
                let chunk = message.data.get("fanout_chunk").and_then(|v| v.as_u64());
                let chunk = chunk.unwrap_or(0);
                if chunk >= MAX_FANOUT_CHUNKS {
                    return Err(Failure::Malformed(format!(
                        "fan-out chunk {chunk}: more than {MAX_FANOUT_CHUNKS} chunks"
                    )));
                }
                let (users, next) = inbox
                    .attendees(&message.aggregate_id, after, FANOUT_CHUNK)
                    .await
                    .map_err(Failure::Transient)?;
                if notifies {
                    inbox
                        .deliver_all(&users, &message, &first_received(record))
                        .await
                        .map_err(Failure::Transient)?;
                    delivered = users.len();
                    metrics::counter!("FanOutDelivered").increment(users.len() as u64);
                }
                // The rest, after this chunk is written: a failure here redelivers the chunk,
                // which writes the same items again and sends the same continuation.
                if let Some(after) = next {
                    continuations
                        .continue_fanout(
                            &message,
                            &after,
                            chunk + 1,
                            shared::telemetry::current_xray_header()
                                .as_deref()
                                .or(trace),
                        )
                        .await
                        .map_err(Failure::Transient)?;
                    metrics::counter!("FanOutContinued").increment(1);
                }
                // Live pushes last: the chunk is written and the rest queued, whatever they
                // cost (bounded: crate::push::PUSH_BUDGET). A chunk written again pushes again;
                // clients drop the ids they have.
                if notifies {
                    inbox.push(&users, &message).await;
                }
                users
            }
            Some(other) => return Err(Failure::Malformed(format!("unknown fanout {other:?}"))),
            None => {
                if notifies {
                    let mut written = Vec::new();
                    for user in &message.recipients {
                        if inbox
                            .deliver(user, &message)
                            .await
                            .map_err(Failure::Transient)?
                        {
                            written.push(user.clone());
                        }
                    }
                    delivered = written.len();
                    // Pushed once, when it reaches the inbox (a redelivery that finds it there
                    // does not push again: the client has it, or resumes to it).
                    inbox.push(&written, &message).await;
                }
                message.recipients.clone()
            }
        };
        metrics::counter!("ConsumerProcessed", "type" => message.kind.clone()).increment(1);
        tracing::info!(outbox_id = %message.id, r#type = %message.kind, aggregate_id = %message.aggregate_id, delivered, recipients = recipients.len(), "notifications delivered");
        Ok(())
    }
    .instrument(span)
    .await
}

/// When the queue first handed `record` out (its `ApproximateFirstReceiveTimestamp`; now, when
/// it does not say): the same on every redelivery.
fn first_received(record: &SqsMessage) -> String {
    let at = record
        .attributes
        .get("ApproximateFirstReceiveTimestamp")
        .and_then(|ms| ms.parse::<i128>().ok())
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    shared::outbox::timestamp(at)
}

/// `REALTIME_ENDPOINT`: the WebSocket API's management endpoint, where pushes go
/// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`; template.yaml sets it).
pub fn realtime_endpoint_from_env() -> anyhow::Result<String> {
    std::env::var("REALTIME_ENDPOINT")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| v.starts_with("https://") || v.starts_with("http://"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "missing configuration: REALTIME_ENDPOINT (the WebSocket API's management endpoint, an http(s) URL)"
            )
        })
}

/// `OUTBOX_MAX_RECEIVES`: the outbox queue's maxReceiveCount. Fails at start, naming it, when it
/// is missing or not a positive number.
pub fn max_receives_from_env() -> anyhow::Result<u32> {
    std::env::var("OUTBOX_MAX_RECEIVES")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "missing configuration: OUTBOX_MAX_RECEIVES (the outbox queue's maxReceiveCount, a positive number)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_never_see_where_a_fan_out_chunk_starts() {
        let message: OutboxMessage = serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "type": "event.cancelled", "aggregate_id": "evt_1",
            "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [], "summary": "s",
            "data": {"fanout": "attendees", "fanout_after": "SEAT#usr_other", "fanout_chunk": 3}
        }))
        .unwrap();
        let item = InboxItem::new("usr_me", &message);
        let data: serde_json::Value = serde_json::from_str(&item.data).unwrap();
        assert_eq!(data, serde_json::json!({"fanout": "attendees"}));
    }

    #[test]
    fn a_redelivered_chunk_is_stamped_with_its_first_receive() {
        let mut record = SqsMessage::default();
        record.attributes.insert(
            "ApproximateFirstReceiveTimestamp".into(),
            "1795000000123".into(),
        );
        let first = first_received(&record);
        assert_eq!(first, first_received(&record));
        assert!(first.starts_with("2026-11-18T"), "{first}");
    }
}
