//! A hot event's joins (decision 0012): `POST /v1/events/{id}/join` queues the request on the
//! event's message group of the FIFO join intake queue and waits a moment for its outcome; the
//! intake writer, the only writer of that group, admits the requests in arrival order, ten to a
//! transaction ([`seating::rules::admit`]), each request's outcome committed as its
//! Idempotency-Key's record with its seat and its outbox message.
//!
//! The handler writes nothing to DynamoDB: it reads the event, the key's record and the caller's
//! membership, sends one message, then reads the key's record until it holds the outcome
//! (at most [`WAIT`]), else answers 202 `pending` with a `Location` to poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

use time::OffsetDateTime;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::TransactWriteItem;
use events::api::now;
use http::{HeaderValue, StatusCode, header};
use lambda_http::RequestExt;
use seating::dynamo::{DynamoSeats, event_key, membership_key, venue_from_item};
use seating::rules::{self, JoinView, Verdict};
use seating::{JoinError, Membership, State, Venue};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::User;
use shared::ddb::{Item, get_s};
use shared::http::{Request, RequestParts, Response, json};
use shared::idempotency::{Idempotency, KeyRef, REPLAYED, record_put};
use shared::outbox::OutboxMessage;
use shared::queue::FifoQueue;
use utoipa::ToSchema;

/// How long a join of a hot event waits for its own outcome before answering 202 pending.
pub const WAIT: Duration = Duration::from_millis(2500);
/// How long this instance's recent queued joins waited for their outcome (ms, a moving
/// average: each wait counts a fifth). Every read of an outcome is a request on the table the
/// writer writes to, so a crowd of waiting joins reading early and often would slow the writer
/// they wait for: the next join reads first at 80 % of the typical wait, then every quarter of
/// it ([`pauses`]). A quiet event's join (a batch: ~250 ms) reads after 200 ms; in a rush
/// (~1 s) after 800 ms, then every 250 ms: 1 to 3 reads a join either way.
static TYPICAL_WAIT_MS: AtomicU64 = AtomicU64::new(250);

/// The first pause and the next ones, for a typical wait of `typical_ms`.
fn pauses(typical_ms: u64) -> (Duration, Duration) {
    (
        Duration::from_millis((typical_ms * 4 / 5).clamp(100, 2000)),
        Duration::from_millis((typical_ms / 4).clamp(100, 500)),
    )
}

/// The typical wait after one more join waited `waited`.
fn learn(typical_ms: u64, waited: Duration) -> u64 {
    (typical_ms * 4 + waited.as_millis() as u64) / 5
}

fn remember(waited: Duration) {
    let _ = TYPICAL_WAIT_MS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
        Some(learn(t, waited))
    });
}

/// One queued join: who asks (and under which session), the key its outcome is recorded
/// under, and what the stored answer names (the request's path and id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeRequest {
    pub event_id: String,
    pub user_id: String,
    pub session_id: String,
    pub key: KeyRef,
    pub path: String,
    #[serde(default)]
    pub request_id: Option<String>,
    /// When it was queued (Unix seconds; 0 when unknown): a request older than [`MAX_AGE`]
    /// (a redrive from the DLQ long after) is not admitted, its key's record having expired.
    #[serde(default)]
    pub queued_at: i64,
    /// The queued message's AWSTraceHeader (the handler's SendMessage), read on receipt.
    #[serde(skip)]
    pub trace: Option<String>,
}

/// The oldest request the writer admits: half the 24 h for which a key's record answers, so
/// that a request is never admitted after its key could have been used again.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// A join of a hot event that is still in the event's queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinPending {
    pub event_id: String,
    pub user_id: String,
    /// Always `pending`: poll `Location` (`GET /v1/events/{id}/join`) or resend the same
    /// Idempotency-Key.
    #[schema(example = "pending", pattern = "^pending$")]
    pub state: String,
}

/// A 202 answer: waitlisted, or (a hot event) still queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JoinAccepted {
    Waitlisted(JoinView),
    Pending(JoinPending),
}

