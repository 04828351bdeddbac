//! The events endpoints: one handler per Lambda (src/bin), documented for OpenAPI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use lambda_http::RequestExt;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::Role;
use shared::http::{Request, RequestParts, Response, json};
use shared::idempotency::Claim;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::cursor::{self, Position};
use crate::model::{
    Event, EventPatch, EventView, NewEvent, Status, etag_version, normalise, parse_id, parse_time,
    utc,
};
use shared::ddb::{Retry, TxError};

use crate::error::EventError;
use crate::store::{Store, Unavailable};
use crate::{rules, text};

/// Ids per batch request.
pub const MAX_BATCH: usize = 100;
/// Time a batch read may spend retrying unprocessed keys.
pub const BATCH_BUDGET: Duration = Duration::from_secs(3);

pub struct Events {
    pub store: Store,
    pub seats: seating::dynamo::DynamoSeats,
    pub idempotency: shared::idempotency::Idempotency,
    pub cursor_key: shared::cursor::CursorKey,
}

impl Events {
    /// Fails at start, naming `CURSOR_KEY_SECRET_ID`, when the cursor key's secret is not set.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Events {
            store: Store {
                ddb: app.clients.dynamodb.clone(),
                table: app.config.table_name.clone(),
            },
            seats: seating::dynamo::DynamoSeats::new(app),
            idempotency: shared::idempotency::Idempotency::new(app),
            cursor_key: shared::cursor::cursor_key(app)?,
        }))
    }
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn audit(event: &'static str, e: &Event, actor: &str) {
    tracing::info!(target: "audit", audit_event = event, event_id = %e.id, user_id = %actor, version = e.version, "event audit");
}

fn with_etag(mut r: Response, e: &Event) -> Response {
    if let Ok(v) = HeaderValue::from_str(&e.etag()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn event_response(status: StatusCode, e: &Event) -> Result<Response, ApiError> {
    Ok(with_etag(json(status, &e.view())?, e))
}

pub fn event_id(req: &Request) -> Result<String, ApiError> {
    let raw: String = req.path_param("id")?;
    Ok(parse_id(&raw).map_err(EventError::MalformedId)?)
}

pub fn not_found(id: &str) -> ApiError {
    EventError::NotFound(id.to_owned()).into()
}

/// What a 503 of a change means when joins and leaves keep changing the event.
const KEPT_CHANGING: &str = "The event kept changing for the whole time budget, or the data store is unavailable: retry after Retry-After";

// ------------------------------------------------------------------ create

shared::error_answers!(
    /// What creating an event answers besides the event.
    CreateErrors:
    FORBIDDEN => "Not an organizer or admin",
    EVENT_CONFLICT => "A new id collided with an existing event (nothing was written): retry",
);

#[utoipa::path(post, path = "/v1/events", tag = "events", security(("bearer" = [])),
    request_body = NewEvent,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional. A repeat with the same key replays the first answer for 24 h (`Idempotent-Replayed: true`)")),
    responses(
        (status = 201, description = "Created", body = EventView,
            headers(("Location" = String, description = "/v1/events/{id}"), ("ETag" = String, description = "\"v1\""))),
        CreateErrors,
    ))]
pub async fn create(events: &Events, req: Request) -> Result<Response, ApiError> {
    events
        .idempotency
        .run(req, false, |req, claim| create_once(events, req, claim))
        .await
}

