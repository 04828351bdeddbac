//! Realtime: notifications pushed over an API Gateway WebSocket API (docs/realtime.md).
//!
//! - `$connect` ([`connect`]): the access token rides in `Sec-WebSocket-Protocol`
//!   (`city-events.v1, <token>`; a browser can send it, and it never lands in a URL or an access
//!   log), or in `Authorization: Bearer` for other clients. Verified like the HTTP API's, the
//!   session must be live, and a user has at most [`MAX_CONNECTIONS`] live connections: a
//!   connection past that is refused (429), the ones open stay.
//! - `$default` ([`message`]): `{"action":"ping"}` → `{"type":"pong"}`;
//!   `{"action":"resume","from":"<notification id>"}` → the notifications that reached the inbox
//!   after that one, oldest first, [`RESUME_PAGE`] a frame (`next` continues). Each connection
//!   may send [`FRAMES_PER_MINUTE`]; a bad frame gets an error frame and the connection stays.
//! - `$disconnect` ([`disconnect`]): the connection's records go.
//! - Delivery ([`Pusher`]): after the consumer writes a notification, it is posted to each live
//!   connection of its user (`PostToConnection`); a connection API Gateway says is gone
//!   (`GoneException`) is removed. A push never fails the inbox write: the inbox is the source
//!   of truth, and `resume` fills what a client missed.
//!
//! Items: `USER#<id>` / `CONNS` holds the user's connections (`conns`: id → expiry, epoch s)
//! and a `version` that makes each change conditional (so the limit holds under concurrent
//! connects); `CONN#<connection id>` / `CONN` names the connection's user (for `$default` and
//! `$disconnect`, which API Gateway gives only the connection id). Both expire by TTL
//! (`expires_at`) [`CONNECTION_LIFETIME_S`] after the connect, API Gateway's own maximum.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::User;
use shared::ddb::{Item, get_n, get_s, n, s};
use shared::ratelimit::{RateLimiter, Rule, Store};

use crate::api::{Notification, PREFIX};
use crate::inbox::InboxItem;

/// The subprotocol a client asks for (with its token as the second value) and gets back.
pub const PROTOCOL: &str = "city-events.v1";
/// Live connections per user; one more is refused with 429.
pub const MAX_CONNECTIONS: usize = 5;
/// API Gateway closes a WebSocket connection after 2 hours at most: a connection's records
/// expire then, whether or not `$disconnect` ran.
pub const CONNECTION_LIFETIME_S: u64 = 2 * 3600;
/// The largest frame `$default` reads (API Gateway's own limit is 128 KB a message).
pub const MAX_FRAME_BYTES: usize = 4096;
/// Frames one connection may send per minute; past it, error frames until the window resets.
pub const FRAMES_PER_MINUTE: u32 = 60;
/// Notifications in one `resume` frame.
pub const RESUME_PAGE: usize = 100;
/// How long after its change a notification may reach the inbox and still be found by
/// `resume` (its id sorts by the change's time; one delivered later than this is in the inbox
/// and `GET /v1/me/notifications` only).
pub const RESUME_LOOKBACK: Duration = Duration::from_secs(24 * 3600);

const CONNS_SK: &str = "CONNS";
const CONN_SK: &str = "CONN";

fn user_conns_key(user_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("USER#{user_id}"))),
        ("sk".into(), s(CONNS_SK)),
    ])
}

fn connection_key(connection_id: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("CONN#{connection_id}"))),
        ("sk".into(), s(CONN_SK)),
    ])
}

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

/// What the server sends on a connection.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Pong,
    /// One new notification, as `GET /v1/me/notifications` shows it (unread).
    Notification {
        notification: Notification,
    },
    /// What reached the inbox after the `resume` point, oldest first; `next` (when more
    /// remain) goes in the next `resume`.
    Resume {
        items: Vec<Notification>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// A frame the server could not take: an RFC 9457 problem document. The connection stays.
    Error {
        problem: shared::problem::Problem,
    },
}

/// What a client sends (`$default`).
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// A struct variant, so that unknown fields are refused as for `resume`.
    Ping {},
    /// Resume after the notification `from` (the last one the client has), or continue a
    /// resume with its `next`.
    Resume {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        cursor: Option<String>,
    },
}