/// A join's answer: 201 with a seat, 202 on the waitlist.
pub fn join_answer(view: &JoinView) -> Result<Response, ApiError> {
    let status = match view.state {
        State::Joined => StatusCode::CREATED,
        State::Waitlisted => StatusCode::ACCEPTED,
    };
    json(status, view)
}

/// What a join reads before it knows its path, in one consistent BatchGetItem: the event, the
/// request's key record and the caller's membership.
pub struct FirstReads {
    pub venue: Option<Venue>,
    pub record: Option<Item>,
    pub member: Option<Membership>,
}

/// Reads [`FirstReads`] of `event_id` for `user_id` and `key`.
pub async fn first_reads(
    seats: &DynamoSeats,
    event_id: &str,
    user_id: &str,
    key: &KeyRef,
) -> anyhow::Result<FirstReads> {
    let keys = vec![
        event_key(event_id),
        key.record_key(),
        membership_key(user_id, event_id),
    ];
    let mut retry = shared::ddb::Retry::within("BatchGetItem", Duration::from_secs(1))
        .pacing(Duration::from_millis(20), Duration::from_millis(200));
    let found = shared::ddb::batch_get_consistent(&seats.ddb, &seats.table, keys, &mut retry)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "BatchGetItem left keys unprocessed for 1 s (ProvisionedThroughputExceeded)"
            )
        })?;
    let sk = |i: &Item| get_s(i, "sk").unwrap_or_default();
    let mut reads = FirstReads {
        venue: None,
        record: None,
        member: None,
    };
    for item in found {
        match sk(&item).as_str() {
            "EVENT" => reads.venue = Some(venue_from_item(&item)?),
            "IDEM" => reads.record = Some(item),
            _ => reads.member = shared::ddb::from_item(item).ok(),
        }
    }
    Ok(reads)
}

/// The join of a hot event (`venue`): queued, then its outcome if it comes within [`WAIT`].
pub async fn enqueue(
    idempotency: &Idempotency,
    seats: &DynamoSeats,
    queue: &FifoQueue,
    req: Request,
    key: KeyRef,
    reads: FirstReads,
    venue: Venue,
) -> Result<Response, ApiError> {
    let user = req.user()?;
    if let Some(answer) = idempotency.answer_of(&key, reads.record)? {
        return Ok(answer);
    }
    let request_id = req
        .extensions()
        .get::<shared::http::Invocation>()
        .map(|i| i.request_id.clone());
    // What is certain before queueing is answered at once, and recorded for the key as the
    // synchronous path records a refusal (a resend replays it).
    let refusal = match (venue.closed(now()), &reads.member) {
        (Some(why), _) => Some(JoinError::NotJoinable(why)),
        (None, Some(m)) => Some(JoinError::AlreadyJoined(m.state)),
        (None, None) => None,
    };
    if let Some(e) = refusal {
        let answer = ApiError::from(e).into_response(Some(req.uri().path()), request_id.as_deref());
        return Ok(idempotency.record(&key, answer).await);
    }
    let request = IntakeRequest {
        event_id: venue.id.clone(),
        user_id: user.id.clone(),
        session_id: user.session_id.clone(),
        key: key.clone(),
        path: req.uri().path().to_owned(),
        request_id,
        queued_at: OffsetDateTime::now_utc().unix_timestamp(),
        trace: None,
    };
    let body = serde_json::to_string(&request).map_err(ApiError::internal)?;
    // One message per key and session: a resend while it is queued is the same message (5
    // minutes), and a resend after signing in again (its join dropped for the revoked
    // session) is a new one.
    let dedup = shared::ids::digest_hex(&format!("{}\n{}", key.pk, user.session_id));
    queue
        .send(&body, &venue.id, &dedup, &[])
        .await
        .map_err(ApiError::internal)?;
    metrics::counter!("HotJoinsQueued").increment(1);
    let started = Instant::now();
    let deadline = wait_deadline(&req, started);
    let (mut pause, every) = pauses(TYPICAL_WAIT_MS.load(Ordering::Relaxed));
    while Instant::now() + pause <= deadline {
        tokio::time::sleep(pause).await;
        pause = every;
        // The join is queued: a failing read now means "not known yet", never an error.
        match idempotency.answered(&key).await {
            Ok(Some(mut answer)) => {
                // This request's own outcome, not a replay of an earlier one.
                answer.headers_mut().remove(REPLAYED);
                remember(started.elapsed());
                metrics::histogram!("HotJoinWaitMs").record(started.elapsed().as_secs_f64() * 1e3);
                return Ok(answer);
            }
            Ok(None) => {}
            Err(e) if e.status.is_server_error() => {
                tracing::warn!(status = %e.status, "reading the queued join's outcome failed");
            }
            // The key's record answers for another request (422) or another attempt (409).
            Err(e) => return Err(e),
        }
    }
    // A revoked session's join is dropped by the writer: say so rather than "pending".
    match shared::session::require_live(&seats.ddb, &seats.table, user).await {
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(e),
        _ => {}
    }
    remember(started.elapsed());
    metrics::counter!("HotJoinsPending").increment(1);
    pending(&venue.id, &user.id)
}

