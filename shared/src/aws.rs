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
/// DynamoDB's is built at init (every function uses it); SQS's and Secrets Manager's on first
/// use, so a function that never sends a message or reads a secret never builds them.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    lazy: std::sync::Arc<LazyClients>,
    /// The endpoint override (moto server locally), if any.
    pub endpoint_url: Option<String>,
    /// The circuit breakers of the three clients (see [`crate::breaker`]).
    pub breakers: [crate::breaker::Breaker; 3],
}

#[derive(Debug)]
struct LazyClients {
    config: SdkConfig,
    sqs: std::sync::OnceLock<aws_sdk_sqs::Client>,
    secrets: std::sync::OnceLock<aws_sdk_secretsmanager::Client>,
}

/// Loads the SDK configuration with aws-config's default chain (environment, profiles, web
/// identity, IMDS; not SSO, a feature the workspace leaves off) and this project's timeouts and
/// retries: for operator tools run from a workstation (create_admin). Functions use
/// [`lambda_sdk_config`].
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

/// The SDK configuration as Lambda gives it to a function: the region (`AWS_REGION`), the
/// function role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and the endpoint override (`AWS_ENDPOINT_URL`, moto locally), with this
/// project's timeouts, retries and HTTP client. Not aws-config's default chain: its profile,
/// SSO, web-identity (STS) and IMDS providers are code no function runs, ~0.1 MB of every
/// deploy zip (decision 0017).
pub fn lambda_sdk_config() -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .map(aws_config::Region::new);
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                EnvironmentVariableCredentialsProvider::new(),
            ),
        )
        .http_client(http_client())
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The configuration loader with this project's timeouts, retries and HTTP client, before the
/// environment is read; tests add an endpoint and credentials to it.
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// The roots AWS's service endpoints chain to (Amazon Trust Services: Amazon Root CA 1 to 4,
/// and the Starfield Services root that cross-signs them), from the Debian ca-certificates
/// bundle. Trusting these alone spares every cold start the read of the system's whole
/// certificate store (146 files here, ~3 ms) and trusts nothing AWS does not use.
const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The SDK's HTTPS client (rustls with aws-lc, as the SDK's default) trusting
/// [`AMAZON_ROOTS`] only; `TLS_NATIVE_ROOTS=true` trusts the system store instead (an endpoint
/// behind a TLS-inspecting proxy, or `AWS_ENDPOINT_URL` at a server with its own CA).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    // Read before telemetry exists: a mistake is reported as a JSON line on stderr.
    let warn = |message: String| {
        eprintln!(
            "{}",
            serde_json::json!({"level": "WARN", "target": "shared::aws", "message": message})
        )
    };
    let native = match std::env::var("TLS_NATIVE_ROOTS").as_deref() {
        Ok("true") => true,
        Ok("false") | Err(_) => false,
        Ok(other) => {
            warn(format!(
                "TLS_NATIVE_ROOTS must be true or false, not {other:?}: trusting the Amazon roots only"
            ));
            false
        }
    };
    let trust = if native {
        tls::TrustStore::default()
    } else {
        tls::TrustStore::empty().with_pem_certificate(AMAZON_ROOTS)
    };
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::AwsLc,
    ));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Not reachable with the bundled roots (a unit test parses them); the SDK's default
        // trust store is the safe fallback.
        Err(e) => {
            warn(format!(
                "the TLS trust store did not build ({e}): trusting the system's roots"
            ));
            builder.build_https()
        }
    }
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        use crate::breaker::Breaker;
        let breakers = [
            Breaker::new("dynamodb"),
            Breaker::new("sqs"),
            Breaker::new("secretsmanager"),
        ];
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config)
                    .interceptor(call_spans(config, "DynamoDB"))
                    .interceptor(breakers[0].clone())
                    .build(),
            ),
            lazy: std::sync::Arc::new(LazyClients {
                config: config.clone(),
                sqs: std::sync::OnceLock::new(),
                secrets: std::sync::OnceLock::new(),
            }),
            endpoint_url: config.endpoint_url().map(str::to_owned),
            breakers,
        }
    }

    /// The SDK configuration the clients are built on, for a client of another service
    /// (with [`call_spans`] for its X-Ray subsegments).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.lazy.config
    }

    /// The SQS client (built on first use).
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.lazy.sqs.get_or_init(|| {
            let config = &self.lazy.config;
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .interceptor(call_spans(config, "SQS"))
                    .interceptor(self.breakers[1].clone())
                    .build(),
            )
        })
    }

    /// The Secrets Manager client (built on first use).
    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        self.lazy.secrets.get_or_init(|| {
            let config = &self.lazy.config;
            aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(config)
                    .interceptor(call_spans(config, "SecretsManager"))
                    .interceptor(self.breakers[2].clone())
                    .build(),
            )
        })
    }

    /// Opens the connection to DynamoDB during init, so the connection and TLS handshake do not
    /// land on the first request: one GetItem of a key no item has (a data-plane read every
    /// function may make; DescribeTable would need its own permission and is a control-plane
    /// call with its own, low, limits). Failure is logged, not fatal: the first request will
    /// simply pay for it.
    pub async fn warm(&self, table_name: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let started = std::time::Instant::now();
        let result = self
            .dynamodb
            .get_item()
            .table_name(table_name)
            .key("pk", AttributeValue::S(WARM_UP_KEY.into()))
            .key("sk", AttributeValue::S(WARM_UP_KEY.into()))
            .projection_expression("pk")
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

/// The key the warm-up reads (no item has it).
pub const WARM_UP_KEY: &str = "WARMUP";

/// One X-Ray subsegment per call (crate::xray): the breaker's refusal is recorded too.
pub fn call_spans(config: &SdkConfig, service: &'static str) -> crate::xray::SdkCallSpans {
    crate::xray::SdkCallSpans::new(service, config.region().map(|r| r.to_string()))
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

#[cfg(test)]
mod tls_tests {
    #[test]
    fn the_bundled_roots_are_the_five_amazon_trust_services_certificates() {
        use aws_smithy_http_client::tls;
        let pem = std::str::from_utf8(super::AMAZON_ROOTS).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert_eq!(pem.matches("-----END CERTIFICATE-----").count(), 5);
        tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::empty().with_pem_certificate(super::AMAZON_ROOTS))
            .build()
            .expect("the bundled roots parse");
    }
}
