//! The one way to write an HTTP handler here. [`run`] wires a handler into the Lambda runtime
//! behind [`Middleware`], which gives every response the same treatment: request id, trace
//! context, one JSON access-log line, security headers, CORS, a body limit, a panic guard,
//! problem+json errors and one EMF metrics document per invocation.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::problem::ApiError;
use crate::telemetry::Telemetry;

pub type Request = lambda_http::Request;
pub type Response = http::Response<Body>;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The fields of the one access-log line every request produces (`user_id` joins them once the
/// request is authenticated).
pub const ACCESS_LOG_FIELDS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "function",
    "cold_start",
    "request_id",
    "lambda_request_id",
    "trace_id",
    "route",
    "method",
    "status",
    "duration_ms",
    "client_ip",
    "user_agent",
];

/// Headers every response carries.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains; preload",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
];

const CORS_ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, if-match, if-none-match, traceparent, x-amzn-trace-id";
const CORS_EXPOSE_HEADERS: &str = "etag, location, retry-after, x-request-id, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, idempotent-replayed";

static COLD_START: AtomicBool = AtomicBool::new(true);

/// Whether this is the first invocation of the process; only the first caller sees `true`.
pub fn take_cold_start() -> bool {
    COLD_START.swap(false, Ordering::SeqCst)
}

/// The caller's address as limits key it ([`crate::ratelimit::address_key`]: an IPv6 client by
/// its /64), from API Gateway's `sourceIp`; empty when unknown.
pub fn client_address(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .as_deref()
            .map(crate::ratelimit::address_key)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// What the middleware tells a handler about the invocation (a request extension).
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Whether this invocation started the process.
    pub cold_start: bool,
    pub request_id: String,
}

/// The per-process settings of the middleware.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
}

impl HttpOptions {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            allowed_origins: config.cors_allowed_origins.clone(),
            max_body_bytes: config.max_body_bytes,
        }
    }
}

/// Who may call a route and how often.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `None`: public. `Some(role)`: a valid access token whose roles include `role`.
    pub role: Option<crate::auth::Role>,
    pub rate_limit: Option<crate::ratelimit::Rule>,
    /// The handler only reads: the shared limiter's write runs beside it rather than before it
    /// (one round trip, not two in a row), and a refusal discards what the handler answered.
    pub read_only: bool,
    /// A write whose handler takes an idempotency claim before it changes anything
    /// ([`crate::idempotency::Idempotency::run`]): the count runs beside the claim, and the
    /// handler goes on only once it is admitted ([`Admission`]).
    pub count_with_claim: bool,
}

impl Policy {
    /// No token, no limit: liveness, readiness, the OpenAPI document.
    pub fn open() -> Self {
        Self {
            role: None,
            rate_limit: None,
            read_only: true,
            count_with_claim: false,
        }
    }

    /// A route that only reads, for callers with `role`, limited per user in the shared table
    /// (fails open: the limiter's store being down should not take reads down with it). The
    /// count runs concurrently with the handler.
    pub fn api(config: &crate::Config, role: crate::auth::Role) -> Self {
        Self {
            role: Some(role),
            rate_limit: Some(crate::ratelimit::Rule {
                scope: "api",
                limit: config.rate_limit_api,
                window: std::time::Duration::from_secs(60),
                fail_open: true,
                store: crate::ratelimit::Store::Shared,
            }),
            read_only: true,
            count_with_claim: false,
        }
    }

    /// An API route that changes state, for callers with `role`, on the same exact per-user
    /// budget, counted before the handler runs and failing closed: while the limiter's store is
    /// down its writes would fail too, and a write let through unlimited is what an attacker
    /// waits for.
    pub fn api_write(config: &crate::Config, role: crate::auth::Role) -> Self {
        let mut p = Self::api(config, role);
        if let Some(rule) = p.rate_limit.as_mut() {
            rule.fail_open = false;
        }
        p.read_only = false;
        p
    }

