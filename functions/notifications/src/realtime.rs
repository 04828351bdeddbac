//! Realtime: notifications pushed over an API Gateway WebSocket API (docs/realtime.md,
//! decision 0014; the messages in docs/asyncapi.yaml).
//!
//! - `$connect` ([`connect`]): the access token rides in `Sec-WebSocket-Protocol`
//!   (`city-events.v1, <token>`; a browser can send it, and it never lands in a URL or an access
//!   log), or in `Authorization: Bearer` for other clients. Verified like the HTTP API's, the
//!   session must be live, and a user has at most [`MAX_CONNECTIONS`] live connections: a
//!   connection past that is refused (429), the ones open stay (crate::connections).
//! - `$default` ([`message`]): `{"action":"ping"}` → `{"type":"pong"}` (and the connection's
//!   lease extended); `{"action":"resume","from":"<notification id>"}` → what reached the inbox
//!   after that one, oldest id first, [`RESUME_PAGE`] a frame (`next` continues). Any frame may
//!   carry an `id`, echoed in its answer. Each connection may send [`FRAMES_PER_MINUTE`]; a bad
//!   frame gets an error frame and the connection stays.
//! - `$disconnect` ([`disconnect`]): the connection's entry and record go.
//! - Delivery: crate::push, from the consumer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::User;
use shared::ddb::{get_s, s};
use shared::ratelimit::{RateLimiter, Rule, Store};

use crate::api::{Notification, PREFIX};
pub use crate::connections::MAX_CONNECTIONS;
use crate::connections::{self, Owner};
use crate::inbox::InboxItem;

/// The subprotocol a client asks for (with its token as the second value) and gets back.
pub const PROTOCOL: &str = "city-events.v1";
/// The largest frame `$default` reads (API Gateway's own limit is 128 KB a message).
pub const MAX_FRAME_BYTES: usize = 4096;
/// Frames one connection may send per minute; past it, error frames until the window resets.
pub const FRAMES_PER_MINUTE: u32 = 60;
/// Notifications in one `resume` frame.
pub const RESUME_PAGE: usize = 100;
/// How long after its change a notification may reach the inbox and still be found by
/// `resume` (its id sorts by the change's time; one written later than this is in the inbox
/// and `GET /v1/me/notifications` only).
pub const RESUME_LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// How long after its `written_at` stamp an inbox item may become readable: the stamp is taken
/// when the item is built, and the write (a fan-out chunk's BatchWriteItem with its retries)
/// lands within the consumer's invocation, 30 s at most. A resume therefore also returns what
/// was stamped this long before its point (a client drops the ids it has): never a gap.
pub const WRITE_LAG: Duration = Duration::from_secs(30);
/// The longest `id` a client frame may carry.
const MAX_FRAME_ID: usize = 64;

/// A WebSocket route's answer to API Gateway: the status of the handshake (`$connect`), or
/// the frame sent back on the connection (`$default`'s body).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteResponse {
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub headers: HashMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl RouteResponse {
    fn ok() -> Self {
        RouteResponse {
            status_code: 200,
            ..Default::default()
        }
    }

    fn frame(frame: &Frame) -> Self {
        RouteResponse {
            status_code: 200,
            headers: HashMap::new(),
            body: Some(serde_json::to_string(frame).unwrap_or_else(|_| "{}".into())),
        }
    }

    fn refused(error: ApiError) -> Self {
        let status = error.status.as_u16();
        let (problem, headers) = error.into_problem(None, None);
        let mut out = RouteResponse {
            status_code: status,
            headers: HashMap::from([(
                "content-type".to_owned(),
                shared::problem::PROBLEM_JSON.to_owned(),
            )]),
            body: serde_json::to_string(&problem).ok(),
        };
        for (k, v) in &headers {
            if let Ok(v) = v.to_str() {
                out.headers.insert(k.as_str().to_owned(), v.to_owned());
            }
        }
        out
    }
}

/// What the server sends on a connection. An answer carries the `id` of the frame it answers
/// (when that had one): API Gateway may run two frames of a connection at once, so answers can
/// come out of order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// One new notification, as `GET /v1/me/notifications` shows it (unread).
    Notification { notification: Notification },
    /// What reached the inbox after the `resume` point, oldest id first; `next` (when more
    /// remain) goes in the next `resume` as `cursor`.
    Resume {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        items: Vec<Notification>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// A frame the server could not take: an RFC 9457 problem document. The connection stays.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        problem: shared::problem::Problem,
    },
}

