//! 20 rounds of 500 concurrent joins on a 50-seat event through the local stack: exactly 50
//! seats taken and 450 waitlisted at positions 1..450 in commit order, every round; then 30
//! concurrent leaves promote exactly positions 1..30, and no read ever shows more seats taken
//! than there are. Its own test binary, run last: its outbox messages drain after it.
//! Rounds: `JOIN_ROUNDS` — 3 in `make test` (1 500 racing joins: enough to catch an overbooking
//! or a duplicate position), 20 in `make test-rounds` (10 000 joins, ~10 minutes here).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use e2e::joining::{
    Readers, attendees, create_event, get_event, join, key, leave, watch_capacity, with_organizer,
};
use e2e::{Api, Caller, s};
use futures_util::future::join_all;
use reqwest::StatusCode;
use shared::auth::Role;

#[tokio::test]
async fn rounds_of_500_concurrent_joins_on_50_seats_never_overbook_and_promote_exactly_once() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 4, 1]).await;
    let users: Vec<Caller> = minter.users(500, &[Role::Attendee]).await;
    // One pool of readers for every round, so that no address goes over its budget of reads.
    let readers = Readers::new(
        (0..40u8)
            .map(|i| Api::new(&stack, [127, 0, 5, 10 + i]))
            .zip(minter.users(40, &[Role::Attendee]).await)
            .collect(),
    );
    let rounds: usize = std::env::var("JOIN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut stats = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let event = create_event(&api, &organizer, 50).await;
        let done = Arc::new(AtomicBool::new(false));
        let watcher = watch_capacity(readers.clone(), event.clone(), 50, done.clone());

        // 500 joins at once.
        let replies = join_all(users.iter().map(|caller| {
            let (api, event) = (api.clone(), event.clone());
            async move { join(&api, caller, &event, &key()).await }
        }))
        .await;
        let joins_took = started.elapsed();
        let mut joined = HashSet::new();
        let mut position_of: BTreeMap<u64, String> = BTreeMap::new();
        for (caller, r) in users.iter().zip(&replies) {
            let user = &caller.id;
            match r.status {
                StatusCode::CREATED => {
                    assert_eq!(s(&r.body, "state"), "joined");
                    joined.insert(user.clone());
                }
                StatusCode::ACCEPTED => {
                    assert_eq!(s(&r.body, "state"), "waitlisted");
                    let p = r.body["position"].as_u64().unwrap();
                    assert!(
                        position_of.insert(p, user.clone()).is_none(),
                        "round {round}: position {p} given twice"
                    );
                }
                other => panic!("round {round}: join answered {other}: {}", r.body),
            }
        }
        assert_eq!(joined.len(), 50, "round {round}: exactly 50 seats taken");
        assert_eq!(
            position_of.keys().copied().collect::<Vec<_>>(),
            (1..=450).collect::<Vec<u64>>(),
            "round {round}: 450 waitlisted at positions 1..450"
        );
        let e = get_event(&api, &organizer, &event).await;
        assert_eq!(
            (e["joined"].as_u64(), e["waitlisted"].as_u64()),
            (Some(50), Some(450))
        );

        // The waitlist, as the organizer sees it, is the order the joins committed in.
        let list = attendees(&api, &organizer, &event).await;
        assert_eq!(list.len(), 500);
        let seats: HashSet<String> = list
            .iter()
            .filter(|a| a.1 == "joined")
            .map(|a| a.0.clone())
            .collect();
        assert_eq!(seats, joined);
        let queue: Vec<(u64, String)> = list
            .iter()
            .filter(|a| a.1 == "waitlisted")
            .map(|a| (a.2.unwrap(), a.0.clone()))
            .collect();
        assert_eq!(
            queue,
            position_of
                .iter()
                .map(|(p, u)| (*p, u.clone()))
                .collect::<Vec<_>>(),
            "round {round}: the listing keeps every waitlisted user at the position they were given"
        );

        // 30 of the seated leave at once: the first 30 waiting get their seats, once each.
        let leaving: Vec<&Caller> = users
            .iter()
            .filter(|c| joined.contains(&c.id))
            .take(30)
            .collect();
        let left = join_all(leaving.iter().map(|caller| {
            let (api, event) = (api.clone(), event.clone());
            async move { leave(&api, caller, &event, None).await }
        }))
        .await;
        for r in &left {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(s(&r.body, "left"), "joined");
        }
        done.store(true, Ordering::SeqCst);
        let reads = watcher.await.unwrap();
        let e = get_event(&api, &organizer, &event).await;
        assert_eq!(
            (e["joined"].as_u64(), e["waitlisted"].as_u64()),
            (Some(50), Some(420))
        );
        let list = attendees(&api, &organizer, &event).await;
        let seats: HashSet<String> = list
            .iter()
            .filter(|a| a.1 == "joined")
            .map(|a| a.0.clone())
            .collect();
        let mut expected: HashSet<String> = joined.clone();
        for c in &leaving {
            expected.remove(&c.id);
        }
        expected.extend(position_of.range(1..=30).map(|(_, u)| u.clone()));
        assert_eq!(
            seats, expected,
            "round {round}: exactly positions 1..30 promoted"
        );
        let queue: Vec<(u64, String)> = list
            .iter()
            .filter(|a| a.1 == "waitlisted")
            .map(|a| (a.2.unwrap(), a.0.clone()))
            .collect();
        let rest: Vec<(u64, String)> = position_of
            .range(31..)
            .map(|(p, u)| (p - 30, u.clone()))
            .collect();
        assert_eq!(
            queue, rest,
            "round {round}: the rest moved up 30 places, in order"
        );
        stats.push((joins_took, started.elapsed(), reads));
        println!(
            "round {round}: 500 joins in {:.1} s, round in {:.1} s, {reads} capacity reads; so far {} tokens renewed, {} requests resent",
            joins_took.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            e2e::client::RENEWALS.load(Ordering::Relaxed),
            e2e::client::RESENDS.load(Ordering::Relaxed)
        );
    }
    assert_eq!(stats.len(), rounds);
}