/// The realtime functions' state: the table and the per-connection frame limiter.
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

fn now_s() -> u64 {
    shared::ratelimit::now_ms() / 1000
}

/// `$connect`: authenticate, then register the connection under the user's limit.
pub async fn connect(rt: &Realtime, req: ApiGatewayWebsocketProxyRequest) -> RouteResponse {
    match try_connect(rt, &req).await {
        Ok(()) => {
            metrics::counter!("RealtimeConnects", "outcome" => "accepted").increment(1);
            let mut headers = HashMap::new();
            if header(&req, "sec-websocket-protocol").is_some() {
                headers.insert("Sec-WebSocket-Protocol".to_owned(), PROTOCOL.to_owned());
            }
            RouteResponse {
                status_code: 200,
                headers,
                body: None,
            }
        }
        Err(e) => {
            let outcome = match e.status.as_u16() {
                401 => "unauthorized",
                429 => "over_limit",
                _ => "error",
            };
            metrics::counter!("RealtimeConnects", "outcome" => outcome).increment(1);
            if e.status.is_server_error()
                && let Some(cause) = &e.cause
            {
                tracing::error!(error.cause_chain = %shared::error_chain_anyhow(cause), "connect failed");
            } else {
                tracing::info!(status = e.status.as_u16(), "connect refused");
            }
            RouteResponse::refused(e)
        }
    }
}

async fn try_connect(rt: &Realtime, req: &ApiGatewayWebsocketProxyRequest) -> Result<(), ApiError> {
    let connection_id = connection_of(req)?;
    let token = connect_token(req).ok_or_else(shared::auth::unauthorized)?;
    let user = rt.keys.user_of(&token, &rt.issuer, &rt.audience).await?;
    open(rt, &user, &connection_id, now_s()).await
}

