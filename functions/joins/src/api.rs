//! The joins endpoints. Every transition is one TransactWriteItems (events::attendance) that
//! also writes the outbox message(s) and completes the Idempotency-Key record.

use std::collections::HashMap;
use std::sync::Arc;

use events::api::{Events, event_id, fill_free_seats, not_found, now};
use events::attendance::{Membership, Refusal, State, promoted_message};
use events::model::{Event, EventView, Status, utc};
use http::{HeaderValue, StatusCode, header};
use lambda_http::RequestExt;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::Role;
use shared::cursor::{self, Position};
use shared::ddb::{Retry, TxError};
use shared::http::{Request, RequestParts, Response, json};
use shared::idempotency::Claim;
use shared::outbox::{OutboxMessage, timestamp};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Transaction attempts before a request gives up with 503 (each lost race re-reads); it also
/// gives up shortly before the invocation's deadline.
const MAX_ATTEMPTS: u32 = 200;

/// The outcome of a join.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaveView {
    pub event_id: String,
    /// What the caller left: a seat or a waitlist place.
    pub left: State,
}

fn audit(what: &'static str, event_id: &str, user_id: &str) {
    tracing::info!(target: "audit", audit_event = what, event_id = %event_id, user_id = %user_id, "join audit");
}

fn not_joinable(e: &Event, now: OffsetDateTime) -> Option<ApiError> {
    let why = if e.status == Status::Cancelled {
        "the event is cancelled"
    } else if e.data.starts_at <= now {
        "the event has already started"
    } else {
        return None;
    };
    Some(ApiError::of(shared::problem::problems::EVENT_NOT_JOINABLE).detail(why))
}

fn already(m: &Membership) -> ApiError {
    ApiError::of(shared::problem::problems::ALREADY_JOINED)
        .detail(match m.state {
            State::Joined => "you already have a seat at this event".to_owned(),
            State::Waitlisted => "you are already on this event's waitlist".to_owned(),
        })
        .extension("state", serde_json::json!(m.state.as_str()))
}

fn lost_key() -> ApiError {
    ApiError::of(shared::problem::problems::IDEMPOTENCY_IN_FLIGHT)
        .detail("another attempt with this Idempotency-Key took over; retry to see its outcome")
}