async fn create_once(
    events: &Events,
    req: Request,
    claim: Option<Arc<Claim>>,
) -> Result<Response, ApiError> {
    let caller = req.user()?.clone();
    let input: NewEvent = req.json_body()?;
    let now = now();
    let data = input.validate(now)?;
    let e = Event::new(shared::ids::new_id("evt")?, caller.id.clone(), data, now);
    let mut r = event_response(StatusCode::CREATED, &e)?;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/events/{}", e.id)).map_err(ApiError::internal)?,
    );
    // The session guard, then the idempotency completion (always last).
    let mut extra = vec![shared::session::guard(&events.store.table, &caller)?];
    extra.extend(claim.as_ref().map(|c| c.completion(&r)).transpose()?);
    // A TransactionConflict (the caller's session item is in another of their transactions,
    // throttling) wrote nothing: tried again within the time budget, then 503.
    let retry = Retry::for_request("CreateEvent", &req);
    match events.store.create(&e, extra, retry).await {
        Ok(()) => {}
        Err(TxError::Cancelled(_)) => return Err(EventError::IdTaken.into()),
        Err(err) => return Err(err.into()),
    }
    if let Some(c) = &claim {
        c.committed();
    }
    metrics::counter!("EventsCreated").increment(1);
    audit("event.created", &e, &caller.id);
    Ok(r)
}

// ------------------------------------------------------------------ read

#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "evt_ and 28 hex digits"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier read")),
    responses(
        (status = 200, description = "The event. Cacheable: `Cache-Control: public, max-age=5, stale-while-revalidate=30`", body = EventView,
            headers(("ETag" = String, description = "Weak (`W/\"v<version>.<joined>.<waitlisted>\"`): changes with an edit and with the seat counts; `If-Match` on an edit compares the version only"), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
    ))]
pub async fn get(events: &Events, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let e = events.store.get(&id).await?.ok_or_else(|| not_found(&id))?;
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| e.etag_matches(v));
    if matches {
        let mut r = Response::new(lambda_http::Body::Empty);
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(public_cache(with_etag(r, &e)));
    }
    Ok(public_cache(event_response(StatusCode::OK, &e)?))
}

/// What a shared cache (a CDN before the API, a browser) may do with a public read: keep it 5
/// seconds, and serve it up to 30 seconds stale while it asks again (seat counts move; a
/// stale page is never older than that). `Vary: Origin, Accept-Encoding` comes with it (the
/// middleware).
pub const PUBLIC_CACHE: &str = "public, max-age=5, stale-while-revalidate=30";

fn public_cache(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PUBLIC_CACHE),
    );
    r
}

/// A list page's answer: 200 with a weak ETag (a digest of `validator`: what the page shows),
/// or 304 when the client's `If-None-Match` names that ETag; cacheable as [`PUBLIC_CACHE`]
/// says.
fn page_response<T: Serialize>(
    req: &Request,
    page: &T,
    validator: &str,
) -> Result<Response, ApiError> {
    let body = serde_json::to_string(page).map_err(ApiError::internal)?;
    let tag = format!("W/\"p{}\"", &shared::ids::digest_hex(validator)[..22]);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| crate::model::none_match(v, &tag));
    let mut r = if matches {
        let mut r = Response::new(lambda_http::Body::Empty);
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(lambda_http::Body::Text(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(public_cache(r))
}

// ------------------------------------------------------------------ update / cancel

/// Whether `caller` may change `e`: its organizer or an admin.
fn may_change(e: &Event, caller: &shared::auth::User) -> Result<(), EventError> {
    if e.owner_id != caller.id && !caller.roles.contains(&Role::Admin) {
        return Err(EventError::NotOwner);
    }
    Ok(())
}

/// Reads the event a caller may change: it exists, the caller owns it or is admin.
async fn editable(events: &Events, req: &Request, id: &str) -> Result<Event, ApiError> {
    let caller = req.user()?;
    let e = events.store.get(id).await?.ok_or_else(|| not_found(id))?;
    may_change(&e, caller)?;
    Ok(e)
}

shared::error_answers!(
    /// What changing an event answers besides the new version.
    UpdateErrors:
    FORBIDDEN => "Not the owner or an admin",
    EVENT_CONFLICT => "Cancelled, or capacity below the seats taken",
    STALE_ETAG,
    IF_MATCH_REQUIRED,
    SERVICE_UNAVAILABLE => KEPT_CHANGING,
);

#[utoipa::path(patch, path = "/v1/events/{id}", tag = "events", security(("bearer" = [])),
    request_body = EventPatch,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag of the version being changed")),
    responses(
        (status = 200, description = "Updated", body = EventView, headers(("ETag" = String))),
        UpdateErrors,
    ))]