/// Registers `connection_id` for `user` unless they have [`MAX_CONNECTIONS`] live ones: one
/// transaction of the session guard (a revoked session is refused), the user's connection map
/// (conditional on the version read, so two connects at once cannot both take the last place;
/// expired entries are dropped in the same write) and the connection's own record.
pub async fn open(
    rt: &Realtime,
    user: &User,
    connection_id: &str,
    now: u64,
) -> Result<(), ApiError> {
    let expires = now + CONNECTION_LIFETIME_S;
    for _ in 0..6 {
        let current = shared::ddb::get_consistent(&rt.ddb, &rt.table, user_conns_key(&user.id))
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
        let version = current.as_ref().and_then(|i| get_n(i, "version"));
        let conns = current.as_ref().map(connections_of).unwrap_or_default();
        let live = conns.iter().filter(|(_, exp)| **exp > now).count();
        if live >= MAX_CONNECTIONS {
            return Err(
                ApiError::of(shared::problem::problems::RATE_LIMITED).detail(format!(
                    "at most {MAX_CONNECTIONS} realtime connections per user; close one first"
                )),
            );
        }
        let mut update = Update::builder()
            .table_name(&rt.table)
            .set_key(Some(user_conns_key(&user.id)))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":one", n(1));
        let mut set = vec![
            "version = if_not_exists(version, :zero) + :one",
            "expires_at = :exp",
        ];
        update = update.expression_attribute_values(":zero", n(0));
        let mut remove = Vec::new();
        match version {
            Some(v) => {
                set.push("conns.#c = :exp");
                update = update
                    .expression_attribute_names("#c", connection_id)
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v));
                for (i, (id, _)) in conns
                    .iter()
                    .filter(|(_, e)| **e <= now)
                    .take(20)
                    .enumerate()
                {
                    let name = format!("#x{i}");
                    remove.push(format!("conns.{name}"));
                    update = update.expression_attribute_names(name, id.clone());
                }
            }
            None => {
                set.push("conns = :first");
                update = update
                    .condition_expression("attribute_not_exists(version)")
                    .expression_attribute_values(
                        ":first",
                        AttributeValue::M(HashMap::from([(connection_id.to_owned(), n(expires))])),
                    );
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(ApiError::internal)?;
        let mut record = connection_key(connection_id);
        record.insert("user_id".into(), s(&user.id));
        record.insert("session_id".into(), s(&user.session_id));
        record.insert("expires_at".into(), n(expires));
        let put = Put::builder()
            .table_name(&rt.table)
            .set_item(Some(record))
            .build()
            .map_err(ApiError::internal)?;
        let items = vec![
            shared::session::guard(&rt.table, user).map_err(ApiError::internal)?,
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match shared::ddb::transact(&rt.ddb, items).await {
            Ok(()) => return Ok(()),
            // Another connect or disconnect changed the map since it was read: read again.
            Err(shared::ddb::TxError::Cancelled(_) | shared::ddb::TxError::Conflict) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::service_unavailable(
        "too many connects at once for this user; retry shortly",
    ))
}

/// The connection map of a `CONNS` item: connection id → expiry (epoch s).
fn connections_of(item: &Item) -> HashMap<String, u64> {
    item.get("conns")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes `connection_id` of `user_id` (both records; nothing when already gone).
pub async fn forget(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    user_id: &str,
    connection_id: &str,
) -> anyhow::Result<()> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(user_conns_key(user_id)))
        .update_expression("REMOVE conns.#c SET version = version + :one")
        .condition_expression("attribute_exists(version)")
        .expression_attribute_names("#c", connection_id)
        .expression_attribute_values(":one", n(1))
        .build()?;
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(connection_key(connection_id)))
        .build()?;
    let items = vec![
        TransactWriteItem::builder().update(update).build(),
        TransactWriteItem::builder().delete(delete.clone()).build(),
    ];
    let mut retry = shared::ddb::Retry::within("TransactWriteItems", Duration::from_secs(3));
    match shared::ddb::transact_retrying(ddb, items, &mut retry).await {
        Ok(()) => Ok(()),
        // No connection map (never registered, or expired): the record alone.
        Err(shared::ddb::TxError::Cancelled(_)) => {
            ddb.delete_item()
                .table_name(table)
                .set_key(Some(connection_key(connection_id)))
                .send()
                .await?;
            Ok(())
        }
        Err(shared::ddb::TxError::Conflict) => Err(anyhow::anyhow!("connection map contended")),
        Err(shared::ddb::TxError::SessionRevoked) => Ok(()),
        Err(shared::ddb::TxError::Other(e)) => Err(e),
    }
}

/// The user a connection belongs to, from its record (`None`: unknown or expired).
async fn owner(rt: &Realtime, connection_id: &str) -> anyhow::Result<Option<String>> {
    let item =
        shared::ddb::get_consistent(&rt.ddb, &rt.table, connection_key(connection_id)).await?;
    Ok(item
        .filter(|i| get_n(i, "expires_at").is_some_and(|e| e > now_s()))
        .and_then(|i| get_s(&i, "user_id")))
}

/// `$disconnect`: the connection's records go (API Gateway may skip it: they expire anyway).
pub async fn disconnect(
    rt: &Realtime,
    req: ApiGatewayWebsocketProxyRequest,
) -> anyhow::Result<RouteResponse> {
    let Some(connection_id) = req.request_context.connection_id.filter(|c| !c.is_empty()) else {
        return Ok(RouteResponse {
            status_code: 200,
            ..Default::default()
        });
    };
    let item =
        shared::ddb::get_consistent(&rt.ddb, &rt.table, connection_key(&connection_id)).await?;
    if let Some(user) = item.and_then(|i| get_s(&i, "user_id")) {
        forget(&rt.ddb, &rt.table, &user, &connection_id).await?;
    }
    metrics::counter!("RealtimeDisconnects").increment(1);
    Ok(RouteResponse {
        status_code: 200,
        ..Default::default()
    })
}

