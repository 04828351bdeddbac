//! Access tokens: RS256 JWTs signed with the keys in Secrets Manager, verified here for every
//! function. Verification allows RS256 only, looks the `kid` up in the cached key set only
//! (never in the token, never over the network), checks `typ`, `iss`, `aud`, `exp` and `nbf`
//! with at most 30 s of leeway.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Access tokens live at most this long.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// The JOSE `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Keys older than this are dropped by rotation: by then every token they signed has expired.
pub const KEY_RETENTION: Duration = Duration::from_secs(2 * 5 * 60);

/// What a user may do. A route declares the least role it needs; admin includes organizer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Attendee,
    Organizer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attendee => "attendee",
            Role::Organizer => "organizer",
            Role::Admin => "admin",
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub roles: Vec<Role>,
    /// Unique token id.
    pub jti: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// The refresh-token family (the session) this token was issued in.
    pub sid: String,
}

/// The authenticated caller, set on the request by the middleware.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub roles: Vec<Role>,
    pub session_id: String,
    /// The access token's id and expiry (for revocation checks).
    pub token_id: String,
    pub expires_at: u64,
}

impl User {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }
}

/// One signing key as stored in the secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    #[serde(default = "rs256")]
    pub alg: String,
    /// Unix seconds.
    pub created_at: u64,
    /// PKCS#8 PEM of the RSA private key.
    pub private_key_pem: String,
}

fn rs256() -> String {
    "RS256".to_owned()
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The secret's document: the current key (newest) and the previous ones still verifying.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyDocument {
    pub keys: Vec<StoredKey>,
}

impl KeyDocument {
    /// Generates a fresh RSA-2048 key.
    pub fn generate_key(now: u64) -> anyhow::Result<StoredKey> {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let mut rand = [0u8; 6];
        aws_lc_rs::rand::fill(&mut rand).map_err(|_| anyhow::anyhow!("no randomness"))?;
        Ok(StoredKey {
            kid: format!("k{now}-{}", URL_SAFE_NO_PAD.encode(rand)),
            alg: rs256(),
            created_at: now,
            private_key_pem: pem,
        })
    }

    /// Rotation: adds a new key and drops the keys older than [`KEY_RETENTION`] — except the
    /// newest existing one, which keeps verifying the tokens it signed until they expire.
    pub fn rotated(&self, new_key: StoredKey) -> KeyDocument {
        let now = new_key.created_at;
        let newest_old = self.keys.iter().map(|k| k.created_at).max();
        let mut keys: Vec<StoredKey> = self
            .keys
            .iter()
            .filter(|k| {
                Some(k.created_at) == newest_old
                    || now.saturating_sub(k.created_at) < KEY_RETENTION.as_secs()
            })
            .cloned()
            .collect();
        keys.push(new_key);
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        KeyDocument { keys }
    }
}

/// One public key as the verifiers' secret holds it: a JWK plus the key's age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kid: String,
    pub alg: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The RSA modulus and exponent, base64url without padding (RFC 7518 §6.3.1).
    pub n: String,
    pub e: String,
}

/// The verifiers' secret: the public halves of the signing keys, written by rotation before
/// a new key signs anything. Functions that only verify tokens read this and never the
/// private keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicKeyDocument {
    pub keys: Vec<PublicKey>,
}

/// Which secret a [`Keys`] reads: the private keys (functions that sign) or the public ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Signing,
    Public,
}

struct Key {
    kid: String,
    created_at: u64,
    /// None for a key set parsed from the public document: it verifies and never signs.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    n: String,
    e: String,
}

/// A parsed key set, ready to sign and verify.
pub struct KeySet {
    keys: Vec<Key>,
}

