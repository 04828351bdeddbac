//! The rules against the in-memory twin: every branch of join, leave and promotion, the
//! invariants under random sequences and under concurrency. No moto, no network.

use std::time::Duration;

use proptest::prelude::*;
use shared::ddb::Retry;
use time::OffsetDateTime;

use crate::memory::{Fault, MemorySeats};
use crate::port::{SeatReader, Seats};
use crate::rules::{JoinView, Verdict, admit, admit_from, fill_free_seats, join, leave};
use crate::{JoinError, State, Venue};

const EVT: &str = "evt_0001";

fn now() -> OffsetDateTime {
    time::macros::datetime!(2030-01-01 12:00 UTC)
}

fn venue(capacity: u32) -> Venue {
    Venue {
        id: EVT.into(),
        title: "Jazz night".into(),
        active: true,
        starts_at: time::macros::datetime!(2030-06-01 19:00 UTC),
        capacity,
        joined: 0,
        waitlisted: 0,
        wl_seq: 0,
        msg_seq: 0,
        hot: false,
    }
}

fn retry() -> Retry {
    Retry::within("Test", Duration::from_secs(30))
        .pacing(Duration::ZERO, Duration::from_millis(1))
        .attempts(500)
}

async fn join_as(s: &MemorySeats, user: &str) -> Result<JoinView, JoinError> {
    join(s, EVT, user, now(), retry(), |_| Ok(())).await
}

async fn leave_as(s: &MemorySeats, user: &str) -> Result<State, JoinError> {
    leave(s, EVT, user, now(), retry(), |_| Ok(()))
        .await
        .map(|l| l.left)
}

/// A store holding the event with `capacity` seats, after `users` joined it in that order.
async fn joined_by(capacity: u32, users: &[&str]) -> MemorySeats {
    let s = MemorySeats::with([venue(capacity)]);
    for u in users {
        join_as(&s, u).await.unwrap();
    }
    s
}

/// Queues `n` busy answers (TransactionConflicts) for the next transitions of `s`.
fn busy_for(s: &MemorySeats, n: usize) {
    for _ in 0..n {
        s.inject(Fault::Busy);
    }
}

/// The invariants of docs/joins.md, checked on the stored items.
fn assert_consistent(s: &MemorySeats) {
    let v = s.stored(EVT).unwrap();
    let seated = s.seated(EVT);
    let waitlist = s.waitlist(EVT);
    assert!(v.joined <= v.capacity, "overbooked: {v:?}");
    assert_eq!(v.joined as usize, seated.len(), "joined counts the seats");
    assert_eq!(
        v.waitlisted as usize,
        waitlist.len(),
        "waitlisted counts the entries"
    );
    assert!(
        waitlist.windows(2).all(|w| w[0].0 < w[1].0),
        "tickets strictly increase"
    );
    assert!(
        waitlist.last().is_none_or(|(t, _)| *t <= v.wl_seq),
        "no ticket beyond wl_seq"
    );
    for m in s.members() {
        match m.state {
            State::Joined => assert!(seated.contains(&m.user_id), "{m:?} has a seat"),
            State::Waitlisted => {
                assert!(
                    waitlist.contains(&(m.ticket.unwrap(), m.user_id.clone())),
                    "{m:?}"
                )
            }
        }
    }
    assert_eq!(s.members().len(), seated.len() + waitlist.len());
    let seqs: Vec<u64> = s.outbox().iter().map(|m| m.seq.unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=v.msg_seq).collect::<Vec<_>>(),
        "messages numbered densely"
    );
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

#[tokio::test]
async fn a_free_seat_is_taken_then_the_full_event_waitlists_in_order() {
    let s = MemorySeats::with([venue(2)]);
    for (user, state, position) in [
        ("a", State::Joined, None),
        ("b", State::Joined, None),
        ("c", State::Waitlisted, Some(1)),
        ("d", State::Waitlisted, Some(2)),
    ] {
        let j = join_as(&s, user).await.unwrap();
        assert_eq!(
            (j.state, j.position, j.user_id.as_str()),
            (state, position, user)
        );
    }
    assert_eq!(s.waitlist(EVT), [(1, "c".into()), (2, "d".into())]);
    assert_eq!(s.position(EVT, 2).await.unwrap(), 2);
    let kinds: Vec<String> = s.outbox().iter().map(|m| m.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            "join.created",
            "join.created",
            "join.waitlisted",
            "join.waitlisted"
        ]
    );
    assert_eq!(s.outbox()[3].recipients, ["d"]);
    assert!(s.outbox()[3].summary.contains("number 2"));
    assert_consistent(&s);
}

