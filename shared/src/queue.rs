//! The SQS adapter: the FIFO queues the functions send to. The relay publishes to the outbox
//! queue (its `Publisher`); the consumer sends what it can never process to the outbox DLQ (its
//! `DeadLetters`); a hot event's join goes to the join intake queue. Each port's implementation
//! lives beside the port.

use aws_sdk_sqs::types::MessageAttributeValue;

/// An SQS FIFO queue: a send repeated with the same deduplication id is one message.
pub struct FifoQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
}

impl FifoQueue {
    /// Sends `body` in message group `group`, deduplicated by `dedup`, with the string message
    /// attributes `attributes` (name, value).
    pub async fn send(
        &self,
        body: &str,
        group: &str,
        dedup: &str,
        attributes: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup);
        for (name, value) in attributes {
            send = send.message_attributes(
                *name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(*value)
                    .build()?,
            );
        }
        send.send().await?;
        Ok(())
    }

    /// Makes a received message visible again in `seconds` (a consumer's failed message, to be
    /// retried sooner than the visibility timeout).
    pub async fn retry_soon(&self, receipt_handle: &str, seconds: i32) -> anyhow::Result<()> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await?;
        Ok(())
    }
}
