//! The auth endpoints: extract → parse into domain types → one domain call → one response.

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::auth::{Keys, Role, User as Caller, new_claims, now_unix};
use shared::http::{Request, RequestParts, Response, json};
use utoipa::ToSchema;

use crate::email::Email;
use crate::error::AuthError;
use crate::store::{RolesChange, Rotation, Store, User, UserLock};
use crate::{password, totp};

/// What every auth handler shares, built once per cold start.
pub struct Auth {
    pub store: Store,
    pub idempotency: shared::idempotency::Idempotency,
    /// The private keys: present only in the functions that sign (login, MFA verify, refresh).
    pub signer: Option<Keys>,
    /// The public keys, for the JWKS document.
    pub public_keys: Keys,
    pub issuer: String,
    pub audience: String,
    /// The successor-deriving key: only in the refresh function.
    refresh_key: Option<shared::secrets::SecretKey>,
    /// The key of second-factor data at rest: only in the functions that handle it.
    mfa_key: Option<shared::secrets::SecretKey>,
}

impl Auth {
    /// Cannot fail: each key's secret id is optional here and checked where it is used.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        let auth = Arc::new(Auth {
            idempotency: shared::idempotency::Idempotency::new(app),
            store: Store::new(app),
            signer: Keys::signing(app),
            public_keys: Keys::new(app),
            issuer: app.config.jwt_issuer.clone(),
            audience: app.config.jwt_audience.clone(),
            refresh_key: shared::secrets::SecretKey::from_env_optional(
                app,
                "REFRESH_KEY_SECRET_ID",
                "refresh successor key",
            ),
            mfa_key: shared::secrets::SecretKey::from_env_optional(
                app,
                "MFA_KEY_SECRET_ID",
                "MFA data key",
            ),
        });
        // Read this function's keys now, beside the first request: an instance that has only
        // refused requests so far (wrong passwords, reused tokens) would otherwise meet a
        // Secrets Manager outage with nothing cached to sign with.
        if tokio::runtime::Handle::try_current().is_ok() {
            let warm = auth.clone();
            tokio::spawn(async move { warm.warm().await });
        }
        Ok(auth)
    }

    /// Fetches every key this function holds into the cache (failures are left to the first
    /// request that needs the key).
    async fn warm(&self) {
        let signer = async {
            if let Some(s) = &self.signer {
                let _ = s.get().await;
            }
        };
        let refresh = async {
            if let Some(k) = &self.refresh_key {
                let _ = k.get().await;
            }
        };
        let mfa = async {
            if let Some(k) = &self.mfa_key {
                let _ = k.get().await;
            }
        };
        let public = async {
            let _ = self.public_keys.get().await;
        };
        tokio::join!(signer, refresh, mfa, public);
    }

    /// The keys that seal TOTP secrets and hash recovery codes.
    async fn mfa_keys(&self) -> Result<crate::mfa_keys::MfaKeys, ApiError> {
        let key = self.mfa_key.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this function has no MFA_KEY_SECRET_ID: it cannot read second factors")
        })?;
        let bytes = key.get().await?;
        let text = std::str::from_utf8(&bytes).map_err(ApiError::internal)?;
        Ok(crate::mfa_keys::MfaKeys::parse(text)?)
    }

    /// The key that derives refresh tokens' successors.
    async fn refresh_key(&self) -> Result<Vec<u8>, ApiError> {
        let key = self.refresh_key.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "this function has no REFRESH_KEY_SECRET_ID: it cannot rotate refresh tokens"
            )
        })?;
        key.get().await
    }

    async fn tokens(
        &self,
        user: &User,
        family: &str,
        refresh_token: String,
    ) -> Result<Tokens, ApiError> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this function has no SIGNING_KEYS_SECRET_ID: it cannot sign tokens")
        })?;
        let keys = signer.get().await?;
        let claims = new_claims(&self.issuer, &self.audience, &user.id, &user.roles, family);
        Ok(Tokens {
            access_token: keys.sign(&claims)?,
            token_type: "Bearer",
            expires_in: claims.exp - claims.iat,
            refresh_token,
        })
    }

    async fn new_session(&self, user: &User) -> Result<Tokens, ApiError> {
        let (family, refresh) = self.store.start_session(&user.id, now_unix()).await?;
        self.tokens(user, &family, refresh).await
    }

    /// The (live) caller's account, as stored.
    pub(crate) async fn account(&self, caller: &Caller) -> Result<User, ApiError> {
        self.store
            .user(&caller.id)
            .await?
            .ok_or_else(shared::auth::unauthorized)
    }

    /// The caller's session must still be live: logout and MFA changes take effect at once here.
    pub(crate) async fn live_caller<'r>(&self, req: &'r Request) -> Result<&'r Caller, ApiError> {
        let caller = req.user()?;
        if !self
            .store
            .session_active(&caller.id, &caller.session_id)
            .await?
        {
            return Err(shared::auth::unauthorized());
        }
        Ok(caller)
    }
}