/// Why a token was refused. The client only ever learns "invalid token".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("wrong token type")]
    Type,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl KeySet {
    pub fn parse(secret: &str) -> anyhow::Result<KeySet> {
        let doc: KeyDocument = serde_json::from_str(secret)
            .map_err(|e| anyhow::anyhow!("the signing-key secret is not a key document: {e}"))?;
        Self::from_document(&doc)
    }

    /// A verify-only key set from the public-key secret.
    pub fn parse_public(secret: &str) -> anyhow::Result<KeySet> {
        let doc: PublicKeyDocument = serde_json::from_str(secret)
            .map_err(|e| anyhow::anyhow!("the public-key secret is not a key document: {e}"))?;
        Self::from_public(&doc)
    }

    pub fn from_public(doc: &PublicKeyDocument) -> anyhow::Result<KeySet> {
        let mut keys = Vec::new();
        for k in &doc.keys {
            if k.alg != "RS256" {
                anyhow::bail!("key {} has algorithm {}, only RS256 is used", k.kid, k.alg);
            }
            keys.push(Key {
                kid: k.kid.clone(),
                created_at: k.created_at,
                encoding: None,
                decoding: DecodingKey::from_rsa_components(&k.n, &k.e)?,
                n: k.n.clone(),
                e: k.e.clone(),
            });
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        if keys.is_empty() {
            anyhow::bail!("the public-key secret holds no key");
        }
        Ok(KeySet { keys })
    }

    /// The public halves, as the verifiers' secret holds them.
    pub fn public_document(&self) -> PublicKeyDocument {
        PublicKeyDocument {
            keys: self
                .keys
                .iter()
                .map(|k| PublicKey {
                    kid: k.kid.clone(),
                    alg: "RS256".to_owned(),
                    created_at: k.created_at,
                    n: k.n.clone(),
                    e: k.e.clone(),
                })
                .collect(),
        }
    }

    pub fn from_document(doc: &KeyDocument) -> anyhow::Result<KeySet> {
        let mut keys = Vec::new();
        for k in &doc.keys {
            if k.alg != "RS256" {
                anyhow::bail!("key {} has algorithm {}, only RS256 is used", k.kid, k.alg);
            }
            let der = pem_body(&k.private_key_pem)?;
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
                .map_err(|e| anyhow::anyhow!("key {} is not a PKCS#8 RSA key: {e}", k.kid))?;
            use aws_lc_rs::signature::KeyPair as _;
            let public = pair.public_key();
            let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
            let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
            keys.push(Key {
                kid: k.kid.clone(),
                created_at: k.created_at,
                encoding: Some(EncodingKey::from_rsa_pem(k.private_key_pem.as_bytes())?),
                decoding: DecodingKey::from_rsa_components(&n, &e)?,
                n,
                e,
            });
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        if keys.is_empty() {
            anyhow::bail!("the signing-key secret holds no key");
        }
        Ok(KeySet { keys })
    }

    /// The key new tokens are signed with: the newest.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Signs an access token with the current key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        let encoding = key
            .encoding
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("these are the public keys: they cannot sign"))?;
        Ok(jsonwebtoken::encode(&header, claims, encoding)?)
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.keys.iter().map(|k| serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e,
            })).collect::<Vec<_>>()
        })
    }

    /// Verifies an access token for `issuer` and `audience`.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(TokenError::Type);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

fn pem_body(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Claims for a new access token of `user`.
pub fn new_claims(
    issuer: &str,
    audience: &str,
    user_id: &str,
    roles: &[Role],
    session_id: &str,
) -> Claims {
    let now = now_unix();
    let mut jti = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut jti);
    Claims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: user_id.to_owned(),
        roles: roles.to_vec(),
        jti: URL_SAFE_NO_PAD.encode(jti),
        iat: now,
        nbf: now,
        exp: now + ACCESS_TOKEN_TTL.as_secs(),
        sid: session_id.to_owned(),
    }
}

/// An unknown `kid` reloads the keys at most this often per process.
const UNKNOWN_KID_RELOAD_EVERY: Duration = Duration::from_secs(10);
/// When Secrets Manager fails, the last good keys serve this long past their TTL.
const STALE_KEYS_GRACE: Duration = Duration::from_secs(3600);
/// While serving stale keys, the next fetch is tried after this.
const STALE_RETRY_EVERY: Duration = Duration::from_secs(10);

struct Cached {
    set: Arc<KeySet>,
    fetched_at: Instant,
    /// Set while serving stale keys: no fetch before this.
    retry_at: Option<Instant>,
}

/// The key set, parsed from the secret and kept for the secrets cache's TTL. A token signed
/// with a key it does not know reloads it once (rotation reaches warm verifiers at once, not
/// after the TTL), and a Secrets Manager outage serves the last good keys for a bounded grace.
pub struct Keys {
    secrets: crate::secrets::SecretsCache<crate::aws::Clients>,
    secret_id: String,
    kind: KeyKind,
    ttl: Duration,
    parsed: Mutex<Option<Cached>>,
    /// When an unknown kid last forced a reload; held while one runs (single flight).
    forced: tokio::sync::Mutex<Option<Instant>>,
}

impl Keys {
    /// The public keys, for verifying tokens: what every function but the signers reads.
    pub fn new(app: &crate::App) -> Self {
        Self::of(
            app,
            app.config.public_keys_secret_id.clone(),
            KeyKind::Public,
        )
    }

    /// The private keys, for signing: only in the functions whose role allows reading them
    /// (`SIGNING_KEYS_SECRET_ID` is set only there); None elsewhere.
    pub fn signing(app: &crate::App) -> Option<Self> {
        let id = app.config.signing_keys_secret_id.clone()?;
        Some(Self::of(app, id, KeyKind::Signing))
    }

