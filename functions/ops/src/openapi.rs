//! The OpenAPI 3.1 document, generated from the handlers' types. docs/openapi.json is a
//! checked-in copy; a test fails when it is stale.

use http::StatusCode;
use shared::http::{Response, json};
use shared::{ApiError, Problem};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "City Events API",
        version = "1",
        description = "The City Events backend. Every error is an RFC 9457 problem+json document. Any operation may answer 503 `/problems/service-unavailable` with `Retry-After` when a dependency (DynamoDB, SQS, Secrets Manager) throttles, fails or does not answer: nothing was changed, and the same request (with the same Idempotency-Key) may be sent again after that delay."
    ),
    paths(crate::healthz, crate::readiness::readyz, openapi_json),
    components(schemas(Problem, shared::problem::InvalidParam, crate::Health,
        crate::readiness::Readiness, crate::readiness::Check)),
    tags((name = "ops", description = "Liveness, readiness and this document"))
)]
struct ApiDoc;

/// The whole document, every domain's endpoints merged in.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(auth::openapi::document());
    doc.merge(events::openapi::document());
    doc.merge(joins::openapi::document());
    doc.merge(notifications::openapi::document());
    doc
}

/// The document as pretty JSON, exactly as docs/openapi.json holds it.
pub fn document_json() -> String {
    let mut s = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    s.push('\n');
    s
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Result<Response, ApiError> {
    let doc = document();
    let mut r = json(StatusCode::OK, &doc)?;
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let fresh = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &fresh).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "docs/openapi.json is stale: run `make openapi` and commit the result"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_the_ops_routes() {
        let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/healthz",
            "/readyz",
            "/openapi.json",
            "/v1/me",
            "/.well-known/jwks.json",
        ] {
            assert!(v["paths"][path]["get"].is_object(), "{path} missing");
        }
        assert_eq!(
            v["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
