//! One way to talk to DynamoDB, for every store of every function:
//!
//! - attribute access ([`s`], [`n`], [`get_s`], [`get_n`], [`get_bool`], [`require_s`],
//!   [`require_n`]) and typed items through serde_dynamo ([`to_item`], [`from_item`]);
//! - [`condition_failed`]: a single write's `ConditionalCheckFailedException`, for any
//!   operation;
//! - [`transact`]: one TransactWriteItems whose failure is classified once ([`TxError`]):
//!   conditions that failed (which items, with their current values) vs. a cancellation that
//!   may pass if sent again (TransactionConflict, throttling) vs. a revoked session vs. the rest;
//! - [`Retry`]: the one retry policy for races the SDK does not retry (lost conditions,
//!   conflicts, unprocessed batch keys): full jitter, bounded by a deadline (the invocation's
//!   remaining time), counted in the `DynamoRetries` metric;
//! - [`query_items`]: the SDK's own paginator over a Query's items (no hand-written
//!   `ExclusiveStartKey` loops).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// A DynamoDB item as the SDK has it.
pub type Item = HashMap<String, AttributeValue>;

// ------------------------------------------------------------------ attributes

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
/// A number attribute.
pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
/// The string attribute `k`, if there is one.
pub fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
/// The number attribute `k` as an unsigned integer, if there is one.
pub fn get_n(item: &Item, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
/// The boolean attribute `k`; false when absent.
pub fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k).and_then(|v| v.as_bool().ok()).copied() == Some(true)
}
/// The string attribute `k`, or an error naming it (an item that must have it).
pub fn require_s(item: &Item, k: &str) -> anyhow::Result<String> {
    get_s(item, k).ok_or_else(|| anyhow::anyhow!("item without string attribute {k}"))
}
/// The number attribute `k`, or an error naming it.
pub fn require_n(item: &Item, k: &str) -> anyhow::Result<u64> {
    get_n(item, k).ok_or_else(|| anyhow::anyhow!("item without number attribute {k}"))
}

/// `value` as an item (serde_dynamo: fields are attributes, `Option::None` is left out when
/// the field says `skip_serializing_if`).
pub fn to_item<T: serde::Serialize>(value: &T) -> anyhow::Result<Item> {
    Ok(serde_dynamo::to_item(value)?)
}
/// An item as `T` (serde_dynamo); attributes `T` does not name are ignored.
pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> anyhow::Result<T> {
    Ok(serde_dynamo::from_item(item)?)
}

// ------------------------------------------------------------------ single writes

/// Whether a PutItem, UpdateItem or DeleteItem failed only because its condition did not hold
/// (any operation: read from the service error's code).
pub fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A conditional single write's outcome: `Ok(true)` written, `Ok(false)` refused by its
/// condition, `Err` anything else.
pub fn written<T, E: ProvideErrorMetadata, R>(
    result: Result<T, SdkError<E, R>>,
) -> Result<bool, SdkError<E, R>> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

// ------------------------------------------------------------------ transactions

/// Why a TransactWriteItems did not commit. In every case nothing of it was written, except
/// [`TxError::Other`] after a timeout or a lost answer, when it may have committed (so that is
/// never retried here: the client's resend with the same Idempotency-Key replays it).
#[derive(Debug)]
pub enum TxError {
    /// Conditions failed: per item of the transaction, in order.
    Cancelled(Cancellation),
    /// The caller's session guard ([`crate::session::guard`]) failed: it was revoked.
    SessionRevoked,
    /// Trying again may work: DynamoDB cancelled the transaction for a TransactionConflict
    /// (another transaction or write held one of its items) or throttled one of its items.
    Conflict,
    Other(anyhow::Error),
}

/// The per-item reasons of a cancelled transaction.
#[derive(Debug, Default, Clone)]
pub struct Cancellation(Vec<(bool, Option<Item>)>);

