//! The join / leave / promote state machine (docs/joins.md), written against the [`Seats`]
//! port. Each rule reads, decides, and commits one transition; a transition that loses a race
//! commits nothing, and the rule decides again on what the store read back, within its retry
//! budget.

use serde::{Deserialize, Serialize};
use shared::ddb::Retry;
use shared::outbox::{OutboxMessage, timestamp};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::JoinError;
use crate::model::{Membership, State, Venue};
use crate::port::{Admission, Admit, AdmitError, Commit, Entry, Seats, WriteError};

/// The outcome of a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinView {
    pub event_id: String,
    pub user_id: String,
    pub state: State,
    /// Place on the waitlist (1 = next to get a seat); waitlisted only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// When the join committed.
    pub at: String,
}

/// The outcome of a leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeaveView {
    pub event_id: String,
    /// What the caller left: a seat or a waitlist place.
    pub left: State,
}

fn audit(what: &'static str, event_id: &str, user_id: &str) {
    tracing::info!(target: "audit", audit_event = what, event_id = %event_id, user_id = %user_id, "join audit");
}

async fn venue(seats: &impl Seats, event_id: &str) -> Result<Venue, JoinError> {
    seats
        .venue(event_id)
        .await?
        .ok_or_else(|| JoinError::NoSuchEvent(event_id.to_owned()))
}

/// How a rule goes on after a transition that did not commit.
enum Again {
    /// On the same reads (the store was busy: nothing changed that it knows of).
    Same,
    /// On the event as the store read it back.
    Fresh(Venue),
    /// On a new read.
    Reread,
}

/// What a transition that did not commit means for a rule that retries: try again, or end
/// the rule with the error.
fn after_refusal(err: WriteError) -> Result<Again, JoinError> {
    match err {
        WriteError::Refused {
            member: Some(m), ..
        } => Err(JoinError::AlreadyJoined(m.state)),
        WriteError::Refused {
            lost_claim: true, ..
        } => Err(JoinError::KeyTakenOver),
        WriteError::Refused { venue, .. } => Ok(venue.map_or(Again::Reread, |v| Again::Fresh(*v))),
        WriteError::Busy => Ok(Again::Same),
        WriteError::SessionRevoked => Err(JoinError::SessionRevoked),
        WriteError::Other(e) => Err(JoinError::Unexpected(e)),
    }
}

/// Joins `user_id` to `event_id` at `now`: a seat while one is free and nobody waits, else the
/// next waitlist place. `tail` builds the caller's part of the commit from the outcome it is
/// about to commit (the idempotency completion holds the answer).
pub async fn join<S: Seats>(
    seats: &S,
    event_id: &str,
    user_id: &str,
    now: OffsetDateTime,
    mut retry: Retry,
    tail: impl Fn(&JoinView) -> anyhow::Result<S::Tail>,
) -> Result<JoinView, JoinError> {
    let at = timestamp(now);
    let mut current = venue(seats, event_id).await?;
    while retry.can_try() {
        if let Some(why) = current.closed(now) {
            return Err(JoinError::NotJoinable(why));
        }
        if current.owes_promotion() {
            // A capacity increase left seats free while people wait: they go first.
            fill_free_seats(seats, event_id, promotions(&retry)).await?;
            current = venue(seats, event_id).await?;
            // Counted as an attempt: promotions that keep losing cannot spin this loop.
            if !retry.wait().await {
                break;
            }
            continue;
        }
        let v = &current;
        let seat = v.has_free_seat();
        let view = JoinView {
            event_id: v.id.clone(),
            user_id: user_id.to_owned(),
            state: if seat {
                State::Joined
            } else {
                State::Waitlisted
            },
            position: (!seat).then_some(v.waitlisted + 1),
            at: at.clone(),
        };
        let tail = tail(&view)?;
        let message = if seat {
            joined_message(v, user_id)
        } else {
            waitlisted_message(v, user_id, v.waitlisted + 1)
        };
        let commit = Commit {
            venue: v,
            at: &at,
            now,
            messages: &[message],
            tail,
        };
        let result = if seat {
            seats.take_seat(user_id, commit).await
        } else {
            seats.wait(user_id, commit).await
        };
        match result {
            Ok(()) => {
                if seat {
                    metrics::counter!("JoinCreated").increment(1);
                    audit("join_created", event_id, user_id);
                } else {
                    metrics::counter!("Waitlisted").increment(1);
                    audit("waitlisted", event_id, user_id);
                }
                metrics::histogram!("JoinAttempts").record(f64::from(retry.attempt()));
                return Ok(view);
            }
            Err(err) => {
                match after_refusal(err)? {
                    Again::Same => {}
                    Again::Fresh(fresh) => current = fresh,
                    Again::Reread => current = venue(seats, event_id).await?,
                }
                if !retry.wait().await {
                    break;
                }
            }
        }
    }
    Err(JoinError::Busy)
}

