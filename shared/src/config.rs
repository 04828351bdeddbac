//! Typed configuration from the environment that template.yaml sets.
//!
//! Every value is read once at cold start. A missing or malformed value stops the function with
//! an error naming every variable at fault at once, so one deploy fixes them all. Nothing here
//! is a secret: secrets live in Secrets Manager and only their ids come from the environment.

use std::collections::HashMap;
use std::time::Duration;

/// Where the configuration values come from; the process environment in a Lambda.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| (*v).to_owned())
    }
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the daemon's
/// two-protocol form `tcp:host:port udp:host:port`.
pub fn daemon_address(value: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let value = value.trim();
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value);
    udp.parse()
        .ok()
        .or_else(|| udp.to_socket_addrs().ok()?.next())
}

/// Every problem found in the environment, each naming its variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Configuration shared by every function.
#[derive(Debug, Clone)]
pub struct Config {
    /// The function's name as Lambda reports it (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// Released version, reported by `/healthz` (`APP_VERSION`, else the crate version).
    pub version: String,
    /// `LOG_LEVEL`: a level, or `target=level` items, such as `info` or `shared=debug,info`.
    pub log_level: String,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// `OUTBOX_QUEUE_URL` and `OUTBOX_DLQ_URL`.
    pub outbox_queue_url: String,
    pub outbox_dlq_url: String,
    /// `SIGNING_KEYS_SECRET_ID`: the Secrets Manager secret holding the private JWT signing
    /// keys. Set only for the functions that sign tokens (login, MFA verify, refresh, rotation).
    pub signing_keys_secret_id: Option<String>,
    /// `PUBLIC_KEYS_SECRET_ID`: the secret holding their public halves, which verifiers read.
    pub public_keys_secret_id: String,
    /// `SECRETS_CACHE_TTL_SECONDS`: how long a fetched secret is served from memory.
    pub secrets_ttl: Duration,
    /// `FLAGS_CACHE_TTL_SECONDS` (default 30): how long the feature flags read from the table
    /// are used before they are read again (a flip takes effect within it: shared::flags).
    pub flags_ttl: Duration,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated exact origins; empty means no CORS.
    pub cors_allowed_origins: Vec<String>,
    /// `MAX_BODY_BYTES`: request bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// `JWT_ISSUER` and `JWT_AUDIENCE`: the `iss` and `aud` of access tokens.
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// `RATE_LIMIT_API_PER_MINUTE`: requests per user (or client IP) per minute on the API.
    pub rate_limit_api: u32,
    /// `RATE_LIMIT_AUTH_PER_MINUTE`: requests per client IP per minute on each auth endpoint.
    pub rate_limit_auth: u32,
    /// `RATE_LIMIT_ALLOWLIST`: comma-separated client IPs of internal callers, never limited.
    pub rate_limit_allowlist: Vec<std::net::IpAddr>,
    /// `AWS_XRAY_DAEMON_ADDRESS`: where spans go as X-Ray segment documents (UDP). Lambda sets it
    /// when active tracing is on; unset, spans are written to the log instead.
    pub xray_daemon: Option<std::net::SocketAddr>,
    /// `LOG_SPANS`: also write every span to the log as a JSON line while exporting to X-Ray
    /// (the local stack does, for reading a request's calls from its log).
    pub log_spans: bool,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`: linked from each X-Ray segment to its logs.
    pub log_group: Option<String>,
    /// `TABLE_WARM_UP` (default `true`): open the DynamoDB connection at init with one GetItem.
    /// `false` for the functions that never touch the table (and may not read it).
    pub table_warm_up: bool,
}

impl Config {
    /// Reads the process environment; `function_name` is used when Lambda's own variable is absent
    /// (unit tests, benches).
    pub fn from_env(function_name: &str) -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv, function_name)
    }

    pub fn from_source(env: &impl Source, function_name: &str) -> Result<Self, ConfigError> {
        let mut r = Reader {
            env,
            problems: Vec::new(),
        };
        let config = Config {
            function_name: env
                .get("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| function_name.to_owned()),
            version: env
                .get("APP_VERSION")
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            log_level: env.get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned()),
            metrics_namespace: env
                .get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "CityEvents".to_owned()),
            table_name: r.required("TABLE_NAME"),
            outbox_queue_url: r.required("OUTBOX_QUEUE_URL"),
            outbox_dlq_url: r.required("OUTBOX_DLQ_URL"),
            signing_keys_secret_id: r.optional("SIGNING_KEYS_SECRET_ID"),
            public_keys_secret_id: r.required("PUBLIC_KEYS_SECRET_ID"),
            secrets_ttl: Duration::from_secs(r.number("SECRETS_CACHE_TTL_SECONDS", 300, 1, 86_400)),
            flags_ttl: Duration::from_secs(r.number("FLAGS_CACHE_TTL_SECONDS", 30, 1, 3_600)),
            cors_allowed_origins: r.origins("CORS_ALLOWED_ORIGINS"),
            max_body_bytes: r.number("MAX_BODY_BYTES", 64 * 1024, 1, 6 * 1024 * 1024) as usize,
            jwt_issuer: r.required("JWT_ISSUER"),
            jwt_audience: r.required("JWT_AUDIENCE"),
            rate_limit_api: r.number("RATE_LIMIT_API_PER_MINUTE", 100, 1, 1_000_000) as u32,
            rate_limit_auth: r.number("RATE_LIMIT_AUTH_PER_MINUTE", 5, 1, 1_000_000) as u32,
            rate_limit_allowlist: r.ips("RATE_LIMIT_ALLOWLIST"),
            xray_daemon: r.xray_daemon("AWS_XRAY_DAEMON_ADDRESS"),
            log_spans: env
                .get("LOG_SPANS")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
            log_group: env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            table_warm_up: r.flag("TABLE_WARM_UP", true),
        };
        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        }
    }
}

struct Reader<'a, S: Source> {
    env: &'a S,
    problems: Vec<String>,
}

impl<S: Source> Reader<'_, S> {
    fn required(&mut self, name: &str) -> String {
        match self.env.get(name) {
            Some(v) if !v.trim().is_empty() => v.trim().to_owned(),
            Some(_) => {
                self.problems.push(format!("{name} is set but empty"));
                String::new()
            }
            None => {
                self.problems.push(format!("{name} is not set"));
                String::new()
            }
        }
    }

    /// `true` or `false`; absent means `default`; anything else is a mistake.
    fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.env.get(name).as_deref().map(str::trim) {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                self.problems
                    .push(format!("{name} must be true or false, not {other:?}"));
                default
            }
        }
    }

    /// A variable that may be absent; set but empty is a mistake.
    fn optional(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) if v.trim().is_empty() => {
                self.problems.push(format!("{name} is set but empty"));
                None
            }
            Some(v) => Some(v.trim().to_owned()),
            None => None,
        }
    }

    fn number(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(raw) = self.env.get(name) else {
            return default;
        };
        match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problems.push(format!(
                    "{name} must be a whole number from {min} to {max}, got {raw:?}"
                ));
                default
            }
        }
    }

    fn ips(&mut self, name: &str) -> Vec<std::net::IpAddr> {
        let raw = self.env.get(name).unwrap_or_default();
        let mut out = Vec::new();
        for ip in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match ip.parse() {
                Ok(ip) => out.push(ip),
                Err(_) => self
                    .problems
                    .push(format!("{name} entries must be IP addresses, got {ip:?}")),
            }
        }
        out
    }

    /// Tracing is not worth a failed start: an unusable address is reported and spans go to
    /// the log instead.
    fn xray_daemon(&mut self, name: &str) -> Option<std::net::SocketAddr> {
        let raw = self.env.get(name).filter(|v| !v.trim().is_empty())?;
        let addr = daemon_address(&raw);
        if addr.is_none() {
            eprintln!(
                "{}",
                serde_json::json!({"level": "WARN", "message": format!(
                    "{name} must be host:port or 'tcp:host:port udp:host:port', got {raw:?}: spans go to the log"
                )})
            );
        }
        addr
    }

    fn origins(&mut self, name: &str) -> Vec<String> {
        let raw = self.env.get(name).unwrap_or_default();
        let mut out = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            // An allow-list entry is an exact origin; a wildcard would let any site call the API
            // with the user's credentials.
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && !origin.ends_with('/');
            if valid {
                out.push(origin.to_owned());
            } else {
                self.problems.push(format!(
                    "{name} entries must be exact origins like https://app.example.com, got {origin:?}"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn daemon_addresses_in_both_forms() {
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            Some("127.0.0.2:2001".parse().unwrap())
        );
        assert_eq!(daemon_address("localhost"), None);
        assert_eq!(
            daemon_address("localhost:2000").map(|a| a.port()),
            Some(2000)
        );
    }

    use super::*;

    fn complete() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("TABLE_NAME", "t"),
            ("OUTBOX_QUEUE_URL", "http://q"),
            ("OUTBOX_DLQ_URL", "http://dlq"),
            ("PUBLIC_KEYS_SECRET_ID", "public-keys"),
            ("JWT_ISSUER", "https://city-events.test"),
            ("JWT_AUDIENCE", "city-events-api"),
        ])
    }

    #[test]
    fn a_complete_environment_parses_with_defaults() {
        let c = Config::from_source(&complete(), "fn").unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.max_body_bytes, 65_536);
        assert_eq!(c.function_name, "fn");
        assert!(c.cors_allowed_origins.is_empty());
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let err = Config::from_source(&HashMap::new(), "fn").unwrap_err();
        let text = err.to_string();
        for name in [
            "TABLE_NAME",
            "OUTBOX_QUEUE_URL",
            "OUTBOX_DLQ_URL",
            "PUBLIC_KEYS_SECRET_ID",
        ] {
            assert!(text.contains(name), "{text} should name {name}");
        }
    }

    #[test]
    fn malformed_numbers_and_wildcard_origins_are_refused() {
        let mut env = complete();
        env.insert("MAX_BODY_BYTES", "lots");
        env.insert("CORS_ALLOWED_ORIGINS", "https://ok.example, *");
        let err = Config::from_source(&env, "fn").unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        for name in ["MAX_BODY_BYTES", "CORS_ALLOWED_ORIGINS"] {
            assert!(err.problems.iter().any(|p| p.contains(name)), "{err}");
        }
    }
}
