//! Helpers of the joins tests (tests/joins.rs, tests/waitlist_rounds.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Api, Reply, s};

pub fn at(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

pub fn event_body(title: &str, capacity: u32) -> Value {
    json!({
        "title": title, "description": "A joins test", "city": "Joinville", "category": "music",
        "venue": "The Hall", "tags": [], "starts_at": at(3), "ends_at": at(4), "capacity": capacity,
    })
}

pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn create_event(api: &Api, token: &str, capacity: u32) -> String {
    let r = api
        .send(
            Method::POST,
            "/v1/events",
            Some(event_body("Joins", capacity)),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s(&r.body, "id")
}

/// Sends `req` again (with the same Idempotency-Key) while it answers 503, as a client should.
pub async fn with_retries(api: &Api, req: reqwest::RequestBuilder) -> Reply {
    for _ in 0..30 {
        let r = api.exec(req.try_clone().unwrap()).await;
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("still 503 after 30 tries");
}

pub async fn join(api: &Api, token: &str, event: &str, key: &str) -> Reply {
    with_retries(
        api,
        api.request(Method::POST, &format!("/v1/events/{event}/join"))
            .bearer_auth(token)
            .header("Idempotency-Key", key),
    )
    .await
}

pub async fn leave(api: &Api, token: &str, event: &str, trace: Option<&str>) -> Reply {
    let mut req = api
        .request(Method::DELETE, &format!("/v1/events/{event}/join"))
        .bearer_auth(token)
        .header("Idempotency-Key", key());
    if let Some(t) = trace {
        req = req.header("X-Amzn-Trace-Id", t);
    }
    with_retries(api, req).await
}

pub async fn get_event(api: &Api, token: &str, event: &str) -> Value {
    let r = api
        .send(
            Method::GET,
            &format!("/v1/events/{event}"),
            None,
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Every attendee, walking the pages: (user, state, position).
pub async fn attendees(api: &Api, token: &str, event: &str) -> Vec<(String, String, Option<u64>)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/events/{event}/attendees?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = api.send(Method::GET, &path, None, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for a in r.body["items"].as_array().unwrap() {
            out.push((s(a, "user_id"), s(a, "state"), a["position"].as_u64()));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Reads the event over and over until `done`, failing on any read showing more seats taken
/// than it has; returns the number of reads. The clients (each from its own address: event
/// reads are limited per address, 100 a minute) take turns, 50 reads each, ten reads a second.
pub fn watch_capacity(
    clients: Vec<(Api, String)>,
    event: String,
    capacity: u64,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) {
            let (api, token) = &clients[(reads as usize / 50) % clients.len()];
            let e = get_event(api, token, &event).await;
            let joined = e["joined"].as_u64().unwrap();
            assert!(
                joined <= capacity,
                "a read showed {joined} joined of {capacity}"
            );
            reads += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reads
    })
}
