//! Test clients that behave as real clients do, so that no test depends on the machine's speed:
//! a [`Caller`] renews its access token before it expires (and again when an answer is 401),
//! and [`Api::call`] sends a request again — the same request, so the same Idempotency-Key —
//! when the connection fails or the service says to retry (503, 429 with Retry-After, or a
//! 409 "in flight" for a request this client itself re-sent). Retries are bounded by count,
//! never by a clock.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;
use shared::auth::Role;

use crate::{Api, Reply};

/// Access tokens renewed so far in this test process (a long test prints it).
pub static RENEWALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Renew an access token when less than this is left of it.
const RENEW_BEFORE_S: u64 = 120;
/// Sends of one request before a test gives up (each waits for its Retry-After)...
const MAX_SENDS: u32 = 60;
/// ...and the most one request may wait in all: a test that is refused this long has failed.
const MAX_WAIT: Duration = Duration::from_secs(180);

/// Requests sent again (after a 503, a 429, a lost connection or an in-flight 409) so far in
/// this test process; a long test prints it beside [`RENEWALS`].
pub static RESENDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Answers that break the contract under faults, so far in this test process: a 5xx other
/// than a 503 with Retry-After (a 500, a 502 of a crashed function, a 503 that does not say when
/// to come back). The chaos test asserts there are none.
pub static SERVER_ERRORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Requests sent through [`Api::call`] (first sends and resends) in this test process.
pub static REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `exp` claim of a JWT (the client reads it as any OAuth client reads `expires_in`).
fn expiry(token: &str) -> u64 {
    claims(token)["exp"].as_u64().unwrap_or(0)
}

/// The claims of a JWT, unverified (`null` when it is not one).
pub fn claims(token: &str) -> serde_json::Value {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .unwrap_or_default()
}

/// Signs access tokens with the stack's current key (see [`crate::Stack::token_minter`]).
/// Renewing a minted token re-reads the key from Secrets Manager, as the login function does,
/// so a key rotation during a test does not strand its callers.
#[derive(Clone)]
pub struct TokenMinter {
    inner: Arc<MinterInner>,
}

struct MinterInner {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    issuer: String,
    audience: String,
    keys: std::sync::Mutex<Arc<shared::auth::KeySet>>,
}

impl TokenMinter {
    pub(crate) async fn new(
        (ddb, table): (aws_sdk_dynamodb::Client, String),
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: String,
        issuer: String,
        audience: String,
    ) -> TokenMinter {
        let keys = read_keys(&secrets, &secret_id).await;
        TokenMinter {
            inner: Arc::new(MinterInner {
                ddb,
                table,
                secrets,
                secret_id,
                issuer,
                audience,
                keys: std::sync::Mutex::new(Arc::new(keys)),
            }),
        }
    }

    fn sign(&self, id: &str, roles: &[Role]) -> String {
        self.sign_expiring(id, roles, None)
    }

    /// Signs a token for `id`; `expires_in` (seconds, may be negative) replaces the lifetime the
    /// login function gives, for tests of expiry.
    fn sign_expiring(&self, id: &str, roles: &[Role], expires_in: Option<i64>) -> String {
        let mut claims = shared::auth::new_claims(
            &self.inner.issuer,
            &self.inner.audience,
            id,
            roles,
            &minted_session(id),
        );
        if let Some(secs) = expires_in {
            claims.exp = now_unix().saturating_add_signed(secs);
            claims.iat = claims.iat.min(claims.exp.saturating_sub(1));
            claims.nbf = claims.iat;
        }
        let keys = self.inner.keys.lock().unwrap().clone();
        keys.sign(&claims).unwrap()
    }

    /// A caller with a fresh user id and `roles`, and a live session (written to the table as
    /// login writes it: state-changing routes check it).
    pub async fn user(&self, roles: &[Role]) -> Caller {
        self.users(1, roles).await.pop().unwrap()
    }