#[tokio::test]
async fn joining_twice_is_refused_naming_where_the_user_stands() {
    let s = joined_by(1, &["a", "b"]).await;
    assert!(matches!(
        join_as(&s, "a").await,
        Err(JoinError::AlreadyJoined(State::Joined))
    ));
    assert!(matches!(
        join_as(&s, "b").await,
        Err(JoinError::AlreadyJoined(State::Waitlisted))
    ));
    assert_eq!(s.commits(), 2, "the refused joins wrote nothing");
    assert_consistent(&s);
}

#[tokio::test]
async fn nobody_joins_or_leaves_a_missing_cancelled_or_started_event() {
    let s = MemorySeats::with([venue(5)]);
    assert!(matches!(
        join(&s, "evt_none", "a", now(), retry(), |_| Ok(())).await,
        Err(JoinError::NoSuchEvent(id)) if id == "evt_none"
    ));
    join_as(&s, "a").await.unwrap();
    s.change(EVT, |v| v.starts_at = now());
    assert!(
        matches!(join_as(&s, "b").await, Err(JoinError::NotJoinable(w)) if w.contains("started"))
    );
    assert!(matches!(
        leave_as(&s, "a").await,
        Err(JoinError::NotJoinable(_))
    ));
    s.change(EVT, |v| v.active = false);
    assert!(
        matches!(join_as(&s, "b").await, Err(JoinError::NotJoinable(w)) if w.contains("cancelled"))
    );
    assert_consistent(&s);
}

#[tokio::test]
async fn a_freed_seat_goes_to_the_head_of_the_waitlist_in_the_same_commit() {
    let s = joined_by(1, &["a", "b", "c"]).await;
    assert_eq!(leave_as(&s, "a").await.unwrap(), State::Joined);
    assert_eq!(s.seated(EVT), ["b"]);
    assert_eq!(s.waitlist(EVT), [(2, "c".into())]);
    assert_eq!(s.position(EVT, 2).await.unwrap(), 1, "c moved up");
    let b = s.membership("b", EVT).await.unwrap().unwrap();
    assert_eq!((b.state, b.ticket), (State::Joined, None));
    let last: Vec<(String, Vec<String>)> = s.outbox()[3..]
        .iter()
        .map(|m| (m.kind.clone(), m.recipients.clone()))
        .collect();
    assert_eq!(
        last,
        [
            ("join.cancelled".into(), vec![]),
            ("join.promoted".into(), vec!["b".into()])
        ]
    );
    assert_consistent(&s);
}

#[tokio::test]
async fn leaving_the_waitlist_or_a_seat_nobody_waits_for_frees_the_place() {
    let s = joined_by(1, &["a", "b"]).await;
    assert_eq!(leave_as(&s, "b").await.unwrap(), State::Waitlisted);
    assert_eq!(leave_as(&s, "a").await.unwrap(), State::Joined);
    let v = s.stored(EVT).unwrap();
    assert_eq!((v.joined, v.waitlisted, v.wl_seq), (0, 0, 1));
    assert!(matches!(leave_as(&s, "a").await, Err(JoinError::NotJoined)));
    assert_consistent(&s);
}

#[tokio::test]
async fn after_a_capacity_increase_the_waiting_go_before_a_newcomer() {
    let s = joined_by(1, &["a", "b", "c", "d"]).await;
    s.change(EVT, |v| v.capacity = 3);
    let newcomer = join_as(&s, "e").await.unwrap();
    assert_eq!(
        (newcomer.state, newcomer.position),
        (State::Waitlisted, Some(2))
    );
    assert_eq!(s.seated(EVT), ["a", "b", "c"]);
    assert_eq!(s.waitlist(EVT), [(3, "d".into()), (4, "e".into())]);
    assert_consistent(&s);
}

