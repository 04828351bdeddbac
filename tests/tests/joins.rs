//! Joins through the local stack: Idempotency-Key semantics, promotion with notifications, the
//! DLQ paths, and the outbox carrying every change to the inboxes with the trace of the request that made it.
//!
//! Hundreds of distinct callers get access tokens signed with the stack's own key
//! ([`e2e::Stack::token_minter`]) instead of hundreds of argon2id registrations.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::joining::{
    cancel_event, create_event, event_body, get_event, join, key, leave, with_organizer,
};
use e2e::{Api, Caller, PATIENCE, Stack, s};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::Role;
use time::OffsetDateTime;

#[tokio::test]
async fn one_idempotency_key_sent_20_times_at_once_joins_once() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 4, 2]).await;
    let me = minter.user(&[Role::Attendee]).await;
    let user = me.id.clone();
    let event = create_event(&api, &organizer, 5).await;
    let other_event = create_event(&api, &organizer, 5).await;

    let k = key();
    let replies = join_all((0..20).map(|_| join(&api, &me, &event, &k))).await;
    let mut first = 0;
    let mut replayed = 0;
    let mut in_flight = 0;
    for r in &replies {
        match r.status {
            StatusCode::CREATED if r.headers.get("idempotent-replayed").is_some() => {
                assert_eq!(r.headers["idempotent-replayed"], "true");
                assert_eq!(s(&r.body, "user_id"), user);
                replayed += 1
            }
            StatusCode::CREATED => first += 1,
            StatusCode::CONFLICT => {
                assert_eq!(
                    s(&r.body, "type"),
                    "/problems/idempotency-in-flight",
                    "{}",
                    r.body
                );
                assert!(r.headers.get("retry-after").is_some());
                in_flight += 1
            }
            other => panic!("{other}: {}", r.body),
        }
    }
    assert_eq!(first, 1, "one request ran");
    assert_eq!(replayed + in_flight, 19);
    let e = get_event(&api, &organizer, &event).await;
    assert_eq!(e["joined"], 1, "never a second effect");

    // After completion every repeat replays the same answer.
    let original = replies
        .iter()
        .find(|r| r.status == StatusCode::CREATED && r.headers.get("idempotent-replayed").is_none())
        .unwrap();
    let again = join(&api, &me, &event, &k).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, original.body);

    // The same key for another request: 422. No key: 400. A new key: 409 naming the state.
    let reused = join(&api, &me, &other_event, &k).await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    assert_eq!(reused.body["invalid_params"][0]["name"], "Idempotency-Key");
    let missing = api
        .send_as(&me, Method::POST, &format!("/v1/events/{event}/join"), None)
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.body["invalid_params"][0]["name"], "Idempotency-Key");
    assert_eq!(missing.headers["content-type"], "application/problem+json");
    let twice = join(&api, &me, &event, &key()).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(twice.body["state"], "joined");
    let e = get_event(&api, &organizer, &other_event).await;
    assert_eq!(e["joined"], 0, "the refused key did nothing");

    // Event creation honours the key too: a repeat replays, another body is 422.
    let k = key();
    let body = event_body("Keyed", 10);
    let create = |b: Value| {
        let (k, organizer) = (&k, &organizer);
        let api = &api;
        async move {
            api.call(Some(organizer), |r| {
                r.post("/v1/events").header("Idempotency-Key", k).json(&b)
            })
            .await
        }
    };
    let one = create(body.clone()).await;
    assert_eq!(one.status, StatusCode::CREATED, "{}", one.body);
    let two = create(body.clone()).await;
    assert_eq!(two.status, StatusCode::CREATED);
    assert_eq!(two.headers["idempotent-replayed"], "true");
    assert_eq!(two.headers["location"], one.headers["location"]);
    assert_eq!(s(&two.body, "id"), s(&one.body, "id"), "one event, not two");
    let mut changed = body.clone();
    changed["capacity"] = json!(11);
    let three = create(changed).await;
    assert_eq!(
        three.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        three.body
    );
}

