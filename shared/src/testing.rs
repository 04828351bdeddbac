//! Helpers for handler tests: the sample events in events/, a configuration that needs no
//! AWS, and a way to run a sample event through a handler exactly as the runtime would.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent, RequestExt, Service};

use crate::ApiError;
use crate::http::{HttpOptions, Middleware, Request, Response};
use crate::telemetry::Telemetry;

/// A sample event from the workspace's events/ folder.
pub fn sample_event(name: &str) -> serde_json::Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A configuration with every required value set to something harmless.
pub fn config(function: &str, overrides: &[(&'static str, &'static str)]) -> crate::Config {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("TABLE_NAME", "test-table"),
        ("OUTBOX_QUEUE_URL", "http://127.0.0.1:1/queue/outbox"),
        ("OUTBOX_DLQ_URL", "http://127.0.0.1:1/queue/dlq"),
        ("SIGNING_KEYS_SECRET_ID", "test-keys"),
        ("PUBLIC_KEYS_SECRET_ID", "test-public-keys"),
        ("CORS_ALLOWED_ORIGINS", "https://app.city-events.example"),
        ("JWT_ISSUER", "https://city-events.test"),
        ("JWT_AUDIENCE", "city-events-api"),
    ]);
    env.extend(overrides.iter().copied());
    crate::Config::from_source(&env, function).expect("test configuration is complete")
}

/// A Lambda context like the one the runtime hands a function.
pub fn lambda_context(request_id: &str) -> Context {
    let mut ctx = Context::default();
    ctx.request_id = request_id.to_owned();
    ctx.xray_trace_id =
        Some("Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1".into());
    ctx
}

/// A sample API Gateway v2 event as the request a handler receives.
pub fn http_request(event: serde_json::Value) -> Request {
    let lambda: LambdaRequest = serde_json::from_value(event).expect("an API Gateway v2 event");
    Request::from(lambda).with_lambda_context(lambda_context("lambda-req-1"))
}

/// Runs an API Gateway v2 event through `handler` behind the middleware and lambda_http's own
/// adapter, and returns the API Gateway response document the runtime would send back.
pub async fn invoke_http<H, Fut>(
    telemetry: &'static Telemetry,
    options: HttpOptions,
    handler: H,
    event: serde_json::Value,
) -> serde_json::Value
where
    H: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let middleware = Arc::new(Middleware::new(options, telemetry));
    let handler = Arc::new(handler);
    let service = lambda_http::service_fn(move |req: Request| {
        let middleware = middleware.clone();
        let handler = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(middleware.handle(req, |r| handler(r)).await) }
    });
    let mut adapter = lambda_http::Adapter::from(service);
    let lambda: LambdaRequest = serde_json::from_value(event).expect("an API Gateway v2 event");
    let response = adapter
        .call(LambdaEvent::new(lambda, lambda_context("lambda-req-1")))
        .await
        .expect("the middleware never fails");
    serde_json::to_value(response).expect("the response serialises")
}

/// Asserts that each domain error maps to its catalogued problem type (status and `type`):
/// the one test every domain's error enum has.
pub fn assert_maps_to_problems<E>(cases: impl IntoIterator<Item = (E, crate::problem::ProblemType)>)
where
    E: std::fmt::Display + Into<ApiError>,
{
    for (e, p) in cases {
        let text = e.to_string();
        let api: ApiError = e.into();
        assert_eq!((api.status, api.type_), (p.status, p.uri), "{text}");
    }
}