/// When the wait for the outcome ends: after [`WAIT`], and 1.5 s before the invocation's
/// deadline at the latest.
fn wait_deadline(req: &Request, started: Instant) -> Instant {
    let mut deadline = started + WAIT;
    if let Some(ctx) = req.lambda_context_ref() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let left = Duration::from_millis(ctx.deadline.saturating_sub(now_ms));
        deadline = deadline.min(started + left.saturating_sub(Duration::from_millis(1500)));
    }
    deadline
}

/// 202 pending, with where to poll.
fn pending(event_id: &str, user_id: &str) -> Result<Response, ApiError> {
    let view = JoinPending {
        event_id: event_id.to_owned(),
        user_id: user_id.to_owned(),
        state: "pending".into(),
    };
    let mut r = json(StatusCode::ACCEPTED, &view)?;
    let location = format!("/v1/events/{event_id}/join");
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Ok(r)
}

// ------------------------------------------------------------------ the writer

/// How long one invocation of the writer spends admitting (its timeout is 30 s): what is not
/// admitted by then returns to the queue.
const ADMIT_BUDGET: Duration = Duration::from_secs(20);
/// How soon a batch that failed comes back, by its receive count: 2, 8, 32, 128, then 180 s (the
/// visibility timeout) — soon after a blip, during which the event's later joins wait behind
/// it, and spaced out over a longer outage (maxReceiveCount 10: about 20 minutes before the
/// DLQ).
fn retry_after(receives: u32) -> i32 {
    let exponent = receives.saturating_sub(1).min(4);
    (2 * 4_i32.pow(exponent)).min(180)
}

/// The intake writer: the join intake queue's consumer.
pub struct Writer {
    pub seats: DynamoSeats,
    /// Each event as this instance's last admission left it: the next batch starts from it
    /// instead of a read (stale after someone else's change: one refused commit, then the
    /// event as DynamoDB returned it).
    pub last: std::sync::Mutex<HashMap<String, Venue>>,
    /// The intake queue (a failed batch is made visible again soon).
    pub intake: FifoQueue,
    /// Where a message that is not an intake request goes (the intake queue's DLQ).
    pub dead: FifoQueue,
}

