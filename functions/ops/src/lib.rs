//! Operational endpoints: liveness (`/healthz`), readiness (`/readyz`), the OpenAPI document,
//! and the problem+json answer for routes that do not exist.

pub mod openapi;
pub mod readiness;

use http::StatusCode;
use serde::Serialize;
use shared::http::{Request, Response, json};
use shared::{ApiError, App};
use utoipa::ToSchema;

/// What the operational functions serve from: the function itself (its configuration and
/// clients), for [`shared::http::serve`].
pub fn probe(app: &App) -> anyhow::Result<std::sync::Arc<App>> {
    Ok(std::sync::Arc::new(app.clone()))
}

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

/// A declared path's segments (`None` for a `{param}`) and its methods.
type Route = (Vec<Option<String>>, Vec<String>);

/// The declared routes.
fn routes() -> &'static [Route] {
    static ROUTES: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let doc = serde_json::to_value(openapi::document()).expect("the document serialises");
        doc["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let segments = path
                            .split('/')
                            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                            .collect();
                        const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];
                        let methods = item
                            .as_object()
                            .map(|m| {
                                m.keys()
                                    .filter(|k| METHODS.contains(&k.as_str()))
                                    .map(|k| k.to_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The methods declared for `path`, when some route matches it: the most specific route (the
/// most literal segments), as API Gateway picks one — `/v1/events/batch` before
/// `/v1/events/{id}`.
pub fn allowed_methods(path: &str) -> Option<&'static [String]> {
    let parts: Vec<&str> = path.split('/').collect();
    routes()
        .iter()
        .filter(|(segments, _)| {
            segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| match s {
                    Some(s) => s == p,
                    None => !p.is_empty(),
                })
        })
        .max_by_key(|(segments, _)| segments.iter().filter(|s| s.is_some()).count())
        .map(|(_, methods)| methods.as_slice())
}

/// Any request no route takes (the HTTP API's `$default` route): a path the API declares with
/// another method is 405 with `Allow` (RFC 9110 §15.5.6); any other path 404.
pub async fn not_found(req: Request) -> Result<Response, ApiError> {
    if let Some(methods) = allowed_methods(req.uri().path())
        // A declared method here means the request was misrouted, not refused: a 404.
        && !methods.iter().any(|m| m == req.method().as_str())
    {
        let allow = methods.join(", ");
        return Err(ApiError::of(shared::problem::problems::METHOD_NOT_ALLOWED)
            .detail(format!(
                "{} {} is not an operation of this API; it allows {allow}",
                req.method(),
                req.uri().path()
            ))
            .header(
                http::header::ALLOW,
                http::HeaderValue::from_str(&allow).map_err(ApiError::internal)?,
            ));
    }
    Err(ApiError::not_found(format!(
        "no route matches {} {}",
        req.method(),
        req.uri().path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_path_names_its_methods_and_an_unknown_one_none() {
        let m = allowed_methods("/v1/events/evt_0123456789abcdef0123456789ab").unwrap();
        assert!(m.contains(&"GET".to_owned()) && m.contains(&"PATCH".to_owned()));
        assert!(!m.contains(&"POST".to_owned()));
        assert!(allowed_methods("/v1/events").is_some());
        assert_eq!(allowed_methods("/v1/events/batch").unwrap(), ["POST"]);
        assert!(allowed_methods("/v1/nothing").is_none());
        assert!(
            allowed_methods("/v1/events//join").is_none(),
            "an empty id is no id"
        );
    }
}
