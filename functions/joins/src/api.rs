//! The joins endpoints: HTTP around the seating rules ([`seating::rules`]). Every transition
//! is one TransactWriteItems that also writes the outbox message(s), checks the caller's
//! session and completes the Idempotency-Key record ([`seating::dynamo`]).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::TransactWriteItem;
use events::api::{event_id, not_found, now};
use events::model::{Event, EventView, utc};
use events::store::Store;
use http::StatusCode;
use lambda_http::RequestExt;
use seating::dynamo::DynamoSeats;
use seating::rules::{self, JoinView, LeaveView};
use seating::{Membership, SeatReader, State};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::{Role, User};
use shared::cursor::{self, Page, Position};
use shared::ddb::Retry;
use shared::http::{Request, RequestParts, Response, json};
use shared::idempotency::{Claim, Idempotency};
use shared::queue::FifoQueue;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Transaction attempts before a request gives up with 503 (each lost race re-reads); it also
/// gives up shortly before the invocation's deadline.
const MAX_ATTEMPTS: u32 = 200;

/// What the joins functions use: the seats and the waitlist, the events they belong to (the
/// organizer check, my joins' events), Idempotency-Keys and the cursor key.
pub struct Joins {
    pub seats: DynamoSeats,
    pub events: Store,
    pub idempotency: Idempotency,
    pub cursor_key: cursor::CursorKey,
    /// The hot events' join intake queue (`JOIN_INTAKE_QUEUE_URL`; only the join function has
    /// it). Without it, a hot event's joins take the synchronous path.
    pub intake: Option<FifoQueue>,
    /// The feature flags (`hot_intake`: the intake's kill switch and rollout).
    pub flags: shared::flags::Flags,
}

impl Joins {
    /// Fails at start, naming `CURSOR_KEY_SECRET_ID`, when the cursor key's secret is not set.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        let seats = DynamoSeats::new(app);
        Ok(Arc::new(Joins {
            events: Store {
                ddb: seats.ddb.clone(),
                table: seats.table.clone(),
            },
            seats,
            idempotency: Idempotency::new(app),
            cursor_key: cursor::cursor_key(app)?,
            intake: std::env::var("JOIN_INTAKE_QUEUE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|url| FifoQueue {
                    sqs: app.clients.sqs().clone(),
                    url,
                }),
            flags: shared::flags::Flags::new(app),
        }))
    }
}

/// What a 503 of a join or a leave means.
const CONTENTION: &str = "Too much contention on the event; retry with the same key";

/// The retries of one join or leave: until 1.5 s before the invocation's deadline (so that it
/// answers 503 and frees its Idempotency-Key instead of being killed mid-request), at most
/// [`MAX_ATTEMPTS`], full jitter up to 160 ms so that a crowd contending for one event does not
/// retry in lockstep.
fn retries(operation: &'static str, req: &Request) -> Retry {
    Retry::for_request(operation, req).attempts(MAX_ATTEMPTS)
}

fn claimed(claim: Option<Arc<Claim>>) -> Result<Arc<Claim>, ApiError> {
    claim.ok_or_else(|| ApiError::internal(anyhow::anyhow!("the key is required here")))
}

/// The caller's part of a transition's commit: its session guard (a revoked session writes
/// nothing), then the Idempotency-Key completion holding `answer` (always last).
fn commit_tail(
    seats: &DynamoSeats,
    user: &User,
    claim: &Claim,
    answer: Result<Response, ApiError>,
) -> anyhow::Result<Vec<TransactWriteItem>> {
    Ok(vec![
        shared::session::guard(&seats.table, user)?,
        claim.completion(&answer?)?,
    ])
}

/// A transition of the caller's place at an event (its outcome names it): the seating rule
/// that makes it and the answer it gives.
trait Transition: Sized {
    const OPERATION: &'static str;
    fn answer(&self) -> Result<Response, ApiError>;
    fn make(
        seats: &DynamoSeats,
        event_id: &str,
        user_id: &str,
        retry: Retry,
        tail: impl Fn(&Self) -> anyhow::Result<Vec<TransactWriteItem>> + Send,
    ) -> impl std::future::Future<Output = Result<Self, seating::JoinError>> + Send;
}

