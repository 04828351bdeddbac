//! Pushing new notifications to their users' live connections (the consumer, after the inbox
//! write; docs/realtime.md). Never fails the message: what it could not push is counted and
//! logged, and the inbox has it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use shared::ddb::{Item, get_s};
use shared::outbox::OutboxMessage;

use crate::api::Notification;
use crate::connections::{self, Entry};
use crate::inbox::InboxItem;
use crate::realtime::Frame;

/// Posts in flight at once.
const PUSH_CONCURRENCY: usize = 16;
/// The most one call of [`Pusher::push`] spends, reads and posts together (a fan-out chunk's
/// continuation is queued before it).
pub const PUSH_BUDGET: Duration = Duration::from_secs(2);
/// The most the pushes of one invocation spend together: a batch of 10 messages keeps most of
/// the consumer's 30 s timeout for its writes. Past it, messages are not pushed (the inbox has
/// them; `RealtimePushSkipped`).
pub const INVOCATION_PUSH_BUDGET: Duration = Duration::from_secs(8);
/// A connection this young may still be in its handshake, when API Gateway answers 410 to a
/// post: not removed for that.
const HANDSHAKE_GRACE_S: u64 = 10;

/// The consumer's pusher: the table and the WebSocket API's management API.
pub struct Pusher {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub api: aws_sdk_apigatewaymanagement::Client,
    /// When this invocation's pushes must be done by ([`Pusher::start_invocation`]).
    deadline: std::sync::Mutex<Option<Instant>>,
}

