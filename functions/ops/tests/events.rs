//! Every sample API Gateway event in events/ for the ops functions, through its handler as the
//! Lambda runtime would run it (lambda_http's adapter, the shared middleware).

use std::future::Future;
use std::sync::Arc;

use aws_sdk_dynamodb::config::{Credentials, Region};
use serde_json::Value;
use shared::http::{HttpOptions, Request, Response};
use shared::telemetry::Sink;
use shared::testing::{invoke_http, sample_event};
use shared::{ApiError, App};

/// An app whose AWS endpoint refuses connections: nothing here may need AWS but readiness.
async fn app() -> Arc<App> {
    let sdk = shared::aws::loader()
        .endpoint_url("http://127.0.0.1:1")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let config = shared::testing::config("ops-events-test", &[]);
    Arc::new(App::with_sdk_config(
        config,
        Sink::Buffer(Default::default()),
        &sdk,
    ))
}

/// The answer of `handler`, given the app, to the sample event `name` (in events/).
async fn invoke<H, Fut>(app: &Arc<App>, handler: H, name: &str) -> Value
where
    H: Fn(Arc<App>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let a = app.clone();
    invoke_http(
        app.telemetry,
        HttpOptions::from_config(&app.config),
        move |req| handler(a.clone(), req),
        sample_event(name),
    )
    .await
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_healthz_sample_event_is_answered_200() {
    let app = app().await;
    let handler = |a: Arc<App>, req| async move { ops::healthz(&a, req).await };
    let resp = invoke(&app, handler, "apigw-get-healthz.json").await;
    assert_eq!(resp["statusCode"], 200);
    let b = body(&resp);
    assert_eq!(b["status"], "ok");
    assert_eq!(b["function"], "ops-events-test");
    assert!(b["cold_start"].is_boolean());
    assert_eq!(resp["headers"]["x-request-id"], "JKJaXmPLvHcESHA=");
}

#[tokio::test]
async fn the_readyz_sample_event_is_503_naming_every_dependency_when_aws_is_unreachable() {
    let app = app().await;
    let handler = |a: Arc<App>, _| async move { ops::readiness::readyz(&a).await };
    let resp = invoke(&app, handler, "apigw-get-readyz.json").await;
    assert_eq!(resp["statusCode"], 503);
    assert_eq!(resp["headers"]["content-type"], "application/problem+json");
    let detail = body(&resp)["detail"].as_str().unwrap().to_owned();
    for name in ["table", "outbox_queue", "outbox_dlq", "public_keys"] {
        assert!(detail.contains(name), "{detail}");
    }
}

#[tokio::test]
async fn the_openapi_sample_event_returns_the_document() {
    let app = app().await;
    let handler = |_, _| ops::openapi::openapi_json();
    let resp = invoke(&app, handler, "apigw-get-openapi.json").await;
    assert_eq!(resp["statusCode"], 200);
    assert!(body(&resp)["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(resp["headers"]["cache-control"], "public, max-age=300");
}

#[tokio::test]
async fn the_unknown_route_sample_event_is_a_404_problem() {
    let app = app().await;
    let resp = invoke(
        &app,
        |_, req| ops::not_found(req),
        "apigw-unknown-route.json",
    )
    .await;
    assert_eq!(resp["statusCode"], 404);
    assert_eq!(resp["headers"]["content-type"], "application/problem+json");
    let p = body(&resp);
    assert_eq!(p["status"], 404);
    assert_eq!(p["instance"], "/v1/nowhere");
}