/// What a 503 of a route whose rate limiter fails closed means.
const FAILS_CLOSED: &str = "The rate limiter's store is unavailable: this route fails closed";

fn audit(event: &'static str, user_id: &str) {
    tracing::info!(target: "audit", audit_event = event, user_id, "security event");
}

// ------------------------------------------------------------------ types

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// At most 254 characters, `name@domain.tld`.
    #[schema(value_type = String, example = "ann@example.com", min_length = 3, max_length = 254, pattern = "^[^@\\s]{1,64}@[^@\\s.]+(\\.[^@\\s.]+)+$")]
    pub email: Email,
    /// 12 to 256 characters; not a common password; strong enough (zxcvbn score ≥ 3).
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 256)]
    pub password: NewPassword,
    /// 1 to 80 characters (trimmed), no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 80, pattern = "\\S")]
    pub display_name: DisplayName,
}

/// A password as typed, checked against the length limits while parsing.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct NewPassword(String);

impl TryFrom<String> for NewPassword {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.chars().count() {
            0..12 => Err("must be at least 12 characters".into()),
            257.. => Err("must be at most 256 characters".into()),
            _ => Ok(NewPassword(s)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct DisplayName(String);

impl TryFrom<String> for DisplayName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        match t.chars().count() {
            1..=80 if !t.chars().any(char::is_control) => Ok(DisplayName(t.to_owned())),
            _ => Err("must be 1 to 80 characters without control characters".into()),
        }
    }
}

/// A user's public profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub mfa_enabled: bool,
    /// The OpenID Connect identities linked to the account (`GET /v1/me` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<crate::identities::LinkedIdentity>,
}

impl From<&User> for Profile {
    fn from(u: &User) -> Self {
        Profile {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            roles: u.roles.clone(),
            mfa_enabled: u.mfa_enabled,
            identities: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(value_type = String, min_length = 3, max_length = 254, pattern = "^[^@\\s]{1,64}@[^@\\s.]+(\\.[^@\\s.]+)+$")]
    pub email: Email,
    /// 1 to 256 characters.
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 256)]
    pub password: LoginPassword,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct LoginPassword(String);

impl TryFrom<String> for LoginPassword {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > 256 {
            return Err("must be 1 to 256 characters".into());
        }
        Ok(LoginPassword(s))
    }
}

/// Access and refresh tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    /// RS256 JWT (`typ` at+jwt), at most 5 minutes.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// One-use: every refresh returns a new one and retires this one.
    pub refresh_token: String,
}

/// A login's answer: tokens, or an MFA challenge for a user with MFA on (only in the
/// OpenAPI document: the handler serialises one of the two).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LoginAnswer {
    Tokens(Tokens),
    MfaChallenge(MfaChallenge),
}

