//! Issue 12: the system on a bad AWS day. moto server runs with its transaction conflicts (on
//! in every test) and, for this test binary only, a seeded fault plan on every service the
//! functions call: throttling, 500s and latency. Clients behave as real ones (resend the same
//! request after a 503 with its Retry-After, renew tokens). Nothing may answer a 500, no seat
//! may be overbooked, every Idempotency-Key answers one outcome, every committed change is
//! notified exactly once and in order, and nothing is stuck outside the DLQ.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use e2e::client::{RENEWALS, REQUESTS, RESENDS, SERVER_ERRORS};
use e2e::joining::{
    attendees, create_event, create_hot_event, get_event, join, join_settled, key, leave,
};
use e2e::{Api, Caller, PATIENCE, Stack, faults};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::auth::Role;

/// A few percent of every DynamoDB, SQS and Secrets Manager request of the functions fails or
/// is slow; the SDK's own retries hide most, the rest must become 503s the clients retry.
const PLAN: &str = r#"{"seed": 12, "rules": [
  {"service": "dynamodb", "throttle": 0.04, "error": 0.03, "latency": 0.05, "latency_ms": 150},
  {"service": "sqs", "throttle": 0.04, "error": 0.03, "latency": 0.05, "latency_ms": 150},
  {"service": "secretsmanager", "throttle": 0.04, "error": 0.03, "latency": 0.05, "latency_ms": 150}
]}"#;

/// One fault plan at a time: the tests of this binary run one after the other.
static PLAN_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct FaultsOn(String);

impl Drop for FaultsOn {
    fn drop(&mut self) {
        faults(&self.0, "{}");
    }
}

fn status_counts(replies: &[StatusCode]) -> HashMap<u16, usize> {
    let mut m = HashMap::new();
    for s in replies {
        *m.entry(s.as_u16()).or_default() += 1;
    }
    m
}

/// The notifications of `caller` (every page), oldest first.
async fn inbox(api: &Api, caller: &Caller) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/me/notifications?limit=100".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = api.call(Some(caller), |r| r.get(&path)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        all.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    all
}

