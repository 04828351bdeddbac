//! Seating: who holds a seat of an event and who waits for one. This crate owns the join /
//! leave / promote state machine ([`rules`]), the storage it needs as narrow ports
//! ([`port::Seats`]), their DynamoDB adapter ([`dynamo::DynamoSeats`]) and an in-memory twin
//! for unit tests ([`memory::MemorySeats`]), and the domain's errors ([`JoinError`]).
//!
//! It depends on nothing domain-specific: the events crate (capacity changes promote) and the
//! joins crate (the HTTP handlers) depend on it. The event item is written by the events crate;
//! this crate reads the fields seating needs ([`model::Venue`]) and owns its counters
//! (`joined`, `waitlisted`, `wl_seq`). Why overbooking cannot happen: docs/joins.md.

pub mod dynamo;
mod error;
pub mod memory;
pub mod model;
pub mod port;
pub mod rules;

pub use error::JoinError;
pub use model::{Attendee, Membership, State, Venue, WaitEntry};
pub use port::{AdmitError, SeatReader, Seats, WriteError};

#[cfg(test)]
mod tests;
