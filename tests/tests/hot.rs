//! Hot events: many people joining one event at once.
//!
//! - `one_user_holds_one_place_however_many_keys_they_send` (in `make test`): admission
//!   fairness — twenty joins of one user with twenty different Idempotency-Keys, all at once,
//!   give one seat; every other answer is 409 `already-joined`.
//! - `a_hot_event_admits_a_crowd_first_come_first_served` (in `make test`: 200 joins of 50
//!   seats; `make test-hot`: 2 000 of 500): a hot event's joins go through its ordered intake
//!   and are admitted in batches (decision 0012): exactly the seats, a waitlist numbered 1..n
//!   without gaps or repeats, every key answered once (and replayed after), the outcome also in
//!   the user's inbox, a leave promoting the head.
//! - `joins_per_second_on_one_event_as_writers_grow` (ignored; `make bench-hot`): the rate of
//!   joins on ONE event as concurrent writers grow 1 → 8 → 32 → 128, beside the same joins
//!   spread over 100 events. A measurement (docs/performance.md), not a check of speed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::joining::{
    attendees, create_event, create_hot_event, get_event, join, join_settled, key, leave,
    with_organizer,
};
use e2e::{Api, Caller, TokenMinter, s};
use futures_util::StreamExt;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use shared::auth::Role;

#[tokio::test]
async fn one_user_holds_one_place_however_many_keys_they_send() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 73]).await;
    let event = create_event(&api, &organizer, 5).await;
    let user = minter.user(&[Role::Attendee]).await;
    let answers = join_all((0..20).map(|_| {
        let (api, user, event) = (&api, &user, &event);
        async move { join(api, user, event, &key()).await }
    }))
    .await;
    let seated: Vec<_> = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(seated.len(), 1, "one seat for one user");
    for r in answers.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(s(&r.body, "type"), "/problems/already-joined");
        assert_eq!(s(&r.body, "state"), "joined");
    }
    let e = get_event(&api, &organizer, &event).await;
    assert_eq!(
        (e["joined"].as_u64(), e["waitlisted"].as_u64()),
        (Some(1), Some(0))
    );
}

/// `joins` joins by `writers` concurrent writers, each joining its share of `events` in turn
/// (one event: everyone joins it), each join with its own user and key, settled as a client
/// does (a pending answer resent). Returns joins/s.
async fn rate(api: &Api, users: Vec<Caller>, events: &[String], writers: usize) -> f64 {
    let joins = users.len();
    let mut shares: Vec<Vec<(Caller, String)>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, u) in users.into_iter().enumerate() {
        shares[i % writers].push((u, events[i % events.len()].clone()));
    }
    let started = Instant::now();
    join_all(shares.into_iter().map(|share| async move {
        for (caller, event) in share {
            let (r, _) = join_settled(api, &caller, &event, &key()).await;
            assert!(
                r.status == StatusCode::CREATED || r.status == StatusCode::ACCEPTED,
                "{}",
                r.body
            );
        }
    }))
    .await;
    joins as f64 / started.elapsed().as_secs_f64()
}

/// The AWS SDK calls the functions `functions` logged (their spans) since `since` (lines
/// already in each log), by service and operation.
fn sdk_calls(stack: &e2e::Stack, functions: &[&str], since: &[usize]) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (f, skip) in functions.iter().zip(since) {
        for l in stack.log_lines(f).iter().skip(*skip) {
            if l["type"] == "span"
                && let Some(service) = l["attributes"]["rpc.service"].as_str()
            {
                let op = l["attributes"]["rpc.method"].as_str().unwrap_or("?");
                *counts.entry(format!("{f} {service}.{op}")).or_default() += 1;
            }
        }
    }
    counts.into_iter().collect()
}

const DYNAMO_WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

