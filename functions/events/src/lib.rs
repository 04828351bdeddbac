//! Events: one Lambda per endpoint (src/bin), the domain here. Table design:
//! docs/events-table.md.

pub mod api;
pub mod cursor;
pub mod model;
pub mod openapi;
pub mod store;
pub mod text;

use std::future::Future;
use std::sync::Arc;

use shared::ApiError;
use shared::http::{Policy, Request, Response};

/// Wires one events endpoint into the Lambda runtime: init once (failing at start when config
/// is missing), then `handler` per request behind the middleware with the route's `policy`.
pub async fn serve<P, H, Fut>(name: &str, policy: P, handler: H) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&shared::Config) -> Policy,
    H: Fn(Arc<api::Events>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let app = shared::init(name).await?;
    let events = api::Events::new(&app).map_err(|e| {
        eprintln!("{name}: {e}");
        e
    })?;
    let policy = policy(&app.config);
    shared::http::run(&app, policy, move |req| handler(events.clone(), req)).await
}