/// What became of one request of a batch admission ([`admit`]).
#[derive(Debug)]
pub enum Verdict {
    /// Admitted: a seat or a waitlist place, committed with the request's record.
    Admitted(JoinView),
    /// Refused, and the refusal committed as the request's record (already joined, the event
    /// closed or gone).
    Refused(JoinError),
    /// The request's session was revoked: nothing written for it (its key stays free).
    Revoked,
    /// The request's key already had a record: it was answered before (a redelivery).
    Answered,
}

/// What the rule knows of one request between attempts.
#[derive(Clone, Copy)]
enum Known {
    Open,
    Member(State),
    Revoked,
    Answered,
}

/// Admits the requests `users` (in arrival order) to `event_id` at `now` in ONE commit: seats
/// while free and nobody waits, then waitlist tickets, in that order; a user who already holds
/// a place, or who appears twice, is refused as already joined; on a closed event every
/// request is refused. `tail` builds each request's part of the commit (its session guard and
/// its record) from its outcome. A commit that loses a race is decided again on what the store
/// read back, within `retry`. Returns one verdict per request, in order.
pub async fn admit<S: Seats>(
    seats: &S,
    event_id: &str,
    users: &[String],
    now: OffsetDateTime,
    retry: Retry,
    tail: impl Fn(usize, &Result<JoinView, JoinError>) -> anyhow::Result<S::Tail>,
) -> Result<Vec<Verdict>, JoinError> {
    admit_from(seats, event_id, users, now, retry, tail, None)
        .await
        .map(|(verdicts, _)| verdicts)
}

/// [`admit`] starting from `start`, the event as the caller last knew it (the writer's own
/// previous commit: it is the event's only writer in a sale) instead of a read; a stale
/// `start` only costs a refused commit, decided again on the event DynamoDB returns. Also
/// returns the event as this admission left it (`None` when it is gone), for the next one.
pub async fn admit_from<S: Seats>(
    seats: &S,
    event_id: &str,
    users: &[String],
    now: OffsetDateTime,
    mut retry: Retry,
    tail: impl Fn(usize, &Result<JoinView, JoinError>) -> anyhow::Result<S::Tail>,
    start: Option<Venue>,
) -> Result<(Vec<Verdict>, Option<Venue>), JoinError> {
    let at = timestamp(now);
    let mut known = vec![Known::Open; users.len()];
    let mut current = match start {
        Some(v) => Some(v),
        None => seats.venue(event_id).await?,
    };
    while retry.can_try() {
        if let Some(v) = &current
            && v.closed(now).is_none()
            && v.owes_promotion()
        {
            fill_free_seats(seats, event_id, promotions(&retry)).await?;
            current = seats.venue(event_id).await?;
            if !retry.wait().await {
                break;
            }
            continue;
        }
        let outcomes = decide(current.as_ref(), event_id, users, &known, &at, now);
        let (mut admits, mut refusals) = (Vec::new(), Vec::new());
        let (mut admitted, mut refused) = (Vec::new(), Vec::new());
        for (i, outcome) in outcomes.iter().enumerate() {
            let Some(outcome) = outcome else { continue };
            match (outcome, &current) {
                (Ok(view), Some(v)) => {
                    let message = match view.position {
                        None => joined_message(v, &view.user_id),
                        Some(p) => waitlisted_message(v, &view.user_id, p),
                    };
                    admits.push(Admit {
                        user_id: view.user_id.clone(),
                        ticket: view
                            .position
                            .map(|p| v.wl_seq + u64::from(p - v.waitlisted)),
                        message,
                        tail: tail(i, outcome)?,
                    });
                    admitted.push(i);
                }
                _ => {
                    refusals.push(tail(i, outcome)?);
                    refused.push(i);
                }
            }
        }
        let after = current.clone().map(|mut v| {
            for a in &admits {
                match a.ticket {
                    None => v.joined += 1,
                    Some(t) => {
                        v.waitlisted += 1;
                        v.wl_seq = t;
                    }
                }
                v.msg_seq += 1;
            }
            v
        });
        let fallback = Venue::closed_stub(event_id, now);
        let admission = Admission {
            venue: current.as_ref().unwrap_or(&fallback),
            at: &at,
            now,
            admits,
            refusals,
        };
        let index = |e: Entry| match e {
            Entry::Admit(k) => admitted[k],
            Entry::Refusal(k) => refused[k],
        };
        match seats.admit(admission).await {
            Ok(()) => {
                let verdicts = finish(event_id, outcomes, &known);
                metrics::histogram!("HotBatchAttempts").record(f64::from(retry.attempt()));
                return Ok((verdicts, after));
            }
            Err(AdmitError::Refused {
                venue,
                members,
                revoked,
                answered,
            }) => {
                for (k, m) in members {
                    known[admitted[k]] = Known::Member(m.state);
                }
                for e in revoked {
                    known[index(e)] = Known::Revoked;
                }
                for e in answered {
                    known[index(e)] = Known::Answered;
                }
                current = match venue {
                    Some(v) => Some(*v),
                    None => seats.venue(event_id).await?,
                };
            }
            Err(AdmitError::Busy) => {}
            Err(AdmitError::Other(e)) => return Err(JoinError::Unexpected(e)),
        }
        if !retry.wait().await {
            break;
        }
    }
    Err(JoinError::Busy)
}