pub async fn update(events: &Events, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(EventError::IfMatchRequired)?
        .to_str()
        .ok()
        .and_then(etag_version)
        .ok_or(EventError::BadIfMatch)?;
    let patch: EventPatch = req.json_body()?;
    let current = editable(events, &req, &id).await?;
    let now = now();
    let user = req.user()?;
    let tail = || Ok(vec![shared::session::guard(&events.store.table, user)?]);
    let retry = Retry::for_request("UpdateEvent", &req);
    let apply = |d: &crate::model::EventData| patch.apply(d, now);
    let (current, next) =
        rules::change(&events.store, current, if_match, apply, now, retry, tail).await?;
    metrics::counter!("EventsUpdated").increment(1);
    audit("event.updated", &next, &req.user()?.id);
    // The change is committed: promotion is best effort from here (a failure is logged, not
    // answered; the next join or leave promotes anyway), so a retry never sees a 412 for a
    // change that landed.
    let promoted = if next.data.capacity > current.data.capacity && next.waitlisted > 0 {
        seating::rules::fill_free_seats(&events.seats, &id, seating::rules::promotion_retry())
            .await
            .unwrap_or_else(|e| {
            tracing::warn!(event_id = %id, error = %e, "promotion after a capacity increase failed; left to the next change");
            0
        })
    } else {
        0
    };
    if promoted > 0 {
        // The promotions changed the counts: answer with them.
        let latest = events.store.get(&id).await?.unwrap_or(next);
        return event_response(StatusCode::OK, &latest);
    }
    event_response(StatusCode::OK, &next)
}

shared::error_answers!(
    /// What cancelling an event answers besides the cancelled event.
    CancelErrors:
    FORBIDDEN => "Not the owner or an admin",
    SERVICE_UNAVAILABLE => KEPT_CHANGING,
);

#[utoipa::path(delete, path = "/v1/events/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Cancelled (also when it already was); kept for history", body = EventView, headers(("ETag" = String))),
        CancelErrors,
    ))]
pub async fn cancel(events: &Events, req: Request) -> Result<Response, ApiError> {
    let id = event_id(&req)?;
    let retry = Retry::for_request("CancelEvent", &req).pacing(
        std::time::Duration::from_millis(10),
        std::time::Duration::from_millis(200),
    );
    let user = req.user()?;
    let tail = || Ok(vec![shared::session::guard(&events.store.table, user)?]);
    let allowed = |e: &Event| may_change(e, user);
    let (event, cancelled) = rules::cancel(&events.store, &id, allowed, now, retry, tail).await?;
    if cancelled {
        metrics::counter!("EventsCancelled").increment(1);
        audit("event.cancelled", &event, &user.id);
    }
    event_response(StatusCode::OK, &event)
}

// ------------------------------------------------------------------ list and search

/// `GET /v1/events` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Required; normalised like an event's city.
    pub city: Option<String>,
    pub category: Option<String>,
    /// RFC 3339; events starting at or after (default: now).
    pub from: Option<String>,
    /// RFC 3339; events starting at or before.
    pub to: Option<String>,
    /// Search words (stemmed, stop words dropped, AND-ed; up to 5 terms).
    pub q: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, with the same other parameters.
    pub cursor: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventView>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

shared::error_answers!(
    /// What the events listing answers besides a page.
    ListErrors:
    BAD_REQUEST => shared::answers::BAD_CURSOR,
);

