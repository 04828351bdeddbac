//! RFC 9457 problem details: the one error type HTTP handlers return, and its rendering to
//! `application/problem+json`. 5xx bodies say nothing internal; their cause chain goes to the
//! log.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use lambda_http::Body;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The id of the request that produced this answer; quote it when reporting a problem.
    /// Usually the `x-request-id` of this response; on a replay of a stored answer (a resend
    /// with the same Idempotency-Key) it is the first request's, while `x-request-id` names
    /// the resend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The fields at fault, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
    /// Problem-type-specific members (RFC 9457 §3.2), such as the failed checks of `/readyz`.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// A problem type of this API: what `type` names, with its title and status (docs/problems.md
/// lists them; the OpenAPI error responses are derived from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub uri: &'static str,
    pub title: &'static str,
    pub status: StatusCode,
    /// When a client meets it.
    pub description: &'static str,
}

/// The catalogue: every problem type an endpoint answers with.
pub mod problems {
    use super::ProblemType;
    use http::StatusCode;

    /// The request is malformed: JSON that does not parse, a malformed id, header or cursor.
    pub const BAD_REQUEST: ProblemType = ProblemType {
        uri: "/problems/bad-request",
        title: "Bad request",
        status: StatusCode::BAD_REQUEST,
        description: "The request is malformed: JSON that does not parse, a malformed id, header or cursor.",
    };
    /// Fields that parsed but are not acceptable; `invalid_params` names each.
    pub const VALIDATION: ProblemType = ProblemType {
        uri: "/problems/validation",
        title: "Validation failed",
        status: StatusCode::UNPROCESSABLE_ENTITY,
        description: "Fields that parsed but are not acceptable; `invalid_params` names each.",
    };
    /// A body that is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: ProblemType = ProblemType {
        uri: "/problems/unsupported-media-type",
        title: "Unsupported media type",
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        description: "A body that is not `application/json`.",
    };
    /// A body over the route's size limit.
    pub const PAYLOAD_TOO_LARGE: ProblemType = ProblemType {
        uri: "/problems/payload-too-large",
        title: "Payload too large",
        status: StatusCode::PAYLOAD_TOO_LARGE,
        description: "A body over the route's size limit.",
    };
    /// No valid access token, or its session was revoked.
    pub const UNAUTHORIZED: ProblemType = ProblemType {
        uri: "/problems/unauthorized",
        title: "Unauthorized",
        status: StatusCode::UNAUTHORIZED,
        description: "No valid access token, or its session was revoked.",
    };
    /// The caller's roles do not allow this.
    pub const FORBIDDEN: ProblemType = ProblemType {
        uri: "/problems/forbidden",
        title: "Forbidden",
        status: StatusCode::FORBIDDEN,
        description: "The caller's roles do not allow this.",
    };
    /// No such resource (or route).
    pub const NOT_FOUND: ProblemType = ProblemType {
        uri: "/problems/not-found",
        title: "Not found",
        status: StatusCode::NOT_FOUND,
        description: "No such resource (or route).",
    };
    /// Over the caller's rate limit; `Retry-After` says when to try again.
    pub const RATE_LIMITED: ProblemType = ProblemType {
        uri: "/problems/rate-limited",
        title: "Too many requests",
        status: StatusCode::TOO_MANY_REQUESTS,
        description: "Over the caller's rate limit; `Retry-After` says when to try again.",
    };
    /// A dependency is busy or down, or a race outlasted the time budget: nothing was changed; send the same request (same Idempotency-Key) after `Retry-After`.
    pub const SERVICE_UNAVAILABLE: ProblemType = ProblemType {
        uri: "/problems/service-unavailable",
        title: "Service unavailable",
        status: StatusCode::SERVICE_UNAVAILABLE,
        description: "A dependency is busy or down, or a race outlasted the time budget: nothing was changed; send the same request (same Idempotency-Key) after `Retry-After`.",
    };
    /// Another request with this Idempotency-Key is running; retry after `Retry-After` to see its outcome.
    pub const IDEMPOTENCY_IN_FLIGHT: ProblemType = ProblemType {
        uri: "/problems/idempotency-in-flight",
        title: "Request in progress",
        status: StatusCode::CONFLICT,
        description: "Another request with this Idempotency-Key is running; retry after `Retry-After` to see its outcome.",
    };
    /// The Idempotency-Key was used for a different request.
    pub const IDEMPOTENCY_KEY_REUSED: ProblemType = ProblemType {
        uri: "/problems/idempotency-key-reused",
        title: "Idempotency-Key reused",
        status: StatusCode::UNPROCESSABLE_ENTITY,
        description: "The Idempotency-Key was used for a different request.",
    };
    /// Wrong email or password.
    pub const INVALID_CREDENTIALS: ProblemType = ProblemType {
        uri: "/problems/invalid-credentials",
        title: "Invalid credentials",
        status: StatusCode::UNAUTHORIZED,
        description: "Wrong email or password.",
    };
    /// Too many failed sign-ins or codes; locked until `Retry-After`.
    pub const ACCOUNT_LOCKED: ProblemType = ProblemType {
        uri: "/problems/account-locked",
        title: "Too many attempts",
        status: StatusCode::TOO_MANY_REQUESTS,
        description: "Too many failed sign-ins or codes; locked until `Retry-After`.",
    };
    /// A wrong or used second-factor code, or an unknown challenge.
    pub const INVALID_CODE: ProblemType = ProblemType {
        uri: "/problems/invalid-code",
        title: "Invalid code",
        status: StatusCode::UNAUTHORIZED,
        description: "A wrong or used second-factor code, or an unknown challenge.",
    };
    /// Unknown, expired, reused or revoked refresh token.
    pub const INVALID_REFRESH_TOKEN: ProblemType = ProblemType {
        uri: "/problems/invalid-refresh-token",
        title: "Invalid refresh token",
        status: StatusCode::UNAUTHORIZED,
        description: "Unknown, expired, reused or revoked refresh token.",
    };
    /// An account with this email exists.
    pub const EMAIL_TAKEN: ProblemType = ProblemType {
        uri: "/problems/email-taken",
        title: "Email taken",
        status: StatusCode::CONFLICT,
        description: "An account with this email exists.",
    };
    /// The account already has an authenticator.
    pub const MFA_ENABLED: ProblemType = ProblemType {
        uri: "/problems/mfa-enabled",
        title: "MFA already on",
        status: StatusCode::CONFLICT,
        description: "The account already has an authenticator.",
    };
    /// The account has no authenticator to disable.
    pub const MFA_NOT_ENABLED: ProblemType = ProblemType {
        uri: "/problems/mfa-not-enabled",
        title: "MFA is off",
        status: StatusCode::CONFLICT,
        description: "The account has no authenticator to disable.",
    };
    /// No authenticator enrolment is pending.
    pub const NO_PENDING_ENROLLMENT: ProblemType = ProblemType {
        uri: "/problems/no-pending-enrollment",
        title: "Nothing to activate",
        status: StatusCode::CONFLICT,
        description: "No authenticator enrolment is pending.",
    };
    /// The last admin cannot lose the admin role.
    pub const LAST_ADMIN: ProblemType = ProblemType {
        uri: "/problems/last-admin",
        title: "Last admin",
        status: StatusCode::CONFLICT,
        description: "The last admin cannot lose the admin role.",
    };
    /// The roles changed while this change was being made; read and retry.
    pub const ROLES_CHANGED: ProblemType = ProblemType {
        uri: "/problems/roles-changed",
        title: "Roles changed meanwhile",
        status: StatusCode::CONFLICT,
        description: "The roles changed while this change was being made; read and retry.",
    };
    /// The event is cancelled, or a capacity is below the seats taken.
    pub const EVENT_CONFLICT: ProblemType = ProblemType {
        uri: "/problems/event-conflict",
        title: "Conflict",
        status: StatusCode::CONFLICT,
        description: "The event is cancelled, or a capacity is below the seats taken.",
    };
    /// If-Match names an older version; the body carries the current one.
    pub const STALE_ETAG: ProblemType = ProblemType {
        uri: "/problems/stale-etag",
        title: "Precondition failed",
        status: StatusCode::PRECONDITION_FAILED,
        description: "If-Match names an older version; the body carries the current one.",
    };
    /// A change needs If-Match with the ETag of the version being changed.
    pub const IF_MATCH_REQUIRED: ProblemType = ProblemType {
        uri: "/problems/if-match-required",
        title: "Precondition required",
        status: StatusCode::PRECONDITION_REQUIRED,
        description: "A change needs If-Match with the ETag of the version being changed.",
    };
    /// The event is cancelled or has started.
    pub const EVENT_NOT_JOINABLE: ProblemType = ProblemType {
        uri: "/problems/event-not-joinable",
        title: "Event not joinable",
        status: StatusCode::CONFLICT,
        description: "The event is cancelled or has started.",
    };
    /// The caller already holds a seat or a waitlist place (`state` says which).
    pub const ALREADY_JOINED: ProblemType = ProblemType {
        uri: "/problems/already-joined",
        title: "Already joined",
        status: StatusCode::CONFLICT,
        description: "The caller already holds a seat or a waitlist place (`state` says which).",
    };
    /// The caller has not joined this event.
    pub const NOT_JOINED: ProblemType = ProblemType {
        uri: "/problems/not-joined",
        title: "Not joined",
        status: StatusCode::NOT_FOUND,
        description: "The caller has not joined this event.",
    };
    /// An OpenID Connect sign-in's state is unknown, used, expired, or not this client's.
    pub const OIDC_STATE: ProblemType = ProblemType {
        uri: "/problems/oidc-state",
        title: "Unknown sign-in",
        status: StatusCode::BAD_REQUEST,
        description: "The sign-in this callback names is unknown, already used, expired, or was started by another client (its binding): start again.",
    };
    /// The provider identity being linked is linked to an account already.
    pub const IDENTITY_LINKED: ProblemType = ProblemType {
        uri: "/problems/identity-linked",
        title: "Identity already linked",
        status: StatusCode::CONFLICT,
        description: "This provider identity is linked to an account already (this one or another): unlink it there first.",
    };
    /// The provider's answer could not be trusted: the code was refused, or the ID token failed
    /// a check.
    pub const OIDC_REFUSED: ProblemType = ProblemType {
        uri: "/problems/oidc-refused",
        title: "Sign-in refused",
        status: StatusCode::UNAUTHORIZED,
        description: "The provider refused the code (or the verifier), or its ID token failed a check (signature, issuer, audience, expiry, nonce): start again.",
    };
    /// An unexpected failure; quote the request id when reporting it.
    pub const INTERNAL: ProblemType = ProblemType {
        uri: "about:blank",
        title: "Internal server error",
        status: StatusCode::INTERNAL_SERVER_ERROR,
        description: "An unexpected failure; quote the request id when reporting it.",
    };

    /// A method the path does not take; `Allow` lists the ones it does.
    pub const METHOD_NOT_ALLOWED: ProblemType = ProblemType {
        uri: "/problems/method-not-allowed",
        title: "Method not allowed",
        status: StatusCode::METHOD_NOT_ALLOWED,
        description: "A method the path does not take; `Allow` lists the ones it does.",
    };

    /// Every problem type, in the catalogue's order.
    pub const ALL: &[ProblemType] = &[
        BAD_REQUEST,
        VALIDATION,
        UNSUPPORTED_MEDIA_TYPE,
        PAYLOAD_TOO_LARGE,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        RATE_LIMITED,
        SERVICE_UNAVAILABLE,
        IDEMPOTENCY_IN_FLIGHT,
        IDEMPOTENCY_KEY_REUSED,
        INVALID_CREDENTIALS,
        ACCOUNT_LOCKED,
        INVALID_CODE,
        INVALID_REFRESH_TOKEN,
        EMAIL_TAKEN,
        MFA_ENABLED,
        MFA_NOT_ENABLED,
        NO_PENDING_ENROLLMENT,
        LAST_ADMIN,
        ROLES_CHANGED,
        EVENT_CONFLICT,
        STALE_ETAG,
        IF_MATCH_REQUIRED,
        EVENT_NOT_JOINABLE,
        ALREADY_JOINED,
        NOT_JOINED,
        OIDC_STATE,
        OIDC_REFUSED,
        IDENTITY_LINKED,
        METHOD_NOT_ALLOWED,
        INTERNAL,
    ];

    /// The catalogue as markdown (docs/problems.md).
    pub fn markdown() -> String {
        let mut s = String::from(
            "# Problem types\n\nEvery error is an RFC 9457 `application/problem+json` document whose `type` is one of these (generated from `shared::problem::problems`; a test keeps this file current).\n\n| type | status | title | when |\n|---|---|---|---|\n",
        );
        for p in ALL {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                p.uri,
                p.status.as_u16(),
                p.title,
                p.description
            ));
        }
        s
    }
}

