//! `Idempotency-Key` for the unsafe endpoints that create or change things (join, leave, event
//! create, register), after the IETF httpapi Idempotency-Key draft and Powertools for AWS
//! Lambda's record model.
//!
//! One record per (caller, route, key): `pk = IDEM#<sha256(caller, route, key)>`, `sk = IDEM`.
//!
//! - The first request claims the key with a conditional put: status `in_progress`, the request
//!   fingerprint, and an expiry equal to the function's deadline, so a crashed attempt frees the
//!   key when its invocation could no longer be running. The fingerprint is HMAC-SHA256 of
//!   (method, path, body) under a key from Secrets Manager (`IDEMPOTENCY_KEY_SECRET_ID`): a
//!   register body holds a password, and a plain hash of it, kept 24 h and sent down the table's
//!   stream, could be guessed offline. The record holds no request field at all, and of the
//!   response only its status, the kept headers and the body (no endpoint using this answers
//!   a secret).
//! - The handler puts the completed record (status, headers, body; 24 h expiry) inside the same
//!   TransactWriteItems as its state change ([`Claim::completion`]): the effect and the record
//!   of it commit together. A 4xx outcome is stored after the handler; a 5xx, 401 or 429
//!   outcome deletes the claim so that the client's retry (after signing in again, or waiting)
//!   runs again.
//! - A repeat after completion replays the stored response with `Idempotent-Replayed: true`; a
//!   repeat while the first is in flight gets 409 with Retry-After; the same key with another
//!   fingerprint gets 422; a missing key where it is required gets 400.
//! - Expiry is checked in code (`expires_at`); the table's TTL (on the same attribute) only
//!   cleans up, some time after.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure};
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::http::{Request, RequestParts, Response};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// What a key may be: 1 to 255 visible ASCII characters (the OpenAPI document's pattern).
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";
/// The header marking a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a completed record answers repeats.
pub const COMPLETED_SECONDS: i64 = 24 * 3600;
/// The in-flight expiry when the invocation's deadline is unknown.
const DEFAULT_IN_FLIGHT_SECONDS: i64 = 30;
/// Response headers kept with a completed record.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

use crate::ddb::Item;

/// The condition of every write of a claim after it was taken: this attempt still holds it.
const STILL_MINE: &str = "#token = :token AND #status = :in_progress";

use crate::ddb::{n, s};
fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}
fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The idempotency records' table.
#[derive(Clone)]
pub struct Idempotency {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    /// The fingerprints' HMAC key; only the functions with an idempotent route have one.
    pub key: Option<crate::secrets::SecretKey>,
}

/// This attempt's hold on a key. Put [`Claim::completion`] in the transaction of the change.
pub struct Claim {
    table: String,
    pk: String,
    token: String,
    fingerprint: String,
    completed: AtomicBool,
}

impl Claim {
    /// The completed record for `response`, conditional on this attempt still holding the key:
    /// add it to the TransactWriteItems that makes the change, then call [`Claim::committed`].
    pub fn completion(
        &self,
        response: &Response,
    ) -> anyhow::Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.completed_item(response)?))
            .condition_expression(STILL_MINE)
            .set_expression_attribute_names(Some(self.names()))
            .set_expression_attribute_values(Some(self.values()))
            .build()?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    fn names(&self) -> HashMap<String, String> {
        HashMap::from([
            ("#token".into(), "token".into()),
            ("#status".into(), "status".into()),
        ])
    }

    fn values(&self) -> Item {
        HashMap::from([
            (":token".into(), s(&self.token)),
            (":in_progress".into(), s("in_progress")),
        ])
    }

    /// The transaction holding [`Claim::completion`] committed.
    pub fn committed(&self) {
        self.completed.store(true, Ordering::SeqCst);
    }

    fn completed_item(&self, response: &Response) -> anyhow::Result<Item> {
        completed_item(&self.pk, &self.token, &self.fingerprint, response)
    }
}

/// The completed record of key `pk` holding `response`.
fn completed_item(
    pk: &str,
    token: &str,
    fingerprint: &str,
    response: &Response,
) -> anyhow::Result<Item> {
    let mut headers = BTreeMap::new();
    for name in KEPT_HEADERS {
        if let Some(v) = response.headers().get(&name) {
            headers.insert(name.as_str().to_owned(), v.to_str()?.to_owned());
        }
    }
    let body = match response.body() {
        Body::Empty => String::new(),
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8(b.clone())?,
        _ => String::new(),
    };
    let now = now();
    Ok(HashMap::from([
        ("pk".into(), s(pk)),
        ("sk".into(), s("IDEM")),
        ("type".into(), s("idempotency")),
        ("status".into(), s("completed")),
        ("token".into(), s(token)),
        ("fingerprint".into(), s(fingerprint)),
        ("expires_at".into(), n(now + COMPLETED_SECONDS)),
        (
            "response_status".into(),
            n(response.status().as_u16() as i64),
        ),
        (
            "response_headers".into(),
            s(serde_json::to_string(&headers)?),
        ),
        ("response_body".into(), s(body)),
    ]))
}