/// The answer to a login of a user with MFA on.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    /// Send it with a TOTP or recovery code to `/v1/auth/mfa/verify` within 5 minutes.
    pub challenge: String,
    pub expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerify {
    #[schema(min_length = 1)]
    pub challenge: String,
    /// A 6-digit TOTP code or a recovery code.
    #[schema(min_length = 1)]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret (160 bits).
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code: a PNG `data:` URL.
    pub qr_png: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The current 6-digit code.
    #[schema(min_length = 1)]
    pub code: String,
}

/// The account's password, confirmed again before a change to how it is protected.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUp {
    /// The account's password.
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 256)]
    pub password: LoginPassword,
}

/// Turning MFA off: the account's password and a code from the factor (TOTP or recovery).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    /// A current 6-digit TOTP code or a recovery code.
    #[schema(min_length = 1)]
    pub code: String,
    /// The account's password.
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 256)]
    pub password: LoginPassword,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten one-time codes; shown once, stored hashed.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    pub roles: Vec<Role>,
}

shared::error_answers!(
    /// What registering answers besides the profile.
    RegisterErrors:
    EMAIL_TAKEN,
    VALIDATION => "A field is invalid (the password policy included)",
);

// ------------------------------------------------------------------ handlers

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = Register,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional. A repeat with the same key replays the first answer for 24 h (`Idempotent-Replayed: true`)")),
    responses(
        (status = 201, description = "Created; log in to get tokens", body = Profile),
        RegisterErrors,
    ))]
pub async fn register(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    auth.idempotency
        .run(req, false, |req, claim| register_once(auth, req, claim))
        .await
}

async fn register_once(
    auth: &Auth,
    req: Request,
    claim: Option<std::sync::Arc<shared::idempotency::Claim>>,
) -> Result<Response, ApiError> {
    let input: Register = req.json_body()?;
    password::check_policy(
        &input.password.0,
        &[input.email.as_str(), &input.display_name.0],
    )
    .map_err(|reason| ApiError::validation("password", reason))?;
    let hash = password::hash(SecretString::from(input.password.0)).await?;
    let id = crate::store::new_id("usr")?;
    let mut r = json(
        StatusCode::CREATED,
        &Profile {
            id: id.clone(),
            email: input.email.as_str().to_owned(),
            display_name: input.display_name.0.clone(),
            roles: vec![Role::Attendee],
            mfa_enabled: false,
            identities: Vec::new(),
        },
    )?;
    r.headers_mut()
        .insert(http::header::LOCATION, HeaderValue::from_static("/v1/me"));
    let registered = shared::outbox::OutboxMessage::new(
        "user.registered",
        &id,
        Vec::new(),
        "A new account",
        serde_json::json!({ "user_id": id }),
    );
    let mut extra = vec![registered.transact_put(&auth.store.table)?];
    if let Some(c) = &claim {
        extra.push(c.completion(&r)?);
    }
    let created = auth
        .store
        .create_user(
            &id,
            &input.email,
            &input.display_name.0,
            &hash,
            now_unix(),
            extra,
        )
        .await?;
    if !created {
        return Err(AuthError::EmailTaken.into());
    }
    if let Some(c) = &claim {
        c.committed();
    }
    metrics::counter!("Registrations").increment(1);
    audit("user.registered", &id);
    Ok(r)
}

shared::error_answers!(
    /// What a login answers besides tokens or a challenge.
    LoginErrors:
    INVALID_CREDENTIALS => "Wrong email or password (the same answer for both)",
    ACCOUNT_LOCKED => "Locked for this address after failures (5 on the account from this address; 1 while the account has 20 or more failures in 15 min from everywhere, or the address 20 or more across accounts; an IPv6 client is its /64)",
);

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses(
        (status = 200, description = "Tokens, or an MFA challenge when MFA is on", body = LoginAnswer),
        LoginErrors,
    ))]
