//! The middleware's own cost per request (issue 16: ≤ 50 µs p99), in process, around a no-op
//! handler: request id, the request span, the guard (the public read's per-instance brake),
//! the panic guard, security and CORS headers, the access-log line and the EMF document.
//! What it is measured on is a real API Gateway v2 event through lambda_http's types, invoked
//! as Lambda does with active tracing and an unsampled trace (most requests).
//!
//! `cargo bench -p shared --bench middleware` (make bench-middleware): criterion's estimate of
//! the mean, then p50/p99/p99.9 of single calls (criterion reports means, the goal is a p99);
//! then the response compression's bytes and CPU per response (issue 19).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, RequestExt};
use shared::http::{Guard, HttpOptions, Middleware, Policy, Request, Response};
use shared::telemetry::Sink;

fn request(event: &serde_json::Value) -> Request {
    let lambda: LambdaRequest = serde_json::from_value(event.clone()).unwrap();
    let mut ctx = lambda_http::Context::default();
    ctx.request_id = "bench-request".into();
    ctx.xray_trace_id =
        Some("Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=0".into());
    Request::from(lambda).with_lambda_context(ctx)
}

async fn noop(_req: Request) -> Result<Response, shared::ApiError> {
    let mut r = Response::new(Body::Text("{}".into()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    // The brake counts every call against one address: a limit no run reaches.
    let config = shared::testing::config(
        "middleware-bench",
        &[("RATE_LIMIT_API_PER_MINUTE", "1000000")],
    );
    // No endpoint is ever called: the public read's guard counts in this process.
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .build();
    let app = shared::App::with_sdk_config(config.clone(), Sink::Buffer(log.clone()), &sdk);
    let mut event = shared::testing::sample_event("apigw-get-healthz.json");
    event["routeKey"] = "GET /v1/events/{id}".into();
    event["requestContext"]["routeKey"] = "GET /v1/events/{id}".into();
    event["rawPath"] = "/v1/events/evt_0123456789abcdef0123456789ab".into();
    event["pathParameters"] = serde_json::json!({"id": "evt_0123456789abcdef0123456789ab"});
    event["headers"]["origin"] = "https://app.city-events.example".into();

    let subjects: Vec<(&str, Middleware)> = vec![
        (
            "open route (healthz)",
            Middleware::new(HttpOptions::from_config(&config), app.telemetry),
        ),
        (
            "public read (get_event's guard)",
            Middleware::new(HttpOptions::from_config(&config), app.telemetry)
                .with_guard(Guard::new(&app, Policy::public_api(&config))),
        ),
    ];

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, middleware) in &subjects {
        criterion.bench_function(name, |b| {
            b.iter_batched(
                || {
                    log.lock().unwrap().clear();
                    request(&event)
                },
                |req| runtime.block_on(middleware.handle(req, noop)),
                BatchSize::SmallInput,
            )
        });
    }
    criterion.final_summary();

    // The goal is a tail: time single calls (the request built outside the timing).
    const CALLS: usize = 20_000;
    println!("\nper call, {CALLS} calls each (the request built outside the timing):");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "middleware", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, middleware) in &subjects {
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            // The log goes to a buffer emptied before each call (outside the timing): a
            // growing buffer's reallocations are the bench's cost, not the middleware's
            // (in Lambda each line goes to stdout).
            log.lock().unwrap().clear();
            let req = request(&event);
            let started = Instant::now();
            let response = runtime.block_on(middleware.handle(req, noop));
            times.push(started.elapsed());
            assert_eq!(response.status(), 200, "{name}");
        }
        times.sort();
        let at = |q: f64| times[((CALLS as f64 * q) as usize).min(CALLS - 1)].as_secs_f64() * 1e6;
        println!(
            "{:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            name,
            at(0.50),
            at(0.99),
            at(0.999),
            times[CALLS - 1].as_secs_f64() * 1e6
        );
    }

    compression();
    redaction();
}

/// The log redaction's cost per string (every string of every log line goes through it), on
/// ordinary strings and on ~10 KB texts built to make a scanner go back over what it has read
/// (an attacker's path or User-Agent is logged): each must stay linear.
fn redaction() {
    let cases: Vec<(&str, String)> = vec![
        ("route (no match possible)", "GET /v1/events/{id}".into()),
        (
            "user agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36".into(),
        ),
        ("timestamp", "2026-12-07T16:40:08.123456Z".into()),
        ("10 KB of eyJ", "eyJ".repeat(3400)),
        ("10 KB of password=\\\"", r#"password="\"\""#.repeat(700)),
        ("10 KB of bearer", "bearer ".repeat(1450)),
        ("10 KB of bearer.", "bearer.".repeat(1450)),
        ("10 KB of a@", "a@".repeat(5100)),
        ("10 KB of password:", "password:".repeat(1130)),
    ];
    println!("\nlog redaction (shared::redact::redact_text), per string:");
    println!("{:<28} {:>8} {:>9}", "string", "bytes", "p50 µs");
    for (name, text) in &cases {
        let runs = 200;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            std::hint::black_box(shared::redact::redact_text(std::hint::black_box(text)));
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{:<28} {:>8} {:>9.2}",
            name,
            text.len(),
            times[runs / 2].as_secs_f64() * 1e6
        );
    }
}

/// Response compression (issue 19): what brotli (q4) and gzip (5) save on list pages of 20,
/// 100 and 1 000 events, and what they cost per response (shared::compress::encode, the
/// middleware's work on a JSON body of 1 KiB or more).
fn compression() {
    let event = |i: usize| {
        serde_json::json!({
            "id": format!("evt_{i:028x}"), "title": format!("Jazz night by the river {i}"),
            "description": "An evening of music in the hall, with a long description to list",
            "city": "testville", "category": "music", "venue": "The Hall", "tags": ["jazz", "evening"],
            "starts_at": "2030-06-01T17:00:00Z", "ends_at": "2030-06-01T20:00:00Z",
            "capacity": 50, "joined": i % 50, "waitlisted": 0, "status": "active", "version": 3,
            "owner_id": format!("usr_{i:028x}"), "created_at": "2026-12-07T10:00:00Z",
            "updated_at": "2026-12-07T10:00:00Z"
        })
    };
    println!("\nresponse compression (shared::compress::encode), per response:");
    println!(
        "{:<22} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>9}",
        "page", "bytes", "br bytes", "br %", "br µs", "gzip", "gzip %", "gzip µs"
    );
    for n in [20usize, 100, 1000] {
        let page = serde_json::json!({ "items": (0..n).map(event).collect::<Vec<_>>() });
        let body = serde_json::to_vec(&page).unwrap();
        let mut row = Vec::new();
        for encoding in [
            shared::compress::Encoding::Brotli,
            shared::compress::Encoding::Gzip,
        ] {
            let runs = if n >= 1000 { 30 } else { 300 };
            let mut times = Vec::with_capacity(runs);
            let mut size = 0;
            for _ in 0..runs {
                let started = Instant::now();
                size = shared::compress::encode(encoding, &body).unwrap().len();
                times.push(started.elapsed());
            }
            times.sort();
            row.push((size, times[runs / 2].as_secs_f64() * 1e6));
        }
        println!(
            "{:<22} {:>9} {:>9} {:>7.0}% {:>9.0} {:>9} {:>7.0}% {:>9.0}",
            format!("{n} events"),
            body.len(),
            row[0].0,
            100.0 - 100.0 * row[0].0 as f64 / body.len() as f64,
            row[0].1,
            row[1].0,
            100.0 - 100.0 * row[1].0 as f64 / body.len() as f64,
            row[1].1
        );
    }
}