/// How far the optimistic waitlist goes: for 1, 2, 4, … concurrent writers on one full event,
/// the transactions each waitlist join needed (`JoinAttempts`, from the function's metrics) and
/// the rate. A measurement, not a check of speed: `make bench-joins` runs it on a stack with 32
/// instances per function and prints a table (docs/performance.md keeps the last one).
#[tokio::test]
#[ignore = "a measurement: make bench-joins"]
async fn contention_grows_with_concurrent_writers() {
    let (stack, api, minter, organizer) = with_organizer([127, 0, 6, 1]).await;
    println!("| writers | joins | seconds | joins/s | attempts per join: mean | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|");
    for writers in [1usize, 2, 4, 8, 16, 32] {
        // A full event (capacity 1, taken), so every join is a waitlist append.
        let event = create_event(&api, &organizer, 1).await;
        let first = minter.user(&[Role::Attendee]).await;
        assert_eq!(
            join(&api, &first, &event, &key()).await.status,
            StatusCode::CREATED
        );
        let per_writer = 240 / writers.max(1) + 10;
        let started = Instant::now();
        let lines_before = stack.log_lines("JoinEventFunction").len();
        let mut writer_users = Vec::new();
        for _ in 0..writers {
            writer_users.push(minter.users(per_writer, &[Role::Attendee]).await);
        }
        join_all(writer_users.into_iter().map(|users| {
            let (api, event) = (api.clone(), event.clone());
            async move {
                for caller in users {
                    let r = join(&api, &caller, &event, &key()).await;
                    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
                }
            }
        }))
        .await;
        let took = started.elapsed().as_secs_f64();
        let joins = writers * per_writer;
        // Metrics are flushed as each invocation ends: give the last ones a moment.
        let mut attempts: Vec<f64> = Vec::new();
        for _ in 0..50 {
            attempts = stack.log_lines("JoinEventFunction")[lines_before..]
                .iter()
                .filter_map(|l| l["JoinAttempts"][0].as_f64())
                .collect();
            if attempts.len() >= joins {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        attempts.sort_by(f64::total_cmp);
        assert_eq!(attempts.len(), joins, "one JoinAttempts per join");
        let pct = |p: f64| attempts[((attempts.len() - 1) as f64 * p) as usize];
        println!(
            "| {writers} | {joins} | {took:.1} | {:.1} | {:.2} | {} | {} | {} |",
            joins as f64 / took,
            attempts.iter().sum::<f64>() / joins as f64,
            pct(0.5),
            pct(0.99),
            attempts.last().unwrap()
        );
    }
}