pub async fn login(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let input: Login = req.json_body()?;
    let now = now_unix();
    // Failures lock the account for the address they come from (an IPv6 client: its /64), and
    // an address failing across accounts for every account: anyone cannot lock anyone out.
    let address = Some(shared::http::client_address(&req))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let lock = auth.store.locked_for(&input.email, &address, now).await?;
    if lock > 0 {
        metrics::counter!("LoginAttempts", "outcome" => "locked").increment(1);
        return Err(AuthError::Locked(lock).into());
    }
    let user = auth.store.user_by_email(&input.email).await?;
    let ok = password::verify(
        SecretString::from(input.password.0),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        metrics::counter!("LoginAttempts", "outcome" => "failure").increment(1);
        let lock = auth
            .store
            .record_failure(&input.email, &address, now)
            .await?;
        tracing::info!(target: "audit", audit_event = "login.failure", "security event");
        if lock > 0 {
            metrics::counter!("Lockouts").increment(1);
            tracing::warn!(target: "audit", audit_event = "account.locked", lock_seconds = lock, "security event");
        }
        return Err(AuthError::InvalidCredentials("the email or the password is wrong").into());
    };
    auth.store.clear_failures(&input.email, &address).await?;
    auth.signed_in(&user, "login").await
}

impl Auth {
    /// The answer to a first factor that held (a password, or an OpenID Connect provider's ID
    /// token): an MFA challenge for a user with a second factor, else a new session's tokens.
    /// `how` is the audit event's prefix (`login`, `oidc_login`).
    pub(crate) async fn signed_in(&self, user: &User, how: &str) -> Result<Response, ApiError> {
        if user.mfa_enabled {
            let challenge = self.store.create_challenge(&user.id, now_unix()).await?;
            metrics::counter!("LoginAttempts", "outcome" => "mfa_challenge").increment(1);
            metrics::counter!("MfaChallenges").increment(1);
            tracing::info!(target: "audit", audit_event = %format!("{how}.mfa_challenge"), user_id = %user.id, "security event");
            return json(
                StatusCode::OK,
                &MfaChallenge {
                    mfa_required: true,
                    challenge,
                    expires_in: crate::store::CHALLENGE_TTL_SECONDS,
                },
            );
        }
        metrics::counter!("LoginAttempts", "outcome" => "success").increment(1);
        tracing::info!(target: "audit", audit_event = %format!("{how}.success"), user_id = %user.id, "security event");
        json(StatusCode::OK, &self.new_session(user).await?)
    }
}

shared::error_answers!(
    /// What a second-factor check answers besides tokens.
    MfaVerifyErrors:
    INVALID_CODE => "Unknown, expired or burnt challenge (5 wrong codes), or a wrong, old or reused code",
    ACCOUNT_LOCKED => "The account's second factor is locked after wrong codes (backoff as for passwords)",
);

#[utoipa::path(post, path = "/v1/auth/mfa/verify", tag = "auth", request_body = MfaVerify,
    responses(
        (status = 200, description = "Tokens", body = Tokens),
        MfaVerifyErrors,
    ))]
pub async fn mfa_verify(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let input: MfaVerify = req.json_body()?;
    let now = now_unix();
    // The attempt is taken before the code is checked: five per challenge, even in parallel.
    let user_id = auth
        .store
        .reserve_challenge_attempt(&input.challenge, now)
        .await?
        .ok_or(AuthError::InvalidCode)?;
    // Wrong codes count per account across challenges (a new password login buys no new
    // guesses while the lock holds), with the password failures' backoff.
    unlocked(auth, UserLock::Mfa, &user_id, now)
        .await
        .inspect_err(|_| metrics::counter!("MfaLocked").increment(1))?;
    let user = auth
        .store
        .user(&user_id)
        .await?
        .ok_or(AuthError::InvalidCode)?;
    if !check_second_factor(auth, &user, &input.code, now).await? {
        let refused = Refusal::new(UserLock::Mfa, "mfa.failure", AuthError::InvalidCode);
        return Err(refused.count(auth, &user.id, now).await);
    }
    if !auth.store.consume_challenge(&input.challenge).await? {
        // Another request with this challenge won: one challenge, one session.
        return Err(AuthError::InvalidCode.into());
    }
    // The code is spent and the challenge consumed: a failed reset must not cost the session.
    if let Err(e) = auth
        .store
        .clear_user_failures(UserLock::Mfa, &user.id)
        .await
    {
        tracing::warn!(error.cause_chain = ?e, "clearing the MFA failures failed");
    }
    audit("login.success", &user.id);
    json(StatusCode::OK, &auth.new_session(&user).await?)
}

