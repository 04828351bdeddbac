//! The outbox relay: DynamoDB stream → SQS. Only committed items appear on the stream, so
//! nothing uncommitted is ever published; a record that fails to publish is reported as a
//! batch item failure and the stream retries from it, so nothing committed is lost. The
//! outbox id is the FIFO deduplication id, so a retried publish is not a second message.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::Deserialize;
use tracing::Instrument;
use tracing_opentelemetry_ext::set_remote_parent;

use crate::OutboxMessage;

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

/// The SQS FIFO outbox queue.
pub struct SqsPublisher {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Publisher for SqsPublisher {
    async fn publish(&self, item: &OutboxItem, message: &OutboxMessage) -> anyhow::Result<()> {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&item.message)
            .message_group_id(&message.aggregate_id)
            .message_deduplication_id(&message.id)
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(&message.kind)
                    .build()?,
            );
        if let Some(trace) = &item.trace {
            send = send.message_attributes(
                TRACE_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(trace)
                    .build()?,
            );
        }
        send.send().await?;
        Ok(())
    }
}

/// Publishes every outbox insert of the batch, in order. Stops at the first failure and reports
/// it: the stream redelivers from that record, keeping the order of what follows.
pub async fn relay(publisher: &impl Publisher, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        match relay_one(publisher, &record).await {
            Ok(Some(kind)) => {
                metrics::counter!("OutboxPublished", "type" => kind).increment(1);
            }
            Ok(None) => {}
            Err(e) => {
                metrics::counter!("OutboxPublishFailed").increment(1);
                tracing::error!(
                    sequence_number = ?record.change.sequence_number,
                    error.cause_chain = %shared::error_chain_anyhow(&e),
                    "outbox item not published; the stream will retry it"
                );
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

async fn relay_one(
    publisher: &impl Publisher,
    record: &EventRecord,
) -> anyhow::Result<Option<String>> {
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    let item: OutboxItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(item) => item,
        // Not an outbox item (the event source filter normally keeps these away).
        Err(_) => return Ok(None),
    };
    if !item.pk.starts_with(OUTBOX_PK_PREFIX) {
        return Ok(None);
    }
    let message: OutboxMessage = serde_json::from_str(&item.message)
        .map_err(|e| anyhow::anyhow!("outbox item {} holds a malformed message: {e}", item.pk))?;
    let span = tracing::info_span!("outbox.publish", otel.kind = "producer", outbox_id = %message.id, r#type = %message.kind);
    set_remote_parent(&span, item.trace.as_deref());
    publisher.publish(&item, &message).instrument(span).await?;
    Ok(Some(message.kind))
}

mod tracing_opentelemetry_ext {
    /// Continues the trace of the request that wrote the item.
    pub fn set_remote_parent(span: &tracing::Span, trace: Option<&str>) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if let Some(parent) = shared::telemetry::remote_parent(trace, &http::HeaderMap::new()) {
            let _ = span.set_parent(parent);
        }
    }
}