    /// `n` callers as [`TokenMinter::user`], their sessions written 25 to a request.
    pub async fn users(&self, n: usize, roles: &[Role]) -> Vec<Caller> {
        let ids: Vec<String> = (0..n)
            .map(|_| format!("usr_{}", uuid::Uuid::new_v4().simple()))
            .collect();
        self.start_sessions(&ids).await;
        ids.into_iter()
            .map(|id| {
                let access = self.sign(&id, roles);
                Caller::new(
                    id,
                    access,
                    None,
                    Renewal::Mint(self.clone(), roles.to_vec()),
                )
            })
            .collect()
    }

    async fn start_sessions(&self, ids: &[String]) {
        use aws_sdk_dynamodb::types::{AttributeValue as V, PutRequest, WriteRequest};
        for chunk in ids.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|id| {
                    let put = PutRequest::builder()
                        .item("pk", V::S(format!("USER#{id}")))
                        .item("sk", V::S(format!("SESSION#{}", minted_session(id))))
                        .item("revoked", V::Bool(false))
                        .item("created_at", V::N(now_unix().to_string()))
                        .item("expires_at", V::N((now_unix() + 86_400).to_string()))
                        .build()
                        .unwrap();
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            // BatchWriteItem may hand items back unprocessed (throttling): send them again.
            for _ in 0..MAX_SENDS {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .inner
                    .ddb
                    .batch_write_item()
                    .request_items(&self.inner.table, pending)
                    .send()
                    .await
                    .expect("the session items are written");
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.inner.table))
                    .unwrap_or_default();
            }
            assert!(pending.is_empty(), "sessions left unwritten");
        }
    }
}

/// The session id of a minted user.
fn minted_session(user_id: &str) -> String {
    format!("ses_e2e_{}", user_id.trim_start_matches("usr_"))
}

impl TokenMinter {
    /// An access token for an existing user and session (`sid`) with `roles`: what the login
    /// function would have issued before the user's roles changed.
    pub fn token_for(&self, user_id: &str, roles: &[Role], sid: &str) -> String {
        let claims = shared::auth::new_claims(
            &self.inner.issuer,
            &self.inner.audience,
            user_id,
            roles,
            sid,
        );
        let keys = self.inner.keys.lock().unwrap().clone();
        keys.sign(&claims).unwrap()
    }

    /// [`TokenMinter::token_for`] lasting `secs` seconds instead of the login's lifetime: for
    /// `make bench`, whose functions replay one request for longer than a token lives.
    pub fn token_lasting(&self, user_id: &str, roles: &[Role], sid: &str, secs: u64) -> String {
        let mut claims = shared::auth::new_claims(
            &self.inner.issuer,
            &self.inner.audience,
            user_id,
            roles,
            sid,
        );
        claims.exp = now_unix() + secs;
        let keys = self.inner.keys.lock().unwrap().clone();
        keys.sign(&claims).unwrap()
    }

    /// A caller whose token expires `expires_in` seconds from now (negative: already expired),
    /// while the client believes it expires at `believed_expiry` (unix seconds), as a client
    /// with a skewed clock would: tests of renewal before expiry and after a 401.
    pub async fn user_expiring(
        &self,
        roles: &[Role],
        expires_in: i64,
        believed_expiry: u64,
    ) -> Caller {
        let id = format!("usr_{}", uuid::Uuid::new_v4().simple());
        self.start_sessions(std::slice::from_ref(&id)).await;
        let access = self.sign_expiring(&id, roles, Some(expires_in));
        let caller = Caller::new(
            id,
            access,
            None,
            Renewal::Mint(self.clone(), roles.to_vec()),
        );
        caller.tokens.try_lock().unwrap().expires_at = believed_expiry;
        caller
    }
}