/// What a client sends (`$default`). Struct variants, so that unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// Resume after the notification `from` (the last one the client has), or continue a
    /// resume with its `next` as `cursor`.
    Resume {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        cursor: Option<String>,
    },
}

impl ClientFrame {
    fn id(&self) -> Option<&String> {
        match self {
            ClientFrame::Ping { id } | ClientFrame::Resume { id, .. } => id.as_ref(),
        }
    }
}

/// The realtime functions' state: the table, the token keys and the frame limiter.
pub struct Realtime {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub keys: shared::auth::Keys,
    pub issuer: String,
    pub audience: String,
    pub limiter: RateLimiter,
}

impl Realtime {
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Realtime {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
            keys: shared::auth::Keys::new(app),
            issuer: app.config.jwt_issuer.clone(),
            audience: app.config.jwt_audience.clone(),
            limiter: RateLimiter::new(app.clients.dynamodb.clone(), app.config.table_name.clone()),
        }))
    }
}

fn header<'a>(req: &'a ApiGatewayWebsocketProxyRequest, name: &str) -> Option<&'a str> {
    req.headers
        .get(name)
        .or_else(|| req.multi_value_headers.get(name))
        .and_then(|v| v.to_str().ok())
}

/// The token of a connect request: the value after [`PROTOCOL`] in `Sec-WebSocket-Protocol`,
/// else a bearer `Authorization` header. `None` also when the protocol is not offered (the
/// server could not answer with it, and the client would drop the connection).
pub fn connect_token(req: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    if let Some(offered) = header(req, "sec-websocket-protocol") {
        let values: Vec<&str> = offered.split(',').map(str::trim).collect();
        if values.first() == Some(&PROTOCOL) && values.len() == 2 && !values[1].is_empty() {
            return Some(values[1].to_owned());
        }
        return None;
    }
    shared::auth::bearer(&req.headers).map(str::to_owned)
}

/// The connection a route is invoked for (API Gateway always names it).
fn connection_of(req: &ApiGatewayWebsocketProxyRequest) -> Result<String, ApiError> {
    req.request_context
        .connection_id
        .clone()
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or_else(|| ApiError::bad_request("no connection id"))
}

pub fn now_s() -> u64 {
    shared::ratelimit::now_ms() / 1000
}

/// `$connect`: authenticate, then register the connection under the user's limit.
pub async fn connect(rt: &Realtime, req: ApiGatewayWebsocketProxyRequest) -> RouteResponse {
    match try_connect(rt, &req).await {
        Ok(()) => {
            metrics::counter!("RealtimeConnects", "outcome" => "accepted").increment(1);
            let mut answer = RouteResponse::ok();
            if header(&req, "sec-websocket-protocol").is_some() {
                answer
                    .headers
                    .insert("Sec-WebSocket-Protocol".to_owned(), PROTOCOL.to_owned());
            }
            answer
        }
        Err(e) => {
            let outcome = match e.status.as_u16() {
                401 => "unauthorized",
                429 => "over_limit",
                _ => "error",
            };
            metrics::counter!("RealtimeConnects", "outcome" => outcome).increment(1);
            log_failure(&e, "connect refused");
            RouteResponse::refused(e)
        }
    }
}

fn log_failure(e: &ApiError, what: &str) {
    match &e.cause {
        Some(cause) if e.status.is_server_error() => {
            tracing::error!(status = e.status.as_u16(), error.cause_chain = %shared::error_chain_anyhow(cause), "{what}")
        }
        _ => tracing::info!(status = e.status.as_u16(), "{what}"),
    }
}

async fn try_connect(rt: &Realtime, req: &ApiGatewayWebsocketProxyRequest) -> Result<(), ApiError> {
    let connection_id = connection_of(req)?;
    let token = connect_token(req).ok_or_else(shared::auth::unauthorized)?;
    let user = rt.keys.user_of(&token, &rt.issuer, &rt.audience).await?;
    connections::open(&rt.ddb, &rt.table, &user, &connection_id, now_s()).await
}

