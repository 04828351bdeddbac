//! An inbox item: one notification of one user, as the consumer writes it and the API and the
//! realtime channel read it.

use shared::outbox::OutboxMessage;

/// The fields of a message's `data` that steer its fan-out, not shown to its recipients.
const FANOUT_FIELDS: [&str; 2] = ["fanout_after", "fanout_chunk"];

/// An inbox item: `pk = USER#<id>`, `sk = NOTIF#<occurred_at>#<message id>` (serde_dynamo).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InboxItem {
    pub pk: String,
    pub sk: String,
    #[serde(rename = "type")]
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub aggregate_id: String,
    /// The message's `data`, as JSON text.
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub message_id: String,
    /// When the change happened (absent on items written before it was kept: the id starts
    /// with it).
    #[serde(default)]
    pub occurred_at: String,
    /// The message's number among its event's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When it reached the inbox: a notification arriving after the user marked everything
    /// up to a later one read is still unread (see api::list).
    #[serde(default)]
    pub delivered_at: String,
    /// When this copy was written (a fan-out chunk written again gets a new one, unlike
    /// `delivered_at`): what a realtime `resume` compares (crate::realtime).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub written_at: String,
    #[serde(default)]
    pub trace_id: String,
}

/// A message's `data` as its recipients see it: without the fields that steer a fan-out (where
/// a chunk starts names another attendee).
fn recipients_data(data: &serde_json::Value) -> String {
    let mut data = data.clone();
    if let Some(fields) = data.as_object_mut() {
        for f in FANOUT_FIELDS {
            fields.remove(f);
        }
    }
    data.to_string()
}

impl InboxItem {
    pub fn new(user_id: &str, message: &OutboxMessage) -> Self {
        Self {
            pk: format!("USER#{user_id}"),
            sk: format!("NOTIF#{}#{}", message.occurred_at, message.id),
            kind: message.kind.clone(),
            summary: message.summary.clone(),
            aggregate_id: message.aggregate_id.clone(),
            data: recipients_data(&message.data),
            message_id: message.id.clone(),
            occurred_at: message.occurred_at.clone(),
            seq: message.seq,
            delivered_at: shared::outbox::timestamp(time::OffsetDateTime::now_utc()),
            written_at: shared::outbox::timestamp(time::OffsetDateTime::now_utc()),
            trace_id: shared::telemetry::current_trace_id().unwrap_or_default(),
        }
    }
}