    /// A write that takes protection away from an attacker (logout: revoking the session):
    /// counted before it runs like [`Policy::api_write`], but let through when the limiter's
    /// store fails, so a user who fears a stolen token can always revoke it (abuse is its own
    /// end: the revoked token answers 401 next).
    pub fn revocation(config: &crate::Config, role: crate::auth::Role) -> Self {
        let mut p = Self::api_write(config, role);
        if let Some(rule) = p.rate_limit.as_mut() {
            rule.fail_open = true;
        }
        p
    }

    /// [`Policy::api_write`] for a route whose handler runs through
    /// [`crate::idempotency::Idempotency::run`] before it changes anything: the count runs
    /// beside the idempotency claim rather than before it (one round trip fewer).
    pub fn idempotent_write(config: &crate::Config, role: crate::auth::Role) -> Self {
        Self {
            count_with_claim: true,
            ..Self::api_write(config, role)
        }
    }

    /// A public read, limited per client address by this instance's brake only (no request:
    /// a public read is one DynamoDB request). Across the fleet, the gateway's route throttling
    /// and the WAF rule hold (docs/decisions/0013-public-read-protection.md).
    pub fn public_api(config: &crate::Config) -> Self {
        let mut p = Self {
            role: None,
            ..Self::api(config, crate::auth::Role::Attendee)
        };
        if let Some(rule) = p.rate_limit.as_mut() {
            rule.store = crate::ratelimit::Store::Instance;
        }
        p
    }

    /// A signed-in route that changes how the account is protected (turning MFA off): callers
    /// with `role`, on the auth budget of `scope`, failing closed (no limiter, no change).
    pub fn sensitive(config: &crate::Config, role: crate::auth::Role, scope: &'static str) -> Self {
        Self {
            role: Some(role),
            ..Self::auth_endpoint(config, scope)
        }
    }

    /// An unauthenticated auth endpoint (register, login, MFA verify, refresh): limited per
    /// client IP on its own budget, failing closed.
    pub fn auth_endpoint(config: &crate::Config, scope: &'static str) -> Self {
        Self {
            role: None,
            rate_limit: Some(crate::ratelimit::Rule {
                scope,
                limit: config.rate_limit_auth,
                window: std::time::Duration::from_secs(60),
                fail_open: false,
                store: crate::ratelimit::Store::Shared,
            }),
            read_only: false,
            count_with_claim: false,
        }
    }
}

/// What the middleware needs to enforce a [`Policy`].
pub struct Guard {
    pub policy: Policy,
    pub keys: crate::auth::Keys,
    pub limiter: crate::ratelimit::RateLimiter,
    /// The per-instance count of rules kept in this process.
    pub brake: crate::ratelimit::InstanceBrake,
    /// The shared limiter's refusals until their windows reset (no request to refuse again).
    pub refusals: Arc<crate::ratelimit::Refusals>,
    pub issuer: String,
    pub audience: String,
    pub allowlist: Vec<std::net::IpAddr>,
}

impl Guard {
    pub fn new(app: &crate::App, policy: Policy) -> Self {
        Self {
            policy,
            keys: crate::auth::Keys::new(app),
            limiter: crate::ratelimit::RateLimiter::new(
                app.clients.dynamodb.clone(),
                app.config.table_name.clone(),
            ),
            brake: crate::ratelimit::InstanceBrake::new(crate::ratelimit::InstanceBrake::CAPACITY),
            refusals: Arc::default(),
            issuer: app.config.jwt_issuer.clone(),
            audience: app.config.jwt_audience.clone(),
            allowlist: app.config.rate_limit_allowlist.clone(),
        }
    }