/// `$default`: one client frame, answered with one frame.
pub async fn message(rt: &Realtime, req: ApiGatewayWebsocketProxyRequest) -> RouteResponse {
    let frame = match try_message(rt, &req).await {
        Ok(f) => f,
        Err(e) => {
            if e.status.is_server_error()
                && let Some(cause) = &e.cause
            {
                tracing::error!(error.cause_chain = %shared::error_chain_anyhow(cause), "frame failed");
            }
            metrics::counter!("RealtimeFrameErrors", "status" => e.status.as_u16().to_string())
                .increment(1);
            let request_id = req.request_context.request_id.clone();
            let (problem, _) = e.into_problem(None, request_id.as_deref());
            Frame::Error { problem }
        }
    };
    RouteResponse::frame(&frame)
}

async fn try_message(
    rt: &Realtime,
    req: &ApiGatewayWebsocketProxyRequest,
) -> Result<Frame, ApiError> {
    let connection_id = connection_of(req)?;
    // The connection's budget first: a flood costs one conditional write a frame, nothing more.
    let rule = Rule {
        scope: "ws",
        limit: FRAMES_PER_MINUTE,
        window: Duration::from_secs(60),
        fail_open: true,
        store: Store::Shared,
    };
    match rt.limiter.check(&rule, &connection_id).await {
        Ok(d) if !d.allowed => {
            metrics::counter!("RateLimited", "scope" => "ws", "store" => "shared").increment(1);
            return Err(ApiError::of(shared::problem::problems::RATE_LIMITED)
                .detail(format!(
                    "at most {FRAMES_PER_MINUTE} frames a minute on one connection"
                ))
                .extension("retry_after", d.reset_after.into()));
        }
        Ok(_) => {}
        Err(e) => {
            metrics::counter!("RateLimiterErrors", "mode" => "fail_open").increment(1);
            tracing::warn!(error.cause_chain = %shared::error_chain_anyhow(&e), "frame limiter failed; letting the frame through");
        }
    }
    let body = req.body.as_deref().unwrap_or("");
    if body.len() > MAX_FRAME_BYTES {
        return Err(ApiError::payload_too_large(MAX_FRAME_BYTES));
    }
    let frame: ClientFrame = serde_json::from_str(body).map_err(|e| {
        ApiError::validation("action", format!("not a frame this API takes ({e}); send {{\"action\":\"ping\"}} or {{\"action\":\"resume\",\"from\":\"<notification id>\"}}"))
    })?;
    match frame {
        ClientFrame::Ping {} => Ok(Frame::Pong),
        ClientFrame::Resume { from, cursor } => {
            let user = owner(rt, &connection_id)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(shared::auth::unauthorized)?;
            let point = match (from, cursor) {
                (Some(from), None) => start_of(rt, &user, &from).await?,
                (None, Some(cursor)) => ResumePoint::parse(&cursor).ok_or_else(|| {
                    ApiError::validation("cursor", "not a `next` of this connection's resume")
                })?,
                _ => {
                    return Err(ApiError::validation(
                        "from",
                        "give `from` (a notification id) or `cursor` (a resume's `next`), not both",
                    ));
                }
            };
            resume(rt, &user, point).await
        }
    }
}

/// Where a resume continues: notifications delivered after `since` or whose id is after
/// `after`, and (a continued resume) whose id is after `last`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    pub since: String,
    pub after: String,
    pub last: Option<String>,
}

