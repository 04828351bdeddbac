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
    /// The request id, also in the `x-request-id` header; quote it when reporting a problem.
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
    pub fn new(status: StatusCode, type_: &'static str, title: &'static str) -> Self {
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
        Self::new(
            StatusCode::BAD_REQUEST,
            "/problems/bad-request",
            "Bad request",
        )
        .detail(detail)
    }

    /// A request that parsed but whose fields are not acceptable.
    pub fn validation(name: impl Into<String>, reason: impl Into<String>) -> Self {
        let (name, reason) = (name.into(), reason.into());
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/validation",
            "Validation failed",
        )
        .detail(format!("{name}: {reason}"))
        .field(name, reason)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/unsupported-media-type",
            "Unsupported media type",
        )
        .detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/payload-too-large",
            "Payload too large",
        )
        .detail(format!("the request body is larger than {limit} bytes"))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "/problems/not-found", "Not found").detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "/problems/forbidden", "Forbidden").detail(detail)
    }

    /// A 503: nothing was changed; the same request may be sent again after `Retry-After`
    /// (1 s unless the caller sets another).
    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "/problems/service-unavailable",
            "Service unavailable",
        )
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
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "about:blank",
            "Internal server error",
        )
        .detail("the request could not be completed; quote the request id when reporting it");
        e.cause = Some(cause);
        e
    }

    /// Renders the problem+json response for a request at `instance`.
    pub fn into_response(
        self,
        instance: Option<&str>,
        request_id: Option<&str>,
    ) -> http::Response<Body> {
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
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".to_owned());
        let mut response = http::Response::new(Body::Text(body));
        *response.status_mut() = parts.status;
        response.headers_mut().extend(parts.headers);
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

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}