    /// The caller, when the request carries a valid token; an error when the route needs one.
    async fn authenticate(&self, req: &Request) -> Result<Option<crate::auth::User>, ApiError> {
        let Some(token) = crate::auth::bearer(req.headers()) else {
            return match self.policy.role {
                Some(_) => Err(crate::auth::unauthorized()),
                None => Ok(None),
            };
        };
        if self.policy.role.is_none() {
            return Ok(None);
        }
        let user = self
            .keys
            .user_of(token, &self.issuer, &self.audience)
            .await?;
        if let Some(role) = self.policy.role
            && !user.has(role)
        {
            return Err(ApiError::forbidden(format!(
                "this route needs the {} role",
                role.as_str()
            )));
        }
        Ok(Some(user))
    }

    /// Counts the request; `Err` with 429 when over the limit (or 503 when the store fails and
    /// the rule fails closed). The future owns what it needs (it may outlive the borrow of the
    /// guard: a write's count is shared with the handler as an [`Admission`]).
    fn limit(
        &self,
        route: &str,
        client_ip: &str,
        user_id: Option<String>,
    ) -> impl Future<Output = Verdict> + Send + 'static {
        let ready = |v: Verdict| futures_util::future::Either::Left(std::future::ready(v));
        let Some(rule) = self.policy.rate_limit.clone() else {
            return ready(Verdict::default());
        };
        if client_ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| self.allowlist.contains(&ip))
        {
            return ready(Verdict::default());
        }
        let subject = match user_id {
            Some(id) => format!("user:{id}"),
            None => format!("ip:{}", crate::ratelimit::address_key(client_ip)),
        };
        let route = route.to_owned();
        if rule.store == crate::ratelimit::Store::Instance {
            let decision = self.brake.check(&rule, &subject);
            if decision.allowed {
                return ready(Verdict::default());
            }
            metrics::counter!("RateLimited", "route" => route, "store" => "instance").increment(1);
            // No X-RateLimit-* headers: they would describe this instance, not the client's
            // budget; the refusal still says when to come back.
            return ready(Verdict {
                headers: Vec::new(),
                refusal: Some(Refusal::Braked(decision.reset_after)),
            });
        }
        let now = crate::ratelimit::now_ms();
        if let Some((limit, reset)) = self.refusals.get(&subject, now) {
            metrics::counter!("RateLimited", "route" => route, "store" => "shared").increment(1);
            return ready(Verdict {
                headers: ratelimit_headers(limit, 0, reset),
                refusal: Some(Refusal::Limited(limit, reset)),
            });
        }
        let limiter = self.limiter.clone();
        let refusals = self.refusals.clone();
        futures_util::future::Either::Right(async move {
            let decision = match limiter.check(&rule, &subject).await {
                Ok(d) => d,
                Err(e) => {
                    let mode = if rule.fail_open { "open" } else { "closed" };
                    metrics::counter!("RateLimiterErrors", "route" => route, "mode" => mode)
                        .increment(1);
                    tracing::warn!(error.cause_chain = %crate::error_chain_anyhow(&e), mode, "rate limiter unavailable");
                    return Verdict {
                        headers: Vec::new(),
                        refusal: (!rule.fail_open).then_some(Refusal::Unavailable),
                    };
                }
            };
            let headers =
                ratelimit_headers(decision.limit, decision.remaining, decision.reset_after);
            if decision.allowed {
                return Verdict {
                    headers,
                    refusal: None,
                };
            }
            metrics::counter!("RateLimited", "route" => route, "store" => "shared").increment(1);
            refusals.insert(
                &subject,
                now + decision.reset_after * 1000,
                decision.limit,
                now,
            );
            Verdict {
                headers,
                refusal: Some(Refusal::Limited(decision.limit, decision.reset_after)),
            }
        })
    }
}

/// The `X-RateLimit-*` headers of a shared-limit decision.
fn ratelimit_headers(limit: u32, remaining: u32, reset: u64) -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (HeaderName::from_static("x-ratelimit-limit"), limit.into()),
        (
            HeaderName::from_static("x-ratelimit-remaining"),
            remaining.into(),
        ),
        (HeaderName::from_static("x-ratelimit-reset"), reset.into()),
    ]
}