#[tokio::test]
async fn filling_free_seats_promotes_in_ticket_order_and_stops_when_full() {
    let s = joined_by(1, &["a", "b", "c", "d"]).await;
    assert_eq!(
        fill_free_seats(&s, EVT, retry()).await.unwrap(),
        0,
        "nothing free"
    );
    s.change(EVT, |v| v.capacity = 3);
    assert_eq!(fill_free_seats(&s, EVT, retry()).await.unwrap(), 2);
    assert_eq!(s.seated(EVT), ["a", "b", "c"]);
    assert_eq!(s.waitlist(EVT), [(3, "d".into())]);
    s.change(EVT, |v| v.capacity = 10);
    assert_eq!(
        fill_free_seats(&s, EVT, retry()).await.unwrap(),
        1,
        "stops when nobody waits"
    );
    assert_eq!(fill_free_seats(&s, "evt_none", retry()).await.unwrap(), 0);
    assert_consistent(&s);
}

#[tokio::test]
async fn a_busy_store_is_retried_and_a_failing_one_is_not() {
    let s = MemorySeats::with([venue(1)]);
    busy_for(&s, 2);
    assert_eq!(join_as(&s, "a").await.unwrap().state, State::Joined);
    s.inject(Fault::Unavailable);
    assert!(matches!(
        join_as(&s, "b").await,
        Err(JoinError::Unexpected(_))
    ));
    s.inject(Fault::SessionRevoked);
    assert!(matches!(
        join_as(&s, "b").await,
        Err(JoinError::SessionRevoked)
    ));
    s.inject(Fault::LostClaim);
    assert!(matches!(
        join_as(&s, "b").await,
        Err(JoinError::KeyTakenOver)
    ));
    s.inject(Fault::Busy);
    assert_eq!(leave_as(&s, "a").await.unwrap(), State::Joined);
    for fault in [Fault::LostClaim, Fault::SessionRevoked, Fault::Unavailable] {
        join_as(&s, "a").await.unwrap();
        s.inject(fault);
        assert!(leave_as(&s, "a").await.is_err(), "{fault:?}");
        assert_eq!(leave_as(&s, "a").await.unwrap(), State::Joined);
    }
    assert_consistent(&s);
}

#[tokio::test]
async fn contention_that_outlasts_the_budget_answers_busy_and_writes_nothing() {
    let s = MemorySeats::with([venue(1)]);
    let few = || {
        Retry::within("Test", Duration::from_secs(5))
            .pacing(Duration::ZERO, Duration::ZERO)
            .attempts(3)
    };
    busy_for(&s, 3);
    assert!(matches!(
        join(&s, EVT, "a", now(), few(), |_| Ok(())).await,
        Err(JoinError::Busy)
    ));
    join_as(&s, "a").await.unwrap();
    busy_for(&s, 3);
    assert!(matches!(
        leave(&s, EVT, "a", now(), few(), |_| Ok(())).await,
        Err(JoinError::Busy)
    ));
    // A capacity increase whose promotions keep losing counts against the join's budget too.
    join_as(&s, "b").await.unwrap();
    s.change(EVT, |v| v.capacity = 2);
    busy_for(&s, 5000);
    // The promotions share the join's deadline: 300 ms here.
    let short = Retry::within("Test", Duration::from_millis(300)).attempts(3);
    assert!(matches!(
        join(&s, EVT, "c", now(), short, |_| Ok(())).await,
        Err(JoinError::Busy)
    ));
    assert_eq!(s.seated(EVT), ["a"]);
    assert_consistent(&s);
}