/// One field at fault.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct InvalidParam {
    /// The field's path in the request, like `starts_at` or `tags[3]`.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

/// An error on its way to becoming a problem+json response. Boxed: it travels in every
/// handler's `Result`, whose happy path should stay small.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorParts>);

/// The parts of an [`ApiError`], readable through `Deref`.
#[derive(Debug)]
pub struct ApiErrorParts {
    pub status: StatusCode,
    pub type_: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub invalid_params: Vec<InvalidParam>,
    pub headers: HeaderMap,
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// The internal cause of a 5xx: logged, never sent.
    pub cause: Option<anyhow::Error>,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorParts;
    fn deref(&self) -> &ApiErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorParts {
        &mut self.0
    }
}

impl ApiError {
    /// An error of a catalogued problem type ([`problems`]).
    pub fn of(p: ProblemType) -> Self {
        Self::new(p.status, p.uri, p.title)
    }

    fn new(status: StatusCode, type_: &'static str, title: &'static str) -> Self {
        Self(Box::new(ApiErrorParts {
            status,
            type_,
            title,
            detail: None,
            invalid_params: Vec::new(),
            headers: HeaderMap::new(),
            extensions: serde_json::Map::new(),
            cause: None,
        }))
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, name: impl Into<String>, reason: impl Into<String>) -> Self {
        self.invalid_params.push(InvalidParam {
            name: name.into(),
            reason: reason.into(),
        });
        self
    }