/// Each open request's outcome on the event as read (`None` for the requests already settled
/// without a record: revoked, answered).
fn decide(
    venue: Option<&Venue>,
    event_id: &str,
    users: &[String],
    known: &[Known],
    at: &str,
    now: OffsetDateTime,
) -> Vec<Option<Result<JoinView, JoinError>>> {
    let mut seen: std::collections::HashMap<&str, State> = std::collections::HashMap::new();
    let (mut joined, mut waitlisted) = venue.map_or((0, 0), |v| (v.joined, v.waitlisted));
    users
        .iter()
        .zip(known)
        .map(|(user, k)| {
            let v = match (k, venue) {
                (Known::Revoked | Known::Answered, _) => return None,
                (Known::Member(state), _) => return Some(Err(JoinError::AlreadyJoined(*state))),
                (Known::Open, None) => {
                    return Some(Err(JoinError::NoSuchEvent(event_id.to_owned())));
                }
                (Known::Open, Some(v)) => v,
            };
            if let Some(why) = v.closed(now) {
                return Some(Err(JoinError::NotJoinable(why)));
            }
            if let Some(state) = seen.get(user.as_str()) {
                return Some(Err(JoinError::AlreadyJoined(*state)));
            }
            let seat = joined < v.capacity && waitlisted == 0;
            let view = if seat {
                joined += 1;
                JoinView {
                    event_id: v.id.clone(),
                    user_id: user.clone(),
                    state: State::Joined,
                    position: None,
                    at: at.to_owned(),
                }
            } else {
                waitlisted += 1;
                JoinView {
                    event_id: v.id.clone(),
                    user_id: user.clone(),
                    state: State::Waitlisted,
                    position: Some(waitlisted),
                    at: at.to_owned(),
                }
            };
            seen.insert(user, view.state);
            Some(Ok(view))
        })
        .collect()
}

/// The verdicts of a committed admission, counted.
fn finish(
    event_id: &str,
    outcomes: Vec<Option<Result<JoinView, JoinError>>>,
    known: &[Known],
) -> Vec<Verdict> {
    outcomes
        .into_iter()
        .zip(known)
        .map(|(outcome, k)| match (outcome, k) {
            (Some(Ok(view)), _) => {
                if view.state == State::Joined {
                    metrics::counter!("JoinCreated").increment(1);
                    audit("join_created", event_id, &view.user_id);
                } else {
                    metrics::counter!("Waitlisted").increment(1);
                    audit("waitlisted", event_id, &view.user_id);
                }
                Verdict::Admitted(view)
            }
            (Some(Err(e)), _) => Verdict::Refused(e),
            (None, Known::Revoked) => Verdict::Revoked,
            (None, _) => Verdict::Answered,
        })
        .collect()
}

/// Takes `user_id` off `event_id` at `now`: a seat goes to the head of the waitlist in the same
/// commit; a waitlist place is simply given up.
pub async fn leave<S: Seats>(
    seats: &S,
    event_id: &str,
    user_id: &str,
    now: OffsetDateTime,
    mut retry: Retry,
    tail: impl Fn(&LeaveView) -> anyhow::Result<S::Tail>,
) -> Result<LeaveView, JoinError> {
    let at = timestamp(now);
    while retry.can_try() {
        let v = venue(seats, event_id).await?;
        let m = seats
            .membership(user_id, event_id)
            .await?
            .ok_or(JoinError::NotJoined)?;
        if let Some(why) = v.closed(now) {
            return Err(JoinError::NotJoinable(why));
        }
        let view = LeaveView {
            event_id: v.id.clone(),
            left: m.state,
        };
        let tail = tail(&view)?;
        let head = match m.state {
            State::Waitlisted => None,
            State::Joined => seats.head(event_id).await?,
        };
        let mut messages = vec![left_message(&v, &m)];
        messages.extend(head.as_ref().map(|h| promoted_message(&v, &h.user_id)));
        let commit = Commit {
            venue: &v,
            at: &at,
            now,
            messages: &messages,
            tail,
        };
        let result = match m.state {
            State::Waitlisted => seats.leave_waitlist(&m, commit).await,
            State::Joined => seats.leave_seat(&m, head.as_ref(), commit).await,
        };
        let promoted = head;
        match result {
            Ok(()) => {
                metrics::counter!("JoinCancelled").increment(1);
                audit("join_cancelled", event_id, user_id);
                if let Some(h) = promoted {
                    metrics::counter!("Promoted").increment(1);
                    audit("promoted", event_id, &h.user_id);
                }
                return Ok(view);
            }
            Err(err) => {
                after_refusal(err)?;
                if !retry.wait().await {
                    break;
                }
            }
        }
    }
    Err(JoinError::Busy)
}

