//! The foundation through the local gateway: ops endpoints, problem+json for unknown routes,
//! security headers and request ids on every response, CORS, and what one request leaves in
//! the logs.

use std::time::Duration;

use e2e::Stack;
use serde_json::Value;

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn assert_common_headers(resp: &reqwest::Response) {
    let h = resp.headers();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            h.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name} on {}",
            resp.url()
        );
    }
    assert!(
        h.get("strict-transport-security").is_some(),
        "HSTS on {}",
        resp.url()
    );
    assert!(
        !h["x-request-id"].to_str().unwrap().is_empty(),
        "request id on {}",
        resp.url()
    );
}

/// GETs `path` of the stack's gateway, asserting that the answer is a 200 with the common
/// headers.
async fn get_200(path: &str) -> reqwest::Response {
    let stack = Stack::get();
    let resp = client()
        .get(format!("{}{path}", stack.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_common_headers(&resp);
    resp
}

/// Asserts that an access line carries every field the access log promises.
fn assert_access_fields(a: &Value) {
    for field in shared::http::ACCESS_LOG_FIELDS {
        assert!(a.get(field).is_some(), "access line lacks {field}: {a}");
    }
}

#[tokio::test]
async fn healthz_is_200_with_version_function_and_cold_start() {
    let body: Value = get_200("/healthz").await.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["function"], "HealthzFunction");
    assert!(body["version"].is_string() && body["cold_start"].is_boolean());
}

#[tokio::test]
async fn readyz_is_200_with_each_dependency_and_its_latency() {
    let body: Value = get_200("/readyz").await.json().await.unwrap();
    let checks = body["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["table", "outbox_queue", "outbox_dlq", "public_keys"]
    );
    for c in checks {
        assert_eq!(c["status"], "ok", "{c}");
        assert!(c["latency_ms"].as_f64().unwrap() > 0.0, "{c}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_with_security_headers() {
    let stack = Stack::get();
    let resp = client()
        .post(format!("{}/v1/no/such/route?x=1", stack.url))
        .header("content-type", "application/json")
        .body("{malformed")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_common_headers(&resp);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], 404);
    assert_eq!(p["instance"], "/v1/no/such/route");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_checked_in_copy() {
    let served: Value = get_200("/openapi.json").await.json().await.unwrap();
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(served, checked_in);
}

#[tokio::test]
async fn cors_preflight_is_answered_for_the_allowed_origin_and_refused_for_others() {
    let stack = Stack::get();
    let origin = stack
        .env("CORS_ALLOWED_ORIGINS")
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let preflight = |o: String| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{}/v1/events", stack.url))
            .header("origin", o)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight(origin.clone()).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_common_headers(&ok);
    assert_eq!(
        ok.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        origin
    );
    let refused = preflight("https://evil.example".into()).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let actual = client()
        .get(format!("{}/healthz", stack.url))
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        actual.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        origin,
        "never *"
    );
}

#[tokio::test]
async fn one_request_leaves_one_access_line_and_one_emf_document_and_no_secret() {
    let stack = Stack::get();
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJlMmUifQ.c2lnbmF0dXJlLWUyZQ";
    let resp = client()
        .post(format!("{}/v1/auth/nowhere", stack.url))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .body(format!(
            r#"{{"email":"e2e-secret@example.com","password":"{password}"}}"#
        ))
        .send()
        .await
        .unwrap();
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(resp.status(), 404);

    let of_mine =
        |l: &Value| l["request_id"] == request_id.as_str() || l["requestId"] == request_id.as_str();
    let lines = stack
        .log_lines_until("NotFoundFunction", |ls| {
            let mine: Vec<&Value> = ls.iter().filter(|l| of_mine(l)).collect();
            mine.iter().any(|l| l["message"] == "request completed")
                && mine.iter().any(|l| l.get("_aws").is_some())
        })
        .await;
    let mine: Vec<&Value> = lines.iter().filter(|l| of_mine(l)).collect();
    let access: Vec<&&Value> = mine
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert_eq!(access.len(), 1, "{mine:?}");
    let a = access[0];
    assert_access_fields(a);
    assert_eq!(
        a["trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
        "the incoming trace continues"
    );
    assert_eq!(a["route"], "$default");
    assert_eq!(a["status"], 404);
    let emf: Vec<&&Value> = mine.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 1, "{mine:?}");

    let logs = stack.all_logs();
    for secret in [password.as_str(), token, "e2e-secret@example.com"] {
        assert!(!logs.contains(secret), "{secret} reached a log");
    }
}

/// Bad bodies reach a JSON route through the gateway and come back as problem+json naming what
/// is wrong — never a 500. (Its own client IP: the auth routes allow 5 requests a minute per IP.)
#[tokio::test]
async fn bad_json_bodies_through_the_gateway_are_400_415_422_and_413_problems() {
    let stack = Stack::get();
    let client = Stack::client_from([127, 0, 2, 1]);
    let url = format!("{}/v1/auth/register", stack.url);
    let send = |content_type: &'static str, body: String| {
        client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (send("application/json", "{\"email\": ".into()).await.unwrap(), 400, None),
        (send("text/plain", "{}".into()).await.unwrap(), 415, None),
        (
            send(
                "application/json",
                r#"{"email":"a@example.com","password":"p4ssw0rd-Long-Enough!","display_name":"A","admin":true}"#.into(),
            )
            .await
            .unwrap(),
            422,
            Some("admin"),
        ),
        (
            send("application/json", format!("{{\"email\":\"{}\"}}", "a".repeat(70 * 1024)))
                .await
                .unwrap(),
            413,
            None,
        ),
    ];
    for (resp, status, field) in cases {
        assert_eq!(resp.status(), status);
        assert_common_headers(&resp);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["status"], status, "{p}");
        if let Some(field) = field {
            let names: Vec<&str> = p["invalid_params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap())
                .collect();
            assert!(names.contains(&field), "{field} named in {p}");
        }
    }
}