impl ResumePoint {
    pub fn cursor(&self) -> String {
        use base64::Engine;
        let text = format!(
            "{}\n{}\n{}",
            self.since,
            self.after,
            self.last.as_deref().unwrap_or("")
        );
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
        let mut parts = text.split('\n');
        let (since, after, last) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !crate::api::valid_id(after) || !valid_time(since) {
            return None;
        }
        let last = (!last.is_empty()).then(|| last.to_owned());
        if last.as_deref().is_some_and(|l| !crate::api::valid_id(l)) {
            return None;
        }
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

/// The resume point of the notification `from` of `user`: its id and when it reached the inbox.
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
    let since = get_s(&item, "delivered_at")
        .filter(|d| valid_time(d))
        .unwrap_or_else(|| from.split('#').next().unwrap_or_default().to_owned());
    Ok(ResumePoint {
        since,
        after: from.to_owned(),
        last: None,
    })
}

/// Whether an inbox item is after a resume point: its id after `after`, or delivered after
/// `since` (a late delivery whose id sorts before).
pub fn is_after(item: &InboxItem, point: &ResumePoint) -> bool {
    let id = item.sk.trim_start_matches(PREFIX);
    if point.last.as_deref().is_some_and(|l| id <= l) {
        return false;
    }
    id > point.after.as_str() || (!item.delivered_at.is_empty() && item.delivered_at > point.since)
}

/// The notifications after `point`, oldest id first, a page at a time.
async fn resume(rt: &Realtime, user: &str, point: ResumePoint) -> Result<Frame, ApiError> {
    // Ids sort by the change's time, never after the delivery: nothing delivered after `since`
    // has an id before `since - RESUME_LOOKBACK` (a delivery that late is out of scope).
    let since =
        time::OffsetDateTime::parse(&point.since, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::validation("cursor", "bad time"))?;
    let floor = shared::outbox::timestamp(since - RESUME_LOOKBACK);
    let low = match &point.last {
        Some(last) => format!("{PREFIX}{last}"),
        None => format!("{PREFIX}{floor}"),
    };
    let mut pages = shared::ddb::query_items(
        rt.ddb
            .query()
            .table_name(&rt.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(format!("USER#{user}")))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(format!("{PREFIX}~")))
            .consistent_read(true)
            .limit(RESUME_PAGE as i32 + 1),
    )
    .send();
    let mut items = Vec::new();
    let mut more = false;
    while let Some(i) = pages.next().await {
        let item: InboxItem =
            shared::ddb::from_item(i.map_err(ApiError::internal)?).map_err(ApiError::internal)?;
        if !is_after(&item, &point) {
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
            last: items.last().map(|n| n.id.clone()),
            ..point.clone()
        }
        .cursor()
    });
    metrics::counter!("RealtimeResumed").increment(items.len() as u64);
    Ok(Frame::Resume { items, next })
}

/// Pushes new notifications to their users' live connections (the consumer, after the inbox
/// write): one BatchGetItem per 100 users for their connection maps, then one PostToConnection
/// per live connection. Never fails: what it could not push is counted and logged, and the
/// inbox has it.
pub struct Pusher {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub api: aws_sdk_apigatewaymanagement::Client,
}

/// Pushes in flight at once.
const PUSH_CONCURRENCY: usize = 16;

impl Pusher {
    /// `endpoint`: the WebSocket API's management endpoint
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
    pub fn new(app: &shared::App, endpoint: &str) -> Self {
        let sdk = app.clients.sdk_config();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .interceptor(shared::aws::call_spans(sdk, "ApiGatewayManagement"))
            .build();
        Pusher {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
            api: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }

    /// Sends `items` (each written to its user's inbox) to the users' live connections.
    pub async fn push(&self, items: &[InboxItem]) {
        use futures_util::StreamExt;
        if items.is_empty() {
            return;
        }
        let now = now_s();
        let mut targets = Vec::new();
        for chunk in items.chunks(100) {
            let mut seen = std::collections::HashSet::new();
            let keys: Vec<Item> = chunk
                .iter()
                .filter(|i| seen.insert(i.pk.clone()))
                .map(|i| user_conns_key(i.pk.trim_start_matches("USER#")))
                .collect();
            let mut retry = shared::ddb::Retry::within("BatchGetItem", Duration::from_secs(2));
            let found =
                match shared::ddb::batch_get_consistent(&self.ddb, &self.table, keys, &mut retry)
                    .await
                {
                    Ok(Some(found)) => found,
                    Ok(None) | Err(_) => {
                        metrics::counter!("RealtimePushFailures").increment(chunk.len() as u64);
                        tracing::warn!(
                            users = chunk.len(),
                            "reading the users' connections failed; not pushed (the inbox has them)"
                        );
                        continue;
                    }
                };
            let by_user: HashMap<String, HashMap<String, u64>> = found
                .iter()
                .filter_map(|i| Some((get_s(i, "pk")?, connections_of(i))))
                .collect();
            for item in chunk {
                let live: Vec<&String> = by_user
                    .get(&item.pk)
                    .into_iter()
                    .flatten()
                    .filter(|(_, expires)| **expires > now)
                    .map(|(connection, _)| connection)
                    .collect();
                if live.is_empty() {
                    continue;
                }
                let frame = Frame::Notification {
                    notification: Notification::of(item.clone(), false),
                };
                let body = serde_json::to_vec(&frame).unwrap_or_default();
                for connection in live {
                    targets.push((item.pk.clone(), connection.clone(), body.clone()));
                }
            }
        }
        let mut sends = futures_util::stream::iter(targets)
            .map(|(pk, connection, body)| async move {
                let outcome = self.post(&connection, body).await;
                (pk, connection, outcome)
            })
            .buffer_unordered(PUSH_CONCURRENCY);
        while let Some((pk, connection, outcome)) = sends.next().await {
            match outcome {
                Posted::Sent => metrics::counter!("RealtimePushes").increment(1),
                Posted::Gone => {
                    metrics::counter!("RealtimeGone").increment(1);
                    let user = pk.trim_start_matches("USER#");
                    if let Err(e) = forget(&self.ddb, &self.table, user, &connection).await {
                        tracing::warn!(error.cause_chain = %shared::error_chain_anyhow(&e), "removing a gone connection failed (it expires anyway)");
                    }
                }
                Posted::Failed(e) => {
                    metrics::counter!("RealtimePushFailures").increment(1);
                    tracing::warn!(error = %e, "a push failed (the inbox has it)");
                }
            }
        }
    }

    async fn post(&self, connection: &str, body: Vec<u8>) -> Posted {
        use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
        match self
            .api
            .post_to_connection()
            .connection_id(connection)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(body))
            .send()
            .await
        {
            Ok(_) => Posted::Sent,
            Err(e) => match e.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => Posted::Gone,
                _ => Posted::Failed(shared::error_chain(&e)),
            },
        }
    }
}

