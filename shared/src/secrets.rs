//! An in-memory cache over Secrets Manager: a secret is fetched on first use, served from
//! memory until its TTL ends, then fetched again. Concurrent callers of one secret share a
//! single fetch in flight. Values are held as `SecretString` so they never reach a log by
//! accident.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;

/// Where secret values come from: Secrets Manager in production, a map in unit tests.
pub trait SecretSource: Send + Sync + 'static {
    fn fetch(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = anyhow::Result<SecretString>> + Send;
}

impl SecretSource for aws_sdk_secretsmanager::Client {
    async fn fetch(&self, id: &str) -> anyhow::Result<SecretString> {
        // AWSCURRENT is the default on AWS; asking for it explicitly also makes moto serve the
        // rotated version (it keeps returning the first version otherwise).
        let out = self
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .send()
            .await?;
        let value = out
            .secret_string
            .ok_or_else(|| anyhow::anyhow!("secret {id} has no string value"))?;
        Ok(SecretString::from(value))
    }
}

/// The project's clients read secrets with their Secrets Manager client, built on first use.
impl SecretSource for crate::aws::Clients {
    async fn fetch(&self, id: &str) -> anyhow::Result<SecretString> {
        self.secrets().fetch(id).await
    }
}

struct Entry {
    value: Option<(SecretString, Instant)>,
    /// While Secrets Manager fails, the stale value is served without asking again until this.
    retry_at: Option<Instant>,
}

/// When Secrets Manager fails, a value fetched before serves this long past its TTL: an outage
/// of minutes must not turn every request needing a key into an error (keys rotate rarely,
/// and a rotated key keeps working for longer than this).
pub const STALE_GRACE: Duration = Duration::from_secs(3600);
/// While serving a stale value, the next fetch is tried after this.
const STALE_RETRY_EVERY: Duration = Duration::from_secs(10);

/// The cache. Cheap to clone; clones share entries.
pub struct SecretsCache<S> {
    source: Arc<S>,
    ttl: Duration,
    entries: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<Entry>>>>>,
}

impl<S> Clone for SecretsCache<S> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            ttl: self.ttl,
            entries: self.entries.clone(),
        }
    }
}

impl<S: SecretSource> SecretsCache<S> {
    pub fn new(source: S, ttl: Duration) -> Self {
        Self {
            source: Arc::new(source),
            ttl,
            entries: Arc::default(),
        }
    }

    /// The secret's current value. Within the TTL this is a memory read; after it, the first
    /// caller fetches while the others wait on the entry's lock and then read its result.
    pub async fn get(&self, id: &str) -> anyhow::Result<SecretString> {
        let entry = {
            let mut entries = self.entries.lock().expect("secrets cache lock poisoned");
            entries
                .entry(id.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Entry {
                        value: None,
                        retry_at: None,
                    }))
                })
                .clone()
        };
        let mut entry = entry.lock().await;
        if let Some((value, fetched_at)) = &entry.value
            && (fetched_at.elapsed() < self.ttl
                || entry.retry_at.is_some_and(|r| Instant::now() < r))
        {
            return Ok(value.clone());
        }
        match self.source.fetch(id).await {
            Ok(value) => {
                entry.value = Some((value.clone(), Instant::now()));
                entry.retry_at = None;
                Ok(value)
            }
            Err(e) => match &entry.value {
                Some((value, fetched_at)) if fetched_at.elapsed() < self.ttl + STALE_GRACE => {
                    tracing::warn!(secret = id, age_s = fetched_at.elapsed().as_secs(), error.cause_chain = ?e, "Secrets Manager failed; serving the last good value");
                    metrics::counter!("SecretsStale").increment(1);
                    let value = value.clone();
                    entry.retry_at = Some(Instant::now() + STALE_RETRY_EVERY);
                    Ok(value)
                }
                _ => Err(e),
            },
        }
    }

    /// Drops a cached value so the next `get` fetches (after a rotation, or a verification
    /// failure that a newer key might fix).
    pub async fn invalidate(&self, id: &str) {
        let entry = self
            .entries
            .lock()
            .expect("secrets cache lock poisoned")
            .get(id)
            .cloned();
        if let Some(entry) = entry {
            let mut entry = entry.lock().await;
            entry.value = None;
            entry.retry_at = None;
        }
    }
}