/// The password again, for a change to how the account is protected (step-up): under the
/// user's step-up lock, and a wrong one counts toward it.
pub(crate) async fn step_up(
    auth: &Auth,
    user: &User,
    password: LoginPassword,
    now: u64,
) -> Result<(), ApiError> {
    unlocked(auth, UserLock::StepUp, &user.id, now).await?;
    if password::verify(
        SecretString::from(password.0),
        Some(user.password_hash.clone()),
    )
    .await?
    {
        return Ok(());
    }
    let refused = Refusal::new(
        UserLock::StepUp,
        "mfa.step_up_refused",
        AuthError::InvalidCredentials("the password is wrong"),
    );
    Err(refused.count(auth, &user.id, now).await)
}

/// 429 while the user's `lock` holds.
async fn unlocked(auth: &Auth, lock: UserLock, user_id: &str, now: u64) -> Result<(), ApiError> {
    match auth.store.user_locked_for(lock, user_id, now).await? {
        0 => Ok(()),
        seconds => Err(AuthError::Locked(seconds).into()),
    }
}

/// A wrong code or password, counted toward one of the user's locks.
struct Refusal {
    lock: UserLock,
    audit_event: &'static str,
    answer: AuthError,
}

impl Refusal {
    fn new(lock: UserLock, audit_event: &'static str, answer: AuthError) -> Self {
        Refusal {
            lock,
            audit_event,
            answer,
        }
    }

    /// Counts it (metric `MfaFailures` or `StepUpFailures`, an audit line); the answer is 429
    /// when this failure locked the user, the refusal otherwise. A store error is the answer
    /// too (500), never a silent pass.
    async fn count(self, auth: &Auth, user_id: &str, now: u64) -> ApiError {
        let lock = match auth
            .store
            .record_user_failure(self.lock, user_id, now)
            .await
        {
            Ok(lock) => lock,
            Err(e) => return ApiError::internal(e),
        };
        match self.lock {
            UserLock::Mfa => metrics::counter!("MfaFailures").increment(1),
            UserLock::StepUp => metrics::counter!("StepUpFailures").increment(1),
        }
        tracing::info!(target: "audit", audit_event = self.audit_event, user_id, "security event");
        if lock == 0 {
            return self.answer.into();
        }
        metrics::counter!("Lockouts").increment(1);
        tracing::warn!(target: "audit", audit_event = "user.locked", lock = ?self.lock, user_id, lock_seconds = lock, "security event");
        AuthError::Locked(lock).into()
    }
}

/// A TOTP code (current or previous step, later than the last used) or a recovery code.
async fn check_second_factor(
    auth: &Auth,
    user: &User,
    code: &str,
    now: u64,
) -> Result<bool, ApiError> {
    let code = code.trim();
    let keys = auth.mfa_keys().await?;
    if code.len() == totp::DIGITS as usize {
        let Some(stored) = &user.totp_secret else {
            return Ok(false);
        };
        let secret = keys.open(&user.id, stored)?;
        return match totp::verify(&secret, code, now, user.last_totp_step) {
            Some(step) => Ok(auth.store.accept_totp_step(&user.id, step).await?),
            None => Ok(false),
        };
    }
    let used = auth
        .store
        .use_recovery_code(&user.id, &keys.recovery_candidates(&user.id, code))
        .await?;
    if used {
        audit("mfa.recovery_code_used", &user.id);
    }
    Ok(used)
}

