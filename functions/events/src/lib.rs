//! Events: one Lambda per endpoint (src/bin), the domain here. Table design:
//! docs/events-table.md.

pub mod api;
pub mod attendance;
pub use shared::cursor;
pub mod model;
pub mod openapi;
pub mod store;
pub mod text;

use std::future::Future;
use std::sync::Arc;

use shared::ApiError;
use shared::http::{Policy, Request, Response};

/// Wires one events endpoint into the Lambda runtime (see [`shared::http::serve`]).
pub async fn serve<P, H, Fut>(name: &str, policy: P, handler: H) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&shared::Config) -> Policy,
    H: Fn(Arc<api::Events>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    shared::http::serve(name, api::Events::new, policy, handler).await
}
