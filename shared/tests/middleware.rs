//! The HTTP middleware, driven by real API Gateway v2 events through lambda_http's adapter:
//! problem+json for every kind of bad input, security headers, CORS, the panic guard, and the
//! telemetry one request leaves behind (one access-log line, one EMF document, no secrets).

use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::{Value, json};
use shared::ApiError;
use shared::http::{HttpOptions, Request, RequestParts, Response, json as json_response};
use shared::telemetry::{Sink, Telemetry};
use shared::testing::{config, invoke_http, sample_event};

static LOG: OnceLock<(Arc<Mutex<Vec<u8>>>, &'static Telemetry)> = OnceLock::new();

fn telemetry() -> &'static Telemetry {
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let t = shared::telemetry::init(&config("middleware-test", &[]), Sink::Buffer(buf.clone()));
        (buf, t)
    })
    .1
}

/// The JSON lines logged so far that mention `needle`.
fn log_lines(needle: &str) -> Vec<Value> {
    let buf = LOG.get().unwrap().0.lock().unwrap().clone();
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect()
}

fn options() -> HttpOptions {
    HttpOptions {
        allowed_origins: vec!["https://app.city-events.example".into()],
        max_body_bytes: 1024,
    }
}

/// A request with a JSON body, as the sample unknown-route event, with its own request id.
fn post(request_id: &str, content_type: &str, body: &str) -> Value {
    let mut e = sample_event("apigw-unknown-route.json");
    e["requestContext"]["requestId"] = json!(request_id);
    e["headers"]["content-type"] = json!(content_type);
    e["body"] = json!(body);
    e
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewThing {
    title: Title,
    #[allow(dead_code)]
    capacity: u32,
}

/// A validated newtype: 3 to 120 characters.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Title(#[allow(dead_code)] String);

impl TryFrom<String> for Title {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let n = s.trim().chars().count();
        if (3..=120).contains(&n) {
            Ok(Title(s))
        } else {
            Err(format!("must be 3 to 120 characters, got {n}"))
        }
    }
}

async fn create_thing(req: Request) -> Result<Response, ApiError> {
    let thing: NewThing = req.json_body()?;
    tracing::info!(body = ?String::from_utf8_lossy(req.body().as_ref()), "echoing the body, as a careless developer might");
    json_response(http::StatusCode::CREATED, &json!({"title": thing.title.0}))
}

async fn call(event: Value) -> Value {
    invoke_http(telemetry(), options(), create_thing, event).await
}

