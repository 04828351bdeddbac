//! The outbox's way out: the relay publishes committed outbox items from the table's stream to
//! the outbox queue, and the consumers turn queue messages into users' notifications.

pub mod api;
pub mod connections;
pub mod consumer;
pub mod inbox;
pub mod openapi;
pub mod push;
pub mod realtime;
pub mod relay;

pub use shared::outbox::OutboxMessage;
