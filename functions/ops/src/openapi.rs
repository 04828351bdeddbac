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

/// The whole document, every domain's endpoints merged in, and the error answers the shared
/// middleware gives completed from the problem catalogue ([`complete_errors`]).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(auth::openapi::document());
    doc.merge(events::openapi::document());
    doc.merge(joins::openapi::document());
    doc.merge(notifications::openapi::document());
    constrain_parameters(&mut doc);
    complete_errors(&mut doc);
    doc
}

/// The limits every parameter of a name has, stated once from the validators' own constants:
/// event and user ids, `limit`, `Idempotency-Key`, `If-Match`, and the events listing's
/// `city` (required), `category`, `from` and `to`.
pub fn constrain_parameters(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
    use utoipa::openapi::{ObjectBuilder, Ref, RefOr, Required, Schema};
    let string = |pattern: &str| -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .into()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        for (_, op) in operations_mut(item) {
            for param in op.parameters.iter_mut().flatten() {
                let schema: Option<RefOr<Schema>> = match param.name.as_str() {
                    "id" if path.starts_with("/v1/events/") => {
                        Some(string(events::model::EVENT_ID_PATTERN))
                    }
                    "id" if path.starts_with("/v1/admin/users/") => {
                        Some(string(auth::api::USER_ID_PATTERN))
                    }
                    "Idempotency-Key" => Some(string(shared::idempotency::KEY_PATTERN)),
                    "If-Match" => Some(string(
                        "^(W/)?\"v[0-9]{1,19}(\\.[0-9]{1,10}\\.[0-9]{1,10})?\"$",
                    )),
                    "limit" => Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1))
                            .maximum(Some(shared::cursor::MAX_LIMIT))
                            .into(),
                    ),
                    "city" if path == "/v1/events" => {
                        param.required = Required::True;
                        Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .min_length(Some(1))
                                .pattern(Some("\\S"))
                                .into(),
                        )
                    }
                    "category" if path == "/v1/events" => {
                        Some(Ref::from_schema_name("Category").into())
                    }
                    "from" | "to" if path == "/v1/events" => Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                            .into(),
                    ),
                    _ => None,
                };
                if let Some(s) = schema {
                    param.schema = Some(s);
                }
            }
        }
    }
}