fn types(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|n| n["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An organizer, 60 attendees, and 6 clients sending from 127.0.9.`first` onwards (each its own
/// per-address budget).
async fn cast(
    stack: &Stack,
    minter: &e2e::TokenMinter,
    first: u8,
) -> (Caller, Vec<Caller>, Vec<Api>) {
    let organizer = minter.user(&[Role::Attendee, Role::Organizer]).await;
    let users = minter.users(60, &[Role::Attendee]).await;
    let apis = (0..6u8)
        .map(|i| Api::new(stack, [127, 0, 9, first + i]))
        .collect();
    (organizer, users, apis)
}

#[tokio::test]
async fn joins_leaves_edits_and_sign_ins_survive_conflicts_throttling_errors_and_latency() {
    let stack = Stack::get();
    let minter = stack.token_minter().await;
    let sqs = stack.sqs().await;
    let dlq_url = stack.env("OUTBOX_DLQ_URL");
    // Every message in the DLQ, visible or not (another test may be reading one).
    let dlq_depth = || {
        let (sqs, url) = (sqs.clone(), dlq_url.clone());
        async move {
            use aws_sdk_sqs::types::QueueAttributeName as A;
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(A::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .unwrap();
            out.attributes()
                .map(|a| {
                    a.values()
                        .filter_map(|v| v.parse::<u64>().ok())
                        .sum::<u64>()
                })
                .unwrap_or(0)
        }
    };
    let dead_before = dlq_depth().await;
    let (organizer, users, apis) = cast(&stack, &minter, 1).await;
    let api = &apis[0];

    let _serial = PLAN_LOCK.lock().await;
    let _on = FaultsOn(stack.aws_endpoint_url.clone());
    let set = faults(&stack.aws_endpoint_url, PLAN);
    assert_eq!(set["plan"]["seed"], 12, "{set}");

    // 60 people join an event of 15 seats at once; each keeps its Idempotency-Key.
    let event = create_event(api, &organizer, 15).await;
    let keys: Vec<String> = users.iter().map(|_| key()).collect();
    let joined =
        futures_util::future::join_all(users.iter().zip(&keys).enumerate().map(|(i, (u, k))| {
            let (api, event) = (apis[i % apis.len()].clone(), event.clone());
            async move { join(&api, u, &event, k).await }
        }))
        .await;
    let statuses: Vec<StatusCode> = joined.iter().map(|r| r.status).collect();
    let counts = status_counts(&statuses);
    assert_eq!(counts.get(&201), Some(&15), "{counts:?}");
    assert_eq!(counts.get(&202), Some(&45), "{counts:?}");
    // The same keys again: the same outcomes, replayed, nothing joins twice.
    for (i, (u, k)) in users.iter().zip(&keys).enumerate().take(20) {
        let again = join(&apis[i % apis.len()], u, &event, k).await;
        assert_eq!(again.status, joined[i].status, "{}", again.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }

    // Ten seated people leave; ten from the waitlist move up, in order.
    let seated: Vec<&Caller> = users
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s == StatusCode::CREATED)
        .map(|(u, _)| u)
        .take(10)
        .collect();
    let left = futures_util::future::join_all(seated.iter().enumerate().map(|(i, u)| {
        let (api, event) = (apis[i % apis.len()].clone(), event.clone());
        async move { leave(&api, u, &event, None).await.status }
    }))
    .await;
    assert!(left.iter().all(|s| *s == StatusCode::OK), "{left:?}");

    // The organizer edits the description twice (If-Match, the version read): postings move
    // in the same transaction; a description change notifies nobody.
    for text in ["Chaos night: bring earplugs", "Chaos night: doors at eight"] {
        let current = get_event(api, &organizer, &event).await;
        let version = current["version"].as_u64().unwrap();
        let r = api
            .call(Some(&organizer), |r| {
                r.method(reqwest::Method::PATCH, &format!("/v1/events/{event}"))
                    .header("if-match", format!("\"v{version}\""))
                    .json(&json!({ "description": text }))
            })
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let after = get_event(api, &organizer, &event).await;
    assert_eq!(
        after["joined"], 15,
        "never overbooked, every seat refilled: {after}"
    );
    assert_eq!(after["waitlisted"], 35, "{after}");

    // Sign-ins: register, log in, refresh, with the same faults.
    let acct = &apis[5];
    for _ in 0..3 {
        let email = e2e::email();
        let k = key();
        let reg = acct
            .call(None, |r| {
                r.post("/v1/auth/register")
                    .header("Idempotency-Key", &k)
                    .json(&json!({"email": email, "password": e2e::PASSWORD, "display_name": "Chaos"}))
            })
            .await;
        assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.body);
        let login = acct
            .call(None, |r| {
                r.post("/v1/auth/login")
                    .json(&json!({"email": email, "password": e2e::PASSWORD}))
            })
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
        let renewed = acct
            .call(None, |r| {
                r.post("/v1/auth/refresh")
                    .json(&json!({"refresh_token": refresh}))
            })
            .await;
        assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    }

    // Every committed change reaches each inbox once, in order: a join's own notification,
    // then, for the ten promoted, the promotion.
    let now_joined: std::collections::HashSet<String> = attendees(api, &organizer, &event)
        .await
        .into_iter()
        .filter(|a| a.1 == "joined")
        .map(|a| a.0)
        .collect();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut promoted = 0;
    for (i, u) in users.iter().enumerate() {
        let api = &apis[i % apis.len()];
        let expected: &[&str] = if statuses[i] == StatusCode::CREATED {
            &["join.created"]
        } else if now_joined.contains(&u.id) {
            promoted += 1;
            &["join.waitlisted", "join.promoted"]
        } else {
            &["join.waitlisted"]
        };
        let got = loop {
            let t = types(&inbox(api, u).await);
            if t.len() >= expected.len() || std::time::Instant::now() > deadline {
                break t;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        assert_eq!(got, expected, "user {i}: each change once, in order");
    }
    // A duplicate could still be on its way: read every inbox once more.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for (i, u) in users.iter().enumerate() {
        let n = inbox(&apis[i % apis.len()], u).await.len();
        assert!(n <= 2, "user {i} has {n} notifications");
    }
    assert_eq!(
        promoted, 10,
        "the ten at the head of the waitlist were promoted and told"
    );
    assert_eq!(dlq_depth().await, dead_before, "nothing went to the DLQ");
    messages_numbered_in_commit_order(&stack, &event, &users).await;

    let report = faults(&stack.aws_endpoint_url, "");
    let injected: u64 = report["counts"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    println!(
        "chaos: {} requests, {injected} faults injected ({}), conflicts {}, {} resends, {} token renewals, {} server errors",
        REQUESTS.load(Ordering::Relaxed),
        report["counts"],
        report["conflicts"],
        RESENDS.load(Ordering::Relaxed),
        RENEWALS.load(Ordering::Relaxed),
        SERVER_ERRORS.load(Ordering::Relaxed)
    );
    assert!(injected > 0, "the plan injected faults: {report}");
    assert_eq!(
        SERVER_ERRORS.load(Ordering::Relaxed),
        0,
        "no 500, no 503 without Retry-After"
    );
}

/// A hot event on the same bad day: its joins queue (SQS faults on the send), its writer's
/// batches fail and return to the queue (DynamoDB faults on the admission), and still every key
/// answers one outcome, the waitlist is numbered without gaps, nothing is admitted twice and
/// nothing reaches the intake DLQ.
#[tokio::test]
async fn a_hot_events_intake_survives_conflicts_throttling_errors_and_latency() {
    let stack = Stack::get();
    let minter = stack.token_minter().await;
    let (organizer, users, apis) = cast(&stack, &minter, 11).await;
    let api = &apis[0];
    let event = create_hot_event(api, &organizer, 15).await;

    let _serial = PLAN_LOCK.lock().await;
    let _on = FaultsOn(stack.aws_endpoint_url.clone());
    let set = faults(&stack.aws_endpoint_url, PLAN);
    assert_eq!(set["plan"]["seed"], 12, "{set}");
    let keys: Vec<String> = users.iter().map(|_| key()).collect();
    let answers =
        futures_util::future::join_all(users.iter().zip(&keys).enumerate().map(|(i, (u, k))| {
            let (api, event) = (apis[i % apis.len()].clone(), event.clone());
            async move { join_settled(&api, u, &event, k).await.0 }
        }))
        .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status).collect();
    let counts = status_counts(&statuses);
    assert_eq!(counts.get(&201), Some(&15), "{counts:?}");
    assert_eq!(counts.get(&202), Some(&45), "{counts:?}");
    let mut positions: Vec<u64> = answers
        .iter()
        .filter_map(|r| r.body["position"].as_u64())
        .collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=45).collect::<Vec<_>>(),
        "a waitlist without gaps"
    );
    for (i, (u, k)) in users.iter().zip(&keys).enumerate().take(20) {
        let again = join(&apis[i % apis.len()], u, &event, k).await;
        assert_eq!(again.status, answers[i].status, "{}", again.body);
        assert_eq!(again.body, answers[i].body);
    }
    let after = get_event(api, &organizer, &event).await;
    assert_eq!(
        (after["joined"].as_u64(), after["waitlisted"].as_u64()),
        (Some(15), Some(45)),
        "{after}"
    );
    assert_eq!(
        attendees(api, &organizer, &event).await.len(),
        60,
        "one place per user"
    );
    drop(_on);
    messages_numbered_in_commit_order(&stack, &event, &users).await;
    let sqs = stack.sqs().await;
    let dead = sqs
        .get_queue_attributes()
        .queue_url(stack.resource("JoinIntakeDLQ"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dead.attributes().and_then(|a| a.values().next().cloned()),
        Some("0".to_owned()),
        "nothing in the intake DLQ"
    );
    assert_eq!(
        SERVER_ERRORS.load(Ordering::Relaxed),
        0,
        "no 500, no 503 without Retry-After"
    );
}

/// The event's outbox messages are numbered 1..=N in commit order without a gap or a repeat
/// (N = the event item's `msg_seq`), the relay published up to N, and every inbox holds the
/// event's notifications in number order of arrival.
async fn messages_numbered_in_commit_order(stack: &Stack, event: &str, users: &[Caller]) {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let number = |item: &HashMap<String, V>, k: &str| -> u64 {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let ddb = stack.dynamodb().await;
    let table = stack.env("TABLE_NAME");
    let count = number(
        &stack
            .item(&format!("EVENT#{event}"), "EVENT")
            .await
            .unwrap(),
        "msg_seq",
    );
    // An event's outbox items share its partition key (one stream shard).
    let outbox: Vec<HashMap<String, V>> = ddb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", V::S(format!("OUTBOX#{event}")))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    let mut seqs: Vec<u64> = outbox
        .iter()
        .filter_map(|i| serde_json::from_str::<Value>(i["message"].as_s().ok()?).ok())
        .filter(|m| m["aggregate_id"] == event)
        .map(|m| {
            m["seq"]
                .as_u64()
                .expect("every message of the event is numbered")
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=count).collect::<Vec<_>>(),
        "numbers 1..={count}, each once"
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let published = stack
            .item(&format!("RELAYSEQ#{event}"), "RELAYSEQ")
            .await
            .map(|i| number(&i, "published"))
            .unwrap_or(0);
        if published == count {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay published up to {published} of {count}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    for (i, u) in users.iter().enumerate() {
        let mut items = ddb
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :notif)")
            .expression_attribute_values(":pk", V::S(format!("USER#{}", u.id)))
            .expression_attribute_values(":notif", V::S("NOTIF#".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        items.retain(|item| item["aggregate_id"].as_s().is_ok_and(|a| a == event));
        items.sort_by_key(|item| item["delivered_at"].as_s().unwrap().clone());
        let arrived: Vec<u64> = items.iter().map(|item| number(item, "seq")).collect();
        assert!(
            arrived.windows(2).all(|w| w[0] < w[1]),
            "user {i}: the event's notifications arrived in number order: {arrived:?}"
        );
    }
}

/// Sends one request as it is (no client retry), to see what a dependency outage answers.
async fn once(
    api: &Api,
    caller: &Caller,
    method: reqwest::Method,
    path: &str,
    k: &str,
) -> e2e::Reply {
    api.exec(
        api.request(method, path)
            .bearer_auth(caller.current_token().await)
            .header("Idempotency-Key", k),
    )
    .await
}

fn retry_after(r: &e2e::Reply) -> Option<u64> {
    r.headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// An outage of each dependency, one after the other:
/// - DynamoDB down: a join answers 503 with Retry-After, fast; /readyz is 503 naming the table
///   and its breaker opens; after recovery the breaker closes and the client's resend with the
///   same key joins once.
/// - SQS down for a few seconds: the relay's stream batch is retried; the notification arrives
///   once.
/// - Secrets Manager down: sign-in, refresh and authenticated calls go on with cached keys.
#[tokio::test]
async fn each_dependency_going_down_is_a_503_or_nothing_and_everything_recovers() {
    let stack = Stack::get();
    let endpoint = stack.aws_endpoint_url.clone();
    let minter = stack.token_minter().await;
    let api = Api::new(&stack, [127, 0, 9, 20]);
    let organizer = minter.user(&[Role::Attendee, Role::Organizer]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let _serial = PLAN_LOCK.lock().await;
    let _on = FaultsOn(endpoint.clone());
    let event = create_event(&api, &organizer, 5).await;

    // DynamoDB down.
    faults(
        &endpoint,
        r#"{"seed": 1, "rules": [{"service": "dynamodb", "outage": "down"}]}"#,
    );
    let k = key();
    let path = format!("/v1/events/{event}/join");
    let started = std::time::Instant::now();
    let refused = once(&api, &user, reqwest::Method::POST, &path, &k).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(retry_after(&refused).is_some(), "{:?}", refused.headers);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "within the time budget"
    );
    // Each readiness check is one failed DynamoDB call: within a few, the instance's breaker
    // opens (more calls allowed in case the local stack spreads them over instances).
    let mut ready = Value::Null;
    for _ in 0..30 {
        let r = api.send(reqwest::Method::GET, "/readyz", None, None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        ready = r.body;
        if ready["circuits"]["dynamodb"] == "open" {
            break;
        }
    }
    assert!(
        ready["detail"].as_str().unwrap().contains("table"),
        "{ready}"
    );
    assert_eq!(ready["circuits"]["dynamodb"], "open", "{ready}");

    faults(&endpoint, "{}");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let r = api.send(reqwest::Method::GET, "/readyz", None, None).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.body["circuits"]["dynamodb"], "closed", "{}", r.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never recovered: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    // The client resends with the same key: it joins, once.
    let joined = join(&api, &user, &event, &k).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let replay = join(&api, &user, &event, &k).await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(get_event(&api, &organizer, &event).await["joined"], 1);

    // SQS down for three seconds while a join commits: its notification still arrives, once.
    let second = minter.user(&[Role::Attendee]).await;
    faults(
        &endpoint,
        r#"{"seed": 2, "rules": [{"service": "sqs", "outage": "down"}]}"#,
    );
    let r = join(&api, &second, &event, &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    faults(&endpoint, "{}");
    let deadline = std::time::Instant::now() + PATIENCE;
    let got = loop {
        let t = types(&inbox(&api, &second).await);
        if !t.is_empty() || std::time::Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert_eq!(got, ["join.created"], "delivered after the outage, once");

    // Secrets Manager down (the test stack re-reads secrets every second): sign-in, refresh,
    // and calls that verify tokens go on with the last good keys.
    let acct = Api::new(&stack, [127, 0, 9, 21]);
    let email = e2e::email();
    assert_eq!(acct.register(&email).await.status, StatusCode::CREATED);
    // Every instance of the functions involved has read the current keys (the local stack runs
    // up to six per function; an instance idle since before the last key rotation, or a cold
    // start, during an outage would have only older keys or none, as in AWS).
    let first = acct.login(&email, e2e::PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first_access = first.body["access_token"].as_str().unwrap().to_owned();
    let warmed = futures_util::future::join_all((0..12).map(|_| acct.me(&first_access))).await;
    assert!(warmed.iter().all(|r| r.status == StatusCode::OK));
    let warm = acct
        .refresh(first.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(warm.status, StatusCode::OK, "{}", warm.body);
    faults(
        &endpoint,
        r#"{"seed": 3, "rules": [{"service": "secretsmanager", "outage": "down"}]}"#,
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let login = acct.login(&email, e2e::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(acct.me(&access).await.status, StatusCode::OK);
    let refreshed = acct
        .refresh(warm.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let third = minter.user(&[Role::Attendee]).await;
    assert_eq!(
        join(&api, &third, &event, &key()).await.status,
        StatusCode::CREATED
    );
    faults(&endpoint, "{}");
    assert_eq!(SERVER_ERRORS.load(Ordering::Relaxed), 0);
}