#[tokio::test]
async fn a_tail_that_cannot_be_built_commits_nothing() {
    let s = MemorySeats::with([venue(1)]);
    let failed = join(&s, EVT, "a", now(), retry(), |_| {
        Err(anyhow::anyhow!("no key"))
    })
    .await;
    assert!(matches!(failed, Err(JoinError::Unexpected(_))));
    join_as(&s, "a").await.unwrap();
    let failed = leave(&s, EVT, "a", now(), retry(), |_| {
        Err(anyhow::anyhow!("no key"))
    })
    .await;
    assert!(matches!(failed, Err(JoinError::Unexpected(_))));
    assert_eq!(s.commits(), 1);
}

#[tokio::test]
async fn the_tail_sees_the_outcome_it_commits() {
    let s = joined_by(1, &["a"]).await;
    let seen = std::sync::Mutex::new(Vec::new());
    let j = join(&s, EVT, "b", now(), retry(), |v| {
        seen.lock().unwrap().push(v.clone());
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(seen.into_inner().unwrap(), [j]);
}

#[tokio::test]
async fn listings_page_through_seats_then_the_waitlist() {
    let s = joined_by(2, &["c", "a", "d", "b", "e"]).await;
    let (first, more) = s.attendees(EVT, None, 3).await.unwrap();
    let users: Vec<&str> = first.iter().map(|a| a.user_id.as_str()).collect();
    assert_eq!((users, more), (vec!["a", "c", "d"], true));
    assert_eq!(first[2].ticket(), Some(1));
    let (rest, more) = s.attendees(EVT, Some(&first[2].sk), 3).await.unwrap();
    let users: Vec<&str> = rest.iter().map(|a| a.user_id.as_str()).collect();
    assert_eq!((users, more), (vec!["b", "e"], false));
    assert_eq!(s.everyone(EVT).await.unwrap(), ["a", "c", "d", "b", "e"]);
    let mine = s.memberships("e").await.unwrap();
    assert_eq!((mine.len(), mine[0].ticket), (1, Some(3)));
}

#[tokio::test(flavor = "current_thread")]
async fn a_crowd_of_concurrent_joins_never_overbooks_and_queues_in_commit_order() {
    let s = MemorySeats::with([venue(10)]);
    let users: Vec<String> = (0..60).map(|i| format!("u{i:02}")).collect();
    let outcomes = futures_join(users.iter().map(|u| join_as(&s, u))).await;
    let mut positions: Vec<u32> = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap())
        .filter_map(|j| j.position)
        .collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=50).collect::<Vec<_>>(),
        "each place handed out once"
    );
    assert_consistent(&s);
    // Ten seat holders leave at once: exactly the first ten waiting are promoted.
    let seated = s.seated(EVT);
    let left = futures_join(seated.iter().map(|u| leave_as(&s, u))).await;
    assert!(left.iter().all(|l| l.as_ref().unwrap() == &State::Joined));
    let waitlist = s.waitlist(EVT);
    assert_eq!(waitlist.first().unwrap().0, 11, "tickets 1..10 promoted");
    assert_eq!(s.seated(EVT).len(), 10);
    assert_consistent(&s);
}

/// Runs the futures concurrently on the current task (they interleave at every store call).
async fn futures_join<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    let mut pending: Vec<_> = fs.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                out[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[derive(Debug, Clone)]
enum Op {
    Join(u8),
    Leave(u8),
    Capacity(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12).prop_map(Op::Join),
        2 => (0u8..12).prop_map(Op::Leave),
        1 => (0u32..6).prop_map(Op::Capacity),
    ]
}