impl Cancellation {
    /// From per-item (condition failed, current value when it asked for `ALL_OLD`).
    pub fn new(items: Vec<(bool, Option<Item>)>) -> Self {
        Self(items)
    }
    /// Whether item `i`'s condition failed.
    pub fn failed(&self, i: usize) -> bool {
        self.0.get(i).is_some_and(|r| r.0)
    }
    /// Item `i` as it is now, when its condition failed and it asked for its old value.
    pub fn current(&self, i: usize) -> Option<&Item> {
        self.0.get(i).and_then(|r| r.1.as_ref())
    }
    /// Whether the last item's condition failed (the idempotency completion, by convention
    /// always last: the attempt no longer holds its key).
    pub fn last_failed(&self) -> bool {
        self.0.last().is_some_and(|r| r.0)
    }
}

impl<E: Into<anyhow::Error>> From<E> for TxError {
    fn from(e: E) -> Self {
        TxError::Other(e.into())
    }
}

impl TxError {
    /// The per-item reasons, when conditions failed.
    pub fn cancellation(&self) -> Option<&Cancellation> {
        match self {
            TxError::Cancelled(c) => Some(c),
            TxError::SessionRevoked | TxError::Conflict | TxError::Other(_) => None,
        }
    }
    /// As an error, for callers that handled the outcomes they expect and pass the rest on.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            TxError::Other(e) => e,
            TxError::Cancelled(_) => anyhow::anyhow!("a transaction was cancelled by a condition"),
            TxError::SessionRevoked => anyhow::anyhow!("the session was revoked"),
            TxError::Conflict => {
                anyhow::anyhow!("TransactionConflict: the transaction was cancelled")
            }
        }
    }
    /// Whether the last item (the idempotency completion) failed.
    pub fn lost_claim(&self) -> bool {
        self.cancellation().is_some_and(Cancellation::last_failed)
    }
}

impl From<TxError> for crate::ApiError {
    /// What a failed transaction is to the client once the caller has handled the outcomes it
    /// retries: a revoked session 401, a conflict that outlasted the retries 503 with
    /// Retry-After, anything else [`crate::ApiError::internal`] (503 when transient).
    fn from(e: TxError) -> Self {
        match e {
            TxError::SessionRevoked => crate::auth::unauthorized(),
            TxError::Conflict => crate::ApiError::service_unavailable(
                "the data store is busy; retry (with the same Idempotency-Key, if any)",
            ),
            TxError::Other(e) => crate::ApiError::internal(e),
            TxError::Cancelled(_) => {
                crate::ApiError::internal(anyhow::anyhow!("a transaction was cancelled"))
            }
        }
    }
}

/// The cancellation reason codes after which the same transaction may commit if sent again.
const RETRYABLE_REASONS: [&str; 4] = [
    "None",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// Classifies a cancellation's per-item reason codes (`None` when an item had none) and old
/// items against which items are session guards.
fn classify(reasons: Vec<(Option<String>, Option<Item>)>, guards: &[bool]) -> TxError {
    let failed = |code: &Option<String>| code.as_deref() == Some("ConditionalCheckFailed");
    if reasons.iter().any(|(code, _)| failed(code)) {
        if reasons
            .iter()
            .zip(guards)
            .any(|((code, _), guard)| *guard && failed(code))
        {
            metrics::counter!("RevokedSessionRefused").increment(1);
            return TxError::SessionRevoked;
        }
        return TxError::Cancelled(Cancellation::new(
            reasons
                .into_iter()
                .map(|(code, old)| {
                    let f = failed(&code);
                    (f, if f { old } else { None })
                })
                .collect(),
        ));
    }
    if reasons.iter().all(|(code, _)| {
        code.as_deref()
            .is_none_or(|c| RETRYABLE_REASONS.contains(&c))
    }) {
        metrics::counter!("TransactionConflicts").increment(1);
        return TxError::Conflict;
    }
    let codes: Vec<&str> = reasons
        .iter()
        .map(|(c, _)| c.as_deref().unwrap_or("None"))
        .collect();
    TxError::Other(anyhow::anyhow!(
        "transaction cancelled: {}",
        codes.join(", ")
    ))
}

/// One TransactWriteItems, its failure classified ([`TxError`]). Ask for `ALL_OLD` on a
/// condition failure on the items whose current value the caller wants back.
pub async fn transact(
    ddb: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
) -> Result<(), TxError> {
    let guards: Vec<bool> = items.iter().map(crate::session::is_guard).collect();
    send_transaction(ddb, items, &guards).await
}

/// [`transact`] for a transaction of many callers' items (a batch): a failed session guard is
/// reported like any other failed condition, per item ([`TxError::Cancelled`]), never as
/// [`TxError::SessionRevoked`], so that the caller can drop the one request it belongs to.
pub async fn transact_itemwise(
    ddb: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
) -> Result<(), TxError> {
    send_transaction(ddb, items, &[]).await
}

async fn send_transaction(
    ddb: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
    guards: &[bool],
) -> Result<(), TxError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match ddb
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(E::TransactionCanceledException(c)) => {
                let reasons = c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| (r.code().map(str::to_owned), r.item().cloned()))
                    .collect();
                match classify(reasons, guards) {
                    // Keep the SDK error (its display is what is_transient and the logs read).
                    TxError::Other(_) => Err(TxError::Other(err.into())),
                    other => Err(other),
                }
            }
            // Anything else — including a timeout or a lost answer, after which the transaction
            // may have committed — is not retried here: it answers 503 when transient
            // (ApiError::internal), and the client's resend with the same Idempotency-Key
            // replays a commit that did happen instead of running it twice.
            _ => Err(TxError::Other(err.into())),
        },
    }
}

