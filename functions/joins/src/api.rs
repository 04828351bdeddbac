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
use shared::cursor::{self, Position};
use shared::ddb::Retry;
use shared::http::{Request, RequestParts, Response, json};
use shared::idempotency::{Claim, Idempotency};
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
        }))
    }
}

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

/// A join's answer: 201 with a seat, 202 on the waitlist.
fn join_answer(view: &JoinView) -> Result<Response, ApiError> {
    let status = match view.state {
        State::Joined => StatusCode::CREATED,
        State::Waitlisted => StatusCode::ACCEPTED,
    };
    json(status, view)
}

fn leave_answer(view: &LeaveView) -> Result<Response, ApiError> {
    json(StatusCode::OK, view)
}

// ------------------------------------------------------------------ join

#[utoipa::path(post, path = "/v1/events/{id}/join", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path, description = "evt_ and 28 hex digits"),
        ("Idempotency-Key" = String, Header, description = "Required. A new key (a UUID) per join; repeats replay the first outcome for 24 h")),
    responses(
        (status = 201, description = "Joined: a seat is yours", body = JoinView),
        (status = 202, description = "The event is full: waitlisted at `position`", body = JoinView),
        (status = 400, description = "Idempotency-Key missing or malformed, or a malformed id", body = shared::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token, or its session was revoked (logout, refresh reuse, a role or MFA change): checked in the same transaction as the write", body = shared::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = shared::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already joined or waitlisted (`state` names which); the event is cancelled or started; or a request with this key is in flight (Retry-After)", body = shared::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = shared::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = shared::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too much contention on the event; retry with the same key", body = shared::Problem, content_type = "application/problem+json"),
    ))]
pub async fn join(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    joins
        .idempotency
        .run(req, true, |req, claim| join_once(joins, req, claim))
        .await
}

async fn join_once(
    joins: &Joins,
    req: Request,
    claim: Option<Arc<Claim>>,
) -> Result<Response, ApiError> {
    let claim = claimed(claim)?;
    let user = req.user()?;
    let id = event_id(&req)?;
    let tail = |v: &JoinView| commit_tail(&joins.seats, user, &claim, join_answer(v));
    let retry = retries("Join", &req);
    let view = rules::join(&joins.seats, &id, &user.id, now(), retry, tail).await?;
    claim.committed();
    join_answer(&view)
}

// ------------------------------------------------------------------ leave

#[utoipa::path(delete, path = "/v1/events/{id}/join", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "Required")),
    responses(
        (status = 200, description = "Left; a freed seat went to the head of the waitlist", body = LeaveView),
        (status = 400, description = "Idempotency-Key missing or malformed, or a malformed id", body = shared::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token, or its session was revoked (logout, refresh reuse, a role or MFA change): checked in the same transaction as the write", body = shared::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or you had not joined it", body = shared::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is cancelled or started, or a request with this key is in flight", body = shared::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = shared::Problem, content_type = "application/problem+json"),
    ))]
pub async fn leave(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    joins
        .idempotency
        .run(req, true, |req, claim| leave_once(joins, req, claim))
        .await
}

async fn leave_once(
    joins: &Joins,
    req: Request,
    claim: Option<Arc<Claim>>,
) -> Result<Response, ApiError> {
    let claim = claimed(claim)?;
    let user = req.user()?;
    let id = event_id(&req)?;
    let tail = |v: &LeaveView| commit_tail(&joins.seats, user, &claim, leave_answer(v));
    let retry = retries("Leave", &req);
    let view = rules::leave(&joins.seats, &id, &user.id, now(), retry, tail).await?;
    claim.committed();
    leave_answer(&view)
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

fn page_params(req: &Request) -> Result<(usize, Option<String>), ApiError> {
    let q = req.query_string_parameters();
    let limit = cursor::parse_limit(q.first("limit"), 50, cursor::MAX_LIMIT)?;
    Ok((limit, q.first("cursor").map(str::to_owned)))
}

#[utoipa::path(get, path = "/v1/events/{id}/attendees", tag = "joins", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "Joined attendees, then the waitlist in order", body = AttendeePage),
        (status = 400, description = "A tampered, foreign or expired cursor", body = shared::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the organizer or an admin", body = shared::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = shared::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = shared::Problem, content_type = "application/problem+json"),
    ))]