    fn of(app: &crate::App, secret_id: String, kind: KeyKind) -> Self {
        Self {
            secrets: app.secrets.clone(),
            secret_id,
            kind,
            ttl: app.config.secrets_ttl,
            parsed: Mutex::new(None),
            forced: tokio::sync::Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<(Arc<KeySet>, Instant, Option<Instant>)> {
        self.parsed
            .lock()
            .expect("keys lock")
            .as_ref()
            .map(|c| (c.set.clone(), c.fetched_at, c.retry_at))
    }

    async fn fetch(&self) -> anyhow::Result<Arc<KeySet>> {
        let secret: SecretString = self.secrets.get(&self.secret_id).await?;
        let set = Arc::new(match self.kind {
            KeyKind::Signing => KeySet::parse(secret.expose_secret())?,
            KeyKind::Public => KeySet::parse_public(secret.expose_secret())?,
        });
        *self.parsed.lock().expect("keys lock") = Some(Cached {
            set: set.clone(),
            fetched_at: Instant::now(),
            retry_at: None,
        });
        Ok(set)
    }

    pub async fn get(&self) -> anyhow::Result<Arc<KeySet>> {
        let cached = self.cached();
        if let Some((set, at, retry_at)) = &cached
            && (at.elapsed() < self.ttl || retry_at.is_some_and(|r| Instant::now() < r))
        {
            return Ok(set.clone());
        }
        match self.fetch().await {
            Ok(set) => Ok(set),
            Err(e) => match cached {
                Some((set, at, _)) if at.elapsed() < self.ttl + STALE_KEYS_GRACE => {
                    // A dependency down for minutes should not turn every request into a 500:
                    // these keys verified and signed a TTL ago, and rotation keeps old keys
                    // valid far longer than this grace.
                    tracing::warn!(error.cause_chain = ?e, age_s = at.elapsed().as_secs(), "signing keys could not be refreshed; serving the last good ones");
                    metrics::counter!("SigningKeysStale").increment(1);
                    if let Some(c) = self.parsed.lock().expect("keys lock").as_mut() {
                        c.retry_at = Some(Instant::now() + STALE_RETRY_EVERY);
                    }
                    Ok(set)
                }
                _ => Err(e),
            },
        }
    }

    /// The keys after a token named a `kid` they lack: reloaded from Secrets Manager, once
    /// per [`UNKNOWN_KID_RELOAD_EVERY`] per process whatever the number of such tokens
    /// (concurrent callers wait for the one reload; a flood of made-up kids costs one fetch
    /// every ten seconds).
    pub async fn reload_for_unknown_kid(&self) -> anyhow::Result<Arc<KeySet>> {
        let mut last = self.forced.lock().await;
        if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_RELOAD_EVERY) {
            return self.get().await;
        }
        *last = Some(Instant::now());
        self.secrets.invalidate(&self.secret_id).await;
        metrics::counter!("SigningKeysReloaded").increment(1);
        match self.fetch().await {
            Ok(set) => Ok(set),
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "reloading the signing keys for an unknown kid failed");
                self.get().await
            }
        }
    }

    /// Verifies an access token, reloading the keys once when it names a key they lack.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Result<Claims, TokenError>> {
        let keys = self.get().await?;
        match keys.verify(token, issuer, audience) {
            Err(TokenError::UnknownKey) => {
                let fresh = self.reload_for_unknown_kid().await?;
                Ok(fresh.verify(token, issuer, audience))
            }
            other => Ok(other),
        }
    }
}

impl Keys {
    /// The caller an access token names, or the 401 every refused token gets (the reason is
    /// logged, never told).
    pub async fn user_of(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<User, ApiError> {
        let claims = self
            .verify(token, issuer, audience)
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| {
                tracing::info!(reason = %e, "access token refused");
                unauthorized()
            })?;
        Ok(User {
            id: claims.sub,
            roles: claims.roles,
            session_id: claims.sid,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }
}

/// The 401 every authentication failure gets: the same body whatever the reason.
pub fn unauthorized() -> ApiError {
    ApiError::of(crate::problem::problems::UNAUTHORIZED)
        .detail("a valid bearer access token is required")
        .header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="city-events", error="invalid_token""#),
        )
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_previous_key_and_drops_expired_ones() {
        let k = |kid: &str, at: u64| StoredKey {
            kid: kid.into(),
            alg: rs256(),
            created_at: at,
            private_key_pem: String::new(),
        };
        let doc = KeyDocument {
            keys: vec![k("old", 0), k("prev", 1_000)],
        };
        let now = 1_000 + 3_600;
        let rotated = doc.rotated(k("new", now));
        let kids: Vec<&str> = rotated.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["new", "prev"]);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