/// What the rate limit said of one request: the headers to send, and why it is refused (if).
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    headers: Vec<(HeaderName, HeaderValue)>,
    refusal: Option<Refusal>,
}

#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// Over the shared limit: (limit, seconds until the window resets).
    Limited(u32, u64),
    /// Over this instance's brake: seconds until its window resets.
    Braked(u64),
    /// The limiter's store failed and the rule fails closed.
    Unavailable,
}

impl Refusal {
    /// The answer to the refused request.
    fn problem(self) -> ApiError {
        match self {
            Refusal::Limited(limit, reset) => ApiError::of(crate::problem::problems::RATE_LIMITED)
                .detail(format!(
                    "more than {limit} requests a minute; try again in {reset} s"
                ))
                .header(header::RETRY_AFTER, reset.into()),
            Refusal::Braked(reset) => ApiError::of(crate::problem::problems::RATE_LIMITED)
                .detail(format!(
                    "too many requests from this address; try again in {reset} s"
                ))
                .header(header::RETRY_AFTER, reset.into()),
            Refusal::Unavailable => {
                ApiError::service_unavailable("rate limiting is unavailable; try again shortly")
                    .header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
        }
    }
}

impl Verdict {
    /// Adds the headers to `out`; `Err` with the refusal's problem.
    fn apply(self, out: &mut Vec<(HeaderName, HeaderValue)>) -> Result<(), ApiError> {
        out.extend(self.headers);
        self.refusal.map_or(Ok(()), |r| Err(r.problem()))
    }

    /// The refusal's problem, if refused (the headers are not needed).
    fn refused(&self) -> Option<ApiError> {
        self.refusal.map(Refusal::problem)
    }
}

/// A write's rate-limit count, started by the middleware before the handler and shared with it
/// (a request extension on routes whose policy says [`Policy::count_with_claim`]): the handler
/// awaits it beside its first write-ahead step (the idempotency claim) instead of after it,
/// and before it changes anything. The middleware awaits it too once the handler is done, so a
/// refusal is always the answer.
#[derive(Clone)]
pub struct Admission(
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, Verdict>>,
);

impl Admission {
    fn new(count: impl Future<Output = Verdict> + Send + 'static) -> Self {
        Self(futures_util::FutureExt::shared(Box::pin(count)))
    }