/// A symmetric key (HMAC) kept in Secrets Manager and read through the secrets cache: the
/// pagination cursors' key, the idempotency fingerprints' key.
#[derive(Clone)]
pub struct SecretKey {
    secrets: SecretsCache<crate::aws::Clients>,
    secret_id: String,
    what: &'static str,
}

impl SecretKey {
    /// The key whose secret id is in the environment variable `var`; None when it is not set.
    pub fn from_env_optional(app: &crate::App, var: &str, what: &'static str) -> Option<Self> {
        let secret_id = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        Some(Self::new(app, secret_id, what))
    }

    /// The key kept in the secret `secret_id`.
    pub fn new(app: &crate::App, secret_id: impl Into<String>, what: &'static str) -> Self {
        Self {
            secrets: app.secrets.clone(),
            secret_id: secret_id.into(),
            what,
        }
    }

    /// As [`SecretKey::from_env_optional`], failing at start, naming `var`, when it is not set.
    pub fn from_env(app: &crate::App, var: &str, what: &'static str) -> anyhow::Result<Self> {
        Self::from_env_optional(app, var, what).ok_or_else(|| {
            anyhow::anyhow!("missing configuration: {var} (the Secrets Manager id of the {what})")
        })
    }

    /// The key bytes. Secrets Manager failing is a 503 (try again); a key shorter than 32 bytes
    /// is a configuration error (500).
    pub async fn get(&self) -> Result<Vec<u8>, crate::ApiError> {
        use secrecy::ExposeSecret;
        let secret = self.secrets.get(&self.secret_id).await.map_err(|e| {
            tracing::error!(error.cause_chain = ?e, key = self.what, "reading a key from Secrets Manager failed");
            crate::ApiError::service_unavailable("a dependency is unavailable; try again shortly")
                .header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))
        })?;
        let key = secret.expose_secret().as_bytes().to_vec();
        if key.len() < 32 {
            return Err(crate::ApiError::internal(anyhow::anyhow!(
                "the {} secret is shorter than 32 bytes",
                self.what
            )));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting {
        fetches: AtomicUsize,
    }

    impl SecretSource for Arc<Counting> {
        async fn fetch(&self, id: &str) -> anyhow::Result<SecretString> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(SecretString::from(format!("{id}-v{n}")))
        }
    }

    #[tokio::test]
    async fn concurrent_first_reads_share_one_fetch() {
        let source = Arc::new(Counting::default());
        let cache = SecretsCache::new(source.clone(), Duration::from_secs(60));
        let reads = (0..32).map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("keys").await.unwrap() })
        });
        for read in reads {
            assert_eq!(read.await.unwrap().expose_secret(), "keys-v1");
        }
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    }

    struct Flaky {
        down: std::sync::atomic::AtomicBool,
        fetches: AtomicUsize,
    }

    impl SecretSource for Arc<Flaky> {
        async fn fetch(&self, id: &str) -> anyhow::Result<SecretString> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                anyhow::bail!("Secrets Manager is down");
            }
            Ok(SecretString::from(format!("{id}-value")))
        }
    }

    #[tokio::test]
    async fn an_outage_serves_the_last_good_value_and_asks_again_only_every_ten_seconds() {
        let source = Arc::new(Flaky {
            down: false.into(),
            fetches: AtomicUsize::new(0),
        });
        let cache = SecretsCache::new(source.clone(), Duration::from_millis(1));
        assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-value");
        source.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        for _ in 0..5 {
            assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-value");
        }
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            2,
            "one failed fetch, then the stale value"
        );
        // Never fetched: nothing to serve.
        assert!(cache.get("other").await.is_err());
    }

    #[tokio::test]
    async fn an_expired_value_is_fetched_again() {
        let source = Arc::new(Counting::default());
        let cache = SecretsCache::new(source.clone(), Duration::from_millis(30));
        assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-v1");
        assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-v1");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-v2");
        cache.invalidate("k").await;
        assert_eq!(cache.get("k").await.unwrap().expose_secret(), "k-v3");
    }
}
