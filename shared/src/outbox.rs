//! The transactional outbox: a state change writes its message as an item in the same
//! TransactWriteItems as the change itself, so a message exists exactly when the change
//! committed. The relay (functions/notifications) publishes each item from the table's stream.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Prefix of the partition key of outbox items (the stream filter selects on it). The key is
/// `OUTBOX#<aggregate id>` and the sort key the message id: an aggregate's messages share a
/// partition key, so DynamoDB Streams carries them on one shard (the relay still orders them by
/// number, and waits for a predecessor from another shard after a partition split).
pub const OUTBOX_PK_PREFIX: &str = "OUTBOX#";
/// Outbox items are deleted by TTL after this long; the relay reads them from the stream within
/// seconds, and the stream itself keeps records 24 h.
pub const OUTBOX_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// What an outbox item carries to its consumers: the message body on the queue.
/// Readers ignore fields they do not know (a consumer of the previous release reads a message
/// with a field added since, during a deploy or after a rollback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// The outbox item's id: the queue's deduplication id and the consumers' idempotency key.
    pub id: String,
    /// What happened, like `join.created` or `event.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The aggregate the change belongs to (an event or user id): messages of one aggregate
    /// stay in order (it is the FIFO message group).
    pub aggregate_id: String,
    /// Time of the change, RFC 3339 UTC with microseconds (sorts as text).
    pub occurred_at: String,
    /// The users to notify. Empty with `fanout = "attendees"` in `data`: every joined and
    /// waitlisted user of the event `aggregate_id`, resolved by the consumer.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A short human-readable text for the inbox.
    pub summary: String,
    /// Type-specific data.
    #[serde(default)]
    pub data: serde_json::Value,
    /// The message's number among its aggregate's messages (1, 2, …, in commit order, no
    /// gaps): consumers apply an aggregate's messages in this order whatever order they arrive
    /// in (stream shards do not keep order across items). Absent on messages of aggregates
    /// without a sequence (users) and on messages written before there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The condition, on the aggregate's item, that its message count `msg_seq` is still `read`
/// (`:msg_seq`): a change that numbers its messages from `read` commits only if no other
/// change numbered any since, so numbers follow commit order and leave no gaps.
pub fn seq_condition(read: u64) -> &'static str {
    if read == 0 {
        "(attribute_not_exists(msg_seq) OR msg_seq = :msg_seq)"
    } else {
        "msg_seq = :msg_seq"
    }
}

/// `messages` numbered `read + 1`, `read + 2`, … (see [`OutboxMessage::seq`]).
pub fn numbered(messages: &[OutboxMessage], read: u64) -> Vec<OutboxMessage> {
    messages
        .iter()
        .zip(read + 1..)
        .map(|(m, seq)| OutboxMessage {
            seq: Some(seq),
            ..m.clone()
        })
        .collect()
}

/// RFC 3339 UTC with a fixed six-digit fraction, so that the text sorts as the time.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}.{:06}Z", seconds(t), t.microsecond())
}

/// RFC 3339 UTC to the second (`2030-06-01T17:00:00Z`): the form event times are stored and
/// compared in.
pub fn utc(t: OffsetDateTime) -> String {
    format!("{}Z", seconds(t.to_offset(time::UtcOffset::UTC)))
}

fn seconds(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl OutboxMessage {
    /// A new message with a fresh id, occurring now.
    pub fn new(
        kind: &str,
        aggregate_id: &str,
        recipients: Vec<String>,
        summary: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind: kind.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            occurred_at: timestamp(OffsetDateTime::now_utc()),
            recipients,
            summary: summary.into(),
            data,
            seq: None,
        }
    }

    /// The outbox item for `table`, carrying the current trace so that the relay and the
    /// consumers continue it. Put it in the transaction of the change it announces.
    pub fn transact_put(&self, table: &str) -> anyhow::Result<TransactWriteItem> {
        let message = serde_json::to_string(self)?;
        let mut item: HashMap<String, AttributeValue> = HashMap::from([
            (
                "pk".into(),
                AttributeValue::S(format!("{OUTBOX_PK_PREFIX}{}", self.aggregate_id)),
            ),
            ("sk".into(), AttributeValue::S(self.id.clone())),
            ("type".into(), AttributeValue::S("outbox".into())),
            ("message".into(), AttributeValue::S(message)),
            (
                "expires_at".into(),
                AttributeValue::N(
                    (OffsetDateTime::now_utc().unix_timestamp() + OUTBOX_TTL_SECONDS).to_string(),
                ),
            ),
        ]);
        if let Some(trace) = crate::telemetry::current_xray_header() {
            item.insert("trace".into(), AttributeValue::S(trace));
        }
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_as_the_times_they_name() {
        let a = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_009_000).unwrap();
        let b = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_100_000_000).unwrap();
        let c = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_001_000_000_000).unwrap();
        let (ta, tb, tc) = (timestamp(a), timestamp(b), timestamp(c));
        assert_eq!(ta, "2023-11-14T22:13:20.000009Z");
        assert!(ta < tb && tb < tc, "{ta} {tb} {tc}");
    }

    #[test]
    fn the_outbox_item_holds_the_message_byte_for_byte() {
        let m = OutboxMessage::new(
            "join.created",
            "evt_1",
            vec!["usr_1".into()],
            "You joined",
            serde_json::json!({"k": 1}),
        );
        let item = m.transact_put("t").unwrap();
        let put = item.put().unwrap();
        assert_eq!(put.item()["pk"].as_s().unwrap(), "OUTBOX#evt_1");
        assert_eq!(put.item()["sk"].as_s().unwrap(), &m.id);
        let stored: OutboxMessage =
            serde_json::from_str(put.item()["message"].as_s().unwrap()).unwrap();
        assert_eq!(stored, m);
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    }
}