/// `$disconnect`: the connection's entry and record go (API Gateway may skip it: the lease
/// ends anyway).
pub async fn disconnect(
    rt: &Realtime,
    req: ApiGatewayWebsocketProxyRequest,
) -> anyhow::Result<RouteResponse> {
    let Ok(connection_id) = connection_of(&req) else {
        return Ok(RouteResponse::ok());
    };
    let item = shared::ddb::get_consistent(
        &rt.ddb,
        &rt.table,
        connections::connection_key(&connection_id),
    )
    .await?;
    if let Some(user) = item.and_then(|i| get_s(&i, "user_id")) {
        connections::forget(&rt.ddb, &rt.table, &user, &connection_id).await?;
    }
    metrics::counter!("RealtimeDisconnects").increment(1);
    Ok(RouteResponse::ok())
}

/// `$default`: one client frame, answered with one frame.
pub async fn message(rt: &Realtime, req: ApiGatewayWebsocketProxyRequest) -> RouteResponse {
    let mut id = None;
    let frame = match try_message(rt, &req, &mut id).await {
        Ok(f) => f,
        Err(e) => {
            log_failure(&e, "frame refused");
            metrics::counter!("RealtimeFrameErrors", "status" => e.status.as_u16().to_string())
                .increment(1);
            let request_id = req.request_context.request_id.clone();
            let (problem, _) = e.into_problem(None, request_id.as_deref());
            Frame::Error { id, problem }
        }
    };
    RouteResponse::frame(&frame)
}

async fn try_message(
    rt: &Realtime,
    req: &ApiGatewayWebsocketProxyRequest,
    id: &mut Option<String>,
) -> Result<Frame, ApiError> {
    let connection_id = connection_of(req)?;
    let body = req.body.as_deref().unwrap_or("");
    if body.len() > MAX_FRAME_BYTES {
        return Err(ApiError::payload_too_large(MAX_FRAME_BYTES));
    }
    let parsed: Result<ClientFrame, ApiError> = serde_json::from_str(body).map_err(|e| {
        ApiError::validation("action", format!("not a frame this API takes ({e}); send {{\"action\":\"ping\"}} or {{\"action\":\"resume\",\"from\":\"<notification id>\"}}"))
    });
    if let Some(given) = parsed.as_ref().ok().and_then(ClientFrame::id) {
        if given.is_empty() || given.len() > MAX_FRAME_ID || given.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "id",
                format!("1 to {MAX_FRAME_ID} printable characters"),
            ));
        }
        *id = Some(given.clone());
    }
    // The connection's budget (after the frame is read, so that a refusal names its id): a
    // flood costs one conditional write a frame, nothing more.
    let rule = Rule {
        scope: "ws",
        limit: FRAMES_PER_MINUTE,
        window: Duration::from_secs(60),
        fail_open: true,
        store: Store::Shared,
    };
    match rt.limiter.check(&rule, &connection_id).await {
        Ok(d) if !d.allowed => {
            metrics::counter!("RateLimited", "route" => "$default", "store" => "shared")
                .increment(1);
            return Err(ApiError::of(shared::problem::problems::RATE_LIMITED)
                .detail(format!(
                    "at most {FRAMES_PER_MINUTE} frames a minute on one connection; wait retry_after seconds"
                ))
                .extension("retry_after", d.reset_after.into()));
        }
        Ok(_) => {}
        Err(e) => {
            metrics::counter!("RateLimiterErrors", "route" => "$default", "mode" => "fail_open")
                .increment(1);
            tracing::warn!(error.cause_chain = %shared::error_chain_anyhow(&e), "frame limiter failed; letting the frame through");
        }
    }
    // A malformed frame counts against the budget too.
    let frame = parsed?;
    // Every frame is the connection's activity: its session must still be live, and its lease
    // is extended (the client pings more often than API Gateway's 10-minute idle timeout).
    let now = now_s();
    let owner = live_owner(rt, &connection_id, now).await?;
    match frame {
        ClientFrame::Ping { id } => Ok(Frame::Pong { id }),
        ClientFrame::Resume { id, from, cursor } => {
            let point = match (from, cursor) {
                (Some(from), None) => start_of(rt, &owner.user_id, &from).await?,
                (None, Some(cursor)) => ResumePoint::parse(&cursor).ok_or_else(|| {
                    ApiError::validation("cursor", "not a `next` of this connection's resume")
                })?,
                (Some(_), Some(_)) => {
                    return Err(ApiError::validation(
                        "from",
                        "give `from` or `cursor`, not both",
                    ));
                }
                (None, None) => {
                    return Err(ApiError::validation(
                        "from",
                        "give `from` (the id of the last notification you have) or `cursor` (a resume's `next`)",
                    ));
                }
            };
            let (items, next) = resume(rt, &owner.user_id, point).await?;
            Ok(Frame::Resume { id, items, next })
        }
    }
}