impl Writer {
    /// Fails at start, naming `JOIN_INTAKE_QUEUE_URL` or `JOIN_INTAKE_DLQ_URL`, when it is
    /// not set.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        let queue = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|u| !u.is_empty())
                .map(|url| FifoQueue {
                    sqs: app.clients.sqs().clone(),
                    url,
                })
                .ok_or_else(|| anyhow::anyhow!("missing configuration: {name}"))
        };
        Ok(Arc::new(Writer {
            seats: DynamoSeats::new(app),
            last: Default::default(),
            intake: queue("JOIN_INTAKE_QUEUE_URL")?,
            dead: queue("JOIN_INTAKE_DLQ_URL")?,
        }))
    }

    /// Admits a batch: per event (message group), its requests in arrival order in one
    /// admission. An event whose admission fails is redelivered whole (its messages reported
    /// failed, in order); the other events' go on.
    pub async fn handle(&self, event: SqsEvent) -> anyhow::Result<SqsBatchResponse> {
        let deadline = Instant::now() + ADMIT_BUDGET;
        let mut groups: Vec<(String, Vec<(String, IntakeRequest)>)> = Vec::new();
        let mut receipts = std::collections::HashMap::new();
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            if let Some(r) = &record.receipt_handle {
                let receives = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                receipts.insert(id.clone(), (r.clone(), receives));
            }
            let body = record.body.clone().unwrap_or_default();
            let request: IntakeRequest = match serde_json::from_str(&body) {
                Ok(r) => IntakeRequest {
                    trace: record.attributes.get("AWSTraceHeader").cloned(),
                    ..r
                },
                Err(e) => {
                    metrics::counter!("IntakeMalformed").increment(1);
                    tracing::error!(message_id = %id, error = %e, "not an intake request: to the DLQ");
                    if let Err(e) = self.dead.send(&body, "malformed", &id, &[]).await {
                        tracing::error!(error = %e, "DLQ send failed; redelivered");
                        response.batch_item_failures.push(failure(&id));
                    }
                    continue;
                }
            };
            match groups.iter_mut().find(|(e, _)| *e == request.event_id) {
                Some((_, list)) => list.push((id, request)),
                None => groups.push((request.event_id.clone(), vec![(id, request)])),
            }
        }
        // The events of a batch are admitted at once, under the one deadline: a slow event does
        // not use up the others' time.
        let outcomes = futures_util::future::join_all(groups.iter().map(|(event_id, list)| {
            let requests: Vec<IntakeRequest> = list.iter().map(|(_, r)| r.clone()).collect();
            async move { self.apply(event_id, &requests, deadline).await }
        }))
        .await;
        for ((event_id, list), outcome) in groups.iter().zip(outcomes) {
            let Err(e) = outcome else { continue };
            tracing::warn!(event_id = %event_id, error = %e, "admission failed; the batch returns to the queue");
            metrics::counter!("HotBatchFailures").increment(1);
            for (id, _) in list {
                // Back soon rather than after the visibility timeout: the event's later joins
                // wait behind it. (If this fails, the timeout still brings it back.)
                if let Some((r, receives)) = receipts.get(id)
                    && let Err(e) = self.intake.retry_soon(r, retry_after(*receives)).await
                {
                    tracing::warn!(error = %e, "could not shorten the failed message's visibility");
                }
                response.batch_item_failures.push(failure(id));
            }
        }
        Ok(response)
    }

    /// One event's requests, admitted in one commit (a key queued twice counts once).
    async fn apply(
        &self,
        event_id: &str,
        requests: &[IntakeRequest],
        deadline: Instant,
    ) -> Result<(), JoinError> {
        // A key queued twice (a resend after signing in again) counts once, as its latest
        // message: the one with the live session.
        let latest: HashMap<&str, usize> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key.pk.as_str(), i))
            .collect();
        let oldest = OffsetDateTime::now_utc().unix_timestamp() - MAX_AGE.as_secs() as i64;
        let requests: Vec<&IntakeRequest> = requests
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                let stale = r.queued_at != 0 && r.queued_at < oldest;
                if stale {
                    metrics::counter!("HotJoinsExpired").increment(1);
                    tracing::warn!(user_id = %r.user_id, queued_at = r.queued_at, "a queued join older than 12 h: not admitted");
                }
                !stale && latest.get(r.key.pk.as_str()) == Some(i)
            })
            .map(|(_, r)| r)
            .collect();
        if requests.is_empty() {
            return Ok(());
        }
        let users: Vec<String> = requests.iter().map(|r| r.user_id.clone()).collect();
        let table = self.seats.table.clone();
        let tail = |i: usize, outcome: &Result<JoinView, JoinError>| {
            outcome_items(&table, requests[i], outcome)
        };
        let retry = shared::ddb::Retry::until("Admit", deadline).attempts(200);
        let start = self.last.lock().ok().and_then(|m| m.get(event_id).cloned());
        // One commit serves the batch: in X-Ray a segment of the first request's trace (its
        // handler's SendMessage is the parent), linked to the others'; the joins' outbox
        // messages continue that trace.
        let span = tracing::info_span!(
            "intake.admit",
            otel.kind = "server",
            event_id,
            batch = requests.len(),
            trace_id = tracing::field::Empty,
        );
        shared::telemetry::continue_trace(&span, requests[0].trace.as_deref());
        for r in &requests[1..] {
            shared::telemetry::link_trace(&span, r.trace.as_deref());
        }
        let admitted = rules::admit_from(&self.seats, event_id, &users, now(), retry, tail, start)
            .instrument(span)
            .await;
        if let Ok(mut m) = self.last.lock() {
            match &admitted {
                Ok((_, Some(after))) => m.insert(event_id.to_owned(), after.clone()),
                _ => m.remove(event_id),
            };
        }
        let (verdicts, _) = admitted?;
        metrics::histogram!("HotBatchSize").record(requests.len() as f64);
        for (r, v) in requests.iter().zip(&verdicts) {
            match v {
                Verdict::Admitted(_) => {}
                Verdict::Refused(e) => {
                    tracing::info!(event_id, user_id = %r.user_id, reason = %e, "hot join refused")
                }
                Verdict::Revoked => {
                    metrics::counter!("HotJoinsRevoked").increment(1);
                }
                Verdict::Answered => {
                    metrics::counter!("HotJoinsRedelivered").increment(1);
                }
            }
        }
        Ok(())
    }
}

