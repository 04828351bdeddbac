//! Issue 17: notifications pushed over the WebSocket API (docs/realtime.md), through the local
//! stack's WebSocket API and management API (infra/realtime_local.py), the real functions and
//! moto:
//! - a user on two sockets gets a waitlist promotion on both; a user with no connection gets
//!   it in the inbox only; a reconnect that resumes from its last id gets exactly what it missed;
//! - connects without a valid, live token are refused; the sixth connection of a user is
//!   refused and the five stay; a flood on one connection is throttled, another of the same
//!   user is not; oversized, malformed and unknown frames get an error frame and the
//!   connection stays;
//! - a connection that is gone is removed at the first push to it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use e2e::joining::{cancel_event, create_event, join, key, leave, with_organizer};
use e2e::ws::{self, Conn};
use e2e::{Caller, PATIENCE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared::auth::Role;

/// The user's inbox, newest first.
async fn inbox(api: &e2e::Api, user: &Caller) -> Vec<Value> {
    let r = api
        .send_as(user, Method::GET, "/v1/me/notifications?limit=100", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until the inbox holds a `kind` notification of `event`; returns it.
async fn in_inbox(api: &e2e::Api, user: &Caller, event: &str, kind: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(n) = inbox(api, user)
            .await
            .into_iter()
            .find(|n| n["event_id"] == event && n["type"] == kind)
        {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} of {event} in the inbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn open(stack: &e2e::Stack, user: &Caller) -> Conn {
    ws::connect(stack, Some(&user.token().await))
        .await
        .unwrap_or_else(|r| panic!("connect refused: {} {}", r.status, r.body))
}

/// Waits (at most [`PATIENCE`]) until the user's connection map satisfies `done`; returns it.
async fn connections_until(
    stack: &e2e::Stack,
    user: &Caller,
    done: impl Fn(&HashMap<String, AttributeValue>) -> bool,
) -> HashMap<String, AttributeValue> {
    let (ddb, table) = stack.table().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let item = ddb
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(format!("CONNS#{}", user.id)))
            .key("sk", AttributeValue::S("CONNS".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default();
        let map = item
            .get("conns")
            .and_then(|v| v.as_m().ok())
            .cloned()
            .unwrap_or_default();
        if done(&map) {
            return map;
        }
        assert!(Instant::now() < deadline, "connections stayed {map:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is(event: &str, kind: &str) -> impl Fn(&Value) -> bool {
    let (event, kind) = (event.to_owned(), kind.to_owned());
    move |n| n["event_id"] == event.as_str() && n["type"] == kind.as_str()
}

#[tokio::test]
async fn a_promotion_reaches_both_sockets_of_its_user_and_an_unconnected_user_only_their_inbox() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 17, 1]).await;
    let event = create_event(&api, &organizer, 1).await;
    let holder = minter.user(&[Role::Attendee]).await;
    let waiter = minter.user(&[Role::Attendee]).await;
    let r = join(&api, &holder, &event, &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = join(&api, &waiter, &event, &key()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    let mut a = open(&stack, &waiter).await;
    let mut b = open(&stack, &waiter).await;
    let left = Instant::now();
    let r = leave(&api, &holder, &event, None).await;
    assert!(r.status.is_success(), "{}", r.body);
    let on_a = a.pushed_until(is(&event, "join.promoted")).await;
    let to_a = left.elapsed();
    let on_b = b.pushed_until(is(&event, "join.promoted")).await;
    let to_b = left.elapsed();
    // Measured, not asserted against a clock (docs/realtime.md has the numbers).
    println!(
        "promotion pushed {} ms and {} ms after the leave",
        to_a.as_millis(),
        to_b.as_millis()
    );
    assert_eq!(on_a, on_b, "the same frame on both sockets");
    let pushed = &on_a["notification"];
    assert_eq!(pushed["read"], false);
    // The pushed notification is the inbox's, id and all.
    let stored = in_inbox(&api, &waiter, &event, "join.promoted").await;
    assert_eq!(pushed["id"], stored["id"]);
    assert_eq!(pushed["summary"], stored["summary"]);
    assert_eq!(pushed["data"], stored["data"]);

    // A user with no connection: the inbox has it, and nothing was posted for it.
    let offline = minter.user(&[Role::Attendee]).await;
    let other = create_event(&api, &organizer, 5).await;
    let r = join(&api, &offline, &other, &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let n = in_inbox(&api, &offline, &other, "join.created").await;
    let id = n["id"].as_str().unwrap();
    let posts = ws::posts(&stack).await;
    assert!(
        posts.iter().any(|p| p["body"]
            .as_str()
            .unwrap_or("")
            .contains(pushed["id"].as_str().unwrap())),
        "the management API's record holds the pushes"
    );
    assert!(
        !posts
            .iter()
            .any(|p| p["body"].as_str().unwrap_or("").contains(id)),
        "a notification of a user without connections was posted"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_reconnect_that_resumes_from_its_last_id_gets_exactly_what_it_missed() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 17, 2]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let events = [
        create_event(&api, &organizer, 5).await,
        create_event(&api, &organizer, 5).await,
        create_event(&api, &organizer, 5).await,
    ];
    let mut first = open(&stack, &user).await;
    let r = join(&api, &user, &events[0], &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let last = first.pushed_until(is(&events[0], "join.created")).await["notification"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.close().await;

    // Offline: two more.
    for e in &events[1..] {
        let r = join(&api, &user, e, &key()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let mut missed = Vec::new();
    for e in &events[1..] {
        missed.push(in_inbox(&api, &user, e, "join.created").await["id"].clone());
    }
    missed.sort_by(|x, y| x.as_str().cmp(&y.as_str()));

    let mut again = open(&stack, &user).await;
    let frame = again
        .request(&format!(r#"{{"action":"resume","from":"{last}"}}"#))
        .await;
    assert_eq!(frame["type"], "resume", "{frame}");
    let got: Vec<Value> = frame["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    assert_eq!(
        got, missed,
        "exactly the missed ones, oldest first: {frame}"
    );
    assert!(frame.get("next").is_none(), "{frame}");
    // From the newest: nothing the client does not have (what was written shortly before its
    // point may come again: docs/realtime.md).
    let newest = missed.last().unwrap().as_str().unwrap();
    let frame = again
        .request(&format!(r#"{{"action":"resume","from":"{newest}"}}"#))
        .await;
    assert_eq!(frame["type"], "resume", "{frame}");
    let mut have = missed.clone();
    have.push(Value::String(last.clone()));
    for n in frame["items"].as_array().unwrap() {
        assert!(have.contains(&n["id"]), "{frame}");
        assert_ne!(n["id"].as_str(), Some(newest), "{frame}");
    }
    again.close().await;
}

#[tokio::test]
async fn connects_without_a_valid_live_token_are_refused() {
    let (stack, api, minter, _) = with_organizer([127, 0, 17, 3]).await;
    let refused = |r: Result<Conn, ws::Refused>| match r {
        Ok(_) => panic!("connected"),
        Err(r) => r,
    };
    // No token at all, and a token that is not one.
    let r = refused(ws::connect(&stack, None).await);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("unauthorized"), "{}", r.body);
    let r = refused(ws::connect(&stack, Some("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")).await);
    assert_eq!(r.status, 401, "{}", r.body);
    // Expired a minute ago.
    let expired = minter.user_expiring(&[Role::Attendee], -60, 0).await;
    let r = refused(ws::connect(&stack, Some(&expired.current_token().await)).await);
    assert_eq!(r.status, 401, "{}", r.body);
    // A session that logged out: its still-unexpired access token no longer connects.
    let user = minter.user(&[Role::Attendee]).await;
    let token = user.current_token().await;
    let live = open(&stack, &user).await;
    let out = api
        .send(Method::POST, "/v1/auth/logout", None, Some(&token))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let r = refused(ws::connect(&stack, Some(&token)).await);
    assert_eq!(r.status, 401, "{}", r.body);
    live.close().await;
}

#[tokio::test]
async fn the_sixth_connection_of_a_user_is_refused_and_the_five_stay() {
    let (stack, _api, minter, _) = with_organizer([127, 0, 17, 4]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let mut five = Vec::new();
    for _ in 0..5 {
        five.push(open(&stack, &user).await);
    }
    let token = user.token().await;
    let r = ws::connect(&stack, Some(&token))
        .await
        .err()
        .expect("a sixth connection is refused");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("rate-limited"), "{}", r.body);
    for c in &mut five {
        assert_eq!(c.request(r#"{"action":"ping"}"#).await["type"], "pong");
    }
    // One closes: a new one is taken (once its $disconnect ran).
    five.pop().unwrap().close().await;
    let deadline = Instant::now() + PATIENCE;
    let replacement = loop {
        match ws::connect(&stack, Some(&token)).await {
            Ok(c) => break c,
            Err(r) if r.status == 429 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(r) => panic!("{} {}", r.status, r.body),
        }
    };
    replacement.close().await;
    for c in five {
        c.close().await;
    }
}

#[tokio::test]
async fn a_flood_on_one_connection_is_throttled_and_another_is_not() {
    let (stack, _api, minter, _) = with_organizer([127, 0, 17, 5]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let mut noisy = open(&stack, &user).await;
    let mut quiet = open(&stack, &user).await;
    let (mut pongs, mut throttled) = (0, 0);
    for _ in 0..75 {
        let f = noisy.request(r#"{"action":"ping"}"#).await;
        match f["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(f["problem"]["status"], 429, "{f}");
                assert!(f["problem"]["retry_after"].as_u64().unwrap() >= 1, "{f}");
                throttled += 1;
            }
            _ => panic!("{f}"),
        }
    }
    // At most a minute's budget (60) is answered; the window may turn once during the run.
    assert!(
        pongs <= 120 && throttled >= 1,
        "{pongs} pongs, {throttled} refused"
    );
    assert!(pongs >= 60, "{pongs}");
    // The other connection of the same user has its own budget; the noisy one stays open.
    assert_eq!(quiet.request(r#"{"action":"ping"}"#).await["type"], "pong");
    let f = noisy.request(r#"{"action":"ping"}"#).await;
    assert!(
        ["pong", "error"].contains(&f["type"].as_str().unwrap()),
        "{f}"
    );
    noisy.close().await;
    quiet.close().await;
}

#[tokio::test]
async fn bad_frames_get_an_error_frame_naming_the_field_and_the_connection_stays() {
    let (stack, _api, minter, _) = with_organizer([127, 0, 17, 6]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let mut c = open(&stack, &user).await;
    let cases = [
        ("x".repeat(5000), 413, None),
        ("{not json".to_owned(), 422, Some("action")),
        (r#"{"action":"shout"}"#.to_owned(), 422, Some("action")),
        (r#"{"action":"resume","from":"yesterday"}"#.to_owned(), 422, Some("from")),
        (
            r#"{"action":"resume","from":"2026-01-01T00:00:00.000000Z#00000000000000000000000000000000"}"#.to_owned(),
            422,
            Some("from"),
        ),
        (r#"{"action":"resume","cursor":"bm90IGEgY3Vyc29y"}"#.to_owned(), 422, Some("cursor")),
    ];
    for (frame, status, field) in cases {
        let f = c.request(&frame).await;
        assert_eq!(f["type"], "error", "{f}");
        assert_eq!(f["problem"]["status"], status, "{f}");
        if let Some(field) = field {
            assert_eq!(f["problem"]["invalid_params"][0]["name"], field, "{f}");
        }
    }
    assert_eq!(c.request(r#"{"action":"ping"}"#).await["type"], "pong");
    // An answer names the frame it answers.
    let f = c.request(r#"{"action":"ping","id":"p-1"}"#).await;
    assert_eq!(
        (f["type"].as_str(), f["id"].as_str()),
        (Some("pong"), Some("p-1")),
        "{f}"
    );
    let f = c
        .request(&format!(r#"{{"action":"ping","id":"{}"}}"#, "x".repeat(65)))
        .await;
    assert_eq!(f["problem"]["invalid_params"][0]["name"], "id", "{f}");
    c.close().await;
}

#[tokio::test]
async fn a_connection_that_is_gone_is_removed_at_the_first_push() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 17, 7]).await;
    let user = minter.user(&[Role::Attendee]).await;
    // A connection API Gateway no longer has, still in the user's map with a running lease
    // (its $disconnect lost), of the user's live session.
    let (ddb, table) = stack.table().await;
    use AttributeValue as V;
    let stale = "c3RhbGVjb25uZWN0aW9u";
    let now = e2e::client::now_unix();
    let expires = (now + 3600).to_string();
    let session = format!("ses_e2e_{}", user.id.trim_start_matches("usr_"));
    let entry = V::M(
        [
            ("e".to_owned(), V::N((now + 600).to_string())),
            ("m".to_owned(), V::N(expires.clone())),
            ("c".to_owned(), V::N((now - 60).to_string())),
            ("s".to_owned(), V::S(session)),
        ]
        .into(),
    );
    ddb.put_item()
        .table_name(&table)
        .item("pk", V::S(format!("CONNS#{}", user.id)))
        .item("sk", V::S("CONNS".into()))
        .item("conns", V::M([(stale.to_owned(), entry)].into()))
        .item("version", V::N("1".into()))
        .item("expires_at", V::N(expires.clone()))
        .send()
        .await
        .unwrap();
    ddb.put_item()
        .table_name(&table)
        .item("pk", V::S(format!("CONN#{stale}")))
        .item("sk", V::S("CONN".into()))
        .item("user_id", V::S(user.id.clone()))
        .item("expires_at", V::N(expires))
        .send()
        .await
        .unwrap();
    let mut live = open(&stack, &user).await;
    let event = create_event(&api, &organizer, 5).await;
    let r = join(&api, &user, &event, &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The live one gets it; the stale one answered 410 and is gone from both records.
    live.pushed_until(is(&event, "join.created")).await;
    let map = connections_until(&stack, &user, |m| !m.contains_key(stale)).await;
    assert_eq!(map.len(), 1, "the live connection stays: {map:?}");
    let record = ddb
        .get_item()
        .table_name(&table)
        .key("pk", V::S(format!("CONN#{stale}")))
        .key("sk", V::S("CONN".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(record.item.is_none(), "the gone connection's record stays");
    // It was removed for the 410 its post got (its session is live).
    assert!(
        ws::posts(&stack)
            .await
            .iter()
            .any(|p| p["connection_id"] == stale && p["status"] == 410),
        "no post to the gone connection"
    );
    live.close().await;
}

#[tokio::test]
async fn a_logged_out_session_is_pushed_nothing_and_its_open_connection_is_told_to_reconnect() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 17, 8]).await;
    let user = minter.user(&[Role::Attendee]).await;
    let token = user.current_token().await;
    let event = create_event(&api, &organizer, 5).await;
    let mut c = open(&stack, &user).await;
    let r = join(&api, &user, &event, &key()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.pushed_until(is(&event, "join.created")).await;
    let out = api
        .send(Method::POST, "/v1/auth/logout", None, Some(&token))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    // Its frames: 401; the connection stays open to say so.
    let f = c.request(r#"{"action":"ping","id":"after-logout"}"#).await;
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["id"], "after-logout", "{f}");
    assert_eq!(f["problem"]["status"], 401, "{f}");
    // The organizer cancels: the user's inbox has it (reads need no live session), the
    // logged-out socket is never posted it, and the connection is removed.
    cancel_event(&api, &organizer, &event).await;
    let cancelled = in_inbox(&api, &user, &event, "event.cancelled").await;
    let id = cancelled["id"].as_str().unwrap();
    connections_until(&stack, &user, |m| m.is_empty()).await;
    assert!(
        ws::posts(&stack)
            .await
            .iter()
            .all(|p| !p["body"].as_str().unwrap_or("").contains(id)),
        "the logged-out session's socket was pushed to"
    );
    c.close().await;
}

/// The crowd: an event with 150 attendees, every one of them connected, is cancelled; the
/// fan-out's pushes reach every socket (one BatchGetItem per 100 users, posts 16 at a time,
/// within the push budget). The time from the cancel to the last socket is printed.
#[tokio::test]
async fn a_cancelled_event_reaches_every_connected_attendee() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    const CROWD: usize = 150;
    let (stack, api, minter, organizer) = with_organizer([127, 0, 17, 9]).await;
    let event = create_event(&api, &organizer, CROWD as u32).await;
    let users = minter.users(CROWD, &[Role::Attendee]).await;
    // Their seats, as the joins' transactions write them (the fan-out reads these).
    let (ddb, table) = stack.table().await;
    for chunk in users.chunks(25) {
        let writes = chunk
            .iter()
            .map(|u| {
                let put = PutRequest::builder()
                    .item("pk", AttributeValue::S(format!("EVENT#{event}")))
                    .item("sk", AttributeValue::S(format!("SEAT#{}", u.id)))
                    .item("type", AttributeValue::S("seat".into()))
                    .item("user_id", AttributeValue::S(u.id.clone()))
                    .item(
                        "at",
                        AttributeValue::S("2026-12-01T10:00:00.000000Z".into()),
                    )
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        shared::ddb::batch_write(&ddb, &table, writes)
            .await
            .unwrap();
    }
    let connects = users.iter().map(|u| open(&stack, u));
    let mut sockets: Vec<Conn> = futures_util::future::join_all(connects).await;
    let cancelled = Instant::now();
    cancel_event(&api, &organizer, &event).await;
    let waits = sockets
        .iter_mut()
        .map(|c| async { c.pushed_until(is(&event, "event.cancelled")).await });
    let frames = futures_util::future::join_all(waits).await;
    println!(
        "{} sockets got the cancellation {} ms after the cancel",
        frames.len(),
        cancelled.elapsed().as_millis()
    );
    let id = &frames[0]["notification"]["id"];
    assert!(frames.iter().all(|f| &f["notification"]["id"] == id));
    futures_util::future::join_all(sockets.into_iter().map(Conn::close)).await;
}