/// The connection's owner, with a live session, its lease extended; a 401 when the session
/// ended or the connection is no longer registered (the client reconnects).
async fn live_owner(rt: &Realtime, connection_id: &str, now: u64) -> Result<Owner, ApiError> {
    let reconnect = || {
        shared::auth::unauthorized()
            .detail("this connection is no longer registered (its session ended, or it was idle): reconnect")
    };
    let owner = connections::owner(&rt.ddb, &rt.table, connection_id, now)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(reconnect)?;
    let user = User {
        id: owner.user_id.clone(),
        roles: Vec::new(),
        session_id: owner.session_id.clone(),
        token_id: String::new(),
        expires_at: 0,
    };
    shared::session::require_live(&rt.ddb, &rt.table, &user).await?;
    let registered = connections::touch(
        &rt.ddb,
        &rt.table,
        &owner.user_id,
        connection_id,
        owner.max_until,
        now,
    )
    .await
    .map_err(ApiError::internal)?;
    if !registered {
        return Err(reconnect());
    }
    Ok(owner)
}

/// Where a resume continues: notifications whose id is after `after` or that were written
/// after `since` less [`WRITE_LAG`] (write times of different consumer instances compare as
/// their hosts' clocks, which the Amazon Time Sync Service keeps within about a millisecond);
/// a continued resume (`last`: the previous page's last
/// id) takes those after `last`, and those up to `last` written after that page was read
/// (`read_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    pub since: String,
    pub after: String,
    pub last: Option<(String, String)>,
}

impl ResumePoint {
    pub fn cursor(&self) -> String {
        use base64::Engine;
        let (last, read_at) = self.last.clone().unwrap_or_default();
        let text = format!("{}\n{}\n{last}\n{read_at}", self.since, self.after);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    pub fn parse(cursor: &str) -> Option<Self> {
        use base64::Engine;
        if cursor.len() > 512 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let parts: Vec<&str> = text.split('\n').collect();
        let [since, after, last, read_at] = parts[..] else {
            return None;
        };
        if !crate::api::valid_id(after) || !valid_time(since) {
            return None;
        }
        let last = match (last, read_at) {
            ("", "") => None,
            (l, r) if crate::api::valid_id(l) && valid_time(r) => {
                Some((l.to_owned(), r.to_owned()))
            }
            _ => return None,
        };
        Some(ResumePoint {
            since: since.to_owned(),
            after: after.to_owned(),
            last,
        })
    }
}

fn valid_time(t: &str) -> bool {
    t.len() == 27
        && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
}

fn parse_time(t: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::validation("cursor", "not a `next` of this connection's resume"))
}

/// When an inbox item was written: `written_at`, else (items written before it was kept)
/// `delivered_at`.
fn written(item: &InboxItem) -> &str {
    if item.written_at.is_empty() {
        &item.delivered_at
    } else {
        &item.written_at
    }
}

/// The resume point of the notification `from` of `user`: its id and when it was written.
async fn start_of(rt: &Realtime, user: &str, from: &str) -> Result<ResumePoint, ApiError> {
    if !crate::api::valid_id(from) {
        return Err(ApiError::validation(
            "from",
            "must be a notification id from GET /v1/me/notifications or a pushed frame",
        ));
    }
    let key = HashMap::from([
        ("pk".into(), s(format!("USER#{user}"))),
        ("sk".into(), s(format!("{PREFIX}{from}"))),
    ]);
    let item = shared::ddb::get_consistent(&rt.ddb, &rt.table, key)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
        .ok_or_else(|| ApiError::validation("from", "no such notification in your inbox"))?;
    let item: InboxItem = shared::ddb::from_item(item).map_err(ApiError::internal)?;
    let since = Some(written(&item))
        .filter(|w| valid_time(w))
        .map(str::to_owned)
        .unwrap_or_else(|| from.split('#').next().unwrap_or_default().to_owned());
    Ok(ResumePoint {
        since,
        after: from.to_owned(),
        last: None,
    })
}