pub async fn attendees(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let (limit, raw_cursor) = page_params(&req)?;
    let caller = req.user()?;
    let e = joins.events.get(&id).await?.ok_or_else(|| not_found(&id))?;
    if e.owner_id != caller.id && !caller.has(Role::Admin) {
        return Err(ApiError::forbidden(
            "only the event's organizer or an admin may list its attendees",
        ));
    }
    let key = joins.cursor_key.get().await?;
    let query = cursor::fingerprint(&["attendees", &id]);
    let now = now().unix_timestamp() as u64;
    let after = cursor::decode_param(&key, &query, raw_cursor.as_deref(), now)?;
    let (page, more) = joins
        .seats
        .attendees(&id, after.as_ref().map(|p| p.id.as_str()), limit)
        .await?;
    let mut next_position = None;
    let mut items = Vec::with_capacity(page.len());
    for a in &page {
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
    let next_cursor = more.then(|| page.last()).flatten().map(|a| {
        cursor::encode(
            &key,
            &query,
            &Position {
                score: None,
                starts_at: String::new(),
                id: a.sk.clone(),
            },
            now,
        )
    });
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

#[utoipa::path(get, path = "/v1/me/joins", tag = "joins", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "My joins with their event, upcoming first", body = MyJoinPage),
        (status = 400, description = "A tampered, foreign or expired cursor", body = shared::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = shared::Problem, content_type = "application/problem+json"),
    ))]
pub async fn my_joins(joins: &Joins, req: Request) -> Result<Response, ApiError> {
    let (limit, raw_cursor) = page_params(&req)?;
    let user = req.user()?.id.clone();
    let key = joins.cursor_key.get().await?;
    let query = cursor::fingerprint(&["my-joins", &user]);
    let now = now();
    let after = cursor::decode_param(
        &key,
        &query,
        raw_cursor.as_deref(),
        now.unix_timestamp() as u64,
    )?;
    let memberships = joins.seats.memberships(&user).await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.event_id.clone()).collect();
    let mut found: HashMap<String, Event> = HashMap::new();
    for chunk in ids.chunks(events::api::MAX_BATCH) {
        let got = joins
            .events
            .batch_get(chunk, events::api::BATCH_BUDGET)
            .await?
            .map_err(|_| ApiError::service_unavailable("the event store is busy; retry"))?;
        found.extend(got);
    }
    let mut rows: Vec<((u32, String, String), &Membership, &Event)> = memberships
        .iter()
        .filter_map(|m| found.get(&m.event_id).map(|e| (order_key(e, now), m, e)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match &after {
        None => 0,
        Some(p) => {
            let k = (p.score.unwrap_or(0), p.starts_at.clone(), p.id.clone());
            rows.partition_point(|r| r.0 <= k)
        }
    };
    let page: Vec<_> = rows.iter().skip(start).take(limit).collect();
    let more = rows.len() > start + page.len();
    let mut items = Vec::with_capacity(page.len());
    for (_, m, e) in &page {
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
    let next_cursor = more.then(|| page.last()).flatten().map(|r| {
        cursor::encode(
            &key,
            &query,
            &Position {
                score: Some(r.0.0),
                starts_at: r.0.1.clone(),
                id: r.0.2.clone(),
            },
            now.unix_timestamp() as u64,
        )
    });
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
        Event {
            id: id.into(),
            owner_id: "usr".into(),
            data: events::model::EventData {
                title: "t".into(),
                description: String::new(),
                city: "x".into(),
                category: "music".into(),
                venue: "v".into(),
                tags: vec![],
                starts_at: t,
                ends_at: t,
                capacity: 1,
            },
            status: events::model::Status::Active,
            version: 1,
            joined: 0,
            waitlisted: 0,
            wl_seq: 0,
            msg_seq: 0,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
}
