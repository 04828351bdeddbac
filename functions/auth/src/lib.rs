//! Accounts, tokens, MFA and key rotation: one Lambda per endpoint (src/bin), the domain here.

pub mod api;
pub mod email;
pub mod mfa_keys;
pub mod openapi;
pub mod password;
pub mod rotation;
pub mod store;
pub mod totp;

use std::future::Future;
use std::sync::Arc;

use shared::ApiError;
use shared::http::{Policy, Request, Response};

/// Wires one auth endpoint into the Lambda runtime: init once, then `handler` per request
/// behind the middleware with the route's `policy`.
pub async fn serve<P, H, Fut>(name: &str, policy: P, handler: H) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&shared::Config) -> Policy,
    H: Fn(Arc<api::Auth>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    shared::http::serve(name, |app| Ok(api::Auth::new(app)), policy, handler).await
}