fn problem(resp: &Value) -> Value {
    assert_eq!(resp["headers"]["content-type"], "application/problem+json");
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

fn assert_security_headers(resp: &Value) {
    let h = &resp["headers"];
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert!(
        h["strict-transport-security"]
            .as_str()
            .unwrap()
            .contains("max-age=")
    );
    assert_eq!(h["cache-control"], "no-store");
    assert!(!h["x-request-id"].as_str().unwrap_or("").is_empty());
}

#[tokio::test]
async fn a_valid_body_is_created_with_security_headers_and_request_id() {
    let resp = call(post(
        "req-ok",
        "application/json",
        r#"{"title":"Jazz","capacity":5}"#,
    ))
    .await;
    assert_eq!(resp["statusCode"], 201);
    assert_eq!(resp["headers"]["x-request-id"], "req-ok");
    assert_security_headers(&resp);
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let resp = call(post(
        "req-malformed",
        "application/json",
        r#"{"title": "Jazz","#,
    ))
    .await;
    assert_eq!(resp["statusCode"], 400);
    let p = problem(&resp);
    assert_eq!(p["status"], 400);
    assert!(
        p["detail"].as_str().unwrap().contains("malformed JSON"),
        "{p}"
    );
    assert_eq!(p["request_id"], "req-malformed");
    assert_security_headers(&resp);
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415_problem() {
    let resp = call(post(
        "req-415",
        "text/plain",
        r#"{"title":"Jazz","capacity":5}"#,
    ))
    .await;
    assert_eq!(resp["statusCode"], 415);
    assert_eq!(problem(&resp)["status"], 415);
}

#[tokio::test]
async fn unknown_missing_and_invalid_fields_are_422_naming_the_field() {
    for (body, field) in [
        (r#"{"title":"Jazz","capacity":5,"colour":"red"}"#, "colour"),
        (r#"{"title":"Jazz"}"#, "capacity"),
        (r#"{"title":"J","capacity":5}"#, "title"),
        (r#"{"title":"Jazz","capacity":-1}"#, "capacity"),
    ] {
        let resp = call(post("req-422", "application/json", body)).await;
        assert_eq!(resp["statusCode"], 422, "{body}");
        let p = problem(&resp);
        assert_eq!(p["invalid_params"][0]["name"], field, "{body}: {p}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let big = format!(r#"{{"title":"{}","capacity":1}}"#, "x".repeat(2000));
    let resp = call(post("req-413", "application/json", &big)).await;
    assert_eq!(resp["statusCode"], 413);
    assert_eq!(problem(&resp)["status"], 413);
}

#[tokio::test]
async fn a_panic_becomes_a_500_problem_and_the_function_keeps_serving() {
    async fn explode(_req: Request) -> Result<Response, ApiError> {
        panic!("database password is hunter2");
    }
    let resp = invoke_http(
        telemetry(),
        options(),
        explode,
        post("req-panic", "application/json", "{}"),
    )
    .await;
    assert_eq!(resp["statusCode"], 500);
    let p = problem(&resp);
    assert_eq!(p["status"], 500);
    assert!(
        !resp["body"].as_str().unwrap().contains("hunter2"),
        "5xx bodies say nothing internal"
    );
    assert_security_headers(&resp);
    let again = call(post(
        "req-after-panic",
        "application/json",
        r#"{"title":"Jazz","capacity":5}"#,
    ))
    .await;
    assert_eq!(again["statusCode"], 201);
}

#[tokio::test]
async fn cors_preflight_is_answered_for_allowed_origins_only() {
    let resp = call(sample_event("apigw-preflight.json")).await;
    assert_eq!(resp["statusCode"], 204);
    assert!(
        resp["headers"]["access-control-allow-methods"]
            .as_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        resp["headers"]["access-control-allow-origin"],
        "https://app.city-events.example"
    );
    assert_eq!(resp["headers"]["access-control-allow-credentials"], "true");

    let mut foreign = sample_event("apigw-preflight.json");
    foreign["headers"]["origin"] = json!("https://evil.example");
    let resp = call(foreign).await;
    assert_eq!(resp["statusCode"], 403);
    assert!(resp["headers"].get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn one_request_logs_one_access_line_and_one_emf_document_without_secrets() {
    let mut event = post(
        "req-telemetry",
        "application/json",
        r#"{"title":"Jazz","capacity":5,"password":"hunter2 hunter2","email":"ann@example.com"}"#,
    );
    // Unknown fields make this a 422; the careless log line below is not reached then, so
    // send a valid body with secrets in the headers and the query instead.
    event["body"] = json!(r#"{"title":"ann@example.com","capacity":5}"#);
    event["headers"]["authorization"] = json!("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln");
    let resp = call(event).await;
    assert_eq!(resp["statusCode"], 201);

    let lines = log_lines("req-telemetry");
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert_eq!(access.len(), 1, "exactly one access line: {lines:?}");
    let a = access[0];
    for field in shared::http::ACCESS_LOG_FIELDS {
        assert!(a.get(field).is_some(), "access line lacks {field}: {a}");
    }
    assert_eq!(a["status"], 201);
    assert_eq!(a["route"], "$default");
    assert_eq!(a["client_ip"], "203.0.113.7");
    assert_eq!(
        a["trace_id"], "1-67891233-abcdef012345678912345678",
        "the Lambda trace continues"
    );

    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 1, "exactly one EMF document: {emf:?}");
    let names: Vec<&str> = emf[0]["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["Metrics"].as_array().unwrap())
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Requests") && names.contains(&"Latency"),
        "{names:?}"
    );
    assert_eq!(emf[0]["status_class"], "2xx");

    // The whole log of this test binary: the secrets this request carried (its body's email,
    // its bearer token) may not be anywhere in it. ("hunter2" is not one of them: the panic
    // test in this binary logs its own panic message, and whether that line is written before
    // this read depends on scheduling — RUST_BACKTRACE=0 made it fail every time.)
    let all = String::from_utf8(LOG.get().unwrap().0.lock().unwrap().clone()).unwrap();
    for secret in ["ann@example.com", "eyJhbGciOiJSUzI1NiJ9", "c2ln"] {
        assert!(!all.contains(secret), "{secret} reached the log");
    }
}
