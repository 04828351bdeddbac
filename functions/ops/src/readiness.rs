//! Readiness: can this deployment serve requests? Checks every dependency a request path needs,
//! in parallel, each bounded so the whole answer arrives within [`BUDGET`].

use std::future::Future;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Serialize;
use shared::http::{Response, json};
use shared::{ApiError, App};
use utoipa::ToSchema;

/// The whole readiness answer arrives within this budget, whatever the dependencies do.
pub const BUDGET: Duration = Duration::from_millis(2_000);
const CHECK_TIMEOUT: Duration = Duration::from_millis(1_800);

/// One dependency's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// `table`, `outbox_queue`, `outbox_dlq` or `public_keys`.
    pub name: &'static str,
    /// `ok` or `fail`.
    pub status: &'static str,
    pub latency_ms: f64,
    /// Why it failed, classified (never a stack trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The readiness answer when every dependency is fine.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Vec<Check>,
    /// This instance's circuit breaker per dependency: `closed`, `open` or `half-open`.
    pub circuits: std::collections::BTreeMap<String, String>,
}

fn circuits(app: &App) -> std::collections::BTreeMap<String, String> {
    app.clients
        .breakers
        .iter()
        .map(|b| (b.name().to_owned(), b.state().to_owned()))
        .collect()
}

/// Runs one check with its latency and time limit.
async fn check<F, T, E>(name: &'static str, fut: F) -> Check
where
    F: Future<Output = Result<T, E>>,
    E: Classify,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, fut).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1e3 * 10.0).round() / 10.0;
    let error = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.classify()),
        Err(_) => Some(format!("timed out after {} ms", CHECK_TIMEOUT.as_millis())),
    };
    Check {
        name,
        status: if error.is_none() { "ok" } else { "fail" },
        latency_ms,
        error,
    }
}

/// A short, operator-facing reason for a failed check.
pub trait Classify {
    fn classify(&self) -> String;
}

impl<E, R> Classify for aws_sdk_dynamodb::error::SdkError<E, R>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn classify(&self) -> String {
        use aws_sdk_dynamodb::error::SdkError;
        match self {
            SdkError::DispatchFailure(_) => "unreachable: the request could not be sent".to_owned(),
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            SdkError::ServiceError(e) => {
                let err = e.err();
                format!(
                    "{}: {}",
                    err.code().unwrap_or("ServiceError"),
                    err.message().unwrap_or("")
                )
            }
            other => format!("request failed: {}", shared::error_chain(other)),
        }
    }
}

impl Classify for anyhow::Error {
    fn classify(&self) -> String {
        // The secrets cache wraps the SDK error; classify the innermost one we know.
        for cause in self.chain() {
            if let Some(e) = cause.downcast_ref::<aws_sdk_secretsmanager::error::SdkError<
                aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
            >>() {
                return e.classify();
            }
        }
        self.to_string()
    }
}

/// Checks the table, the outbox queue and its DLQ, and the signing-key secret.
pub async fn check_all(app: &App) -> Vec<Check> {
    // One attempt each: a readiness probe reports the state now, it does not retry into it.
    let no_retry = aws_config::retry::RetryConfig::disabled();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        app.clients
            .dynamodb
            .config()
            .to_builder()
            .retry_config(no_retry.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        app.clients
            .sqs()
            .config()
            .to_builder()
            .retry_config(no_retry)
            .build(),
    );
    let queue = |url: &str| {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
    };
    let (table, outbox, dlq, keys) = tokio::join!(
        check(
            "table",
            dynamodb
                .describe_table()
                .table_name(&app.config.table_name)
                .send()
        ),
        check("outbox_queue", queue(&app.config.outbox_queue_url)),
        check("outbox_dlq", queue(&app.config.outbox_dlq_url)),
        check(
            "public_keys",
            // Readable, and holding at least one key: an empty document (a stack upgraded
            // without its first rotation) would refuse every token.
            async {
                use secrecy::ExposeSecret;
                let secret = app.secrets.get(&app.config.public_keys_secret_id).await?;
                shared::auth::KeySet::parse_public(secret.expose_secret()).map(|_| ())
            }
        ),
    );
    vec![table, outbox, dlq, keys]
}

/// `GET /readyz`.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Every dependency answered", body = Readiness),
        (status = 503, description = "A dependency failed; `checks` names it",
         body = shared::Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(app: &App) -> Result<Response, ApiError> {
    let checks = check_all(app).await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status != "ok")
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        return json(
            StatusCode::OK,
            &Readiness {
                status: "ok",
                checks,
                circuits: circuits(app),
            },
        );
    }
    let all_unreachable = checks.iter().all(|c| {
        c.error
            .as_deref()
            .is_some_and(|e| e.contains("unreachable") || e.contains("timed out"))
    });
    let mut detail = format!("not ready: {} failed", failed.join(", "));
    if all_unreachable {
        detail.push_str(&format!(
            "; {} is unreachable",
            endpoint_name(app.clients.endpoint_url.as_deref())
        ));
    }
    for c in checks.iter().filter(|c| c.status != "ok") {
        tracing::warn!(check = c.name, error = ?c.error, latency_ms = c.latency_ms, "readiness check failed");
    }
    Err(ApiError::service_unavailable(detail)
        .extension("checks", serde_json::to_value(&checks).unwrap_or_default())
        .extension(
            "circuits",
            serde_json::to_value(circuits(app)).unwrap_or_default(),
        ))
}

/// The endpoint override is moto server locally; without one the SDK talks to AWS.
fn endpoint_name(endpoint_url: Option<&str>) -> String {
    match endpoint_url {
        Some(url) if !url.is_empty() => format!("the AWS endpoint {url} (moto server locally)"),
        _ => "the AWS regional endpoint".to_owned(),
    }
}