    /// Waits for the count: `Err` (429, or 503 when the limiter fails closed) if refused.
    pub async fn admitted(&self) -> Result<(), ApiError> {
        match self.0.clone().await.refused() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The admission of `req`, when its route counts beside the handler.
    pub fn of(req: &Request) -> Option<Admission> {
        req.extensions().get::<Admission>().cloned()
    }

    /// `Err` when `req`'s count has already refused it (a refusal this instance remembers is
    /// known before any request): the handler stops before its claim or its first reads.
    pub fn refused_now(req: &Request) -> Result<(), ApiError> {
        match Self::of(req).and_then(|a| a.0.now_or_never()) {
            Some(verdict) => match verdict.refused() {
                Some(e) => Err(e),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Waits for `req`'s admission when its route counts beside its handler (at once
    /// otherwise). The future owns what it needs: `req` may move on meanwhile.
    pub fn wait_for(req: &Request) -> impl Future<Output = Result<(), ApiError>> + use<> {
        let admission = Self::of(req);
        async move {
            match admission {
                Some(a) => a.admitted().await,
                None => Ok(()),
            }
        }
    }
}

/// What the middleware knows of the request, gathered once.
struct RequestInfo {
    request_id: String,
    lambda_request_id: String,
    route: String,
    method: String,
    path: String,
    client_ip: String,
    user_agent: String,
    origin: Option<String>,
    accept_encoding: Option<String>,
}

impl RequestInfo {
    fn of(req: &Request) -> Self {
        let (apigw_id, route, client_ip, user_agent) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone(),
                ctx.route_key.clone(),
                ctx.http.source_ip.clone(),
                ctx.http.user_agent.clone(),
            ),
            _ => (None, None, None, None),
        };
        let lambda_request_id = req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let header = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            request_id: apigw_id
                .filter(|s| !s.is_empty())
                .or_else(|| Some(lambda_request_id.clone()).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            lambda_request_id,
            route: route.unwrap_or_else(|| format!("{} {}", req.method(), req.uri().path())),
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            client_ip: client_ip.unwrap_or_default(),
            user_agent: user_agent
                .or_else(|| header(header::USER_AGENT))
                .unwrap_or_default(),
            origin: header(header::ORIGIN),
            accept_encoding: header(header::ACCEPT_ENCODING),
        }
    }
}

/// Wraps every handler of a function.
pub struct Middleware {
    options: HttpOptions,
    telemetry: &'static Telemetry,
    guard: Option<Guard>,
    /// The brotli encoder, for a function that serves pages ([`serve_pages`]).
    brotli: Option<crate::compress::Encoder>,
}

impl Middleware {
    pub fn new(options: HttpOptions, telemetry: &'static Telemetry) -> Self {
        Self {
            options,
            telemetry,
            guard: None,
            brotli: None,
        }
    }

    /// Enforces `guard`'s policy (authentication, roles, rate limits) before the handler.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Runs `handler` for `req` and returns the finished response. Never fails: every error,
    /// panic included, becomes a problem+json response.
    pub async fn handle<F, Fut>(&self, req: Request, handler: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        let started = Instant::now();
        let cold_start = take_cold_start();
        let info = RequestInfo::of(&req);
        // In X-Ray, a subsegment of the segment Lambda records for the invocation (kind
        // internal; see crate::xray): named by its route, searchable by route, user and event.
        let span = tracing::info_span!(
            "request",
            otel.name = %info.route,
            otel.kind = "internal",
            request_id = %info.request_id,
            lambda_request_id = %info.lambda_request_id,
            trace_id = tracing::field::Empty,
            route = %info.route,
            method = %info.method,
            user_id = tracing::field::Empty,
            event_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        // Only an id-shaped value: the annotation is searchable and the path is the caller's.
        if info.route.contains("/events/{id}")
            && let Some(id) = req.path_parameters_ref().and_then(|p| p.first("id"))
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            span.record("event_id", id);
        }
        let lambda_trace = req
            .lambda_context_ref()
            .and_then(|c| c.xray_trace_id.clone());
        if let Some(parent) =
            crate::telemetry::remote_parent(lambda_trace.as_deref(), req.headers())
        {
            let _ = span.set_parent(parent);
        }
        let trace_id = span
            .in_scope(crate::telemetry::current_trace_id)
            .unwrap_or_default();
        span.record("trace_id", trace_id.as_str());

        let mut response = async {
            let mut req = req;
            req.extensions_mut().insert(Invocation {
                cold_start,
                request_id: info.request_id.clone(),
            });
            let mut extra_headers = Vec::new();
            let result = self.guarded(&info, req, handler, &mut extra_headers).await;
            let mut response = match result {
                Ok(r) => r,
                Err(e) => {
                    if e.status.is_server_error() {
                        match &e.cause {
                            Some(cause) => tracing::error!(
                                error.cause_chain = %crate::error_chain_anyhow(cause),
                                status = e.status.as_u16(),
                                "request failed"
                            ),
                            None => tracing::error!(status = e.status.as_u16(), error = %e, "request failed"),
                        }
                    }
                    e.into_response(Some(&info.path), Some(&info.request_id))
                }
            };
            for (name, value) in extra_headers {
                response.headers_mut().insert(name, value);
            }
            response
        }
        .instrument(span.clone())
        .await;

        self.finish_headers(&info, &mut response);
        crate::compress::response(info.accept_encoding.as_deref(), self.brotli, &mut response);
        let status = response.status().as_u16();
        span.record("status", status);
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        span.in_scope(|| {
            tracing::info!(
                target: "access",
                cold_start,
                status,
                duration_ms,
                path = %info.path,
                client_ip = %info.client_ip,
                user_agent = %info.user_agent,
                "request completed"
            );
        });
        drop(span);
        record_request_metrics(&info.route, status, duration_ms, cold_start);
        self.telemetry.flush(&[
            ("requestId", info.request_id.clone()),
            ("lambdaRequestId", info.lambda_request_id.clone()),
            ("traceId", trace_id),
        ]);
        response
    }

    async fn guarded<F, Fut>(
        &self,
        info: &RequestInfo,
        mut req: Request,
        handler: F,
        extra_headers: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return self.preflight(info);
        }
        let body_len = match req.body() {
            Body::Empty => 0,
            Body::Text(t) => t.len(),
            Body::Binary(b) => b.len(),
            _ => 0,
        };
        if body_len > self.options.max_body_bytes {
            return Err(ApiError::payload_too_large(self.options.max_body_bytes));
        }
        let run = |req: Request| async move {
            match AssertUnwindSafe(handler(req)).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    metrics::counter!("Panics", "route" => info.route.clone()).increment(1);
                    Err(ApiError::internal(anyhow::anyhow!("handler panicked")))
                }
            }
        };
        let Some(guard) = &self.guard else {
            return run(req).await;
        };
        let user = guard.authenticate(&req).await?;
        if let Some(user) = &user {
            tracing::Span::current().record("user_id", user.id.as_str());
        }
        let limit = guard.limit(
            &info.route,
            &info.client_ip,
            user.as_ref().map(|u| u.id.clone()),
        );
        if let Some(user) = user {
            req.extensions_mut().insert(user);
        }
        let shared_count = guard
            .policy
            .rate_limit
            .as_ref()
            .is_some_and(|r| r.store == crate::ratelimit::Store::Shared);
        if guard.policy.read_only && shared_count {
            // A read: the count and the read run together. Refused first, the read is dropped
            // where it is (nothing was changed); refused after, its answer is discarded.
            let limit = std::pin::pin!(limit);
            let read = std::pin::pin!(run(req));
            match futures_util::future::select(limit, read).await {
                futures_util::future::Either::Left((verdict, read)) => {
                    verdict.apply(extra_headers)?;
                    read.await
                }
                futures_util::future::Either::Right((result, limit)) => {
                    limit.await.apply(extra_headers)?;
                    result
                }
            }
        } else if guard.policy.count_with_claim && shared_count {
            // A write whose handler awaits the count beside its idempotency claim.
            let admission = Admission::new(limit);
            req.extensions_mut().insert(admission.clone());
            let result = run(req).await;
            // A count that panicked inside the handler's poll panics again here: a 500, not an
            // escape from the panic guard.
            match AssertUnwindSafe(admission.0).catch_unwind().await {
                Ok(verdict) => verdict.apply(extra_headers)?,
                Err(_) => {
                    metrics::counter!("Panics", "route" => info.route.clone()).increment(1);
                    return Err(ApiError::internal(anyhow::anyhow!(
                        "the rate-limit count panicked"
                    )));
                }
            }
            result
        } else {
            limit.await.apply(extra_headers)?;
            run(req).await
        }
    }

