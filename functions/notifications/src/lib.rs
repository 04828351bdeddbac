//! The outbox's way out: the relay publishes committed outbox items from the table's stream to
//! the outbox queue, and the consumers turn queue messages into users' notifications.

pub mod consumer;
pub mod relay;

use serde::{Deserialize, Serialize};

/// What an outbox item carries to its consumers: the message body on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxMessage {
    /// The outbox item's id: the queue's deduplication id and the consumers' idempotency key.
    pub id: String,
    /// What happened, like `join.created` or `event.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The aggregate the change belongs to (an event id): messages of one aggregate stay in order.
    pub aggregate_id: String,
    /// RFC 3339 time of the change.
    pub occurred_at: String,
    /// The users to notify.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A short human-readable text for the inbox.
    pub summary: String,
    /// Type-specific data.
    #[serde(default)]
    pub data: serde_json::Value,
}