async fn run(s: &MemorySeats, op: &Op) {
    match op {
        Op::Join(u) => drop(join_as(s, &format!("u{u}")).await),
        Op::Leave(u) => drop(leave_as(s, &format!("u{u}")).await),
        // As PATCH: never below the seats taken; a raise promotes.
        Op::Capacity(c) => {
            let joined = s.stored(EVT).unwrap().joined;
            s.change(EVT, |v| v.capacity = (*c).max(joined));
            fill_free_seats(s, EVT, retry()).await.unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of joins, leaves and capacity changes keeps the seats within capacity,
    /// the counters equal to the items, tickets increasing, and a free seat only while nobody
    /// waits; each head promoted is the lowest ticket.
    #[test]
    fn the_invariants_hold_after_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        block_on(async {
            let s = MemorySeats::with([venue(2)]);
            for op in &ops {
                let head = s.waitlist(EVT).first().cloned();
                let before = s.seated(EVT);
                run(&s, op).await;
                assert_consistent(&s);
                let v = s.stored(EVT).unwrap();
                assert!(v.joined == v.capacity || v.waitlisted == 0, "a free seat while people wait: {v:?}");
                // Whoever got a seat from the waitlist was at its head.
                let promoted: Vec<String> = s.seated(EVT).into_iter()
                    .filter(|u| !before.contains(u) && !matches!(op, Op::Join(_)))
                    .collect();
                if let (Some((_, h)), Some(first)) = (head, promoted.first()) {
                    prop_assert!(promoted.contains(&h), "{first} promoted before the head {h}");
                }
            }
            Ok(())
        })?;
    }

    /// The same operations run concurrently: the invariants still hold once they all finished.
    #[test]
    fn the_invariants_hold_when_operations_race(ops in proptest::collection::vec(op(), 1..40)) {
        block_on(async {
            let s = MemorySeats::with([venue(3)]);
            futures_join(ops.iter().map(|op| run(&s, op))).await;
            assert_consistent(&s);
        });
    }
}

#[tokio::test]
async fn a_promotion_the_store_fails_is_an_error_and_an_empty_waitlist_promotes_nobody() {
    let s = joined_by(1, &["a", "b"]).await;
    s.change(EVT, |v| v.capacity = 2);
    s.inject(Fault::Unavailable);
    assert!(matches!(
        fill_free_seats(&s, EVT, retry()).await,
        Err(JoinError::Unexpected(_))
    ));
    s.inject(Fault::SessionRevoked);
    assert!(matches!(
        fill_free_seats(&s, EVT, retry()).await,
        Err(JoinError::SessionRevoked)
    ));
    assert_eq!(s.seated(EVT), ["a"], "nothing was promoted");
    // The counters say someone waits, but the waitlist is empty: nobody to promote.
    let s = joined_by(1, &["a"]).await;
    s.change(EVT, |v| {
        v.capacity = 2;
        v.waitlisted = 1;
    });
    assert_eq!(fill_free_seats(&s, EVT, retry()).await.unwrap(), 0);
}

// ------------------------------------------------------------------ batch admission (hot events)

fn users(names: &[&str]) -> Vec<String> {
    names.iter().map(|u| (*u).to_owned()).collect()
}

async fn admit_all(s: &MemorySeats, names: &[&str]) -> Result<Vec<Verdict>, JoinError> {
    admit(s, EVT, &users(names), now(), retry(), |_, _| Ok(())).await
}

/// Where each verdict puts its user: `J` seat, `W<n>` waitlist position, `409`, `401`, `dup`.
fn summary(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .map(|v| match v {
            Verdict::Admitted(j) => match j.position {
                None => "J".to_owned(),
                Some(p) => format!("W{p}"),
            },
            Verdict::Refused(JoinError::AlreadyJoined(_)) => "409".into(),
            Verdict::Refused(e) => format!("refused: {e}"),
            Verdict::Revoked => "401".into(),
            Verdict::Answered => "dup".into(),
        })
        .collect()
}

/// `users` admitted ten at a time, the batches concurrently: their verdicts, batch by batch.
async fn in_batches_of_10(s: &MemorySeats, users: &[String]) -> Vec<Vec<Verdict>> {
    futures_join(users.chunks(10).map(|chunk| async move {
        admit(s, EVT, chunk, now(), retry(), |_, _| Ok(()))
            .await
            .unwrap()
    }))
    .await
}

#[tokio::test]
async fn a_batch_seats_in_arrival_order_then_waitlists_in_one_commit() {
    let s = joined_by(3, &["early"]).await;
    let before = s.commits();
    let v = admit_all(&s, &["a", "b", "c", "d"]).await.unwrap();
    assert_eq!(summary(&v), ["J", "J", "W1", "W2"]);
    assert_eq!(s.commits(), before + 1, "one commit for the batch");
    assert_eq!(s.seated(EVT), ["a", "b", "early"]);
    assert_eq!(s.waitlist(EVT), [(1, "c".to_owned()), (2, "d".to_owned())]);
    let kinds: Vec<String> = s.outbox().iter().map(|m| m.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            "join.created",
            "join.created",
            "join.created",
            "join.waitlisted",
            "join.waitlisted"
        ]
    );
    assert_eq!(s.outbox()[4].data["position"], 2);
    assert_consistent(&s);
    // The next batch goes on from the tickets handed out.
    let v = admit_all(&s, &["e"]).await.unwrap();
    assert_eq!(summary(&v), ["W3"]);
    assert_eq!(s.waitlist(EVT).last(), Some(&(3, "e".to_owned())));
    assert_consistent(&s);
}