impl Transition for JoinView {
    const OPERATION: &'static str = "Join";
    fn answer(&self) -> Result<Response, ApiError> {
        crate::intake::join_answer(self)
    }
    async fn make(
        seats: &DynamoSeats,
        event_id: &str,
        user_id: &str,
        retry: Retry,
        tail: impl Fn(&Self) -> anyhow::Result<Vec<TransactWriteItem>> + Send,
    ) -> Result<Self, seating::JoinError> {
        rules::join(seats, event_id, user_id, now(), retry, tail).await
    }
}

impl Transition for LeaveView {
    const OPERATION: &'static str = "Leave";
    fn answer(&self) -> Result<Response, ApiError> {
        json(StatusCode::OK, self)
    }
    async fn make(
        seats: &DynamoSeats,
        event_id: &str,
        user_id: &str,
        retry: Retry,
        tail: impl Fn(&Self) -> anyhow::Result<Vec<TransactWriteItem>> + Send,
    ) -> Result<Self, seating::JoinError> {
        rules::leave(seats, event_id, user_id, now(), retry, tail).await
    }
}

/// One join or leave under its Idempotency-Key (required): the transition commits with the
/// caller's session guard and the key's completion holding its answer.
async fn transition<T: Transition>(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    joins
        .idempotency
        .run(req, true, |req, claim| async move {
            let claim = claimed(claim)?;
            let user = req.user()?;
            let id = event_id(&req)?;
            let tail = |v: &T| commit_tail(&joins.seats, user, &claim, v.answer());
            let retry = retries(T::OPERATION, &req);
            let outcome = T::make(&joins.seats, &id, &user.id, retry, tail).await?;
            claim.committed();
            outcome.answer()
        })
        .await
}

// ------------------------------------------------------------------ join

shared::error_answers!(
    /// What a join answers besides its seat.
    JoinErrors:
    ALREADY_JOINED,
    EVENT_NOT_JOINABLE,
    SERVICE_UNAVAILABLE => CONTENTION,
);

#[utoipa::path(post, path = "/v1/events/{id}/join", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path, description = "evt_ and 28 hex digits"),
        ("Idempotency-Key" = String, Header, description = "Required. A new key (a UUID) per join; repeats replay the first outcome for 24 h")),
    responses(
        (status = 201, description = "Joined: a seat is yours", body = JoinView),
        (status = 202, description = "The event is full: waitlisted at `position`. Or, for a hot event (`hot: true`) whose queue has not reached this join within 2.5 s: `state` `pending`, with `Location` (`GET /v1/events/{id}/join`, 404 until admitted) and `Retry-After`; resending the same Idempotency-Key also answers the outcome once it exists",
            body = crate::intake::JoinAccepted,
            headers(("Location" = String, description = "Pending only: where to poll"),
                ("Retry-After" = u32, description = "Pending only: seconds before polling"))),
        JoinErrors,
    ))]
pub async fn join(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    if let Some(queue) = &joins.intake {
        let id = event_id(&req)?;
        let key = joins.idempotency.key_ref(&req).await?;
        // The rate-limit count (Policy::idempotent_write) beside the first reads: nothing is
        // queued or recorded before it admits the join.
        shared::http::Admission::refused_now(&req)?;
        let admitted = shared::http::Admission::wait_for(&req);
        let reads = crate::intake::first_reads(&joins.seats, &id, &req.user()?.id, &key);
        let (admitted, reads) = tokio::join!(admitted, reads);
        admitted?;
        let mut reads = reads?;
        // The intake is on for this event (the `hot_intake` flag: a kill switch, rolled out by
        // event); off, a hot event's join takes the synchronous path as any event's.
        if let Some(v) = reads.venue.take()
            && v.hot
            && joins
                .flags
                .on(shared::flags::Flag::HotIntake, Some(&id))
                .await
        {
            let (idempotency, seats) = (&joins.idempotency, &joins.seats);
            return crate::intake::enqueue(idempotency, seats, queue, req, key, reads, v).await;
        }
    }
    transition::<JoinView>(joins, req).await
}

// ------------------------------------------------------------------ leave

shared::error_answers!(
    /// What a leave answers besides its outcome.
    LeaveErrors:
    NOT_JOINED,
    EVENT_NOT_JOINABLE,
    SERVICE_UNAVAILABLE => CONTENTION,
);