#[tokio::test]
#[ignore = "a measurement: make bench-hot"]
async fn joins_per_second_on_one_event_as_writers_grow() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 6, 2]).await;
    let joins = 256;
    let path = ["JoinEventFunction", "JoinWriterFunction"];
    println!("| event | writers | events | joins | joins/s |");
    println!("|---|---|---|---|---|");
    for writers in [8usize, 128] {
        let event = create_event(&api, &organizer, (joins / 2) as u32).await;
        let users = minter.users(joins, &[Role::Attendee]).await;
        let r = rate(&api, users, std::slice::from_ref(&event), writers).await;
        println!("| not hot (synchronous) | {writers} | 1 | {joins} | {r:.1} |");
    }
    let mut one = Vec::new();
    let mut calls = Vec::new();
    for writers in [1usize, 8, 32, 128] {
        // Half the joins get a seat, half a waitlist place, as in a sale that sells out.
        let event = create_hot_event(&api, &organizer, (joins / 2) as u32).await;
        let users = minter.users(joins, &[Role::Attendee]).await;
        let since: Vec<usize> = path.iter().map(|f| stack.log_lines(f).len()).collect();
        let r = rate(&api, users, std::slice::from_ref(&event), writers).await;
        println!("| hot (intake) | {writers} | 1 | {joins} | {r:.1} |");
        one.push(r);
        if writers == 128 {
            // The writer's lines reach its log after its last batch.
            tokio::time::sleep(Duration::from_secs(2)).await;
            calls = sdk_calls(&stack, &path, &since);
        }
    }
    let mut events = Vec::new();
    for _ in 0..100 {
        events.push(create_event(&api, &organizer, 2).await);
    }
    let users = minter.users(joins, &[Role::Attendee]).await;
    let spread = rate(&api, users, &events, 128).await;
    println!("| not hot (synchronous) | 128 | 100 | {joins} | {spread:.1} |");
    println!(
        "\nhot event at 128 writers / at 8: {:.2}; hot event at 128 / spread over 100 events at 128: {:.2}",
        one[3] / one[1],
        one[3] / spread
    );
    println!("\nAWS requests per join on the hot path (128 writers, {joins} joins):\n");
    println!("| function | request | per join |");
    println!("|---|---|---|");
    let (mut writes, mut limiter) = (0, 0);
    for (what, n) in &calls {
        let (f, op) = what.split_once(' ').unwrap();
        println!("| {f} | {op} | {:.3} |", *n as f64 / joins as f64);
        if let Some(m) = op.strip_prefix("DynamoDB.")
            && DYNAMO_WRITES.contains(&m)
        {
            writes += n;
            if f == "JoinEventFunction" && m == "UpdateItem" {
                limiter += n;
            }
        }
    }
    println!(
        "\nDynamoDB write requests per join: {:.3} in all; {:.3} of them the API rate limiter's (one per request of any route), {:.3} the join's own (intake, batch, outbox, idempotency)",
        writes as f64 / joins as f64,
        limiter as f64 / joins as f64,
        (writes - limiter) as f64 / joins as f64
    );
}