#[tokio::test]
async fn one_user_holds_one_place_however_many_requests_they_queue() {
    let s = joined_by(2, &["member"]).await;
    let v = admit_all(&s, &["x", "member", "x", "y", "x"])
        .await
        .unwrap();
    assert_eq!(summary(&v), ["J", "409", "409", "W1", "409"]);
    assert!(matches!(
        v[1],
        Verdict::Refused(JoinError::AlreadyJoined(State::Joined))
    ));
    assert_eq!(s.members().len(), 3);
    assert_consistent(&s);
}

#[tokio::test]
async fn a_closed_or_missing_event_refuses_the_whole_batch_and_changes_nothing() {
    let s = MemorySeats::with([venue(5)]);
    s.change(EVT, |v| v.active = false);
    let v = admit_all(&s, &["a", "b"]).await.unwrap();
    assert!(
        v.iter()
            .all(|v| matches!(v, Verdict::Refused(JoinError::NotJoinable(_))))
    );
    assert!(s.members().is_empty() && s.outbox().is_empty());
    let gone = admit(
        &s,
        "evt_gone",
        &users(&["a"]),
        now(),
        retry(),
        |_, _| Ok(()),
    )
    .await
    .unwrap();
    assert!(matches!(
        gone[0],
        Verdict::Refused(JoinError::NoSuchEvent(_))
    ));
}

#[tokio::test]
async fn a_revoked_session_or_an_answered_key_drops_only_that_request() {
    let s = MemorySeats::with([venue(5)]);
    s.inject(Fault::SessionRevoked);
    s.inject(Fault::LostClaim);
    let v = admit_all(&s, &["a", "b", "c"]).await.unwrap();
    // The first fault names the first newcomer, the second the next one still open.
    assert_eq!(summary(&v), ["401", "dup", "J"]);
    assert_eq!(s.seated(EVT), ["c"]);
    assert_consistent(&s);
}

#[tokio::test]
async fn a_busy_store_is_retried_and_a_failing_one_is_an_error() {
    let s = MemorySeats::with([venue(5)]);
    busy_for(&s, 3);
    let v = admit_all(&s, &["a", "b"]).await.unwrap();
    assert_eq!(summary(&v), ["J", "J"]);
    s.inject(Fault::Unavailable);
    assert!(matches!(
        admit_all(&s, &["c"]).await,
        Err(JoinError::Unexpected(_))
    ));
    busy_for(&s, 10_000);
    let short = Retry::within("Test", Duration::from_secs(30))
        .pacing(Duration::ZERO, Duration::from_millis(1))
        .attempts(5);
    let r = admit(&s, EVT, &users(&["d"]), now(), short, |_, _| Ok(())).await;
    assert!(matches!(r, Err(JoinError::Busy)));
    assert_eq!(s.seated(EVT), ["a", "b"]);
}

#[tokio::test]
async fn the_waiting_are_promoted_before_a_batch_takes_freed_seats() {
    let s = joined_by(1, &["a", "w1", "w2"]).await;
    s.change(EVT, |v| v.capacity = 2);
    let v = admit_all(&s, &["n"]).await.unwrap();
    assert_eq!(
        summary(&v),
        ["W2"],
        "w1 took the new seat, n queues behind w2"
    );
    assert_eq!(s.seated(EVT), ["a", "w1"]);
    assert_consistent(&s);
}