#[utoipa::path(delete, path = "/v1/events/{id}/join", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "Required")),
    responses(
        (status = 200, description = "Left; a freed seat went to the head of the waitlist", body = LeaveView),
        LeaveErrors,
    ))]
pub async fn leave(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    transition::<LeaveView>(joins, req).await
}

// ------------------------------------------------------------------ my place

shared::error_answers!(
    /// What the caller's place at an event answers besides it.
    MyPlaceErrors:
    NOT_JOINED => "You hold no seat or waitlist place at this event (never joined, left, or no such event)",
);

/// `GET /v1/events/{id}/join`: the caller's seat or waitlist place at the event, as a join
/// answered it (the position as it is now). What a client reads after a join it is unsure of
/// (a lost answer, a 503) instead of joining again.
#[utoipa::path(get, path = "/v1/events/{id}/join", tag = "joins", operation_id = "get_join", security(("bearer" = [])),
    params(("id" = String, Path, description = "evt_ and 28 hex digits")),
    responses(
        (status = 200, description = "Your seat, or your place on the waitlist (`position`, 1 = next)", body = JoinView),
        MyPlaceErrors,
    ))]
pub async fn my_place(seats: &DynamoSeats, req: Request) -> Result<Response, ApiError> {
    let user = req.user()?;
    let id = event_id(&req)?;
    let m = seating::Seats::membership(seats, &user.id, &id)
        .await?
        .ok_or(seating::JoinError::NotJoined)?;
    let position = match (m.state, m.ticket) {
        (State::Waitlisted, Some(t)) => Some(seats.position(&id, t).await?),
        _ => None,
    };
    let view = JoinView {
        event_id: id,
        user_id: m.user_id,
        state: m.state,
        position,
        at: m.at,
    };
    json(StatusCode::OK, &view)
}

// ------------------------------------------------------------------ attendees

/// One attendee.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttendeeView {
    pub user_id: String,
    pub state: State,
    /// Waitlisted only: place in the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    pub at: String,
}

/// A page of attendees: seats first, then the waitlist in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttendeePage {
    pub items: Vec<AttendeeView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The default page size of the joins listings.
const PAGE: usize = 50;

shared::error_answers!(
    /// What the attendee list answers besides a page.
    AttendeesErrors:
    BAD_REQUEST => shared::answers::BAD_CURSOR,
    FORBIDDEN => "Not the organizer or an admin",
);

#[utoipa::path(get, path = "/v1/events/{id}/attendees", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "Joined attendees, then the waitlist in order", body = AttendeePage),
        AttendeesErrors,
    ))]
pub async fn attendees(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let params = req.query_string_parameters();
    let limit = cursor::parse_limit(params.first("limit"), PAGE, cursor::MAX_LIMIT)?;
    let caller = req.user()?;
    let e = joins.events.get(&id).await?.ok_or_else(|| not_found(&id))?;
    if e.owner_id != caller.id && !caller.has(Role::Admin) {
        return Err(ApiError::forbidden(
            "only the event's organizer or an admin may list its attendees",
        ));
    }
    let page = Page::at(
        &joins.cursor_key,
        &["attendees", &id],
        params.first("cursor"),
        limit,
    )
    .await?;
    let (found, more) = joins
        .seats
        .attendees(&id, page.after.as_ref().map(|p| p.id.as_str()), limit)
        .await?;
    let mut next_position = None;
    let mut items = Vec::with_capacity(found.len());
    for a in &found {
        let position = if a.state == State::Waitlisted {
            let p = match next_position {
                Some(p) => p,
                None => {
                    let ticket = a.ticket().unwrap_or(0);
                    joins.seats.position(&id, ticket).await?
                }
            };
            next_position = Some(p + 1);
            Some(p)
        } else {
            None
        };
        items.push(AttendeeView {
            user_id: a.user_id.clone(),
            state: a.state,
            position,
            at: a.at.clone(),
        });
    }
    let last = more.then(|| found.last()).flatten();
    let next_cursor = page.next(last.map(|a| Position::after_id(&a.sk)));
    json(StatusCode::OK, &AttendeePage { items, next_cursor })
}

