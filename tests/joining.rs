//! Helpers of the joins tests (tests/joins.rs, tests/waitlist_rounds.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::auth::Role;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Api, Caller, Reply, Stack, TokenMinter, s};

/// How most joins tests begin: the stack, a client of its gateway sending from `ip`, a token
/// minter, and an organizer minted with it (roles attendee and organizer).
pub async fn with_organizer(ip: [u8; 4]) -> (Stack, Api, TokenMinter, Caller) {
    let (stack, api) = Stack::with_api(ip);
    let minter = stack.token_minter().await;
    let organizer = minter.user(&[Role::Attendee, Role::Organizer]).await;
    (stack, api, minter, organizer)
}

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

pub async fn create_event(api: &Api, organizer: &Caller, capacity: u32) -> String {
    create_event_with(api, organizer, event_body("Joins", capacity)).await
}

/// A hot event (decision 0012): its joins go through the ordered intake.
pub async fn create_hot_event(api: &Api, organizer: &Caller, capacity: u32) -> String {
    let mut body = event_body("Hot joins", capacity);
    body["hot"] = json!(true);
    create_event_with(api, organizer, body).await
}

async fn create_event_with(api: &Api, organizer: &Caller, body: Value) -> String {
    let k = key();
    let r = api
        .call(Some(organizer), |r| {
            r.post("/v1/events")
                .header("Idempotency-Key", &k)
                .json(&body)
        })
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s(&r.body, "id")
}

/// Joins `event` with `key`; repeats of the request (after a 503, a lost connection) carry the
/// same key, as a client's should.
pub async fn join(api: &Api, caller: &Caller, event: &str, key: &str) -> Reply {
    api.call(Some(caller), |r| {
        r.post(&format!("/v1/events/{event}/join"))
            .header("Idempotency-Key", key)
    })
    .await
}

/// The most a client resends a pending join ([`join_settled`]).
const MAX_PENDING_SENDS: usize = 200;

/// Joins `event` with `key` as a client of a hot event does: while the answer is 202
/// `pending`, it waits the answer's Retry-After and resends the same key, which answers the
/// outcome once the event's queue reached it. Returns the settled answer and how many sends
/// were pending.
pub async fn join_settled(api: &Api, caller: &Caller, event: &str, key: &str) -> (Reply, usize) {
    for pending in 0..MAX_PENDING_SENDS {
        let r = join(api, caller, event, key).await;
        if !(r.status == StatusCode::ACCEPTED && s(&r.body, "state") == "pending") {
            return (r, pending);
        }
        assert_eq!(
            r.headers["location"].to_str().unwrap(),
            format!("/v1/events/{event}/join")
        );
        let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_secs(after)).await;
    }
    panic!("a join stayed pending for {MAX_PENDING_SENDS} sends");
}

pub async fn leave(api: &Api, caller: &Caller, event: &str, trace: Option<&str>) -> Reply {
    let k = key();
    api.call(Some(caller), |r| {
        let req = r
            .delete(&format!("/v1/events/{event}/join"))
            .header("Idempotency-Key", &k);
        match trace {
            Some(t) => req.header("X-Amzn-Trace-Id", t),
            None => req,
        }
    })
    .await
}

/// Cancels `event` as its organizer (every attendee is told: a fan-out).
pub async fn cancel_event(api: &Api, organizer: &Caller, event: &str) {
    let cancel = api
        .send_as(
            organizer,
            reqwest::Method::DELETE,
            &format!("/v1/events/{event}"),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
}

pub async fn get_event(api: &Api, caller: &Caller, event: &str) -> Value {
    let r = api
        .call(Some(caller), |r| r.get(&format!("/v1/events/{event}")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Every attendee, walking the pages: (user, state, position).
pub async fn attendees(
    api: &Api,
    caller: &Caller,
    event: &str,
) -> Vec<(String, String, Option<u64>)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/events/{event}/attendees?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = api.call(Some(caller), |r| r.get(&path)).await;
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

/// Readers of one event, each from its own address (event reads are limited per address, 100
/// a minute): they take turns, 50 reads each, and the turn carries over from one watch to the
/// next, so an address is used again only after every other one has had its turn.
pub struct Readers {
    clients: Vec<(Api, Caller)>,
    reads: AtomicUsize,
}

impl Readers {
    pub fn new(clients: Vec<(Api, Caller)>) -> Arc<Readers> {
        Arc::new(Readers {
            clients,
            reads: AtomicUsize::new(0),
        })
    }
}

/// Reads the event over and over until `done`, failing on any read showing more seats taken
/// than it has; returns the number of reads. Ten reads a second.
pub fn watch_capacity(
    readers: Arc<Readers>,
    event: String,
    capacity: u64,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) {
            let turn = readers.reads.fetch_add(1, Ordering::SeqCst) / 50;
            let (api, caller) = &readers.clients[turn % readers.clients.len()];
            let e = get_event(api, caller, &event).await;
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
