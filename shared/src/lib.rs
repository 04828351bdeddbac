//! The crate every City Events function links: typed configuration, telemetry, the HTTP
//! middleware and problem+json errors, AWS clients and the secrets cache.

pub mod answers;
pub mod auth;
pub mod aws;
pub mod breaker;
pub mod compress;
pub mod config;
pub mod cursor;
pub mod ddb;
pub mod flags;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod outbox;
pub mod problem;
pub mod queue;
pub mod ratelimit;
pub mod redact;
pub mod runtime;
pub mod secrets;
pub mod session;
pub mod telemetry;
pub mod testing;
pub mod xray;

pub use config::Config;
pub use problem::{ApiError, Problem};

/// Everything a function builds once per cold start. Cloning shares it (the clients, the
/// secrets cache, the telemetry).
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub clients: aws::Clients,
    pub secrets: secrets::SecretsCache<aws::Clients>,
    pub telemetry: &'static telemetry::Telemetry,
}

/// Reads the configuration, starts telemetry, builds the AWS clients and warms the DynamoDB
/// connection (unless `TABLE_WARM_UP=false`). A configuration problem stops the function here, naming what is missing.
pub async fn init(function_name: &str) -> Result<App, config::ConfigError> {
    let config = Config::from_env(function_name).inspect_err(|e| {
        // Logged before telemetry exists: the init error must reach CloudWatch as JSON too.
        eprintln!(
            "{}",
            serde_json::json!({"level": "ERROR", "function": function_name, "message": e.to_string()})
        );
    })?;
    let started = std::time::Instant::now();
    let app = App::new(config, telemetry::Sink::Stdout).await;
    if app.config.table_warm_up {
        app.clients.warm(&app.config.table_name).await;
    }
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1e3,
        version = %app.config.version,
        "function initialised"
    );
    Ok(app)
}

impl App {
    /// Builds the per-process state from a configuration, with telemetry written to `sink`
    /// (stdout in Lambda; a buffer in tests that read the log).
    pub async fn new(config: Config, sink: telemetry::Sink) -> App {
        let sdk = aws::lambda_sdk_config();
        Self::with_sdk_config(config, sink, &sdk)
    }

    /// [`App::new`] with an SDK configuration built by the caller.
    pub fn with_sdk_config(
        config: Config,
        sink: telemetry::Sink,
        sdk: &aws_config::SdkConfig,
    ) -> App {
        let telemetry = telemetry::init(&config, sink);
        let clients = aws::Clients::new(sdk);
        App {
            secrets: secrets::SecretsCache::new(clients.clone(), config.secrets_ttl),
            config,
            clients,
            telemetry,
        }
    }
}

/// An error and its sources, outermost first, on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// [`error_chain`] for `anyhow` errors.
pub fn error_chain_anyhow(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