#[utoipa::path(get, path = "/v1/events", tag = "events", operation_id = "list_events",
    params(ListQuery, ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier read of this page")),
    responses(
        (status = 200, description = "Upcoming events, by start time then id; with `q`, by matched fields (most first), then start time, then id. Cacheable: `Cache-Control: public, max-age=5, stale-while-revalidate=30`", body = EventPage,
            headers(("ETag" = String, description = "Weak; changes when the page's events or their seat counts do"), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        ListErrors,
    ))]
pub async fn list(events: &Events, req: Request) -> Result<Response, ApiError> {
    let params = req.query_string_parameters();
    let get = |k: &str| params.first(k).map(str::to_owned);
    let mut p = crate::model::Problems::default();
    let city = get("city").map(|c| normalise(&c)).filter(|c| !c.is_empty());
    if city.is_none() {
        p.add("city", "is required");
    }
    let category = get("category").map(|c| normalise(&c));
    if let Some(c) = &category
        && !crate::model::CATEGORIES.contains(&c.as_str())
    {
        p.add(
            "category",
            format!("must be one of {}", crate::model::CATEGORIES.join(", ")),
        );
    }
    let time_param = |p: &mut crate::model::Problems, k: &str| {
        get(k).and_then(|v| parse_time(&v).map_err(|e| p.add(k, e)).ok())
    };
    let from = time_param(&mut p, "from");
    let to = time_param(&mut p, "to");
    let limit = match get("limit") {
        None => 20,
        // cursor::parse_limit's rule, with the problem collected among the others.
        Some(v) => match shared::cursor::parse_limit(Some(&v), 20, shared::cursor::MAX_LIMIT) {
            Ok(l) => l,
            Err(_) => {
                p.add(
                    "limit",
                    format!("must be an integer from 1 to {}", shared::cursor::MAX_LIMIT),
                );
                20
            }
        },
    };
    let terms = get("q").map(|q| text::terms(&q));
    if let Some(t) = &terms {
        if t.is_empty() {
            p.add(
                "q",
                "has no searchable words (only stop words or punctuation)",
            );
        } else if t.len() > text::MAX_QUERY_TERMS {
            p.add(
                "q",
                format!("at most {} search terms", text::MAX_QUERY_TERMS),
            );
        }
    }
    p.into_result()?;
    let city = city.expect("checked above");
    let query = [
        &city,
        category.as_deref().unwrap_or(""),
        &get("from").unwrap_or_default(),
        &get("to").unwrap_or_default(),
        &terms.as_ref().map(|t| t.join(" ")).unwrap_or_default(),
    ];
    let page =
        cursor::Page::at(&events.cursor_key, &query, get("cursor").as_deref(), limit).await?;
    let after = page.after.as_ref();
    let now = now();
    let from = from.map_or(now, |f| f.max(now));
    let (items, next) = match &terms {
        None => {
            let (items, more) = events
                .store
                .list(
                    &city,
                    category.as_deref(),
                    from,
                    to,
                    after.map(|p| (p.starts_at.as_str(), p.id.as_str())),
                    limit,
                )
                .await?;
            let next = more.then(|| items.last()).flatten().map(|e| Position {
                score: None,
                starts_at: utc(e.data.starts_at),
                id: e.id.clone(),
            });
            (items, next)
        }
        Some(terms) => {
            search(
                events,
                &city,
                category.as_deref(),
                from,
                to,
                terms,
                after,
                limit,
            )
            .await?
        }
    };
    let items: Vec<EventView> = items.iter().map(Event::view).collect();
    // The page's validator: its events (with their seat counts) and where the next page
    // starts — not the cursor's text, which is sealed anew on every answer.
    let validator = format!(
        "{}\n{}",
        serde_json::to_string(&items).map_err(ApiError::internal)?,
        next.as_ref()
            .map(|p| format!("{:?} {} {}", p.score, p.starts_at, p.id))
            .unwrap_or_default()
    );
    let next_cursor = page.next(next);
    page_response(&req, &EventPage { items, next_cursor }, &validator)
}

/// Search: the postings of every term (consistent reads), intersected; ranked by the number of
/// (term, field) matches, then start time, then id; the page after `after`.
#[allow(clippy::too_many_arguments)]
async fn search(
    events: &Events,
    city: &str,
    category: Option<&str>,
    from: OffsetDateTime,
    to: Option<OffsetDateTime>,
    terms: &[String],
    after: Option<&Position>,
    limit: usize,
) -> Result<(Vec<Event>, Option<Position>), ApiError> {
    let mut lists = Vec::with_capacity(terms.len());
    for t in terms {
        lists.push(events.store.postings(city, t, category, from, to).await?);
    }
    let mut hits: HashMap<String, (u32, String, usize)> = HashMap::new();
    for list in &lists {
        for p in list {
            let h = hits
                .entry(p.id.clone())
                .or_insert((0, p.starts_at.clone(), 0));
            h.0 += p.mask.count_ones();
            h.2 += 1;
        }
    }
    let mut ranked: Vec<(u32, String, String)> = hits
        .into_iter()
        .filter(|(_, h)| h.2 == terms.len())
        .map(|(id, (score, starts_at, _))| (score, starts_at, id))
        .collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    let start = match after {
        None => 0,
        Some(pos) => {
            let key = (
                pos.score.unwrap_or(0),
                pos.starts_at.clone(),
                pos.id.clone(),
            );
            ranked.partition_point(|r| {
                (std::cmp::Reverse(r.0), &r.1, &r.2) <= (std::cmp::Reverse(key.0), &key.1, &key.2)
            })
        }
    };
    let page: Vec<&(u32, String, String)> = ranked.iter().skip(start).take(limit).collect();
    let more = ranked.len() > start + page.len();
    let ids: Vec<String> = page.iter().map(|r| r.2.clone()).collect();
    let found = events
        .store
        .batch_get(&ids, BATCH_BUDGET)
        .await?
        .map_err(|Unavailable| EventError::StoreBusy)?;
    let items: Vec<Event> = ids
        .iter()
        .filter_map(|id| found.get(id))
        .filter(|e| e.status == Status::Active)
        .cloned()
        .collect();
    metrics::counter!("SearchRequests").increment(1);
    metrics::histogram!("SearchResults").record(ranked.len() as f64);
    let next = (more).then(|| page.last()).flatten().map(|r| Position {
        score: Some(r.0),
        starts_at: r.1.clone(),
        id: r.2.clone(),
    });
    Ok((items, next))
}

// ------------------------------------------------------------------ batch

/// Up to 100 event ids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 100 event ids; repeats collapse.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<crate::model::EventId>)]
    pub ids: Vec<String>,
}