async fn read_keys(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> shared::auth::KeySet {
    shared::auth::KeySet::parse(&current_secret(secrets, secret_id).await).unwrap()
}

/// The text of the current version (AWSCURRENT, as the functions ask: moto serves the first
/// version otherwise) of the secret `secret_id`.
pub async fn current_secret(secrets: &aws_sdk_secretsmanager::Client, secret_id: &str) -> String {
    secrets
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap_or_else(|e| panic!("the secret {secret_id}: {e:?}"))
        .secret_string
        .expect("a secret string")
}

/// How a caller gets a new access token.
enum Renewal {
    /// A minted test user: a new token for the same user and roles, signed with the key that
    /// is current now.
    Mint(TokenMinter, Vec<Role>),
    /// A real account: `POST /v1/auth/refresh` with the (rotating) refresh token.
    Refresh(Api),
}

struct Tokens {
    access: String,
    expires_at: u64,
    refresh: Option<String>,
}

/// A signed-in user as a client holds it: id, access token, and the means to renew it.
#[derive(Clone)]
pub struct Caller {
    pub id: String,
    tokens: Arc<tokio::sync::Mutex<Tokens>>,
    renewal: Arc<Renewal>,
}

impl Caller {
    fn new(id: String, access: String, refresh: Option<String>, renewal: Renewal) -> Caller {
        Caller {
            id,
            tokens: Arc::new(tokio::sync::Mutex::new(Tokens {
                expires_at: expiry(&access),
                access,
                refresh,
            })),
            renewal: Arc::new(renewal),
        }
    }

    /// A logged-in account (`login` answered 200 with tokens), renewed through `api`.
    pub fn from_login(id: String, login: &Reply, api: &Api) -> Caller {
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        Caller::new(
            id,
            crate::s(&login.body, "access_token"),
            Some(crate::s(&login.body, "refresh_token")),
            Renewal::Refresh(api.clone()),
        )
    }

    /// The access token held now, without renewing it.
    pub async fn current_token(&self) -> String {
        self.tokens.lock().await.access.clone()
    }

    /// Makes the client believe its token expires at `at` (unix seconds): a skewed clock.
    pub async fn believe_expiry(&self, at: u64) {
        self.tokens.lock().await.expires_at = at;
    }

    /// An access token with at least two minutes left: the current one, or a renewed one.
    pub async fn token(&self) -> String {
        let mut t = self.tokens.lock().await;
        if t.expires_at < now_unix() + RENEW_BEFORE_S {
            self.renew(&mut t).await;
        }
        t.access.clone()
    }

    /// The server refused `stale` (401): renew, unless another request already did.
    pub async fn renew_after_401(&self, stale: &str) {
        let mut t = self.tokens.lock().await;
        if t.access == stale {
            self.renew(&mut t).await;
        }
    }

    async fn renew(&self, t: &mut Tokens) {
        RENEWALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &*self.renewal {
            Renewal::Mint(minter, roles) => {
                let fresh = read_keys(&minter.inner.secrets, &minter.inner.secret_id).await;
                *minter.inner.keys.lock().unwrap() = Arc::new(fresh);
                t.access = minter.sign(&self.id, roles);
            }
            Renewal::Refresh(api) => {
                let refresh = t.refresh.clone().expect("a refresh token");
                // Not through `call`: a refresh token is single use, so a refresh whose answer
                // was lost cannot be sent again (it would look like token theft and revoke the
                // session); only answers that say nothing happened (429, 503) are retried.
                let mut r = None;
                for _ in 0..MAX_SENDS {
                    let reply = api
                        .exec(
                            api.request(reqwest::Method::POST, "/v1/auth/refresh")
                                .json(&json!({ "refresh_token": refresh })),
                        )
                        .await;
                    let wait = retry_after(&reply, false);
                    r = Some(reply);
                    match wait {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => break,
                    }
                }
                let r = r.unwrap();
                assert_eq!(r.status, StatusCode::OK, "refresh: {}", r.body);
                t.access = crate::s(&r.body, "access_token");
                t.refresh = Some(crate::s(&r.body, "refresh_token"));
            }
        }
        t.expires_at = expiry(&t.access);
    }
}

/// What to do with an answer: return it, or wait and send the same request again.
fn retry_after(r: &Reply, resent: bool) -> Option<Duration> {
    let in_flight = r.status == StatusCode::CONFLICT
        && r.body["type"] == "/problems/idempotency-in-flight"
        && resent;
    // Only the shared limiter's 429 says "later"; an account lock is an answer a test checks.
    let rate_limited =
        r.status == StatusCode::TOO_MANY_REQUESTS && r.body["type"] == "/problems/rate-limited";
    if r.status == StatusCode::SERVICE_UNAVAILABLE || rate_limited || in_flight {
        let secs = r
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        return Some(Duration::from_secs(secs.clamp(1, 60)));
    }
    // The gateway's own throttling (the route's rate and burst; no Retry-After, nothing ran):
    // back off with jitter, as the AWS SDKs do, and send the same request again.
    if r.status == StatusCode::TOO_MANY_REQUESTS && r.body["message"] == "Too Many Requests" {
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 4; // 0 to 1 s
        return Some(Duration::from_millis(250 + jitter));
    }
    None
}

/// Builds one request on the gateway; called again for every send, so it must build the same
/// request (same body, same Idempotency-Key) each time.
pub struct RequestFor<'a> {
    api: &'a Api,
}

