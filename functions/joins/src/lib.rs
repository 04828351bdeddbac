//! Joins: one Lambda per endpoint (src/bin), HTTP around the seating domain (the `seating`
//! crate owns the state machine, its ports and adapters). The transactions: docs/joins.md.

pub mod api;
pub mod intake;
pub mod openapi;