shared::error_answers!(
    /// What a refresh answers besides new tokens.
    RefreshErrors:
    INVALID_REFRESH_TOKEN => "Unknown, expired, revoked, or used — more than 30 s ago or after its successor was used; the whole family is then revoked",
    SERVICE_UNAVAILABLE => "The session store kept conflicting; nothing changed: send the same refresh token again after Retry-After",
);

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is retired. Presented again within 30 s of that (a retry, a second tab), while its successor is unused, it answers the same successor refresh token (and a new access token)", body = Tokens),
        RefreshErrors,
    ))]
pub async fn refresh(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let input: Refresh = req.json_body()?;
    let key = auth.refresh_key().await?;
    match auth
        .store
        .rotate_refresh(&input.refresh_token, &key, now_unix())
        .await?
    {
        Rotation::Rotated {
            user,
            family,
            token,
            again,
        } => {
            let outcome = if again { "grace" } else { "rotated" };
            metrics::counter!("RefreshOutcomes", "outcome" => outcome).increment(1);
            json(StatusCode::OK, &auth.tokens(&user, &family, token).await?)
        }
        Rotation::Busy => {
            metrics::counter!("RefreshOutcomes", "outcome" => "busy").increment(1);
            Err(AuthError::SessionBusy.into())
        }
        Rotation::Reused { user_id, family } => {
            metrics::counter!("RefreshOutcomes", "outcome" => "reused").increment(1);
            metrics::counter!("RefreshReuseDetected").increment(1);
            tracing::warn!(target: "audit", audit_event = "refresh.reuse", user_id = %user_id, session_id = %family, "security event: refresh token reuse, family revoked");
            Err(AuthError::InvalidRefresh.into())
        }
        Rotation::Invalid => {
            metrics::counter!("RefreshOutcomes", "outcome" => "invalid").increment(1);
            Err(AuthError::InvalidRefresh.into())
        }
    }
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "The session's refresh tokens are revoked")))]
pub async fn logout(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    auth.store
        .revoke_session(&caller.id, &caller.session_id)
        .await?;
    audit("logout", &caller.id);
    let mut r = Response::new(lambda_http::Body::Empty);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile and roles", body = Profile)))]
pub async fn me(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let user = auth.account(caller).await?;
    let mut profile = Profile::from(&user);
    profile.identities = crate::identities::identities(&auth.store, &user.id).await?;
    json(StatusCode::OK, &profile)
}

shared::error_answers!(
    /// What enrolling an authenticator answers besides its secret.
    TotpEnrollErrors:
    INVALID_CREDENTIALS => "Wrong password (it counts toward the account's step-up lock)",
    MFA_ENABLED => "MFA is already on: an active factor is replaced only by turning it off (password and a code) first",
    ACCOUNT_LOCKED => "Locked after wrong passwords",
    SERVICE_UNAVAILABLE => FAILS_CLOSED,
);

#[utoipa::path(post, path = "/v1/me/mfa/totp", tag = "auth", security(("bearer" = [])), request_body = StepUp,
    responses(
        (status = 200, description = "A new TOTP secret to confirm with /activate", body = TotpEnrollment),
        TotpEnrollErrors,
    ))]