/// The notifications of `caller` (first page), looked at until one of type `kind` about
/// `event` arrives (at most `tries` looks, 200 ms apart).
async fn notified(api: &Api, caller: &Caller, event: &str, kind: &str, tries: usize) -> bool {
    for _ in 0..tries {
        let r = api
            .call(Some(caller), |r| r.get("/v1/me/notifications?limit=100"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if items
            .iter()
            .any(|n| n["type"] == kind && n["data"]["event_id"] == event)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// `joins` users join a hot event of `seats` seats, 64 at a time, each as a client does
/// (resending its key while pending); then every guarantee of the intake is checked.
async fn crowd_joins_hot_event(
    api: &Api,
    minter: &TokenMinter,
    organizer: &Caller,
    joins: usize,
    seats: usize,
) {
    let event = create_hot_event(api, organizer, seats as u32).await;
    let e = get_event(api, organizer, &event).await;
    assert_eq!(e["hot"], true);
    let users = minter.users(joins, &[Role::Attendee]).await;
    let keys: Vec<String> = (0..joins).map(|_| key()).collect();
    let started = Instant::now();
    let answers: Vec<(e2e::Reply, usize)> = futures_util::stream::iter(users.iter().zip(&keys))
        .map(|(u, k)| join_settled(api, u, &event, k))
        .buffered(64)
        .collect()
        .await;
    let took = started.elapsed();
    let pending: usize = answers.iter().map(|(_, p)| p).sum();
    println!(
        "{joins} joins of a hot event of {seats} seats in {:.1} s ({:.1} joins/s), {pending} pending answers on the way",
        took.as_secs_f64(),
        joins as f64 / took.as_secs_f64()
    );
    let mut seated = Vec::new();
    let mut positions: HashMap<u64, usize> = HashMap::new();
    for (i, (r, _)) in answers.iter().enumerate() {
        match r.status {
            StatusCode::CREATED => {
                assert_eq!(s(&r.body, "state"), "joined", "{}", r.body);
                seated.push(i);
            }
            StatusCode::ACCEPTED => {
                assert_eq!(s(&r.body, "state"), "waitlisted", "{}", r.body);
                let p = r.body["position"].as_u64().unwrap();
                assert!(positions.insert(p, i).is_none(), "position {p} given twice");
            }
            other => panic!("join answered {other}: {}", r.body),
        }
        assert_eq!(s(&r.body, "user_id"), users[i].id);
        assert!(r.headers.get("idempotent-replayed").is_none());
    }
    assert_eq!(seated.len(), seats, "exactly the seats are taken");
    let mut ps: Vec<u64> = positions.keys().copied().collect();
    ps.sort_unstable();
    assert_eq!(
        ps,
        (1..=(joins - seats) as u64).collect::<Vec<_>>(),
        "a waitlist without gaps"
    );
    // Every key answered once: a resend replays the same answer.
    for i in [
        seated[0],
        positions[&1],
        positions[&((joins - seats) as u64)],
    ] {
        let again = join(api, &users[i], &event, &keys[i]).await;
        assert_eq!(again.status, answers[i].0.status);
        assert_eq!(again.body, answers[i].0.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    // One place per user, whatever the key.
    let twice = join(api, &users[seated[0]], &event, &key()).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(s(&twice.body, "type"), "/problems/already-joined");
    // The stored state agrees with the answers.
    let e = get_event(api, organizer, &event).await;
    assert_eq!(e["joined"].as_u64(), Some(seats as u64));
    assert_eq!(e["waitlisted"].as_u64(), Some((joins - seats) as u64));
    let listed = attendees(api, organizer, &event).await;
    assert_eq!(listed.len(), joins);
    for (user, state, position) in &listed {
        let i = users
            .iter()
            .position(|u| &u.id == user)
            .expect("a user of this test");
        match state.as_str() {
            "joined" => assert!(seated.contains(&i)),
            _ => assert_eq!(
                positions.get(&position.unwrap()),
                Some(&i),
                "{user} at {position:?}"
            ),
        }
    }
    // The outcome is also a notification (its outbox item committed with it).
    let first = &users[seated[0]];
    assert!(
        notified(api, first, &event, "join.created", 300).await,
        "no join.created for {}",
        first.id
    );
    let head = &users[positions[&1]];
    assert!(notified(api, head, &event, "join.waitlisted", 300).await);
    // A seat freed on a hot event goes to the head of the waitlist.
    let left = leave(api, first, &event, None).await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    let mine = api
        .call(Some(head), |r| r.get(&format!("/v1/events/{event}/join")))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(s(&mine.body, "state"), "joined");
    let e = get_event(api, organizer, &event).await;
    assert_eq!(e["joined"].as_u64(), Some(seats as u64));
    assert_eq!(e["waitlisted"].as_u64(), Some((joins - seats - 1) as u64));
    assert!(notified(api, head, &event, "join.promoted", 300).await);
}

#[tokio::test]
async fn a_hot_event_admits_a_crowd_first_come_first_served() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 74]).await;
    crowd_joins_hot_event(&api, &minter, &organizer, 200, 50).await;
}

#[tokio::test]
#[ignore = "2 000 joins: make test-hot"]
async fn two_thousand_join_a_hot_event_of_five_hundred_seats() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 75]).await;
    crowd_joins_hot_event(&api, &minter, &organizer, 2000, 500).await;
}