/// A request's key, for a path where another function decides and records the outcome later
/// (a hot event's join: the intake writer). It carries no request field: the record's key and
/// the request's keyed fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRef {
    pub pk: String,
    pub fingerprint: String,
}

impl KeyRef {
    /// The key of its record.
    pub fn record_key(&self) -> Item {
        HashMap::from([("pk".into(), s(&self.pk)), ("sk".into(), s("IDEM"))])
    }
}

/// The put of `key`'s completed record holding `response`, in the transaction that makes the
/// outcome: only if the key has no live record (a repeat delivery of the request, or another
/// attempt that answered first, fails this item and so the transaction).
pub fn record_put(
    table: &str,
    key: &KeyRef,
    response: &Response,
) -> anyhow::Result<aws_sdk_dynamodb::types::TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(completed_item(
            &key.pk,
            "intake",
            &key.fingerprint,
            response,
        )?))
        .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
        .expression_attribute_values(":now", n(now()))
        .build()?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .put(put)
        .build())
}

/// The route template of the request (`POST /v1/events/{id}/join`), or method and path.
fn route(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ApiGatewayV2httpRequestContext {
            route_key: Some(r),
            ..
        })) if !r.is_empty() => r.clone(),
        _ => format!("{} {}", req.method(), req.uri().path()),
    }
}

/// Checks the key: 1 to 255 visible ASCII characters.
fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            .field("Idempotency-Key", "1 to 255 visible ASCII characters")
    };
    let key = raw.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

/// The request fingerprint: HMAC-SHA256 under `key` of the length-prefixed parts.
fn fingerprint(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    hex(&m.finalize().into_bytes())
}

fn missing_key() -> ApiError {
    ApiError::bad_request("this endpoint requires an Idempotency-Key header (a UUID is a good key)")
        .field("Idempotency-Key", "is required")
}

fn replay(old: &Item) -> Result<Response, ApiError> {
    let status = old
        .get("response_status")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|v| StatusCode::from_u16(v).ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotency record without status")))?;
    let body = old
        .get("response_body")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = old
        .get("response_headers")
        .and_then(|v| v.as_s().ok())
        .map(|v| serde_json::from_str(v))
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let mut r = Response::new(if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body)
    });
    *r.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            r.headers_mut().insert(k, v);
        }
    }
    r.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(r)
}

impl Idempotency {
    pub fn new(app: &crate::App) -> Self {
        Self {
            ddb: app.clients.dynamodb.clone(),
            table: app.config.table_name.clone(),
            key: crate::secrets::SecretKey::from_env_optional(
                app,
                "IDEMPOTENCY_KEY_SECRET_ID",
                "idempotency fingerprint key",
            ),
        }
    }