pub async fn totp_enroll(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let input: StepUp = req.json_body()?;
    let user = auth.account(caller).await?;
    // A stolen access token must not be able to enrol the thief's authenticator (activation
    // ends every session and hands out the recovery codes): the password, fresh, first.
    step_up(auth, &user, input.password, now_unix()).await?;
    if user.mfa_enabled {
        return Err(AuthError::MfaEnabled.into());
    }
    let secret = totp::new_secret()?;
    let sealed = auth.mfa_keys().await?.seal(&user.id, &secret)?;
    auth.store.set_pending_totp(&user.id, &sealed).await?;
    let uri = totp::otpauth_uri("City Events", &user.email, &secret);
    let qr_png = totp::qr_png_data_url(&uri)?;
    json(
        StatusCode::OK,
        &TotpEnrollment {
            secret,
            otpauth_uri: uri,
            qr_png,
        },
    )
}

shared::error_answers!(
    /// What activating an authenticator answers besides the recovery codes.
    TotpActivateErrors:
    INVALID_CODE => "Wrong code",
    NO_PENDING_ENROLLMENT => "Nothing to activate (enroll first)",
);

#[utoipa::path(post, path = "/v1/me/mfa/totp/activate", tag = "auth", security(("bearer" = [])), request_body = TotpCode,
    responses(
        (status = 200, description = "MFA is on; every session is revoked", body = RecoveryCodes),
        TotpActivateErrors,
    ))]
pub async fn totp_activate(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let input: TotpCode = req.json_body()?;
    let user = auth.account(caller).await?;
    let stored = user
        .pending_totp_secret
        .clone()
        .ok_or(AuthError::NoPendingEnrollment)?;
    let keys = auth.mfa_keys().await?;
    let secret = keys.open(&user.id, &stored)?;
    let step = totp::verify(&secret, input.code.trim(), now_unix(), user.last_totp_step)
        .ok_or(AuthError::InvalidCode)?;
    let mut codes = Vec::new();
    for _ in 0..10 {
        let raw = crate::store::random_token(10)?
            .to_ascii_uppercase()
            .replace(['-', '_'], "X");
        codes.push(format!("{}-{}", &raw[..5], &raw[5..10]));
    }
    let hashes = codes
        .iter()
        .map(|c| keys.recovery_hash(&user.id, c))
        .collect();
    // The sealed value moves from pending to active as it is (its condition compares it).
    if !auth
        .store
        .activate_totp(&user.id, &stored, step, hashes)
        .await?
    {
        return Err(AuthError::InvalidCode.into());
    }
    auth.store.revoke_all_sessions(&user.id).await?;
    audit("mfa.enabled", &user.id);
    json(
        StatusCode::OK,
        &RecoveryCodes {
            recovery_codes: codes,
        },
    )
}

shared::error_answers!(
    /// What turning MFA off answers besides 204.
    TotpDisableErrors:
    INVALID_CREDENTIALS => "Wrong password or code (each counts toward its own lock)",
    MFA_NOT_ENABLED,
    ACCOUNT_LOCKED => "Locked after wrong passwords or codes",
    SERVICE_UNAVAILABLE => FAILS_CLOSED,
);

#[utoipa::path(delete, path = "/v1/me/mfa/totp", tag = "auth", security(("bearer" = [])), request_body = DisableTotp,
    responses(
        (status = 204, description = "MFA is off; every session is revoked"),
        TotpDisableErrors,
    ))]