#[tokio::test]
async fn a_hot_event_refuses_at_once_what_is_certain_and_records_the_rest() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 76]).await;
    let event = create_hot_event(&api, &organizer, 1).await;
    let user = minter.user(&[Role::Attendee]).await;
    let k = key();
    let (first, _) = join_settled(&api, &user, &event, &k).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // The same key with another request is refused, like any key reused.
    let other = api
        .call(Some(&user), |r| {
            r.post(&format!("/v1/events/{event}/join"))
                .header("Idempotency-Key", &k)
                .header("content-type", "application/json")
                .body("{}")
        })
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    // A cancelled hot event refuses joins before queueing them.
    let cancel = api
        .call(Some(&organizer), |r| {
            r.delete(&format!("/v1/events/{event}"))
                .header("Idempotency-Key", key())
        })
        .await;
    assert!(cancel.status.is_success(), "{}", cancel.body);
    let late = minter.user(&[Role::Attendee]).await;
    let r = join(&api, &late, &event, &key()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(s(&r.body, "type"), "/problems/event-not-joinable");
    let v: Value = get_event(&api, &organizer, &event).await;
    assert_eq!(v["joined"].as_u64(), Some(1));
}

#[tokio::test]
async fn one_user_holds_one_place_of_a_hot_event_however_many_keys_they_send() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 77]).await;
    let event = create_hot_event(&api, &organizer, 5).await;
    let user = minter.user(&[Role::Attendee]).await;
    let keys: Vec<String> = (0..20).map(|_| key()).collect();
    let answers = join_all(keys.iter().map(|k| {
        let (api, user, event) = (&api, &user, &event);
        async move { join_settled(api, user, event, k).await.0 }
    }))
    .await;
    let seated = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(seated, 1, "one seat for one user");
    for (r, k) in answers.iter().zip(&keys) {
        if r.status == StatusCode::CREATED {
            continue;
        }
        // Refused before queueing or by the writer: the same answer, recorded for its key.
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(s(&r.body, "type"), "/problems/already-joined");
        let again = join(&api, &user, &event, k).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    let e = get_event(&api, &organizer, &event).await;
    assert_eq!(
        (e["joined"].as_u64(), e["waitlisted"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(notified(&api, &user, &event, "join.created", 300).await);
}

/// The writer's own refusals, driven through its queue directly: a join queued for an event
/// that was cancelled meanwhile is refused, recorded for its key and told to its user; a join
/// queued more than 12 h ago (a late redrive) is not admitted at all.
#[tokio::test]
async fn the_writer_refuses_queued_joins_of_a_closed_event_and_tells_the_user() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 0, 78]).await;
    let event = create_hot_event(&api, &organizer, 5).await;
    let cancelled = api
        .call(Some(&organizer), |r| {
            r.delete(&format!("/v1/events/{event}"))
                .header("Idempotency-Key", key())
        })
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let user = minter.user(&[Role::Attendee]).await;
    let sqs = stack.sqs().await;
    let url = stack.resource("JoinIntakeQueue");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (stale, fresh) = (format!("IDEM#e2e-{}", key()), format!("IDEM#e2e-{}", key()));
    // In one message group, in this order: the stale one is handled first.
    for (pk, queued_at) in [(&stale, now - 13 * 3600), (&fresh, now)] {
        let body = serde_json::json!({
            "event_id": event, "user_id": user.id, "session_id": "e2e",
            "key": {"pk": pk, "fingerprint": "e2e"},
            "path": format!("/v1/events/{event}/join"), "queued_at": queued_at,
        });
        sqs.send_message()
            .queue_url(&url)
            .message_body(body.to_string())
            .message_group_id(&event)
            .message_deduplication_id(pk.trim_start_matches("IDEM#"))
            .send()
            .await
            .unwrap();
    }
    let mut record = None;
    for _ in 0..300 {
        record = stack.item(&fresh, "IDEM").await;
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = record.expect("the queued join was answered");
    assert_eq!(record["response_status"].as_n().unwrap(), "409");
    assert!(
        record["response_body"]
            .as_s()
            .unwrap()
            .contains("/problems/event-not-joinable")
    );
    assert!(
        stack.item(&stale, "IDEM").await.is_none(),
        "a join queued 13 h ago is not admitted"
    );
    assert!(notified(&api, &user, &event, "join.refused", 300).await);
}
