//! AWS SDK clients, built once per cold start with the timeouts and retry policy set here.
//!
//! The endpoint comes from the SDK's standard `AWS_ENDPOINT_URL` variable, which the local stack
//! sets to moto server; in AWS it is unset and the regional endpoints are used.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Connect, per-attempt and whole-operation budgets. An operation includes its retries, so a
/// slow dependency costs a request at most `OPERATION_TIMEOUT`, well inside API Gateway's 29 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Standard retry mode: exponential backoff with full jitter, three attempts in all.
pub const MAX_ATTEMPTS: u32 = 3;

/// The clients every function may use. Cloning is cheap (they share one HTTP connector).
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The endpoint override (moto server locally), if any.
    pub endpoint_url: Option<String>,
    /// The circuit breakers of the three clients (see [`crate::breaker`]).
    pub breakers: [crate::breaker::Breaker; 3],
}

/// Loads the SDK configuration from the environment with this project's timeouts and retries.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

/// The configuration loader with this project's timeouts and retries, before the environment
/// is read; tests add an endpoint and credentials to it.
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        use crate::breaker::Breaker;
        let breakers = [
            Breaker::new("dynamodb"),
            Breaker::new("sqs"),
            Breaker::new("secretsmanager"),
        ];
        // One X-Ray subsegment per call (crate::xray): the breaker's refusal is recorded too.
        let region = config.region().map(|r| r.to_string());
        let spans = |service| crate::xray::SdkCallSpans::new(service, region.clone());
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config)
                    .interceptor(spans("DynamoDB"))
                    .interceptor(breakers[0].clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .interceptor(spans("SQS"))
                    .interceptor(breakers[1].clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(config)
                    .interceptor(spans("SecretsManager"))
                    .interceptor(breakers[2].clone())
                    .build(),
            ),
            endpoint_url: config.endpoint_url().map(str::to_owned),
            breakers,
        }
    }

    /// Opens the connection to DynamoDB during init, so the TLS handshake does not land on the
    /// first request. Failure is logged, not fatal: the first request will simply pay for it.
    pub async fn warm(&self, table_name: &str) {
        let started = std::time::Instant::now();
        let result = self
            .dynamodb
            .describe_table()
            .table_name(table_name)
            .send()
            .await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(_) => tracing::debug!(duration_ms = ms, "dynamodb connection warmed"),
            Err(e) => {
                tracing::warn!(duration_ms = ms, error = %crate::error_chain(&e), "dynamodb warm-up failed")
            }
        }
    }
}

/// The error codes (and SDK failures) after which the same request may succeed if sent again:
/// throttling, a service's internal error, DynamoDB's transaction conflicts, and a request
/// that never got an answer (connection refused, timeout). The SDK retries these itself
/// (`MAX_ATTEMPTS`); what is left when it gives up is a dependency that is down or overloaded
/// for now: a 503 with Retry-After to the client, never a 500.
const TRANSIENT_CODES: [&str; 12] = [
    "InternalServiceError",
    "InternalError",
    "ThrottlingException",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflict",
    "TransactionInProgress",
    "RequestThrottled",
];

/// Whether `err` (anywhere in its chain) is an AWS failure worth retrying later (see
/// [`TRANSIENT_CODES`]). Read from the SDK errors' own display (the SdkError kind, and the
/// operation error, which names its code), so it holds for every operation of every client.
pub fn is_transient(err: &anyhow::Error) -> bool {
    // A request DynamoDB refused as invalid stays invalid, whatever else its cancellation lists.
    if err.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("ValidationError") || text.contains("ValidationException")
    }) {
        return false;
    }
    err.chain().any(|cause| {
        if cause
            .downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>()
            .is_some()
            || cause
                .downcast_ref::<crate::breaker::CircuitOpen>()
                .is_some()
        {
            return true;
        }
        let text = cause.to_string();
        matches!(
            text.as_str(),
            "dispatch failure" | "request has timed out" | "response error"
        ) || text.starts_with("circuit open")
            || TRANSIENT_CODES.iter().any(|code| text.contains(code))
    })
}