    fn allowed_origin(&self, info: &RequestInfo) -> Option<HeaderValue> {
        let origin = info.origin.as_deref()?;
        self.options
            .allowed_origins
            .iter()
            .any(|o| o == origin)
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }

    fn preflight(&self, info: &RequestInfo) -> Result<Response, ApiError> {
        if self.allowed_origin(info).is_none() {
            return Err(ApiError::forbidden("this origin may not call the API"));
        }
        let mut r = Response::new(Body::Empty);
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        Ok(r)
    }

    fn finish_headers(&self, info: &RequestInfo, response: &mut Response) {
        let allowed = self.allowed_origin(info);
        let h = response.headers_mut();
        for (name, value) in SECURITY_HEADERS {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        // Private by default: a handler serving public, cacheable data says so itself.
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&info.request_id) {
            h.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
        }
        if let Some(origin) = allowed {
            // Credentials are allowed only together with an exact, allow-listed origin; the
            // wildcard is never sent.
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSE_HEADERS),
            );
        }
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn record_request_metrics(route: &str, status: u16, duration_ms: f64, cold_start: bool) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("Requests", "route" => route.to_owned(), "status_class" => class)
        .increment(1);
    metrics::histogram!("Latency", "route" => route.to_owned()).record(duration_ms);
    if cold_start {
        metrics::counter!("ColdStart").increment(1);
    }
}

