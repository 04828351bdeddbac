//! Every sample API Gateway event in events/ for the ops functions, through its handler as the
//! Lambda runtime would run it (lambda_http's adapter, the shared middleware).

use std::sync::Arc;

use aws_sdk_dynamodb::config::{Credentials, Region};
use serde_json::Value;
use shared::App;
use shared::http::HttpOptions;
use shared::telemetry::Sink;
use shared::testing::{invoke_http, sample_event};

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

fn options(app: &App) -> HttpOptions {
    HttpOptions::from_config(&app.config)
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_healthz_sample_event_is_answered_200() {
    let app = app().await;
    let a = app.clone();
    let resp = invoke_http(
        app.telemetry,
        options(&app),
        move |req| {
            let a = a.clone();
            async move { ops::healthz(&a, req).await }
        },
        sample_event("apigw-get-healthz.json"),
    )
    .await;
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
    let a = app.clone();
    let resp = invoke_http(
        app.telemetry,
        options(&app),
        move |_req| {
            let a = a.clone();
            async move { ops::readiness::readyz(&a).await }
        },
        sample_event("apigw-get-readyz.json"),
    )
    .await;
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
    let resp = invoke_http(
        app.telemetry,
        options(&app),
        |_req| ops::openapi::openapi_json(),
        sample_event("apigw-get-openapi.json"),
    )
    .await;
    assert_eq!(resp["statusCode"], 200);
    assert!(body(&resp)["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(resp["headers"]["cache-control"], "public, max-age=300");
}

#[tokio::test]
async fn the_unknown_route_sample_event_is_a_404_problem() {
    let app = app().await;
    let resp = invoke_http(
        app.telemetry,
        options(&app),
        ops::not_found,
        sample_event("apigw-unknown-route.json"),
    )
    .await;
    assert_eq!(resp["statusCode"], 404);
    assert_eq!(resp["headers"]["content-type"], "application/problem+json");
    let p = body(&resp);
    assert_eq!(p["status"], 404);
    assert_eq!(p["instance"], "/v1/nowhere");
}