// ------------------------------------------------------------------ my joins

/// One of my joins.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyJoin {
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    pub at: String,
    pub event: EventView,
}

/// A page of my joins: upcoming events first (soonest first), then past ones (latest first).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyJoinPage {
    pub items: Vec<MyJoin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The order of my joins: (0 upcoming / 1 past, start time ascending / descending, id).
fn order_key(e: &Event, now: OffsetDateTime) -> (u32, String, String) {
    let starts = utc(e.data.starts_at);
    if e.data.starts_at >= now {
        (0, starts, e.id.clone())
    } else {
        // Past events latest first: order by the complement of each digit.
        let inverted: String = starts
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_digit(9 - d, 10).unwrap_or(c),
                None => c,
            })
            .collect();
        (1, inverted, e.id.clone())
    }
}

shared::error_answers!(
    /// What my joins answer besides a page.
    MyJoinsErrors:
    BAD_REQUEST => shared::answers::BAD_CURSOR,
);

#[utoipa::path(get, path = "/v1/me/joins", tag = "joins", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "My joins with their event, upcoming first", body = MyJoinPage),
        MyJoinsErrors,
    ))]
pub async fn my_joins(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    let user = req.user()?.id.clone();
    let page = Page::of(&req, &joins.cursor_key, PAGE, &["my-joins", &user]).await?;
    let now = now();
    let memberships = joins.seats.memberships(&user).await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.event_id.clone()).collect();
    let mut found: HashMap<String, Event> = HashMap::new();
    for chunk in ids.chunks(events::api::MAX_BATCH) {
        let got = joins
            .events
            .batch_get(chunk, events::api::BATCH_BUDGET)
            .await?
            .map_err(|_| events::error::EventError::StoreBusy)?;
        found.extend(got);
    }
    let mut rows: Vec<((u32, String, String), &Membership, &Event)> = memberships
        .iter()
        .filter_map(|m| found.get(&m.event_id).map(|e| (order_key(e, now), m, e)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match &page.after {
        None => 0,
        Some(p) => {
            let k = (p.score.unwrap_or(0), p.starts_at.clone(), p.id.clone());
            rows.partition_point(|r| r.0 <= k)
        }
    };
    let shown: Vec<_> = rows.iter().skip(start).take(page.limit).collect();
    let more = rows.len() > start + shown.len();
    let mut items = Vec::with_capacity(shown.len());
    for (_, m, e) in &shown {
        let position = match (m.state, m.ticket) {
            (State::Waitlisted, Some(t)) => Some(joins.seats.position(&e.id, t).await?),
            _ => None,
        };
        items.push(MyJoin {
            state: m.state,
            position,
            at: m.at.clone(),
            event: e.view(),
        });
    }
    let next_cursor = page.next(more.then(|| shown.last()).flatten().map(|r| Position {
        score: Some(r.0.0),
        starts_at: r.0.1.clone(),
        id: r.0.2.clone(),
    }));
    json(StatusCode::OK, &MyJoinPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_events_order_latest_first_after_upcoming_ones() {
        let at = |s: &str| events::model::parse_time(s).unwrap();
        let now = at("2026-06-01T00:00:00Z");
        let mk = |id: &str, t: &str| {
            let mut e = sample(id);
            e.data.starts_at = at(t);
            e
        };
        let a = mk("a", "2026-07-01T00:00:00Z");
        let b = mk("b", "2026-06-02T00:00:00Z");
        let c = mk("c", "2026-05-01T00:00:00Z");
        let d = mk("d", "2025-01-01T00:00:00Z");
        let mut v = [&d, &a, &c, &b];
        v.sort_by_key(|e| order_key(e, now));
        let ids: Vec<&str> = v.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c", "d"]);
    }

    fn sample(id: &str) -> Event {
        let t = events::model::parse_time("2026-01-01T00:00:00Z").unwrap();
        let data = events::model::EventData {
            title: "t".into(),
            description: String::new(),
            city: "x".into(),
            category: "music".into(),
            venue: "v".into(),
            tags: vec![],
            starts_at: t,
            ends_at: t,
            capacity: 1,
            hot: false,
        };
        Event::new(id.into(), "usr".into(), data, t)
    }
}