/// Polls `user`'s inbox until a notification of `kind` about `event` is there.
async fn wait_for_notification(api: &Api, who: &Caller, event: &str, kind: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = api
            .send_as(who, Method::GET, "/v1/me/notifications?limit=100", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if let Some(n) = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == kind && n["event_id"] == event)
        {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} notification: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_promoted_user_is_notified_with_the_trace_of_the_leave_and_every_message_counts_once() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 4, 3]).await;
    let a_user = minter.user(&[Role::Attendee]).await;
    let a = a_user.id.clone();
    let b_user = minter.user(&[Role::Attendee]).await;
    let b = b_user.id.clone();
    let c_user = minter.user(&[Role::Attendee]).await;
    let c = c_user.id.clone();
    let event = create_event(&api, &organizer, 1).await;

    assert_eq!(
        join(&api, &a_user, &event, &key()).await.status,
        StatusCode::CREATED
    );
    let waiting = join(&api, &b_user, &event, &key()).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED);
    assert_eq!(waiting.body["position"], 1);
    assert_eq!(
        join(&api, &c_user, &event, &key()).await.body["position"],
        2
    );

    let root = format!(
        "1-{:08x}-{}",
        OffsetDateTime::now_utc().unix_timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    );
    let trace = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1");
    let r = leave(&api, &a_user, &event, Some(&trace)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let promoted = wait_for_notification(&api, &b_user, &event, "join.promoted").await;
    assert_eq!(promoted["read"], false);
    let mine = api
        .send_as(&b_user, Method::GET, "/v1/me/joins", None)
        .await;
    assert_eq!(mine.body["items"][0]["state"], "joined", "{}", mine.body);
    assert_eq!(mine.body["items"][0]["event"]["id"], event);
    let c_joins = api
        .send_as(&c_user, Method::GET, "/v1/me/joins", None)
        .await;
    assert_eq!(c_joins.body["items"][0]["position"], 1, "C moved up");

    // The inbox item carries the trace id of the leave request that freed the seat.
    let ddb = stack.dynamodb().await;
    let item = ddb
        .get_item()
        .table_name(stack.env("TABLE_NAME"))
        .key("pk", AttributeValue::S(format!("USER#{b}")))
        .key(
            "sk",
            AttributeValue::S(format!("NOTIF#{}", s(&promoted, "id"))),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the inbox item");
    assert_eq!(item["trace_id"].as_s().unwrap(), &root);

    // Mark read up to the newest.
    let read = api
        .send_as(
            &b_user,
            Method::POST,
            "/v1/me/notifications/read",
            Some(json!({"up_to": s(&promoted, "id")})),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let listed = api
        .send_as(&b_user, Method::GET, "/v1/me/notifications", None)
        .await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"] == true)
    );
    let bad = api
        .send_as(
            &b_user,
            Method::POST,
            "/v1/me/notifications/read",
            Some(json!({"up_to": "x"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["invalid_params"][0]["name"], "up_to");

    // Cancelling tells everyone still there.
    cancel_event(&api, &organizer, &event).await;
    wait_for_notification(&api, &b_user, &event, "event.cancelled").await;
    wait_for_notification(&api, &c_user, &event, "event.cancelled").await;
    let late = join(&api, &a_user, &event, &key()).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(s(&late.body, "type"), "/problems/event-not-joinable");

    // Every outbox message of this event reached the consumer exactly once in effect: 3 joins,
    // 1 leave, 1 promotion, 1 cancellation, and one inbox item per recipient.
    let expected: HashMap<&str, usize> = HashMap::from([
        ("join.created", 1),
        ("join.waitlisted", 2),
        ("join.cancelled", 1),
        ("join.promoted", 1),
        ("event.cancelled", 1),
    ]);
    let deadline = Instant::now() + PATIENCE;
    let seen = loop {
        let mut by_id: HashMap<String, (String, u64)> = HashMap::new();
        let mut deliveries: HashMap<String, u64> = HashMap::new();
        for l in stack.log_lines("NotificationsConsumerFunction") {
            if l["aggregate_id"] == event.as_str() && l["message"] == "notifications delivered" {
                let id = s(&l, "outbox_id");
                *deliveries.entry(id.clone()).or_default() += l["delivered"].as_u64().unwrap();
                by_id.insert(id, (s(&l, "type"), 0));
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (t, _) in by_id.values() {
            *counts
                .entry(
                    expected
                        .keys()
                        .find(|k| **k == t.as_str())
                        .copied()
                        .unwrap_or("other"),
                )
                .or_default() += 1;
        }
        if counts == expected || Instant::now() > deadline {
            break (counts, deliveries);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(seen.0, expected, "one consumed message per change");
    let delivered: u64 = seen.1.values().sum();
    // a: created; b: waitlisted, promoted, cancelled; c: waitlisted, cancelled.
    assert_eq!(delivered, 6, "one inbox item per recipient, none twice");
    for (who, caller, n) in [(&a, &a_user, 1), (&b, &b_user, 3), (&c, &c_user, 2)] {
        let r = api
            .send_as(caller, Method::GET, "/v1/me/notifications", None)
            .await;
        let about: Vec<&Value> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["event_id"] == event.as_str())
            .collect();
        assert_eq!(about.len(), n, "{who}: {}", r.body);
    }
}

async fn dlq_messages(
    stack: &Stack,
    wanted: &str,
    deadline: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = stack.sqs().await;
    let until = Instant::now() + deadline;
    let mut found = Vec::new();
    while Instant::now() < until && found.is_empty() {
        let out = sqs
            .receive_message()
            .queue_url(stack.env("OUTBOX_DLQ_URL"))
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            if m.body().is_some_and(|b| b.contains(wanted)) {
                found.push(m);
            }
        }
    }
    found
}

fn dead_metric(stack: &Stack, reason: &str) -> u64 {
    stack
        .log_lines("NotificationsConsumerFunction")
        .iter()
        .filter(|l| l["reason"] == reason)
        .filter_map(|l| l["OutboxDead"].as_f64())
        .map(|v| v as u64)
        .sum()
}

/// Sends `body` to the FIFO queue `queue` in the message group `group`, deduplicated by `id`.
async fn send_to_queue(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    body: String,
    group: &str,
    id: &str,
) {
    sqs.send_message()
        .queue_url(queue)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(id)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_messages_go_to_the_dlq_at_once_and_poison_ones_after_5_receives() {
    let stack = Stack::get();
    let sqs = stack.sqs().await;
    let queue = stack.env("OUTBOX_QUEUE_URL");
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let dead_before = dead_metric(&stack, "malformed");
    let body = format!("{{not json {marker}");
    send_to_queue(&sqs, &queue, body, "e2e-malformed", &marker).await;
    let dead = dlq_messages(&stack, &marker, PATIENCE).await;
    assert_eq!(dead.len(), 1, "the malformed message is in the DLQ");
    let attrs = dead[0].message_attributes().unwrap();
    assert!(
        attrs["dead-reason"]
            .string_value()
            .unwrap()
            .contains("not an outbox message")
    );
    let deadline = Instant::now() + PATIENCE;
    while dead_metric(&stack, "malformed") <= dead_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dead_metric(&stack, "malformed") > dead_before,
        "OutboxDead counted it"
    );

    // A well-formed message whose inbox write always fails (a user id longer than a
    // partition key may be): retried, then moved to the DLQ by the queue after 5 receives.
    let poison = uuid::Uuid::new_v4().simple().to_string();
    let huge_user = "u".repeat(3000);
    let exhausted_before = dead_metric(&stack, "retries_exhausted");
    let body = json!({"id": poison, "type": "join.created", "aggregate_id": "evt_poison",
        "occurred_at": "2026-11-23T10:00:00.000000Z", "recipients": [huge_user],
        "summary": "poison", "data": {}})
    .to_string();
    send_to_queue(&sqs, &queue, body, "e2e-poison", &poison).await;
    let dead = dlq_messages(&stack, &poison, PATIENCE).await;
    assert_eq!(dead.len(), 1, "the poison message is in the DLQ");
    let failures = stack
        .log_lines("NotificationsConsumerFunction")
        .iter()
        .filter(|l| l["message_id"].is_string() && l["receives"].is_u64())
        .filter(|l| {
            l["error.cause_chain"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert!(
        failures >= 5,
        "it was tried 5 times ({failures} failure lines)"
    );
    assert!(
        dead_metric(&stack, "retries_exhausted") > exhausted_before,
        "OutboxDead counted it on its last receive"
    );
}

#[tokio::test]
async fn joining_is_refused_clearly() {
    let (stack, api) = Stack::with_api([127, 0, 4, 4]);
    let minter = stack.token_minter().await;
    let me = minter.user(&[Role::Attendee]).await;
    let unknown = join(&api, &me, "evt_0123456789abcdef0123456789ab", &key()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let malformed = join(&api, &me, "nope", &key()).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["invalid_params"][0]["name"], "id");
    let anonymous = api
        .exec(
            api.request(
                Method::POST,
                "/v1/events/evt_0123456789abcdef0123456789ab/join",
            )
            .header("Idempotency-Key", key()),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let not_joined = leave(&api, &me, "evt_0123456789abcdef0123456789ab", None).await;
    assert_eq!(not_joined.status, StatusCode::NOT_FOUND);
    let organizer = minter.user(&[Role::Attendee, Role::Organizer]).await;
    let event = create_event(&api, &organizer, 2).await;
    let attendees = format!("/v1/events/{event}/attendees");
    let forbidden = api.send_as(&me, Method::GET, &attendees, None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let bad_cursor = api
        .send_as(
            &organizer,
            Method::GET,
            &format!("{attendees}?cursor=abc.def"),
            None,
        )
        .await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_cursor.body["invalid_params"][0]["name"], "cursor");
}

/// The caller's place at `event` (`GET /v1/events/{id}/join`).
async fn place(api: &Api, who: &Caller, event: &str) -> e2e::Reply {
    let path = format!("/v1/events/{event}/join");
    api.call(Some(who), |r| r.get(&path)).await
}

#[tokio::test]
async fn the_callers_place_is_their_seat_or_current_waitlist_position_until_they_leave() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 0, 72]).await;
    let event = create_event(&api, &organizer, 1).await;
    let users = minter.users(3, &[Role::Attendee]).await;
    let (a, b, c) = (&users[0], &users[1], &users[2]);
    let never = place(&api, a, &event).await;
    assert_eq!(never.status, StatusCode::NOT_FOUND, "{}", never.body);
    assert_eq!(s(&never.body, "type"), "/problems/not-joined");
    assert_eq!(
        join(&api, a, &event, &key()).await.status,
        StatusCode::CREATED
    );
    for who in [b, c] {
        assert_eq!(
            join(&api, who, &event, &key()).await.status,
            StatusCode::ACCEPTED
        );
    }
    let seat = place(&api, a, &event).await;
    assert_eq!(seat.status, StatusCode::OK, "{}", seat.body);
    assert_eq!(
        (s(&seat.body, "state"), seat.body.get("position")),
        ("joined".into(), None)
    );
    assert_eq!(s(&seat.body, "user_id"), a.id);
    let second = place(&api, c, &event).await;
    assert_eq!(
        (s(&second.body, "state"), &second.body["position"]),
        ("waitlisted".into(), &json!(2))
    );
    // A leaves: B is promoted, C moves up.
    assert_eq!(leave(&api, a, &event, None).await.status, StatusCode::OK);
    let promoted = place(&api, b, &event).await;
    assert_eq!(s(&promoted.body, "state"), "joined");
    assert_eq!(place(&api, c, &event).await.body["position"], json!(1));
    assert_eq!(place(&api, a, &event).await.status, StatusCode::NOT_FOUND);
    // Nobody reads another event's place: a malformed id is 400.
    let path = "/v1/events/not-an-id/join";
    let bad = api.call(Some(c), |r| r.get(path)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}