/// Whether an inbox item comes after a resume point; `lag`: [`WRITE_LAG`] as it applies to the
/// point's times (see [`Lagged`]).
pub fn is_after(item: &InboxItem, point: &ResumePoint, lag: &Lagged) -> bool {
    let id = item.sk.trim_start_matches(PREFIX);
    let w = written(item);
    if id == point.after {
        // The client has the one it resumes from.
        return false;
    }
    if let Some((last, _)) = &point.last
        && id <= last.as_str()
    {
        // The previous page weighed it already, unless it became readable after that page.
        return !w.is_empty() && w > lag.read_at.as_str();
    }
    id > point.after.as_str() || (!w.is_empty() && w > lag.since.as_str())
}

/// A resume point's times less [`WRITE_LAG`], as the text the items' stamps compare with.
pub struct Lagged {
    pub since: String,
    pub read_at: String,
}

impl Lagged {
    pub fn of(point: &ResumePoint) -> Result<Self, ApiError> {
        let less = |t: &str| parse_time(t).map(|t| shared::outbox::timestamp(t - WRITE_LAG));
        Ok(Lagged {
            since: less(&point.since)?,
            read_at: match &point.last {
                Some((_, read_at)) => less(read_at)?,
                None => String::new(),
            },
        })
    }
}

