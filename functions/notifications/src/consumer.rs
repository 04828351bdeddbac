//! The notifications consumer: outbox messages → one inbox item per recipient. Idempotent by
//! message id (the inbox item's key is derived from it and written with a condition), so a
//! redelivered message never makes a second notification. Failed messages are reported one by
//! one; the queue redelivers only those and moves them to the DLQ after 5 receives.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::OutboxMessage;
use crate::relay::TRACE_ATTRIBUTE;

/// Where inbox items are written.
pub trait Inbox {
    /// Writes the notification for `user_id` unless it exists; `Ok(false)` when it already did.
    fn deliver(
        &self,
        user_id: &str,
        message: &OutboxMessage,
    ) -> impl std::future::Future<Output = anyhow::Result<bool>> + Send;
}

/// The inbox in the table: `pk = USER#<id>`, `sk = NOTIF#<occurred_at>#<message id>`.
pub struct DynamoInbox {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Inbox for DynamoInbox {
    async fn deliver(&self, user_id: &str, message: &OutboxMessage) -> anyhow::Result<bool> {
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("USER#{user_id}")))
            .item(
                "sk",
                AttributeValue::S(format!("NOTIF#{}#{}", message.occurred_at, message.id)),
            )
            .item("type", AttributeValue::S(message.kind.clone()))
            .item("summary", AttributeValue::S(message.summary.clone()))
            .item(
                "aggregate_id",
                AttributeValue::S(message.aggregate_id.clone()),
            )
            .item("data", AttributeValue::S(message.data.to_string()))
            .item("message_id", AttributeValue::S(message.id.clone()))
            .item(
                "trace_id",
                AttributeValue::S(shared::telemetry::current_trace_id().unwrap_or_default()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Processes a batch; returns the ids of the messages to redeliver.
pub async fn consume(inbox: &impl Inbox, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if let Err(e) = consume_one(inbox, &record).await {
            metrics::counter!("ConsumerFailed").increment(1);
            tracing::warn!(message_id = %id, error.cause_chain = %shared::error_chain_anyhow(&e), "message failed; it will be redelivered");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn consume_one(inbox: &impl Inbox, record: &SqsMessage) -> anyhow::Result<()> {
    let span = tracing::info_span!("notifications.consume", otel.kind = "consumer", message_id = ?record.message_id);
    let trace = record
        .message_attributes
        .get(TRACE_ATTRIBUTE)
        .and_then(|a| a.string_value.as_deref());
    if let Some(parent) = shared::telemetry::remote_parent(trace, &http::HeaderMap::new()) {
        let _ = span.set_parent(parent);
    }
    async {
        let body = record.body.as_deref().unwrap_or("");
        let message: OutboxMessage = serde_json::from_str(body)
            .map_err(|e| anyhow::anyhow!("malformed outbox message: {e}"))?;
        let mut delivered = 0;
        for user in &message.recipients {
            if inbox.deliver(user, &message).await? {
                delivered += 1;
            }
        }
        metrics::counter!("ConsumerProcessed", "type" => message.kind.clone()).increment(1);
        tracing::info!(r#type = %message.kind, delivered, recipients = message.recipients.len(), "notifications delivered");
        Ok(())
    }
    .instrument(span)
    .await
}