/// Starts the Lambda runtime with `handler` behind the middleware. The handler is called once
/// per invocation; clone what it needs into it.
async fn run<H, Fut>(
    app: &crate::App,
    middleware: Middleware,
    policy: Policy,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let middleware = Arc::new(middleware.with_guard(Guard::new(app, policy)));
    let handler = Arc::new(handler);
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let middleware = middleware.clone();
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(middleware.handle(req, |r| handler(r)).await) }
    }))
    .await
}

/// Wires one endpoint into the Lambda runtime (every HTTP function starts here; event-source
/// functions through [`crate::runtime::serve`]): init once, build the domain with `build`
/// (failing at start, naming what is missing, when its configuration is not there), then
/// `handler` per request behind the middleware with the route's `policy`. Large JSON answers
/// go out as gzip when the client takes it ([`serve_pages`] adds brotli).
pub async fn serve<D, B, P, H, Fut>(
    name: &str,
    build: B,
    policy: P,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    D: Send + Sync + 'static,
    B: FnOnce(&crate::App) -> anyhow::Result<Arc<D>>,
    P: FnOnce(&crate::Config) -> Policy,
    H: Fn(Arc<D>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    serve_with(name, build, policy, handler, None).await
}

/// [`serve`] for a function whose answers are pages (lists, search, the OpenAPI document):
/// they may also go out as brotli, whose encoder only these functions link (decision 0017).
pub async fn serve_pages<D, B, P, H, Fut>(
    name: &str,
    build: B,
    policy: P,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    D: Send + Sync + 'static,
    B: FnOnce(&crate::App) -> anyhow::Result<Arc<D>>,
    P: FnOnce(&crate::Config) -> Policy,
    H: Fn(Arc<D>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    serve_with(name, build, policy, handler, Some(crate::compress::brotli)).await
}

async fn serve_with<D, B, P, H, Fut>(
    name: &str,
    build: B,
    policy: P,
    handler: H,
    brotli: Option<crate::compress::Encoder>,
) -> Result<(), lambda_http::Error>
where
    D: Send + Sync + 'static,
    B: FnOnce(&crate::App) -> anyhow::Result<Arc<D>>,
    P: FnOnce(&crate::Config) -> Policy,
    H: Fn(Arc<D>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let app = crate::init(name).await?;
    let domain = build(&app).map_err(|e| {
        eprintln!("{name}: {e}");
        e
    })?;
    let policy = policy(&app.config);
    let mut middleware = Middleware::new(HttpOptions::from_config(&app.config), app.telemetry);
    middleware.brotli = brotli;
    run(&app, middleware, policy, move |req| {
        handler(domain.clone(), req)
    })
    .await
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    let mut r = Response::new(Body::Text(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Typed access to the parts of a request a handler reads.
pub trait RequestParts {
    /// The JSON body as `T`. Wrong content type → 415; malformed JSON → 400; an unknown or
    /// missing field or a value its type refuses → 422 naming the field.
    fn json_body<T: DeserializeOwned>(&self) -> Result<T, ApiError>;
    /// The authenticated caller (routes whose policy requires a role always have one).
    fn user(&self) -> Result<&crate::auth::User, ApiError>;
    /// A path parameter the route declares, parsed into its domain type.
    fn path_param<T>(&self, name: &str) -> Result<T, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display;
}

impl RequestParts for Request {
    fn json_body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::unsupported_media_type(format!(
                "the body must be application/json, got {:?}",
                if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type
                }
            )));
        }
        parse_json(self.body().as_ref())
    }

    fn user(&self) -> Result<&crate::auth::User, ApiError> {
        self.extensions()
            .get::<crate::auth::User>()
            .ok_or_else(crate::auth::unauthorized)
    }

    fn path_param<T>(&self, name: &str) -> Result<T, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let params = self.path_parameters();
        let raw = params
            .first(name)
            .ok_or_else(|| ApiError::bad_request(format!("path parameter {name} is missing")))?;
        raw.parse::<T>()
            .map_err(|e| ApiError::bad_request(e.to_string()).field(name, e.to_string()))
    }
}