/// The notifications after `point`, oldest id first, a page at a time; and the cursor of the
/// next page when more remain.
async fn resume(
    rt: &Realtime,
    user: &str,
    point: ResumePoint,
) -> Result<(Vec<Notification>, Option<String>), ApiError> {
    let since = parse_time(&point.since)?;
    let lag = Lagged::of(&point)?;
    // Ids sort by the change's time, never after the write: nothing written after `since` has
    // an id before `since - RESUME_LOOKBACK` (a delivery that late is out of scope).
    let low = format!(
        "{PREFIX}{}",
        shared::outbox::timestamp(since - RESUME_LOOKBACK)
    );
    let read_at = shared::outbox::timestamp(time::OffsetDateTime::now_utc());
    let mut pages = shared::ddb::query_items(
        rt.ddb
            .query()
            .table_name(&rt.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(format!("USER#{user}")))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(format!("{PREFIX}~")))
            .consistent_read(true),
    )
    .send();
    let mut items = Vec::new();
    let mut more = false;
    while let Some(i) = pages.next().await {
        let item: InboxItem =
            shared::ddb::from_item(i.map_err(ApiError::internal)?).map_err(ApiError::internal)?;
        if !is_after(&item, &point, &lag) {
            continue;
        }
        if items.len() == RESUME_PAGE {
            more = true;
            break;
        }
        items.push(Notification::of(item, false));
    }
    let next = more.then(|| {
        ResumePoint {
            last: items.last().map(|n| (n.id.clone(), read_at.clone())),
            ..point.clone()
        }
        .cursor()
    });
    metrics::counter!("RealtimeResumed").increment(items.len() as u64);
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> ApiGatewayWebsocketProxyRequest {
        let mut req = ApiGatewayWebsocketProxyRequest::default();
        for (k, v) in headers {
            req.headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        req
    }

    #[test]
    fn the_token_comes_from_the_subprotocol_or_a_bearer_header() {
        let t = "eyJ.a.b";
        assert_eq!(
            connect_token(&request(&[(
                "sec-websocket-protocol",
                "city-events.v1, eyJ.a.b"
            )]))
            .as_deref(),
            Some(t)
        );
        assert_eq!(
            connect_token(&request(&[("authorization", "Bearer eyJ.a.b")])).as_deref(),
            Some(t)
        );
        // The protocol must be offered first, with exactly one token after it.
        for bad in [
            "eyJ.a.b",
            "other, eyJ.a.b",
            "city-events.v1",
            "city-events.v1, a, b",
            "city-events.v1, ",
        ] {
            assert_eq!(
                connect_token(&request(&[("sec-websocket-protocol", bad)])),
                None,
                "{bad}"
            );
        }
        // A protocol header without ours is not rescued by a bearer header.
        assert_eq!(
            connect_token(&request(&[
                ("sec-websocket-protocol", "x"),
                ("authorization", "Bearer eyJ.a.b")
            ])),
            None
        );
        assert_eq!(connect_token(&request(&[])), None);
    }

    fn item(id: &str, written_at: &str) -> InboxItem {
        InboxItem {
            pk: "USER#u".into(),
            sk: format!("{PREFIX}{id}"),
            kind: String::new(),
            summary: String::new(),
            aggregate_id: String::new(),
            data: "{}".into(),
            message_id: String::new(),
            occurred_at: String::new(),
            seq: None,
            delivered_at: "2026-12-07T09:00:00.000000Z".into(),
            written_at: written_at.into(),
            trace_id: String::new(),
        }
    }

    const A: &str = "2026-12-07T10:00:00.000000Z#00000000000000000000000000000001";
    const B: &str = "2026-12-07T10:00:01.000000Z#00000000000000000000000000000002";
    const C: &str = "2026-12-07T10:00:02.000000Z#00000000000000000000000000000003";

    #[test]
    fn a_resume_takes_later_ids_and_late_writes_and_a_next_page_what_came_after_the_first() {
        let point = ResumePoint {
            since: "2026-12-07T10:01:00.000000Z".into(),
            after: B.into(),
            last: None,
        };
        let lag = Lagged::of(&point).unwrap();
        assert_eq!(lag.since, "2026-12-07T10:00:30.000000Z");
        let after = |id, w| is_after(&item(id, w), &point, &lag);
        // After the point by id.
        assert!(after(C, "2026-12-07T10:00:06.000000Z"));
        // The point itself, and what was stamped long enough before it to have been readable.
        assert!(!after(B, "2026-12-07T10:01:00.000000Z"));
        assert!(!after(A, "2026-12-07T10:00:00.500000Z"));
        // A late write: its id sorts before the point, it was stamped after the point, or so
        // shortly before that it may have become readable after it (the client may have it).
        assert!(after(A, "2026-12-07T10:01:30.000000Z"));
        assert!(after(A, "2026-12-07T10:00:45.000000Z"));
        // A continued resume: what the previous page weighed is not sent again, unless it may
        // have become readable after that page was read.
        let next = ResumePoint {
            last: Some((C.into(), "2026-12-07T10:02:00.000000Z".into())),
            ..point.clone()
        };
        let lag = Lagged::of(&next).unwrap();
        let after = |id, w| is_after(&item(id, w), &next, &lag);
        assert!(!after(C, "2026-12-07T10:00:06.000000Z"));
        assert!(!after(A, "2026-12-07T10:01:20.000000Z"));
        assert!(after(A, "2026-12-07T10:01:45.000000Z"));
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let point = ResumePoint {
            since: "2026-12-07T10:00:01.500000Z".into(),
            after: B.into(),
            last: Some((C.into(), "2026-12-07T10:00:10.000000Z".into())),
        };
        assert_eq!(ResumePoint::parse(&point.cursor()), Some(point.clone()));
        let first = ResumePoint {
            last: None,
            ..point
        };
        assert_eq!(ResumePoint::parse(&first.cursor()), Some(first));
        for bad in ["", "x", "!!!!", &"A".repeat(600)] {
            assert_eq!(ResumePoint::parse(bad), None, "{bad}");
        }
        use base64::Engine;
        for forged in [
            "yesterday\nnot-an-id\n\n",
            "2026-12-07T10:00:01.500000Z\n{B}\n{C}\n",
        ] {
            let text = forged.replace("{B}", B).replace("{C}", C);
            let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
            assert_eq!(ResumePoint::parse(&c), None, "{forged}");
        }
    }

    #[test]
    fn frames_are_tagged_carry_their_id_and_unknown_ones_are_refused() {
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(r#"{"action":"ping"}"#),
            Ok(ClientFrame::Ping { id: None })
        ));
        let f: ClientFrame = serde_json::from_str(r#"{"action":"ping","id":"7"}"#).unwrap();
        assert_eq!(f.id().map(String::as_str), Some("7"));
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(&format!(r#"{{"action":"resume","from":"{A}"}}"#)),
            Ok(ClientFrame::Resume {
                from: Some(_),
                cursor: None,
                ..
            })
        ));
        for bad in [
            r#"{"action":"shout"}"#,
            r#"{"action":"ping","x":1}"#,
            "[]",
            "ping",
            "",
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&Frame::Pong { id: None }).unwrap(),
            r#"{"type":"pong"}"#
        );
        assert_eq!(
            serde_json::to_string(&Frame::Pong {
                id: Some("7".into())
            })
            .unwrap(),
            r#"{"type":"pong","id":"7"}"#
        );
    }
}