    /// Adds an extension member to the problem body.
    pub fn extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::of(problems::BAD_REQUEST).detail(detail)
    }

    /// A request that parsed but whose fields are not acceptable.
    pub fn validation(name: impl Into<String>, reason: impl Into<String>) -> Self {
        let (name, reason) = (name.into(), reason.into());
        Self::of(problems::VALIDATION)
            .detail(format!("{name}: {reason}"))
            .field(name, reason)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::of(problems::UNSUPPORTED_MEDIA_TYPE).detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::of(problems::PAYLOAD_TOO_LARGE)
            .detail(format!("the request body is larger than {limit} bytes"))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::of(problems::NOT_FOUND).detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::of(problems::FORBIDDEN).detail(detail)
    }

    /// A 503: nothing was changed; the same request may be sent again after `Retry-After`
    /// (1 s unless the caller sets another).
    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::of(problems::SERVICE_UNAVAILABLE)
            .detail(detail)
            .header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            )
    }

    /// An unexpected failure: a 500 whose body says nothing about `cause` — unless `cause` is
    /// an AWS dependency throttling, failing inside or not answering after the SDK's own
    /// retries ([`crate::aws::is_transient`]): that is a 503 with Retry-After, which a client
    /// may send again as it is (with the same Idempotency-Key).
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        if crate::aws::is_transient(&cause) {
            metrics::counter!("DependencyUnavailable").increment(1);
            let mut u = Self::service_unavailable(
                "a dependency is busy or unavailable; retry shortly (with the same Idempotency-Key, if any)",
            )
            .header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            u.cause = Some(cause);
            return u;
        }
        let mut e = Self::of(problems::INTERNAL)
            .detail("the request could not be completed; quote the request id when reporting it");
        e.cause = Some(cause);
        e
    }

    /// The problem document alone, and the headers that go with it (a WebSocket error frame
    /// carries the document without an HTTP response around it).
    pub fn into_problem(
        self,
        instance: Option<&str>,
        request_id: Option<&str>,
    ) -> (Problem, HeaderMap) {
        let parts = *self.0;
        let problem = Problem {
            type_: parts.type_.to_owned(),
            title: parts.title.to_owned(),
            status: parts.status.as_u16(),
            detail: parts.detail,
            instance: instance.map(str::to_owned),
            request_id: request_id.map(str::to_owned),
            invalid_params: parts.invalid_params,
            extensions: parts.extensions,
        };
        (problem, parts.headers)
    }

    /// Renders the problem+json response for a request at `instance`.
    pub fn into_response(
        self,
        instance: Option<&str>,
        request_id: Option<&str>,
    ) -> http::Response<Body> {
        let status = self.status;
        let (problem, headers) = self.into_problem(instance, request_id);
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".to_owned());
        let mut response = http::Response::new(Body::Text(body));
        *response.status_mut() = status;
        response.headers_mut().extend(headers);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_JSON),
        );
        response
    }
}

impl From<anyhow::Error> for ApiError {
    /// An unexpected failure is a 500 — unless it is an AWS dependency throttling, failing
    /// inside or not answering (after the SDK's own retries): that is a 503 with Retry-After,
    /// which a client may retry (with the same Idempotency-Key) as it is.
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl std::error::Error for ApiError {}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}