/// Parses a JSON document into `T`, naming the field at fault on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    ApiError::validation(field_name(&path, &message), message)
                }
                _ => ApiError::bad_request(format!(
                    "malformed JSON at line {} column {}",
                    inner.line(),
                    inner.column()
                )),
            });
        }
    };
    de.end().map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON: trailing characters at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    Ok(value)
}

/// serde reports unknown and missing fields at their parent; name the field itself.
fn field_name(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(marker)
            && let Some(end) = rest.find('`')
        {
            let name = &rest[..end];
            // serde_path_to_error already ends the path with an unknown field's name.
            if parent == name || parent.ends_with(&format!(".{name}")) {
                return parent.to_owned();
            }
            return if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}.{name}")
            };
        }
    }
    if parent.is_empty() {
        "body".to_owned()
    } else {
        parent.to_owned()
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod policy_tests {
    use super::Policy;
    use crate::auth::Role;

    /// What each route class does while the rate limiter's store is down (docs/runbook.md).
    #[test]
    fn reads_fail_open_writes_and_auth_fail_closed() {
        let c = crate::testing::config("policy", &[]);
        let open = |p: Policy| p.rate_limit.map(|r| r.fail_open);
        assert_eq!(open(Policy::api(&c, Role::Attendee)), Some(true), "reads");
        assert_eq!(open(Policy::public_api(&c)), Some(true), "public reads");
        assert_eq!(
            open(Policy::api_write(&c, Role::Attendee)),
            Some(false),
            "writes"
        );
        assert_eq!(
            open(Policy::auth_endpoint(&c, "auth:login")),
            Some(false),
            "auth"
        );
        assert_eq!(
            open(Policy::sensitive(&c, Role::Attendee, "auth:mfa")),
            Some(false),
            "MFA changes"
        );
        assert_eq!(
            open(Policy::open()),
            None,
            "health, readiness, the document"
        );
        assert_eq!(
            open(Policy::revocation(&c, Role::Attendee)),
            Some(true),
            "logout: a user can always revoke a session"
        );
    }

    /// Only reads count beside their handler; only the idempotent writes beside their claim;
    /// only anonymous reads count in the instance (decision 0013).
    #[test]
    fn where_each_route_class_counts() {
        use crate::ratelimit::Store;
        let c = crate::testing::config("policy", &[]);
        let shape = |p: &Policy| {
            (
                p.read_only,
                p.count_with_claim,
                p.rate_limit.as_ref().map(|r| r.store),
            )
        };
        assert_eq!(
            shape(&Policy::api(&c, Role::Attendee)),
            (true, false, Some(Store::Shared))
        );
        assert_eq!(
            shape(&Policy::public_api(&c)),
            (true, false, Some(Store::Instance))
        );
        for write in [
            Policy::api_write(&c, Role::Attendee),
            Policy::revocation(&c, Role::Attendee),
            Policy::auth_endpoint(&c, "auth:login"),
            Policy::sensitive(&c, Role::Attendee, "auth:mfa"),
        ] {
            assert_eq!(shape(&write), (false, false, Some(Store::Shared)));
        }
        assert_eq!(
            shape(&Policy::idempotent_write(&c, Role::Attendee)),
            (false, true, Some(Store::Shared))
        );
    }
}
