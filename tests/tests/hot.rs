//! Hot events: many people joining one event at once.
//!
//! - `one_user_holds_one_place_however_many_keys_they_send` (in `make test`): admission
//!   fairness — twenty joins of one user with twenty different Idempotency-Keys, all at once,
//!   give one seat; every other answer is 409 `already-joined`.
//! - `joins_per_second_on_one_event_as_writers_grow` (ignored; `make bench-hot`): the rate of
//!   joins on ONE event as concurrent writers grow 1 → 8 → 32 → 128, beside the same joins
//!   spread over 100 events. A measurement (docs/performance.md), not a check of speed.

use std::time::Instant;

use e2e::joining::{create_event, get_event, join, key, with_organizer};
use e2e::{Api, Caller, s};
use futures_util::future::join_all;
use reqwest::StatusCode;
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
/// (one event: everyone joins it), each join with its own user and key. Returns joins/s.
async fn rate(api: &Api, users: Vec<Caller>, events: &[String], writers: usize) -> f64 {
    let joins = users.len();
    let mut shares: Vec<Vec<(Caller, String)>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, u) in users.into_iter().enumerate() {
        shares[i % writers].push((u, events[i % events.len()].clone()));
    }
    let started = Instant::now();
    join_all(shares.into_iter().map(|share| async move {
        for (caller, event) in share {
            let r = join(api, &caller, &event, &key()).await;
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

#[tokio::test]
#[ignore = "a measurement: make bench-hot"]
async fn joins_per_second_on_one_event_as_writers_grow() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 6, 2]).await;
    let joins = 256;
    println!("| writers | events | joins | joins/s |");
    println!("|---|---|---|---|");
    let mut one = Vec::new();
    for writers in [1usize, 8, 32, 128] {
        // Half the joins get a seat, half a waitlist place, as in a sale that sells out.
        let event = create_event(&api, &organizer, (joins / 2) as u32).await;
        let users = minter.users(joins, &[Role::Attendee]).await;
        let r = rate(&api, users, std::slice::from_ref(&event), writers).await;
        println!("| {writers} | 1 | {joins} | {r:.1} |");
        one.push(r);
    }
    let mut events = Vec::new();
    for _ in 0..100 {
        events.push(create_event(&api, &organizer, 2).await);
    }
    let users = minter.users(joins, &[Role::Attendee]).await;
    let spread = rate(&api, users, &events, 128).await;
    println!("| 128 | 100 | {joins} | {spread:.1} |");
    println!(
        "\none event at 128 writers / at 8: {:.2}; one event / spread over 100 events at 128: {:.2}",
        one[3] / one[1],
        one[3] / spread
    );
}
