//! Events: one Lambda per endpoint (src/bin), the domain here. Table design:
//! docs/events-table.md.

pub mod api;
pub mod error;
pub use shared::cursor;
pub mod model;
pub mod openapi;
pub mod rules;
pub mod store;
pub mod text;
