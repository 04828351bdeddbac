//! Operational endpoints: liveness (`/healthz`), readiness (`/readyz`), the OpenAPI document,
//! and the problem+json answer for routes that do not exist.

pub mod openapi;
pub mod readiness;

use http::StatusCode;
use serde::Serialize;
use shared::http::{Request, Response, json};
use shared::{ApiError, App};
use utoipa::ToSchema;

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up and serving.
    pub status: &'static str,
    pub version: String,
    pub function: String,
    /// Whether this invocation started the process.
    pub cold_start: bool,
}

/// Liveness: the function answers. Touches no dependency, so it stays green when they fail.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The function is alive", body = Health)))]
pub async fn healthz(app: &App, req: Request) -> Result<Response, ApiError> {
    let cold_start = req
        .extensions()
        .get::<shared::http::Invocation>()
        .is_some_and(|i| i.cold_start);
    json(
        StatusCode::OK,
        &Health {
            status: "ok",
            version: app.config.version.clone(),
            function: app.config.function_name.clone(),
            cold_start,
        },
    )
}

/// Any route the API does not declare (the HTTP API's `$default` route).
pub async fn not_found(req: Request) -> Result<Response, ApiError> {
    Err(ApiError::not_found(format!(
        "no route matches {} {}",
        req.method(),
        req.uri().path()
    )))
}