/// The events found, in the order asked (repeats collapsed), and the ids not found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub events: Vec<EventView>,
    pub not_found: Vec<String>,
}

shared::error_answers!(
    /// What a batch read answers besides the events.
    BatchErrors:
    VALIDATION => "More than 100 ids, or a malformed id (named)",
    SERVICE_UNAVAILABLE => "DynamoDB kept keys unprocessed past the time budget; nothing partial is returned",
);

#[utoipa::path(post, path = "/v1/events/batch", tag = "events",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Found and missing ids", body = BatchResponse),
        BatchErrors,
    ))]
pub async fn batch(events: &Events, req: Request) -> Result<Response, ApiError> {
    let input: BatchRequest = req.json_body()?;
    let mut p = crate::model::Problems::default();
    if input.ids.is_empty() || input.ids.len() > MAX_BATCH {
        p.add(
            "ids",
            format!("must hold 1 to {MAX_BATCH} ids, got {}", input.ids.len()),
        );
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, id) in input.ids.iter().enumerate() {
        match parse_id(id) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(reason) => p.add(&format!("ids[{i}]"), reason),
        }
    }
    p.into_result()?;
    metrics::histogram!("BatchSize").record(ids.len() as f64);
    let found = events
        .store
        .batch_get(&ids, BATCH_BUDGET)
        .await?
        .map_err(|Unavailable| EventError::StoreBusy)?;
    let (hit, miss): (Vec<&String>, Vec<&String>) =
        ids.iter().partition(|id| found.contains_key(*id));
    metrics::counter!("BatchMisses").increment(miss.len() as u64);
    json(
        StatusCode::OK,
        &BatchResponse {
            events: hit.iter().map(|id| found[*id].view()).collect(),
            not_found: miss.into_iter().cloned().collect(),
        },
    )
}
