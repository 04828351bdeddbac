//! The outbox relay: DynamoDB stream → SQS. Only committed items appear on the stream, so
//! nothing uncommitted is ever published; a record that fails to publish is reported as a
//! batch item failure and the stream retries from it, so nothing committed is lost. The
//! outbox id is the FIFO deduplication id, so a retried publish is not a second message.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;
use tracing::Instrument;

use crate::OutboxMessage;
use shared::queue::FifoQueue;

pub use shared::outbox::OUTBOX_PK_PREFIX;
/// Message attribute carrying the trace of the request that wrote the item.
pub const TRACE_ATTRIBUTE: &str = "x-amzn-trace-id";

/// The outbox item as stored in the table.
#[derive(Debug, Deserialize)]
pub struct OutboxItem {
    pub pk: String,
    /// The message, serialised when the item was written: published byte for byte.
    pub message: String,
    /// The X-Ray trace header of the writing request.
    #[serde(default)]
    pub trace: Option<String>,
}

/// Where the relay publishes.
pub trait Publisher {
    fn publish(
        &self,
        item: &OutboxItem,
        message: &OutboxMessage,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// The outbox queue: one message group per aggregate, the outbox id deduplicates a repeat, the
/// writing request's trace travels as a message attribute.
impl Publisher for FifoQueue {
    async fn publish(&self, item: &OutboxItem, message: &OutboxMessage) -> anyhow::Result<()> {
        // The relay's own span continues the writer's trace: the consumer's segment is its child.
        let trace = shared::telemetry::current_xray_header().or_else(|| item.trace.clone());
        let mut attributes = vec![("type", message.kind.as_str())];
        attributes.extend(trace.as_deref().map(|t| (TRACE_ATTRIBUTE, t)));
        self.send(
            &item.message,
            &message.aggregate_id,
            &message.id,
            &attributes,
        )
        .await
    }
}

/// Where the relay keeps, per aggregate, the number of the last message it published in
/// order (see [`OutboxMessage::seq`]): the table item `RELAYSEQ#<aggregate>` / `RELAYSEQ`.
pub trait Sequencer {
    /// The last number published for `aggregate` (0 before any).
    fn published(
        &self,
        aggregate: &str,
    ) -> impl std::future::Future<Output = anyhow::Result<u64>> + Send;
    /// Records that `seq` was published (it never moves back).
    fn advance(
        &self,
        aggregate: &str,
        seq: u64,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// Prefix of the sequence items' partition key (the relay's only table access).
pub const RELAY_SEQ_PREFIX: &str = "RELAYSEQ#";
/// Sequence items expire this long after their last message (an event's messages end with it).
const RELAY_SEQ_TTL_SECONDS: i64 = 90 * 24 * 3600;

/// The sequence items in the table.
pub struct DynamoSequencer {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DynamoSequencer {
    fn key(aggregate: &str) -> shared::ddb::Item {
        use shared::ddb::s;
        std::collections::HashMap::from([
            ("pk".into(), s(format!("{RELAY_SEQ_PREFIX}{aggregate}"))),
            ("sk".into(), s("RELAYSEQ")),
        ])
    }
}

impl Sequencer for DynamoSequencer {
    async fn published(&self, aggregate: &str) -> anyhow::Result<u64> {
        let item =
            shared::ddb::get_consistent(&self.ddb, &self.table, Self::key(aggregate)).await?;
        Ok(item
            .and_then(|i| shared::ddb::get_n(&i, "published"))
            .unwrap_or(0))
    }

    async fn advance(&self, aggregate: &str, seq: u64) -> anyhow::Result<()> {
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + RELAY_SEQ_TTL_SECONDS;
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(aggregate)))
            .update_expression("SET published = :seq, expires_at = :exp")
            .condition_expression("attribute_not_exists(published) OR published < :seq")
            .expression_attribute_values(":seq", shared::ddb::n(seq))
            .expression_attribute_values(":exp", shared::ddb::n(expires))
            .send()
            .await;
        // A later number already recorded (a retried batch): it stands.
        shared::ddb::written(result)?;
        Ok(())
    }
}

/// How long a batch waits, in all, for earlier messages of its aggregates (published by the
/// relay of another stream shard) before it publishes anyway: an earlier message that is lost
/// (it went to the RelayFailureQueue) must not hold its event's notifications back for ever,
/// and a batch full of such gaps must still end well inside the function's 30 s timeout.
pub const GAP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const GAP_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// One stream record, read.
enum Record {
    /// Not an outbox insert: nothing to do.
    Skip,
    Outbox(Box<(OutboxItem, OutboxMessage)>),
    /// An outbox item whose message cannot be read: it fails (the stream retries it, then
    /// the RelayFailureQueue keeps it).
    Malformed(anyhow::Error),
}

/// The order to publish `records` in: stream order, except that numbered messages of one
/// aggregate take their own positions in number order (records of different items on one
/// shard are not ordered by the stream).
fn publish_order(records: &[Record]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    let mut by_aggregate: std::collections::HashMap<&str, Vec<(usize, u64)>> = Default::default();
    for (i, r) in records.iter().enumerate() {
        if let Record::Outbox(b) = r
            && let Some(seq) = b.1.seq
        {
            by_aggregate
                .entry(b.1.aggregate_id.as_str())
                .or_default()
                .push((i, seq));
        }
    }
    for entries in by_aggregate.values() {
        let mut seqs: Vec<(u64, usize)> = entries.iter().map(|(i, s)| (*s, *i)).collect();
        seqs.sort_unstable();
        for ((position, _), (_, index)) in entries.iter().zip(seqs) {
            order[*position] = index;
        }
    }
    order
}

/// What became of one record.
enum Step {
    /// Published (with its message type), or nothing to publish.
    Done(Option<String>),
    /// Its aggregate's earlier message is not published yet: try again after the others.
    Deferred,
}

/// The relay as deployed: SQS to publish to, the sequence bookkeeping in the table.
pub struct Relay {
    pub publisher: FifoQueue,
    pub sequencer: DynamoSequencer,
}

impl Relay {
    pub fn new(app: &shared::App) -> anyhow::Result<std::sync::Arc<Self>> {
        Ok(std::sync::Arc::new(Relay {
            publisher: FifoQueue {
                sqs: app.clients.sqs().clone(),
                url: app.config.outbox_queue_url.clone(),
            },
            sequencer: DynamoSequencer {
                ddb: app.clients.dynamodb.clone(),
                table: app.config.table_name.clone(),
            },
        }))
    }

    pub async fn handle(&self, event: Event) -> anyhow::Result<DynamoDbEventResponse> {
        Ok(relay(&self.publisher, &self.sequencer, event, GAP_WAIT).await)
    }
}

/// Publishes every outbox insert of the batch. Per aggregate, numbered messages go out in
/// number order: a message whose predecessor was not published yet (another stream shard
/// carries it) is deferred behind the rest of the batch, and the deferred ones are tried again
/// until their predecessors are published or the batch's wait ([`GAP_WAIT`], one budget for the
/// whole batch) is spent, when they are published anyway. Other aggregates never wait for
/// them. Stops at the first failure and reports the earliest record not published: the stream
/// redelivers from it (a repeat of a published message is deduplicated by the queue, and by
/// the consumer after that).
pub async fn relay(
    publisher: &impl Publisher,
    sequencer: &impl Sequencer,
    event: Event,
    gap_wait: std::time::Duration,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let records: Vec<Record> = event.records.iter().map(read_record).collect();
    let mut done = vec![false; records.len()];
    let mut progress = Progress::default();
    let wait_until = std::time::Instant::now() + gap_wait;
    let mut pending = publish_order(&records);
    while !pending.is_empty() {
        let give_up_waiting = std::time::Instant::now() >= wait_until;
        let mut deferred = Vec::new();
        for i in pending {
            let step = match &records[i] {
                Record::Skip => Ok(Step::Done(None)),
                Record::Malformed(e) => Err(anyhow::anyhow!("{e}")),
                Record::Outbox(b) => {
                    publish_in_order(
                        publisher,
                        sequencer,
                        &b.0,
                        &b.1,
                        &mut progress,
                        give_up_waiting,
                    )
                    .await
                }
            };
            match step {
                Ok(Step::Done(kind)) => {
                    if let Some(kind) = kind {
                        metrics::counter!("OutboxPublished", "type" => kind).increment(1);
                    }
                    done[i] = true;
                }
                Ok(Step::Deferred) => deferred.push(i),
                Err(e) => {
                    let first = done.iter().position(|d| !d).unwrap_or(i);
                    let record = &event.records[first];
                    metrics::counter!("OutboxPublishFailed").increment(1);
                    tracing::error!(
                        sequence_number = ?record.change.sequence_number,
                        error.cause_chain = %shared::error_chain_anyhow(&e),
                        "outbox item not published; the stream will retry from it"
                    );
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = record.change.sequence_number.clone();
                    response.batch_item_failures.push(failure);
                    progress.record(sequencer).await;
                    return response;
                }
            }
        }
        progress.record(sequencer).await;
        if !deferred.is_empty() {
            // Read the deferred aggregates' numbers afresh on the next pass.
            for &i in &deferred {
                if let Record::Outbox(b) = &records[i] {
                    progress.published.remove(&b.1.aggregate_id);
                }
            }
            tokio::time::sleep(GAP_POLL).await;
        }
        pending = deferred;
    }
    response
}

/// Per event of a batch: the last number published (or read from the table), and the last
/// number the table is known to hold.
#[derive(Default)]
struct Progress {
    published: std::collections::HashMap<String, u64>,
    recorded: std::collections::HashMap<String, u64>,
}

impl Progress {
    /// Writes each event's last published number that the table does not have yet: once per
    /// event and pass, not once per message (a batch of 100 joins of one event is one
    /// UpdateItem). A crash before it leaves the numbers behind: the stream redelivers the
    /// batch, whose messages are published again (deduplicated) and recorded then. A failure is
    /// logged: the messages are out, and a later message of the event waits [`GAP_WAIT`] for
    /// them at worst.
    async fn record(&mut self, sequencer: &impl Sequencer) {
        for (aggregate, seq) in &self.published {
            if self.recorded.get(aggregate).is_some_and(|r| r >= seq) {
                continue;
            }
            match sequencer.advance(aggregate, *seq).await {
                Ok(()) => {
                    self.recorded.insert(aggregate.clone(), *seq);
                }
                Err(e) => {
                    metrics::counter!("OutboxOrderUnchecked").increment(1);
                    tracing::warn!(aggregate_id = %aggregate, seq, error.cause_chain = %shared::error_chain_anyhow(&e), "published message number not recorded");
                }
            }
        }
    }
}

fn read_record(record: &EventRecord) -> Record {
    if record.event_name != "INSERT" {
        return Record::Skip;
    }
    let item: OutboxItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(item) => item,
        // Not an outbox item (the event source filter normally keeps these away).
        Err(_) => return Record::Skip,
    };
    if !item.pk.starts_with(OUTBOX_PK_PREFIX) {
        return Record::Skip;
    }
    match serde_json::from_str::<OutboxMessage>(&item.message) {
        Ok(message) => Record::Outbox(Box::new((item, message))),
        Err(e) => Record::Malformed(anyhow::anyhow!(
            "outbox item {} holds a malformed message: {e}",
            item.pk
        )),
    }
}

async fn publish_in_order(
    publisher: &impl Publisher,
    sequencer: &impl Sequencer,
    item: &OutboxItem,
    message: &OutboxMessage,
    progress: &mut Progress,
    give_up_waiting: bool,
) -> anyhow::Result<Step> {
    // A segment of the writer's trace in X-Ray (kind server, named after this function), so the
    // service map shows the relay between the API and the queue.
    let span = tracing::info_span!("outbox.publish", otel.kind = "server", outbox_id = %message.id, message_type = %message.kind, aggregate_id = %message.aggregate_id, seq = message.seq.unwrap_or(0), trace_id = tracing::field::Empty);
    shared::telemetry::continue_trace(&span, item.trace.as_deref());
    async {
        let Some(seq) = message.seq else {
            publisher.publish(item, message).await?;
            return Ok(Step::Done(Some(message.kind.clone())));
        };
        let aggregate = message.aggregate_id.as_str();
        let last = match progress.published.get(aggregate) {
            Some(n) => *n,
            None => match sequencer.published(aggregate).await {
                Ok(n) => {
                    progress.published.insert(aggregate.to_owned(), n);
                    progress.recorded.insert(aggregate.to_owned(), n);
                    n
                }
                // The order's bookkeeping must never hold a committed message back: with the
                // table unreachable, publish in stream order (one shard keeps an event's order).
                Err(e) => {
                    metrics::counter!("OutboxOrderUnchecked").increment(1);
                    tracing::warn!(aggregate_id = %aggregate, seq, error.cause_chain = %shared::error_chain_anyhow(&e), "sequence unreadable; publishing in stream order");
                    seq.saturating_sub(1)
                }
            },
        };
        if seq > last + 1 {
            if !give_up_waiting {
                return Ok(Step::Deferred);
            }
            metrics::counter!("OutboxSequenceGaps").increment(1);
            tracing::warn!(aggregate_id = %aggregate, seq, last, "earlier messages of this aggregate were not published in time; publishing this one anyway");
        }
        publisher.publish(item, message).await?;
        // Recorded in the table once per event and pass ([`record_progress`]).
        progress.published.insert(aggregate.to_owned(), last.max(seq));
        Ok(Step::Done(Some(message.kind.clone())))
    }
    .instrument(span)
    .await
}
