//! Joins: one Lambda per endpoint (src/bin), served with the events domain
//! ([`events::serve`]); the seats and the waitlist live in the event's partition
//! ([`events::attendance`]). The state machine and its transactions: docs/joins.md.

pub mod api;
pub mod openapi;