impl Pusher {
    /// `endpoint`: the WebSocket API's management endpoint
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`). Each post is one try of
    /// at most a second and one retry: a slow management API costs the budget, not the batch.
    pub fn new(app: &shared::App, endpoint: &str) -> Self {
        let sdk = app.clients.sdk_config();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_millis(1500))
                    .build(),
            )
            .interceptor(shared::aws::call_spans(sdk, "ApiGatewayManagement"))
            .build();
        Pusher {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
            api: aws_sdk_apigatewaymanagement::Client::from_conf(config),
            deadline: std::sync::Mutex::new(None),
        }
    }

    /// A new invocation: its pushes share [`INVOCATION_PUSH_BUDGET`] from now.
    pub fn start_invocation(&self) {
        *self.deadline.lock().expect("push deadline") =
            Some(Instant::now() + INVOCATION_PUSH_BUDGET);
    }

    /// What one push may spend: [`PUSH_BUDGET`], within what is left of the invocation's.
    fn budget(&self) -> Duration {
        let left = self
            .deadline
            .lock()
            .expect("push deadline")
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(INVOCATION_PUSH_BUDGET);
        PUSH_BUDGET.min(left)
    }

    /// Sends `message` (written to each of `users`' inboxes) to their live connections whose
    /// session is live: one BatchGetItem per 100 users for the connection maps, one per 100
    /// sessions, then one PostToConnection per connection, all within [`Pusher::budget`].
    pub async fn push(&self, users: &[String], message: &OutboxMessage) {
        if users.is_empty() {
            return;
        }
        let budget = self.budget();
        let skipped = |why: &str| {
            metrics::counter!("RealtimePushSkipped").increment(1);
            tracing::warn!(message_id = %message.id, budget_ms = budget.as_millis() as u64, "{why} (the inbox has what was not pushed)");
        };
        if budget.is_zero() {
            return skipped("no push time left in this invocation");
        }
        let deadline = Instant::now() + budget;
        if tokio::time::timeout(budget, self.push_within(users, message, deadline))
            .await
            .is_err()
        {
            skipped("the push budget ran out reading connections and sessions");
        }
    }

    async fn push_within(&self, users: &[String], message: &OutboxMessage, deadline: Instant) {
        let now = crate::realtime::now_s();
        let mut targets: Vec<(String, Entry)> = Vec::new();
        let mut seen = HashSet::new();
        let users: Vec<&String> = users.iter().filter(|u| seen.insert(*u)).collect();
        for chunk in users.chunks(100) {
            let keys = chunk
                .iter()
                .map(|u| connections::user_conns_key(u))
                .collect();
            let Some(maps) = self.read(keys).await else {
                continue;
            };
            for map in &maps {
                let Some(user) = get_s(map, "pk")
                    .map(|pk| pk.trim_start_matches(connections::CONNS_PREFIX).to_owned())
                else {
                    continue;
                };
                for e in connections::entries_of(map) {
                    if e.live(now) {
                        targets.push((user.clone(), e));
                    }
                }
            }
        }
        if targets.is_empty() {
            return;
        }
        // Only to live sessions: a logged-out session's connection is removed, not pushed to.
        let mut sessions: Vec<(String, String)> = targets
            .iter()
            .map(|(u, e)| (u.clone(), e.session_id.clone()))
            .collect();
        sessions.sort();
        sessions.dedup();
        let mut live_sessions = HashSet::new();
        let mut unknown = HashSet::new();
        for chunk in sessions.chunks(100) {
            let keys = chunk
                .iter()
                .map(|(u, s)| shared::session::session_key(u, s))
                .collect();
            match self.read(keys).await {
                Some(items) => {
                    for i in items.iter().filter(|i| shared::session::is_live(i)) {
                        if let (Some(pk), Some(sk)) = (get_s(i, "pk"), get_s(i, "sk")) {
                            live_sessions.insert((
                                pk.trim_start_matches("USER#").to_owned(),
                                sk.trim_start_matches(shared::session::SESSION_PREFIX)
                                    .to_owned(),
                            ));
                        }
                    }
                }
                None => unknown.extend(chunk.iter().cloned()),
            }
        }
        let mut posts = Vec::new();
        for (user, e) in targets {
            let session = (user.clone(), e.session_id.clone());
            if unknown.contains(&session) {
                continue;
            }
            if !live_sessions.contains(&session) {
                metrics::counter!("RealtimeSessionEnded").increment(1);
                self.forget(&user, &e.id).await;
                continue;
            }
            posts.push((user, e));
        }
        // One frame per user pushed to (not per recipient: most have no connection).
        let mut frames: HashMap<String, Vec<u8>> = HashMap::new();
        for (user, _) in &posts {
            frames.entry(user.clone()).or_insert_with(|| {
                let frame = Frame::Notification {
                    notification: Notification::of(InboxItem::new(user, message), false),
                };
                serde_json::to_vec(&frame).unwrap_or_default()
            });
        }
        let total = posts.len();
        let mut done = 0;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut sends = futures_util::stream::iter(posts)
            .map(|(user, e)| {
                let body = frames.get(&user).cloned().unwrap_or_default();
                async move {
                    let outcome = self.post(&e.id, body).await;
                    (user, e, outcome)
                }
            })
            .buffer_unordered(PUSH_CONCURRENCY);
        let _ = tokio::time::timeout(left, async {
            while let Some((user, e, outcome)) = sends.next().await {
                done += 1;
                match outcome {
                    Posted::Sent => metrics::counter!("RealtimePushes").increment(1),
                    Posted::Gone if now.saturating_sub(e.connected_at) < HANDSHAKE_GRACE_S => {
                        tracing::debug!(connection = %e.id, "a connection still in its handshake answered gone");
                    }
                    Posted::Gone => {
                        metrics::counter!("RealtimeGone").increment(1);
                        self.forget(&user, &e.id).await;
                    }
                    Posted::Failed(why) => {
                        metrics::counter!("RealtimePushFailures").increment(1);
                        tracing::warn!(error = %why, "a push failed (the inbox has it)");
                    }
                }
            }
        })
        .await;
        if done < total {
            metrics::counter!("RealtimePushFailures").increment((total - done) as u64);
            tracing::warn!(
                not_pushed = total - done,
                "posts left when the push budget ran out (the inbox has them)"
            );
        }
    }

    /// The items at `keys` (≤ 100), read consistently; `None` (counted, logged) when the read
    /// failed: those users are not pushed to.
    async fn read(&self, keys: Vec<Item>) -> Option<Vec<Item>> {
        let mut retry = shared::ddb::Retry::within("BatchGetItem", Duration::from_millis(500));
        match shared::ddb::batch_get_consistent(&self.ddb, &self.table, keys, &mut retry).await {
            Ok(Some(items)) => Some(items),
            Ok(None) | Err(_) => {
                metrics::counter!("RealtimeLookupFailures").increment(1);
                tracing::warn!(
                    "reading connections or sessions failed; not pushed (the inbox has them)"
                );
                None
            }
        }
    }

    async fn forget(&self, user: &str, connection: &str) {
        if let Err(e) = connections::forget(&self.ddb, &self.table, user, connection).await {
            tracing::warn!(error.cause_chain = %shared::error_chain_anyhow(&e), "removing a connection failed (its lease ends anyway)");
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
