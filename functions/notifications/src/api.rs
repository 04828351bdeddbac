//! A user's notifications: `GET /v1/me/notifications` (newest first, paginated) and
//! `POST /v1/me/notifications/read` (everything up to a notification is read).
//!
//! Inbox items are `USER#<id>` / `NOTIF#<occurred_at>#<message id>` (written by the consumer);
//! the read mark is `USER#<id>` / `NOTIFREAD` holding the sort key read up to. A notification's
//! id is its sort key without the prefix, so ids order like the notifications.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::cursor::{Page, Position};
use shared::http::{Request, RequestParts, Response, json};
use utoipa::ToSchema;

use shared::ddb::Item;

pub const PREFIX: &str = "NOTIF#";
const READ_MARK: &str = "NOTIFREAD";

pub struct Notifications {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub cursor_key: shared::cursor::CursorKey,
}

impl Notifications {
    /// Fails at start, naming `CURSOR_KEY_SECRET_ID`, when it is not set.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
            cursor_key: shared::cursor::cursor_key(app)?,
        }))
    }
}

/// One notification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Orders like the notifications; pass it to `POST /v1/me/notifications/read`.
    #[schema(example = "2026-11-23T10:15:00.123456Z#0f8e6c1d2b3a49e8a7f6e5d4c3b2a190")]
    pub id: String,
    /// `join.created`, `join.waitlisted`, `join.promoted`, `join.refused` (a hot event's queued
    /// join that its closing refused), `event.cancelled` or `event.changed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub summary: String,
    pub event_id: String,
    pub occurred_at: String,
    pub read: bool,
    pub data: serde_json::Value,
}

impl Notification {
    /// An inbox item as its user sees it (here and on the realtime channel).
    pub fn of(i: crate::inbox::InboxItem, read: bool) -> Self {
        let id = i.sk.trim_start_matches(PREFIX).to_owned();
        Notification {
            read,
            // Items written before occurred_at was stored: the id starts with it.
            occurred_at: if i.occurred_at.is_empty() {
                id.split('#').next().unwrap_or_default().to_owned()
            } else {
                i.occurred_at
            },
            id,
            kind: i.kind,
            summary: i.summary,
            event_id: i.aggregate_id,
            data: serde_json::from_str(&i.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of notifications, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Notifications after the read mark, on this page.
    pub unread_on_page: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Marks every notification up to and including `up_to` as read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// A notification id from `GET /v1/me/notifications`.
    #[schema(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z#[0-9a-f]{32}$"
    )]
    pub up_to: String,
}

/// The read mark after the request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadMark {
    pub read_up_to: String,
}

use shared::ddb::{get_s, s};

/// A notification id: an RFC 3339 UTC time with six fraction digits, `#`, 32 hex digits.
pub fn valid_id(id: &str) -> bool {
    let Some((at, msg)) = id.split_once('#') else {
        return false;
    };
    at.len() == 27
        && at.ends_with('Z')
        && time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok()
        && msg.len() == 32
        && msg
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The key of the item `sk` in the partition of user `user` (inbox items, the read mark).
fn user_key(user: &str, sk: impl Into<String>) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("USER#{user}"))),
        ("sk".into(), s(sk)),
    ])
}

impl Notifications {
    /// The read mark: up to which id, and when it was last set (None for marks set before
    /// the time was kept).
    async fn read_mark(&self, user: &str) -> anyhow::Result<Option<(String, Option<String>)>> {
        let key = user_key(user, READ_MARK);
        let item = shared::ddb::get_consistent(&self.ddb, &self.table, key).await?;
        Ok(item.map(|i| {
            let at = get_s(&i, "marked_at").filter(|a| !a.is_empty());
            (get_s(&i, "read_up_to").unwrap_or_default(), at)
        }))
    }
}

shared::error_answers!(
    /// What my notifications answer besides a page.
    ListErrors:
    BAD_REQUEST => shared::answers::BAD_CURSOR,
);

#[utoipa::path(get, path = "/v1/me/notifications", tag = "notifications", operation_id = "list_notifications", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "My notifications, newest first", body = NotificationPage),
        ListErrors,
    ))]