/// [`transact`], sent again while DynamoDB cancels it only for conflicts or throttling (nothing
/// was written), until `retry` runs out; for writes whose conditions do not depend on a read.
pub async fn transact_retrying(
    ddb: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
    retry: &mut Retry,
) -> Result<(), TxError> {
    loop {
        match transact(ddb, items.clone()).await {
            Err(TxError::Conflict) if retry.wait().await => {}
            other => return other,
        }
    }
}

// ------------------------------------------------------------------ retries

/// The one retry policy for the races the SDK does not retry itself: a lost condition, a
/// TransactionConflict, keys a batch left unprocessed. "Full jitter" (a random wait in
/// `[0, min(cap, base × 2^attempt)]`) so that a crowd that lost the same race does not retry
/// in lockstep; bounded by a deadline and a number of attempts; every retry counted in the
/// `DynamoRetries` metric (dimension `operation`).
#[derive(Debug, Clone)]
pub struct Retry {
    operation: &'static str,
    deadline: Instant,
    attempt: u32,
    max_attempts: u32,
    base: Duration,
    cap: Duration,
}

/// How long before an invocation's deadline a request stops retrying, so that it answers 503
/// (and frees its Idempotency-Key) instead of being killed mid-request.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(1500);

impl Retry {
    /// Retries of `operation` until `deadline`: base 5 ms, cap 160 ms, at most 40 attempts.
    pub fn until(operation: &'static str, deadline: Instant) -> Self {
        Self {
            operation,
            deadline,
            attempt: 0,
            max_attempts: 40,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(160),
        }
    }
    /// Retries of `operation` for at most `budget` from now.
    pub fn within(operation: &'static str, budget: Duration) -> Self {
        Self::until(operation, Instant::now() + budget)
    }
    /// Retries of `operation` for the rest of the invocation behind `req`, less
    /// [`ANSWER_RESERVE`] (10 s when the request has no Lambda context, as in unit tests).
    pub fn for_request(operation: &'static str, req: &lambda_http::Request) -> Self {
        use lambda_http::RequestExt;
        let left_ms = req
            .lambda_context_ref()
            .map(|c| {
                c.deadline as i64
                    - (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
            })
            .filter(|ms| *ms > 0)
            .unwrap_or(10_000) as u64;
        Self::within(
            operation,
            Duration::from_millis(left_ms).saturating_sub(ANSWER_RESERVE),
        )
    }
    /// Another base and cap for the waits.
    pub fn pacing(mut self, base: Duration, cap: Duration) -> Self {
        self.base = base;
        self.cap = cap;
        self
    }
    /// At most `n` attempts in all.
    pub fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Retries of `operation` inside this one's budget: its deadline (or `budget` from now, if
    /// sooner) and pacing, at most `attempts` of its own.
    pub fn nested(&self, operation: &'static str, budget: Duration, attempts: u32) -> Self {
        Self {
            operation,
            deadline: self.deadline.min(Instant::now() + budget),
            attempt: 0,
            max_attempts: attempts.max(1),
            base: self.base,
            cap: self.cap,
        }
    }
    /// Attempts made so far (1 while the first is running).
    pub fn attempt(&self) -> u32 {
        self.attempt + 1
    }
    /// Whether there is time and an attempt left for one more try (without waiting).
    pub fn can_try(&self) -> bool {
        self.attempt < self.max_attempts && Instant::now() < self.deadline
    }
    /// The wait before the next attempt, or `None` when the attempts or the deadline would be
    /// exhausted: the caller gives up (503 with Retry-After).
    fn next_wait(&mut self) -> Option<Duration> {
        if self.attempt + 1 >= self.max_attempts {
            return None;
        }
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        let wait = exp.min(self.cap).mul_f64(crate::ids::unit_random());
        if Instant::now() + wait >= self.deadline {
            return None;
        }
        self.attempt += 1;
        Some(wait)
    }
    /// Waits before the next attempt; false (at once) when there is none left.
    pub async fn wait(&mut self) -> bool {
        match self.next_wait() {
            Some(wait) => {
                metrics::counter!("DynamoRetries", "operation" => self.operation).increment(1);
                tokio::time::sleep(wait).await;
                true
            }
            None => {
                metrics::counter!("DynamoRetriesExhausted", "operation" => self.operation)
                    .increment(1);
                false
            }
        }
    }
}

// ------------------------------------------------------------------ pagination

/// The items of a Query, page after page, through the SDK's paginator: read them with
/// `.next().await` (stop whenever enough were read; no further page is requested) or
/// `.try_collect().await`.
pub fn query_items(
    query: QueryFluentBuilder,
) -> aws_sdk_dynamodb::operation::query::paginator::QueryPaginatorItems {
    query.into_paginator().items()
}

/// Every item of a Query (all pages).
pub async fn query_all(
    query: QueryFluentBuilder,
) -> Result<Vec<Item>, SdkError<QueryError, HttpResponse>> {
    query_items(query).send().try_collect().await
}

// ------------------------------------------------------------------ single reads

/// The items at `keys` (at most 100) of `table`, read consistently with BatchGetItem; keys
/// DynamoDB leaves unprocessed (throttling) are asked again while `retry` allows, counted in
/// `BatchUnprocessedRetries`. `None` when it ran out: never a silent partial answer.
pub async fn batch_get_consistent(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    retry: &mut Retry,
) -> anyhow::Result<Option<Vec<Item>>> {
    let mut found = Vec::new();
    if keys.is_empty() {
        return Ok(Some(found));
    }
    let mut keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .build()?;
    loop {
        let out = ddb
            .batch_get_item()
            .request_items(table, keys.clone())
            .send()
            .await?;
        found.extend(
            out.responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default(),
        );
        match out.unprocessed_keys.and_then(|mut u| u.remove(table)) {
            Some(rest) if !rest.keys().is_empty() => {
                metrics::counter!("BatchUnprocessedRetries").increment(1);
                if !retry.wait().await {
                    return Ok(None);
                }
                keys = rest;
            }
            _ => return Ok(Some(found)),
        }
    }
}

/// The item at `key` in `table`, read strongly consistently (one GetItem); `None` when there
/// is none.
pub async fn get_consistent(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError, HttpResponse>>
{
    let out = ddb
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await?;
    Ok(out.item)
}

/// BatchWriteItem of `writes` (at most 25) to `table`. The items DynamoDB leaves unprocessed
/// (throttling, a hot partition) are sent again with backoff until all are written; an error
/// when they still are not after 10 s (the caller's unit of work is then retried whole, which
/// must be safe: the writes are puts of the same items).
pub async fn batch_write(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    writes: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> anyhow::Result<()> {
    let mut retry = Retry::within("BatchWriteItem", Duration::from_secs(10))
        .pacing(Duration::from_millis(50), Duration::from_secs(1));
    let mut pending = writes;
    while !pending.is_empty() {
        let out = ddb
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await?;
        pending = out
            .unprocessed_items
            .and_then(|mut left| left.remove(table))
            .unwrap_or_default();
        if pending.is_empty() {
            break;
        }
        metrics::counter!("DynamoUnprocessedItems").increment(pending.len() as u64);
        if !retry.wait().await {
            anyhow::bail!(
                "{} items of a BatchWriteItem left unprocessed",
                pending.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[Option<&str>]) -> Vec<(Option<String>, Option<Item>)> {
        codes
            .iter()
            .map(|c| {
                (
                    c.map(str::to_owned),
                    Some(HashMap::from([("pk".into(), s("x"))])),
                )
            })
            .collect()
    }

    #[test]
    fn a_failed_condition_names_its_items_and_keeps_only_their_old_values() {
        let r = classify(
            reasons(&[
                Some("ConditionalCheckFailed"),
                Some("None"),
                Some("ConditionalCheckFailed"),
            ]),
            &[false, false, false],
        );
        let c = r.cancellation().expect("cancelled");
        assert!(c.failed(0) && !c.failed(1) && c.failed(2));
        assert!(c.current(0).is_some() && c.current(1).is_none());
        assert!(r.lost_claim());
    }

    #[test]
    fn a_failed_session_guard_is_a_revoked_session_whatever_else_failed() {
        let r = classify(
            reasons(&[
                Some("ConditionalCheckFailed"),
                Some("ConditionalCheckFailed"),
            ]),
            &[false, true],
        );
        assert!(matches!(r, TxError::SessionRevoked));
    }

    #[test]
    fn conflicts_and_throttling_are_retryable_and_validation_is_not() {
        for codes in [
            vec![Some("None"), Some("TransactionConflict")],
            vec![None, Some("ThrottlingError")],
            vec![Some("ProvisionedThroughputExceeded")],
        ] {
            assert!(
                matches!(classify(reasons(&codes), &[false; 2]), TxError::Conflict),
                "{codes:?}"
            );
        }
        let r = classify(
            reasons(&[Some("ValidationError"), Some("TransactionConflict")]),
            &[false; 2],
        );
        assert!(matches!(r, TxError::Other(_)));
        // A condition failure wins over a conflict on another item: the caller re-reads.
        let r = classify(
            reasons(&[Some("TransactionConflict"), Some("ConditionalCheckFailed")]),
            &[false; 2],
        );
        assert!(r.cancellation().is_some_and(|c| c.failed(1)));
    }

    #[test]
    fn a_conflict_passed_on_as_an_error_is_transient_and_a_condition_failure_is_not() {
        assert!(crate::aws::is_transient(&TxError::Conflict.into_error()));
        assert!(!crate::aws::is_transient(
            &TxError::Cancelled(Cancellation::default()).into_error()
        ));
    }

    #[test]
    fn retries_stop_at_the_attempt_limit_and_before_the_deadline() {
        let mut r = Retry::within("test", Duration::from_secs(60)).attempts(4);
        let waits: Vec<_> = std::iter::from_fn(|| r.next_wait()).collect();
        assert_eq!(waits.len(), 3, "4 attempts are 3 waits");
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(160)));
        let mut r = Retry::within("test", Duration::ZERO);
        assert!(r.next_wait().is_none() && !r.can_try());
        // Full jitter: the waits are capped by base × 2^attempt and by the cap.
        let mut r = Retry::within("test", Duration::from_secs(60))
            .pacing(Duration::from_millis(10), Duration::from_millis(25));
        let w: Vec<_> = (0..6).filter_map(|_| r.next_wait()).collect();
        assert!(
            w[0] <= Duration::from_millis(10) && w.iter().all(|d| *d <= Duration::from_millis(25))
        );
    }
}