/// A request's part of the admission: for a place, its session guard and its record holding
/// the answer a synchronous join gives (201/202); for a refusal, its record holding the
/// problem.
fn outcome_items(
    table: &str,
    r: &IntakeRequest,
    outcome: &Result<JoinView, JoinError>,
) -> anyhow::Result<Vec<TransactWriteItem>> {
    match outcome {
        Ok(view) => {
            let answer = join_answer(view).map_err(|e| anyhow::anyhow!("{}", e.status))?;
            let user = User {
                id: r.user_id.clone(),
                roles: Vec::new(),
                session_id: r.session_id.clone(),
                token_id: String::new(),
                expires_at: 0,
            };
            Ok(vec![
                shared::session::guard(table, &user)?,
                record_put(table, &r.key, &answer)?,
            ])
        }
        Err(e) => {
            let refusal = e
                .refusal()
                .ok_or_else(|| anyhow::anyhow!("not a refusal: {e}"))?;
            // A user who already holds a place was told of it; a join the event's closing
            // refused is told as a notification too (unnumbered: the event's sequence moves
            // only with the event's own changes).
            let told = match refusal {
                JoinError::AlreadyJoined(_) => None,
                _ => Some(OutboxMessage::new(
                    "join.refused",
                    &r.event_id,
                    vec![r.user_id.clone()],
                    format!("Your join was not admitted: {refusal}"),
                    serde_json::json!({ "event_id": r.event_id, "reason": refusal.to_string() }),
                )),
            };
            let answer =
                ApiError::from(refusal).into_response(Some(&r.path), r.request_id.as_deref());
            let mut items = vec![record_put(table, &r.key, &answer)?];
            if let Some(m) = told {
                items.push(m.transact_put(table)?);
            }
            Ok(items)
        }
    }
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_of_the_outcome_space_out_as_the_typical_wait_grows() {
        let ms = Duration::from_millis;
        assert_eq!(pauses(250), (ms(200), ms(100)), "a quiet event");
        assert_eq!(pauses(1000), (ms(800), ms(250)), "a rush");
        assert_eq!(pauses(0), (ms(100), ms(100)), "never a busy loop");
        assert_eq!(pauses(60_000), (ms(2000), ms(500)), "bounded");
        // A rush moves the estimate up within a few joins, a quiet spell back down.
        let mut t = 250;
        for _ in 0..10 {
            t = learn(t, ms(1200));
        }
        assert!((1000..1200).contains(&t), "{t}");
        for _ in 0..10 {
            t = learn(t, ms(200));
        }
        assert!(t < 300, "{t}");
    }
}