pub async fn totp_disable(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let input: DisableTotp = req.json_body()?;
    let now = now_unix();
    let user = auth.account(caller).await?;
    // A stolen access token is not enough: the password and a code from the factor itself,
    // under the same per-account lock as the MFA login.
    step_up(auth, &user, input.password, now).await?;
    if !user.mfa_enabled {
        return Err(AuthError::MfaNotEnabled.into());
    }
    unlocked(auth, UserLock::Mfa, &user.id, now).await?;
    if !check_second_factor(auth, &user, &input.code, now).await? {
        let refused = Refusal::new(
            UserLock::Mfa,
            "mfa.disable_refused",
            AuthError::InvalidCredentials("the code is wrong"),
        );
        return Err(refused.count(auth, &user.id, now).await);
    }
    auth.store
        .clear_user_failures(UserLock::Mfa, &user.id)
        .await?;
    auth.store.disable_totp(&user.id).await?;
    auth.store.revoke_all_sessions(&user.id).await?;
    audit("mfa.disabled", &user.id);
    let mut r = Response::new(lambda_http::Body::Empty);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The public signing keys (current and previous) as a JWKS", content_type = "application/json")))]
pub async fn jwks(auth: &Auth) -> Result<Response, ApiError> {
    let keys = auth.public_keys.get().await?;
    let mut r = json(StatusCode::OK, &keys.jwks())?;
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(r)
}

shared::error_answers!(
    /// What setting roles answers besides the profile.
    SetRolesErrors:
    FORBIDDEN => "The caller is not an admin now (roles are read from the account, not the token)",
    NOT_FOUND => "No such user",
    LAST_ADMIN,
    ROLES_CHANGED => "The user's roles changed meanwhile; retry",
);

#[utoipa::path(put, path = "/v1/admin/users/{id}/roles", tag = "auth", security(("bearer" = [])), request_body = SetRoles,
    params(("id" = String, Path, description = "The user id (`usr_` and 20 to 40 hex digits)")),
    responses(
        (status = 200, description = "The user's roles. Every session of the user is revoked: the new roles apply at their next login", body = Profile),
        SetRolesErrors,
    ))]
pub async fn set_roles(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let id = user_id(&req)?;
    let input: SetRoles = req.json_body()?;
    // The token's roles got the caller past the route's policy; the account's roles as stored
    // now decide (a demoted admin's unexpired token must not re-grant itself).
    let admin = auth.store.user(&caller.id).await?;
    if !admin.is_some_and(|a| a.roles.contains(&Role::Admin)) {
        tracing::warn!(target: "audit", audit_event = "roles.refused", user_id = %id, admin_id = %caller.id, "security event: a token with the admin role from an account without it");
        return Err(AuthError::NotAdmin.into());
    }
    let mut roles = input.roles;
    if !roles.contains(&Role::Attendee) {
        roles.push(Role::Attendee);
    }
    roles.sort();
    roles.dedup();
    let change = auth
        .store
        .set_roles_settled(&id, &roles, Some(&caller.id))
        .await?;
    let refused = match change {
        RolesChange::Changed => None,
        RolesChange::CallerNotAdmin => Some(AuthError::NotAdmin),
        RolesChange::NoSuchUser => Some(AuthError::NoSuchUser),
        RolesChange::LastAdmin => Some(AuthError::LastAdmin),
        RolesChange::Conflict => Some(AuthError::RolesChanged),
    };
    if let Some(e) = refused {
        return Err(e.into());
    }
    // Tokens carry roles: every session of the user ends, so the next refresh fails and the
    // new roles apply from the next login (access tokens already issued run out within their
    // lifetime).
    let revoked = auth.store.revoke_all_sessions(&id).await?;
    tracing::info!(target: "audit", audit_event = "roles.changed", user_id = %id, admin_id = %caller.id, roles = ?roles, sessions_revoked = revoked, "security event");
    let user = auth.store.user(&id).await?.ok_or(AuthError::NoSuchUser)?;
    json(StatusCode::OK, &Profile::from(&user))
}

/// The OpenAPI pattern of a user id ([`user_id`]).
pub const USER_ID_PATTERN: &str = "^usr_[0-9a-f]{20,40}$";

/// The `{id}` of an admin route: `usr_` and 20 to 40 lowercase hex digits.
fn user_id(req: &Request) -> Result<String, ApiError> {
    let id: String = req.path_param("id")?;
    let hex = id.strip_prefix("usr_").unwrap_or_default();
    if !(20..=40).contains(&hex.len())
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let reason = "must be usr_ and 20 to 40 lowercase hex digits";
        return Err(ApiError::bad_request(format!("id {reason}")).field("id", reason));
    }
    Ok(id)
}