/// How long promotions may take: 3 s at most (what is left waits for the next change).
const PROMOTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);
const PROMOTION_ATTEMPTS: u32 = 1000;

/// The promotions' retries after a capacity increase (PATCH): their own 3 s budget.
pub fn promotion_retry() -> Retry {
    Retry::within("Promote", PROMOTION_BUDGET)
        .pacing(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(50),
        )
        .attempts(PROMOTION_ATTEMPTS)
}

/// The promotions' retries inside a join: within the join's own budget.
fn promotions(join: &Retry) -> Retry {
    join.nested("Promote", PROMOTION_BUDGET, PROMOTION_ATTEMPTS)
}

/// After a capacity increase: promotes the head of the waitlist while a seat is free, each
/// promotion its own commit (conditional on a free seat and on the head's entry). Bounded by
/// `retry` in count and in time: what is left waits for the next change. Returns how many it
/// promoted.
pub async fn fill_free_seats<S: Seats>(
    seats: &S,
    event_id: &str,
    mut retry: Retry,
) -> Result<u32, JoinError> {
    let mut promoted = 0;
    while retry.can_try() {
        let Some(v) = seats.venue(event_id).await? else {
            break;
        };
        if !v.owes_promotion() {
            break;
        }
        let Some(head) = seats.head(event_id).await? else {
            break;
        };
        let now = OffsetDateTime::now_utc();
        let commit = Commit {
            venue: &v,
            at: &timestamp(now),
            now,
            messages: &[promoted_message(&v, &head.user_id)],
            tail: S::Tail::default(),
        };
        match seats.promote(&head, commit).await {
            Ok(()) => {
                promoted += 1;
                metrics::counter!("Promoted").increment(1);
                audit("promoted", event_id, &head.user_id);
            }
            // Someone else changed the event or promoted the head, or the store was busy:
            // read again after a pause.
            Err(WriteError::Refused { .. } | WriteError::Busy) => {
                if !retry.wait().await {
                    break;
                }
            }
            Err(WriteError::SessionRevoked) => return Err(JoinError::SessionRevoked),
            Err(WriteError::Other(e)) => return Err(JoinError::Unexpected(e)),
        }
    }
    Ok(promoted)
}

fn joined_message(v: &Venue, user_id: &str) -> OutboxMessage {
    OutboxMessage::new(
        "join.created",
        &v.id,
        vec![user_id.to_owned()],
        format!("You're going to \"{}\"", v.title),
        serde_json::json!({ "event_id": v.id, "state": "joined" }),
    )
}

fn waitlisted_message(v: &Venue, user_id: &str, position: u32) -> OutboxMessage {
    OutboxMessage::new(
        "join.waitlisted",
        &v.id,
        vec![user_id.to_owned()],
        format!(
            "\"{}\" is full: you are number {position} on the waitlist",
            v.title
        ),
        serde_json::json!({ "event_id": v.id, "state": "waitlisted", "position": position }),
    )
}

fn left_message(v: &Venue, m: &Membership) -> OutboxMessage {
    OutboxMessage::new(
        "join.cancelled",
        &v.id,
        Vec::new(),
        format!("{} left \"{}\"", m.user_id, v.title),
        serde_json::json!({ "event_id": v.id, "user_id": m.user_id, "left": m.state.as_str() }),
    )
}

/// The message announcing a promotion to the promoted user.
pub fn promoted_message(v: &Venue, user_id: &str) -> OutboxMessage {
    OutboxMessage::new(
        "join.promoted",
        &v.id,
        vec![user_id.to_owned()],
        format!("A seat freed up: you are now going to \"{}\"", v.title),
        serde_json::json!({ "event_id": v.id, "state": "joined" }),
    )
}