impl RequestFor<'_> {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.api.request(reqwest::Method::GET, path)
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.api.request(reqwest::Method::POST, path)
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.api.request(reqwest::Method::DELETE, path)
    }
    pub fn method(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.api.request(method, path)
    }
}

impl Api {
    /// Sends the request `build` makes, as `caller` (when given), the way a real client does:
    /// with a valid token (renewed when close to expiry or after a 401), and again — the same
    /// request — after a connection failure, a 503 or 429 (after its Retry-After), or a 409
    /// "in flight" that answers one of its own repeats. Other answers are returned as they are.
    pub async fn call(
        &self,
        caller: Option<&Caller>,
        build: impl Fn(&RequestFor<'_>) -> reqwest::RequestBuilder,
    ) -> Reply {
        let mut renewed = false;
        let mut waited = Duration::ZERO;
        for send in 0..MAX_SENDS {
            if send > 0 {
                RESENDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut req = build(&RequestFor { api: self });
            let mut token = None;
            if let Some(c) = caller {
                let t = c.token().await;
                req = req.bearer_auth(&t);
                token = Some(t);
            }
            let reply = match self.try_exec(req).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("send {send}: {e}; sending the same request again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if reply.status.is_server_error()
                && !(reply.status == StatusCode::SERVICE_UNAVAILABLE
                    && reply.headers.contains_key(reqwest::header::RETRY_AFTER))
            {
                SERVER_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("server error {}: {}", reply.status, reply.body);
            }
            if reply.status == StatusCode::UNAUTHORIZED
                && let (Some(c), Some(t)) = (caller, &token)
                && !renewed
            {
                // Expired between the check and the server's clock, or a rotated key: renew
                // once and resend; a second 401 in a row is the answer.
                renewed = true;
                c.renew_after_401(t).await;
                continue;
            }
            match retry_after(&reply, send > 0) {
                Some(wait) if waited + wait <= MAX_WAIT => {
                    waited += wait;
                    tokio::time::sleep(wait).await;
                }
                _ => return reply,
            }
            renewed = false;
        }
        panic!("no final answer after {MAX_SENDS} sends");
    }

    /// [`Api::send`] as `caller`, through [`Api::call`].
    pub async fn send_as(
        &self,
        caller: &Caller,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.call(Some(caller), |r| {
            let req = r.method(method.clone(), path);
            match &body {
                Some(b) => req.json(b),
                None => req,
            }
        })
        .await
    }
}