    /// Runs `handler` at most once per (caller, route, key). With `required`, a request without
    /// the key is refused (400); without, such a request simply runs. The handler gets the claim
    /// (None when no key was sent) and should put [`Claim::completion`] in its transaction.
    pub async fn run<F, Fut>(
        &self,
        req: Request,
        required: bool,
        handler: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Request, Option<Arc<Claim>>) -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        // The route's rate-limit count, when it runs beside the claim (Policy::count_with_claim):
        // nothing is changed before it admits the request.
        crate::http::Admission::refused_now(&req)?;
        let admitted = crate::http::Admission::wait_for(&req);
        let Some(key) = key_of(&req)? else {
            if required {
                return Err(missing_key());
            }
            admitted.await?;
            return handler(req, None).await;
        };
        let KeyRef { pk, fingerprint } = self.identify(&req, &key).await?;
        let now = now();
        let in_flight_until = req
            .lambda_context_ref()
            .map(|c| (c.deadline / 1000) as i64)
            .filter(|d| *d > now)
            .unwrap_or(now + DEFAULT_IN_FLIGHT_SECONDS);
        let claim = Arc::new(Claim {
            table: self.table.clone(),
            pk: pk.clone(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            fingerprint: fingerprint.clone(),
            completed: AtomicBool::new(false),
        });
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s("IDEM"))
            .item("type", s("idempotency"))
            .item("status", s("in_progress"))
            .item("token", s(&claim.token))
            .item("fingerprint", s(&fingerprint))
            .item("expires_at", n(in_flight_until))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send();
        let (admitted, put) = futures_util::join!(admitted, put);
        if let Err(refused) = admitted {
            if put.is_ok() {
                self.release(&claim).await;
            }
            return Err(refused);
        }
        if let Err(e) = put {
            let old = match e.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => match se {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item.clone().unwrap_or_default()
                    }
                    _ => HashMap::new(),
                },
                _ => return Err(ApiError::internal(e)),
            };
            // Records written before fingerprints were keyed (up to 24 h old) hold the plain
            // digest: still recognise the same request by it.
            let legacy = digest(&[
                req.method().as_str().as_bytes(),
                req.uri().path().as_bytes(),
                req.body().as_ref(),
            ]);
            return self.repeat(&old, &[&fingerprint, &legacy], now);
        }
        let path = req.uri().path().to_owned();
        let request_id = req
            .extensions()
            .get::<crate::http::Invocation>()
            .map(|i| i.request_id.clone());
        let result = handler(req, Some(claim.clone())).await;
        match result {
            Ok(response) => {
                if !claim.completed.load(Ordering::SeqCst) {
                    self.store(&claim, &response).await;
                }
                Ok(response)
            }
            // A 401 or 429 says nothing about the request itself: a client that signs in again
            // or waits resends the same key, and must get a real answer, not this one replayed.
            Err(e)
                if e.status.is_client_error()
                    && !matches!(
                        e.status,
                        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
                    ) =>
            {
                let response = e.into_response(Some(&path), request_id.as_deref());
                self.store(&claim, &response).await;
                Ok(response)
            }
            Err(e) => {
                self.release(&claim).await;
                Err(e)
            }
        }
    }

    /// The record's key and the request's fingerprint for `key`.
    async fn identify(&self, req: &Request, key: &str) -> Result<KeyRef, ApiError> {
        let caller = req
            .user()
            .map(|u| u.id.clone())
            .unwrap_or_else(|_| "anonymous".into());
        let route = route(req);
        let pk = format!(
            "IDEM#{}",
            digest(&[caller.as_bytes(), route.as_bytes(), key.as_bytes()])
        );
        let secret = self.key.as_ref().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "missing configuration: IDEMPOTENCY_KEY_SECRET_ID (this function has an idempotent route)"
            ))
        })?;
        let fingerprint = fingerprint(
            &secret.get().await?,
            &[
                req.method().as_str().as_bytes(),
                req.uri().path().as_bytes(),
                req.body().as_ref(),
            ],
        );
        Ok(KeyRef { pk, fingerprint })
    }

    /// The request's key (required: 400 without one), for a path that records its outcome
    /// later ([`record_put`]).
    pub async fn key_ref(&self, req: &Request) -> Result<KeyRef, ApiError> {
        let key = key_of(req)?.ok_or_else(missing_key)?;
        self.identify(req, &key).await
    }

    /// What `key` already answered, read consistently: `None` while it has no live record;
    /// the stored answer (marked replayed) when completed; 422 when the key was used with
    /// another request; 409 while another attempt holds it.
    pub async fn answered(&self, key: &KeyRef) -> Result<Option<Response>, ApiError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.record_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
        self.answer_of(key, out.item)
    }

    /// [`Idempotency::answered`] of a record read by the caller (`None`: no item).
    pub fn answer_of(
        &self,
        key: &KeyRef,
        record: Option<Item>,
    ) -> Result<Option<Response>, ApiError> {
        let now = now();
        match record {
            Some(old) if crate::ddb::get_n(&old, "expires_at").is_some_and(|e| e as i64 >= now) => {
                self.repeat(&old, &[&key.fingerprint], now).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Records `response` as `key`'s answer when the key has no live record (a refusal decided
    /// without a claim), and returns the answer that stands: `response`, or the one recorded
    /// meanwhile by another attempt (the key's first answer wins). When the store fails, a
    /// resend decides again.
    pub async fn record(&self, key: &KeyRef, response: Response) -> Response {
        let put = match record_put(&self.table, key, &response) {
            Ok(t) => t.put,
            Err(e) => {
                tracing::warn!(error = %e, "refusal not recorded");
                None
            }
        };
        let Some(put) = put else { return response };
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => response,
            Err(e) if crate::ddb::condition_failed(&e) => match self.answered(key).await {
                Ok(Some(first)) => first,
                _ => response,
            },
            Err(e) => {
                tracing::warn!(error.cause_chain = %crate::error_chain(&e), "refusal not recorded; a resend decides again");
                response
            }
        }
    }

    /// A repeat of a claimed key.
    fn repeat(&self, old: &Item, fingerprints: &[&str], now: i64) -> Result<Response, ApiError> {
        let field = |k: &str| old.get(k).and_then(|v| v.as_s().ok()).cloned();
        if !field("fingerprint").is_some_and(|f| fingerprints.contains(&f.as_str())) {
            metrics::counter!("IdempotencyConflicts", "reason" => "different_request").increment(1);
            return Err(
                ApiError::of(crate::problem::problems::IDEMPOTENCY_KEY_REUSED)
                    .detail("this Idempotency-Key was used for a different request; use a new key")
                    .field(
                        "Idempotency-Key",
                        "was used with another request body or path",
                    ),
            );
        }
        if field("status").as_deref() == Some("completed") {
            metrics::counter!("IdempotencyReplays").increment(1);
            return replay(old);
        }
        let expires = old
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(now + 1);
        metrics::counter!("IdempotencyConflicts", "reason" => "in_flight").increment(1);
        let retry_after = (expires - now).clamp(1, 900);
        Err(
            ApiError::of(crate::problem::problems::IDEMPOTENCY_IN_FLIGHT)
                .detail("a request with this Idempotency-Key is still being processed; retry later")
                .header(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&retry_after.to_string()).map_err(ApiError::internal)?,
                ),
        )
    }

    /// Stores an outcome the handler did not commit itself. A record that is no longer this
    /// attempt's (it expired and another attempt took it) is left alone.
    async fn store(&self, claim: &Claim, response: &Response) {
        let item = match claim.completed_item(response) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "idempotency record not stored");
                return;
            }
        };
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(STILL_MINE)
            .set_expression_attribute_names(Some(claim.names()))
            .set_expression_attribute_values(Some(claim.values()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error.cause_chain = %crate::error_chain(&e), "idempotency record not stored; a repeat will run again");
        }
    }

    /// Deletes this attempt's in-flight claim so that a retry runs (the outcome was a 5xx).
    async fn release(&self, claim: &Claim) {
        let result = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&claim.pk))
            .key("sk", s("IDEM"))
            .condition_expression(STILL_MINE)
            .set_expression_attribute_names(Some(claim.names()))
            .set_expression_attribute_values(Some(claim.values()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error.cause_chain = %crate::error_chain(&e), "idempotency claim not released; it expires with the invocation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: Option<&str>) -> Request {
        let mut r = http::Request::builder()
            .method("POST")
            .uri("/v1/events/evt_1/join");
        if let Some(k) = key {
            r = r.header(HEADER, k);
        }
        r.body(Body::Empty).unwrap()
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert_eq!(key_of(&request(None)).unwrap(), None);
        assert_eq!(
            key_of(&request(Some("8e03978e-40d5-43e8-bc93-6894a57f9324"))).unwrap(),
            Some("8e03978e-40d5-43e8-bc93-6894a57f9324".into())
        );
        for bad in ["", "a b", &"k".repeat(256)] {
            let e = key_of(&request(Some(bad))).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(e.invalid_params[0].name, "Idempotency-Key");
        }
    }

    #[test]
    fn a_stored_response_replays_with_the_marker_header() {
        let claim = Claim {
            table: "t".into(),
            pk: "IDEM#x".into(),
            token: "tok".into(),
            fingerprint: "f".into(),
            completed: AtomicBool::new(false),
        };
        let mut r = Response::new(Body::Text("{\"state\":\"joined\"}".into()));
        *r.status_mut() = StatusCode::CREATED;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/v1/x"));
        let item = claim.completed_item(&r).unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "completed");
        let again = replay(&item).unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()[REPLAYED], "true");
        assert_eq!(again.headers()[header::LOCATION], "/v1/x");
        assert_eq!(again.headers()[header::CONTENT_TYPE], "application/json");
        assert!(matches!(again.body(), Body::Text(t) if t == "{\"state\":\"joined\"}"));
    }

    #[test]
    fn fingerprints_differ_by_body_path_and_key_and_are_not_a_plain_hash() {
        let k = b"0123456789abcdef0123456789abcdef";
        let a = fingerprint(k, &[b"POST", b"/v1/a", b"{}"]);
        assert_eq!(a, fingerprint(k, &[b"POST", b"/v1/a", b"{}"]));
        assert_ne!(a, fingerprint(k, &[b"POST", b"/v1/a", b"{ }"]));
        assert_ne!(a, fingerprint(k, &[b"POST", b"/v1/b", b"{}"]));
        assert_ne!(
            a,
            fingerprint(
                b"another key, also 32 bytes long!",
                &[b"POST", b"/v1/a", b"{}"]
            )
        );
        // Without the key, the stored value is not the hash anyone could compute from a guess.
        assert_ne!(a, digest(&[b"POST", b"/v1/a", b"{}"]));
        // Length prefixes keep the parts apart.
        assert_ne!(
            fingerprint(k, &[b"ab", b"c"]),
            fingerprint(k, &[b"a", b"bc"])
        );
    }
}