fn busy() -> ApiError {
    ApiError::service_unavailable("the event is very busy; retry with the same Idempotency-Key")
        .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
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
pub async fn join(events: &Events, req: Request) -> Result<Response, ApiError> {
    events
        .idempotency
        .run(req, true, |req, claim| join_once(events, req, claim))
        .await
}

async fn join_once(
    events: &Events,
    req: Request,
    claim: Option<Arc<Claim>>,
) -> Result<Response, ApiError> {
    let claim = claimed(claim)?;
    let user = req.user()?.id.clone();
    let id = event_id(&req)?;
    let now = now();
    let (now_s, at) = (utc(now), timestamp(now));
    let mut retry = retries("Join", &req);
    let mut current = events.store.get(&id).await?.ok_or_else(|| not_found(&id))?;
    while retry.can_try() {
        if let Some(e) = not_joinable(&current, now) {
            return Err(e);
        }
        let e = &current;
        if e.joined < e.data.capacity && e.waitlisted > 0 {
            // A capacity increase left seats free while people wait: they go first.
            fill_free_seats(events, &id).await?;
            current = events.store.get(&id).await?.ok_or_else(|| not_found(&id))?;
            // Counted as an attempt: promotions that keep losing cannot spin this loop.
            if !retry.wait().await {
                break;
            }
            continue;
        }
        let seat = e.joined < e.data.capacity;
        let view = JoinView {
            event_id: id.clone(),
            user_id: user.clone(),
            state: if seat {
                State::Joined
            } else {
                State::Waitlisted
            },
            position: (!seat).then_some(e.waitlisted + 1),
            at: at.clone(),
        };
        let response = json(
            if seat {
                StatusCode::CREATED
            } else {
                StatusCode::ACCEPTED
            },
            &view,
        )?;
        // The session guard, then the idempotency completion (always last).
        let completion = vec![
            shared::session::guard(&events.store.table, req.user()?)?,
            claim.completion(&response)?,
        ];
        let result = if seat {
            let message = OutboxMessage::new(
                "join.created",
                &id,
                vec![user.clone()],
                format!("You're going to \"{}\"", e.data.title),
                serde_json::json!({ "event_id": id, "state": "joined" }),
            );
            events
                .attendance
                .take_seat(e, &user, &at, &now_s, &[message], completion)
                .await
        } else {
            let message = OutboxMessage::new(
                "join.waitlisted",
                &id,
                vec![user.clone()],
                format!(
                    "\"{}\" is full: you are number {} on the waitlist",
                    e.data.title,
                    e.waitlisted + 1
                ),
                serde_json::json!({ "event_id": id, "state": "waitlisted", "position": e.waitlisted + 1 }),
            );
            events
                .attendance
                .wait(e, &user, &at, &now_s, &[message], completion)
                .await
        };
        match result {
            Ok(()) => {
                claim.committed();
                if seat {
                    metrics::counter!("JoinCreated").increment(1);
                    audit("join_created", &id, &user);
                } else {
                    metrics::counter!("Waitlisted").increment(1);
                    audit("waitlisted", &id, &user);
                }
                metrics::histogram!("JoinAttempts").record(f64::from(retry.attempt()));
                return Ok(response);
            }
            Err(err) => {
                if let Some(m) = err.existing_membership() {
                    return Err(already(&m));
                }
                if err.lost_claim() {
                    return Err(lost_key());
                }
                match err {
                    TxError::Other(_) | TxError::SessionRevoked => return Err(err.into()),
                    // Nothing was written (a TransactionConflict, throttling): try again.
                    TxError::Conflict => {
                        if !retry.wait().await {
                            break;
                        }
                    }
                    TxError::Cancelled(_) => {
                        current = match err.current_event() {
                            Some(fresh) => fresh,
                            None => events.store.get(&id).await?.ok_or_else(|| not_found(&id))?,
                        };
                        if !retry.wait().await {
                            break;
                        }
                    }
                }
            }
        }
    }
    Err(busy())
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
pub async fn leave(events: &Events, req: Request) -> Result<Response, ApiError> {
    events
        .idempotency
        .run(req, true, |req, claim| leave_once(events, req, claim))
        .await
}

async fn leave_once(
    events: &Events,
    req: Request,
    claim: Option<Arc<Claim>>,
) -> Result<Response, ApiError> {
    let claim = claimed(claim)?;
    let user = req.user()?.id.clone();
    let id = event_id(&req)?;
    let now = now();
    let at = timestamp(now);
    let mut retry = retries("Leave", &req);
    while retry.can_try() {
        let e = events.store.get(&id).await?.ok_or_else(|| not_found(&id))?;
        let m = events
            .attendance
            .membership(&user, &id)
            .await?
            .ok_or_else(|| {
                ApiError::of(shared::problem::problems::NOT_JOINED)
                    .detail("you have not joined this event")
            })?;
        if let Some(err) = not_joinable(&e, now) {
            return Err(err);
        }
        let response = json(
            StatusCode::OK,
            &LeaveView {
                event_id: id.clone(),
                left: m.state,
            },
        )?;
        // The session guard, then the idempotency completion (always last).
        let completion = vec![
            shared::session::guard(&events.store.table, req.user()?)?,
            claim.completion(&response)?,
        ];
        let left = OutboxMessage::new(
            "join.cancelled",
            &id,
            Vec::new(),
            format!("{} left \"{}\"", user, e.data.title),
            serde_json::json!({ "event_id": id, "user_id": user, "left": m.state.as_str() }),
        );
        let (result, promoted) = match m.state {
            State::Waitlisted => (
                events
                    .attendance
                    .leave_waitlist(&e, &m, &[left], completion)
                    .await,
                None,
            ),
            State::Joined => {
                let head = events.attendance.head(&id).await?;
                let mut messages = vec![left];
                if let Some(h) = &head {
                    messages.push(promoted_message(&e, &h.user_id));
                }
                (
                    events
                        .attendance
                        .leave_seat(&e, &m, head.as_ref(), &at, &messages, completion)
                        .await,
                    head,
                )
            }
        };
        match result {
            Ok(()) => {
                claim.committed();
                metrics::counter!("JoinCancelled").increment(1);
                audit("join_cancelled", &id, &user);
                if let Some(h) = promoted {
                    metrics::counter!("Promoted").increment(1);
                    audit("promoted", &id, &h.user_id);
                }
                return Ok(response);
            }
            Err(err) if err.lost_claim() => return Err(lost_key()),
            Err(TxError::Cancelled(_) | TxError::Conflict) => {
                if !retry.wait().await {
                    break;
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(busy())
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

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
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
pub async fn attendees(events: &Events, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let (limit, raw_cursor) = page_params(&req)?;
    let caller = req.user()?;
    let e = events.store.get(&id).await?.ok_or_else(|| not_found(&id))?;
    if e.owner_id != caller.id && !caller.has(Role::Admin) {
        return Err(ApiError::forbidden(
            "only the event's organizer or an admin may list its attendees",
        ));
    }
    let key = events.cursor_key.get().await?;
    let query = cursor::fingerprint(&["attendees", &id]);
    let now = now().unix_timestamp() as u64;
    let after = cursor::decode_param(&key, &query, raw_cursor.as_deref(), now)?;
    let (page, more) = events
        .attendance
        .attendees(&id, after.as_ref().map(|p| p.id.as_str()), limit)
        .await?;
    let mut next_position = None;
    let mut items = Vec::with_capacity(page.len());
    for a in &page {
        let position = if a.state == State::Waitlisted {
            let p = match next_position {
                Some(p) => p,
                None => {
                    let ticket = a.sk.trim_start_matches("WAIT#").parse().unwrap_or(0);
                    events.attendance.position(&id, ticket).await?
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
    Ok(no_store(json(
        StatusCode::OK,
        &AttendeePage { items, next_cursor },
    )?))
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
pub async fn my_joins(events: &Events, req: Request) -> Result<Response, ApiError> {
    let (limit, raw_cursor) = page_params(&req)?;
    let user = req.user()?.id.clone();
    let key = events.cursor_key.get().await?;
    let query = cursor::fingerprint(&["my-joins", &user]);
    let now = now();
    let after = cursor::decode_param(
        &key,
        &query,
        raw_cursor.as_deref(),
        now.unix_timestamp() as u64,
    )?;
    let memberships = events.attendance.memberships(&user).await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.event_id.clone()).collect();
    let mut found: HashMap<String, Event> = HashMap::new();
    for chunk in ids.chunks(events::api::MAX_BATCH) {
        let got = events
            .store
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
            (State::Waitlisted, Some(t)) => Some(events.attendance.position(&e.id, t).await?),
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
    Ok(no_store(json(
        StatusCode::OK,
        &MyJoinPage { items, next_cursor },
    )?))
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
            status: Status::Active,
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