enum Posted {
    Sent,
    Gone,
    Failed(String),
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

    fn item(id: &str, delivered: &str) -> InboxItem {
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
            delivered_at: delivered.into(),
            trace_id: String::new(),
        }
    }

    const A: &str = "2026-12-07T10:00:00.000000Z#00000000000000000000000000000001";
    const B: &str = "2026-12-07T10:00:01.000000Z#00000000000000000000000000000002";
    const C: &str = "2026-12-07T10:00:02.000000Z#00000000000000000000000000000003";

    #[test]
    fn a_resume_takes_later_ids_and_late_deliveries_once() {
        let point = ResumePoint {
            since: "2026-12-07T10:00:01.500000Z".into(),
            after: B.into(),
            last: None,
        };
        // After the point by id.
        assert!(is_after(&item(C, "2026-12-07T10:00:02.100000Z"), &point));
        // The point itself and what came before it, delivered before it: not again.
        assert!(!is_after(&item(B, "2026-12-07T10:00:01.500000Z"), &point));
        assert!(!is_after(&item(A, "2026-12-07T10:00:00.100000Z"), &point));
        // A late delivery: its id sorts before the point, it reached the inbox after.
        assert!(is_after(&item(A, "2026-12-07T10:00:03.000000Z"), &point));
        // A continued resume skips what the previous page had.
        let next = ResumePoint {
            last: Some(C.into()),
            ..point.clone()
        };
        assert!(!is_after(&item(C, "2026-12-07T10:00:02.100000Z"), &next));
        assert!(!is_after(&item(A, "2026-12-07T10:00:03.000000Z"), &next));
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let point = ResumePoint {
            since: "2026-12-07T10:00:01.500000Z".into(),
            after: B.into(),
            last: Some(C.into()),
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
        let forged =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("yesterday\nnot-an-id\n");
        assert_eq!(ResumePoint::parse(&forged), None);
    }

    #[test]
    fn frames_are_tagged_and_unknown_ones_refused() {
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(r#"{"action":"ping"}"#),
            Ok(ClientFrame::Ping {})
        ));
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(&format!(r#"{{"action":"resume","from":"{A}"}}"#)),
            Ok(ClientFrame::Resume {
                from: Some(_),
                cursor: None
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
            serde_json::to_string(&Frame::Pong).unwrap(),
            r#"{"type":"pong"}"#
        );
    }
}