/// The operations of a path (the methods this API uses), each with whether it changes
/// something (every method but GET).
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (bool, &mut utoipa::openapi::path::Operation)> {
    [
        (false, &mut item.get),
        (true, &mut item.put),
        (true, &mut item.post),
        (true, &mut item.delete),
        (true, &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(changes, op)| op.as_mut().map(|op| (changes, op)))
}

/// Routes without the rate limiter, authentication or a body: they answer what they declare.
const OPEN_ROUTES: [&str; 4] = [
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/.well-known/jwks.json",
];

/// Adds to every operation the error answers that the shared middleware gives it, by its
/// shape, beside those it declares itself ([`shared::error_answers!`]): a body → 400
/// (unparsable JSON), 413, 415, 422; query parameters → 400 (a bad cursor), 422; path
/// parameters or an Idempotency-Key header → 400 (malformed); a path id → 404; a bearer token →
/// 401 (on a change, its note says the session is checked); an Idempotency-Key → 409 (in flight) and 422 (reused); every rate-limited route → 429
/// and 503 (both with `Retry-After`). Both kinds are built by [`shared::answers::add`], one
/// answer per status naming each of its problem types.
pub fn complete_errors(doc: &mut utoipa::openapi::OpenApi) {
    use shared::problem::{ProblemType, problems as p};
    use utoipa::openapi::path::ParameterIn;
    for (path, item) in doc.paths.paths.iter_mut() {
        if OPEN_ROUTES.contains(&path.as_str()) {
            continue;
        }
        for (changes, op) in operations_mut(item) {
            let params = op.parameters.as_deref().unwrap_or_default();
            let has = |place: ParameterIn| {
                params.iter().any(|x| {
                    std::mem::discriminant(&x.parameter_in) == std::mem::discriminant(&place)
                })
            };
            let idempotent = params.iter().any(|x| x.name == "Idempotency-Key");
            let body = op.request_body.is_some();
            let (query, in_path) = (has(ParameterIn::Query), has(ParameterIn::Path));
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add: Vec<ProblemType> = Vec::new();
            if body || query || in_path || idempotent {
                add.push(p::BAD_REQUEST);
            }
            if body {
                add.extend([p::PAYLOAD_TOO_LARGE, p::UNSUPPORTED_MEDIA_TYPE]);
            }
            if body || query {
                add.push(p::VALIDATION);
            }
            if idempotent {
                add.extend([p::IDEMPOTENCY_IN_FLIGHT, p::IDEMPOTENCY_KEY_REUSED]);
            }
            if in_path {
                add.push(p::NOT_FOUND);
            }
            // A secured change checks the caller's session, not only the token.
            if secured && changes {
                shared::answers::add(
                    &mut op.responses.responses,
                    p::UNAUTHORIZED,
                    Some(shared::answers::SESSION_GUARDED),
                );
            } else if secured {
                add.push(p::UNAUTHORIZED);
            }
            add.extend([p::RATE_LIMITED, p::SERVICE_UNAVAILABLE]);
            for problem in add {
                shared::answers::add(&mut op.responses.responses, problem, None);
            }
        }
    }
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

    /// The checked-in copy of a generated document (`docs/<name>`) equals `fresh`;
    /// `UPDATE_OPENAPI=1` (`make openapi`) rewrites it.
    fn assert_current(name: &str, fresh: &str) {
        let path = format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, fresh).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "docs/{name} is stale: run `make openapi` and commit the result"
        );
    }

    #[test]
    fn the_documented_limits_are_the_validators_own() {
        // The category list.
        let category =
            serde_json::to_value(<events::model::Category as utoipa::PartialSchema>::schema())
                .unwrap();
        let names: Vec<&str> = category["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, events::model::CATEGORIES);
        // The event id pattern accepts exactly what parse_id does.
        let id = regex::Regex::new(events::model::EVENT_ID_PATTERN).unwrap();
        for sample in [
            "evt_019a4f0c2b1e5d3c2a1b0f9e8d7c",
            "evt_019A4F0C2B1E5D3C2A1B0F9E8D7C",
            "evt_019a4f0c2b1e5d3c2a1b0f9e8d7",
            "evt_019a4f0c2b1e5d3c2a1b0f9e8d7c0",
            "usr_019a4f0c2b1e5d3c2a1b0f9e8d7c",
            "evt_019a4f0c2b1e5d3c2a1b0f9e8d7g",
            "",
        ] {
            assert_eq!(
                id.is_match(sample),
                events::model::parse_id(sample).is_ok(),
                "{sample:?}"
            );
        }
        // Idempotency keys: visible ASCII, 1 to 255.
        let key = regex::Regex::new(shared::idempotency::KEY_PATTERN).unwrap();
        assert!(key.is_match("3f1c2a9e-0d3b-4c55-9d3e-2f6a1b7c8d9e"));
        assert!(!key.is_match("") && !key.is_match("a b") && !key.is_match(&"k".repeat(256)));
    }

    #[test]
    fn the_checked_in_document_is_current() {
        assert_current("openapi.json", &document_json());
    }

    #[test]
    fn the_checked_in_problem_catalogue_is_current() {
        assert_current("problems.md", &shared::problem::problems::markdown());
    }

    #[test]
    fn operation_ids_are_unique_and_every_guarded_operation_declares_its_error_answers() {
        let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_owned()),
                    "operationId {id} twice ({method} {path})"
                );
                if OPEN_ROUTES.contains(&path.as_str()) {
                    continue;
                }
                for status in ["429", "503"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: no {status}"
                    );
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(
                            op["responses"][status].is_object(),
                            "{method} {path}: no {status}"
                        );
                    }
                }
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(
                        op["responses"]["401"].is_object(),
                        "{method} {path}: no 401"
                    );
                }
            }
        }
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