#[tokio::test]
async fn batches_racing_single_joins_and_leaves_never_overbook() {
    let s = joined_by(10, &[]).await;
    let batch: Vec<String> = (0..30).map(|i| format!("b{i:02}")).collect();
    let singles = futures_join((0..15).map(|i| {
        let s = &s;
        async move {
            let u = format!("s{i:02}");
            join_as(s, &u).await.unwrap();
            if i % 3 == 0 {
                leave_as(s, &u).await.unwrap();
            }
        }
    }));
    let batches = in_batches_of_10(&s, &batch);
    let (_, verdicts) = tokio::join!(singles, batches);
    assert!(
        verdicts
            .iter()
            .flatten()
            .all(|v| matches!(v, Verdict::Admitted(_)))
    );
    let v = s.stored(EVT).unwrap();
    assert_eq!(v.joined, 10);
    assert_eq!(v.joined + v.waitlisted, 30 + 15 - 5);
    assert_consistent(&s);
}

#[tokio::test]
async fn an_admission_decided_on_a_capacity_since_cut_is_refused_and_decided_again() {
    use crate::port::{Admission, Admit, AdmitError};
    let s = joined_by(3, &["a", "b"]).await;
    let read = s.stored(EVT).unwrap();
    // The organizer cuts the capacity to the seats taken (a PATCH that notifies nobody: the
    // message count stays as read).
    s.change(EVT, |v| v.capacity = 2);
    let stale = Admission {
        venue: &read,
        at: "2030-01-01T12:00:00.000000Z",
        now: now(),
        admits: vec![Admit {
            user_id: "c".into(),
            ticket: None,
            message: crate::rules::promoted_message(&read, "c"),
            tail: (),
        }],
        refusals: vec![],
    };
    match s.admit(stale).await {
        Err(AdmitError::Refused { venue: Some(v), .. }) => assert_eq!(v.capacity, 2),
        other => panic!("a stale capacity must refuse the admission: {other:?}"),
    }
    assert_eq!(s.seated(EVT), ["a", "b"], "nothing written");
    // The rule decides again on the event as it is: the newcomer waits.
    let v = admit_all(&s, &["c"]).await.unwrap();
    assert_eq!(summary(&v), ["W1"]);
    assert_consistent(&s);
}

#[tokio::test]
async fn capacity_cuts_racing_batches_never_overbook() {
    let s = joined_by(20, &[]).await;
    let users: Vec<String> = (0..30).map(|i| format!("u{i:02}")).collect();
    let batches = in_batches_of_10(&s, &users);
    let cuts = async {
        for cap in [15, 12, 10] {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            s.change(EVT, |v| v.capacity = cap.max(v.joined));
        }
    };
    let (verdicts, ()) = tokio::join!(batches, cuts);
    assert_eq!(verdicts.iter().flatten().count(), 30);
    let v = s.stored(EVT).unwrap();
    assert!(v.joined <= v.capacity, "overbooked: {v:?}");
    assert_eq!(v.joined + v.waitlisted, 30);
    assert_consistent(&s);
}

#[tokio::test]
async fn a_batch_started_from_a_stale_event_is_decided_again_on_the_stored_one() {
    let s = MemorySeats::with([venue(3)]);
    let stale = s.stored(EVT).unwrap();
    join_as(&s, "a").await.unwrap();
    let users = ["b", "c", "d"].map(String::from);
    let (v, after) = admit_from(&s, EVT, &users, now(), retry(), |_, _| Ok(()), Some(stale))
        .await
        .unwrap();
    assert_eq!(
        summary(&v),
        ["J", "J", "W1"],
        "a holds one of the three seats"
    );
    assert_eq!(after, s.stored(EVT), "the event as the admission left it");
    // The next batch starts from it: no read, the same outcome as a read.
    let (v, after) = admit_from(
        &s,
        EVT,
        &["e".to_owned()],
        now(),
        retry(),
        |_, _| Ok(()),
        after,
    )
    .await
    .unwrap();
    assert_eq!(summary(&v), ["W2"]);
    assert_eq!(after, s.stored(EVT));
    assert_consistent(&s);
}