pub async fn list(n: &Notifications, req: Request) -> Result<Response, ApiError> {
    let user = req.user()?.id.clone();
    let page = Page::of(&req, &n.cursor_key, 20, &["notifications", &user]).await?;
    let limit = page.limit;
    let pk = format!("USER#{user}");
    let (mark, marked_at) = n.read_mark(&user).await?.unwrap_or_default();
    let start = page
        .after
        .as_ref()
        .map(|p| user_key(&user, format!("{PREFIX}{}", p.id)));
    let mut pages = shared::ddb::query_items(
        n.ddb
            .query()
            .table_name(&n.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":prefix", s(PREFIX))
            .scan_index_forward(false)
            .limit((limit + 1) as i32)
            .set_exclusive_start_key(start),
    )
    .send();
    let mut items = Vec::new();
    let mut more = false;
    while let Some(i) = pages.next().await {
        let i: crate::inbox::InboxItem =
            shared::ddb::from_item(i.map_err(ApiError::internal)?).map_err(ApiError::internal)?;
        let id = i.sk.trim_start_matches(PREFIX).to_owned();
        // Read: at or before the mark, and already in the inbox when the mark was set — a
        // notification that arrived late (its change committed earlier, its delivery was
        // retried) is news even though its id sorts before the mark.
        let arrived_before_mark = match &marked_at {
            Some(at) if !i.delivered_at.is_empty() => i.delivered_at.as_str() <= at.as_str(),
            _ => true,
        };
        if items.len() == limit {
            more = true;
            break;
        }
        let read = !mark.is_empty() && id.as_str() <= mark.as_str() && arrived_before_mark;
        items.push(Notification::of(i, read));
    }
    let last = more.then(|| items.last()).flatten();
    let next_cursor = page.next(last.map(|l| Position::after_id(&l.id)));
    let unread_on_page = items.iter().filter(|i| !i.read).count();
    json(
        StatusCode::OK,
        &NotificationPage {
            items,
            unread_on_page,
            next_cursor,
        },
    )
}

shared::error_answers!(
    /// What marking notifications read answers besides the mark.
    MarkReadErrors:
    VALIDATION => "`up_to` is not a notification id",
);

#[utoipa::path(post, path = "/v1/me/notifications/read", tag = "notifications", security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, description = "Read up to the given id (the mark never moves back). A notification that reaches the inbox after the mark was set stays unread (its id may sort before the mark when its delivery was late) until the next mark", body = ReadMark),
        MarkReadErrors,
    ))]
pub async fn mark_read(n: &Notifications, req: Request) -> Result<Response, ApiError> {
    let input: MarkRead = req.json_body()?;
    if !valid_id(&input.up_to) {
        return Err(ApiError::validation(
            "up_to",
            "must be a notification id from GET /v1/me/notifications",
        ));
    }
    // A state change: the caller's session must be live (one consistent read).
    shared::session::require_live(&n.ddb, &n.table, req.user()?).await?;
    let user = req.user()?.id.clone();
    let result = n
        .ddb
        .update_item()
        .table_name(&n.table)
        .set_key(Some(user_key(&user, READ_MARK)))
        // Marking up to the current mark again (or beyond) also marks what arrived since.
        .update_expression("SET read_up_to = :id, marked_at = :now")
        .condition_expression("attribute_not_exists(read_up_to) OR read_up_to <= :id")
        .expression_attribute_values(":id", s(&input.up_to))
        .expression_attribute_values(
            ":now",
            s(shared::outbox::timestamp(time::OffsetDateTime::now_utc())),
        )
        .send()
        .await;
    // A later mark already set: it stands.
    shared::ddb::written(result).map_err(ApiError::internal)?;
    let mark = n
        .read_mark(&user)
        .await?
        .map(|(id, _)| id)
        .unwrap_or(input.up_to);
    json(StatusCode::OK, &ReadMark { read_up_to: mark })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_checked() {
        assert!(valid_id(
            "2026-11-23T10:15:00.123456Z#0f8e6c1d2b3a49e8a7f6e5d4c3b2a190"
        ));
        for bad in [
            "",
            "x",
            "2026-11-23T10:15:00Z#0f8e6c1d2b3a49e8a7f6e5d4c3b2a190",
            "2026-11-23T10:15:00.123456Z#0F8E6C1D2B3A49E8A7F6E5D4C3B2A190",
            "2026-11-23T10:15:00.123456Z#short",
            "2026-13-23T10:15:00.123456Z#0f8e6c1d2b3a49e8a7f6e5d4c3b2a190",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
