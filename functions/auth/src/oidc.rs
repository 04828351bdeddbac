//! Sign in with an OpenID Connect provider: authorization code with PKCE, as RFC 9700 and
//! OpenID Connect Core ask (docs/decisions/0015-oidc.md), with the `openidconnect` crate.
//!
//! - `GET /v1/auth/oidc/{provider}/start`: a fresh `state`, `nonce` and PKCE S256 verifier,
//!   kept server-side in one item (`OIDC#<sha256(state)>` / `STATE`, 10 minutes, single use)
//!   with the hash of a `binding` secret handed to this client only (a cookie, and the answer's
//!   `binding` for clients that send it back as `X-OIDC-Binding`): a callback from another
//!   browser — a login-CSRF, someone else's code pasted in — is refused. Answers the provider's
//!   authorization URL.
//! - `GET|POST /v1/auth/oidc/{provider}/callback`: the state item is taken (deleted: a replay
//!   finds nothing), the code exchanged with the verifier (client_secret_basic), the ID token
//!   verified (signature against the provider's JWKS — reloaded once when it names a key the
//!   cache lacks —, `iss`, `aud`, `azp`, `exp`, the `nonce`), and the account signed in exactly
//!   as a password login does (an MFA challenge when it has a second factor).
//! - Accounts: a provider subject seen before signs in to its account (`IDENTITY#<provider>#<sub>`);
//!   a new one with a verified email no account has creates an account; an email an account
//!   already has is never linked silently (409: sign in with the password, then link).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::ddb::{get_n, get_s, n, s};
use shared::http::{Request, RequestParts, Response, json};
use shared::problem::problems;
use utoipa::ToSchema;

use crate::api::Auth;
use crate::email::Email;
use crate::error::AuthError;

/// How long a started sign-in may take (the state item's life).
pub const STATE_TTL_S: u64 = 600;
/// How long discovered metadata (endpoints and keys) is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// At most one reload per provider this often for ID tokens naming a key the cache lacks.
const UNKNOWN_KEY_RELOAD_EVERY: Duration = Duration::from_secs(10);
/// The cookie that binds a started sign-in to the client that started it.
pub const BINDING_COOKIE: &str = "oidc_binding";
/// The header a client that is not a browser sends the binding in.
pub const BINDING_HEADER: &str = "x-oidc-binding";

/// One provider of `OIDC_PROVIDERS` (a JSON list): its name in our routes, its issuer (where
/// `/.well-known/openid-configuration` is) and our client id there. The client secret is in
/// the secret `OIDC_CLIENT_SECRETS_ID` (a JSON object, provider name → secret), never here.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
}

/// Reads `OIDC_PROVIDERS`; none configured is an empty list (the routes answer 404).
pub fn providers_from(text: Option<&str>) -> anyhow::Result<Vec<ProviderConfig>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let list: Vec<ProviderConfig> = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("OIDC_PROVIDERS is not a JSON list of {{name, issuer, client_id}}: {e}")
    })?;
    for p in &list {
        anyhow::ensure!(
            !p.name.is_empty()
                && p.name.len() <= 32
                && p.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "OIDC_PROVIDERS: a provider name is 1 to 32 of a-z 0-9 -: {:?}",
            p.name
        );
        IssuerUrl::new(p.issuer.clone())
            .map_err(|e| anyhow::anyhow!("OIDC_PROVIDERS: {}: issuer: {e}", p.name))?;
        anyhow::ensure!(
            !p.client_id.is_empty(),
            "OIDC_PROVIDERS: {}: no client_id",
            p.name
        );
    }
    Ok(list)
}

/// The sign-in functions' state: the account side (crate::api::Auth) and the providers.
pub struct SignIn {
    /// The account side: only in the callback (it signs tokens); the start needs none of it.
    pub auth: Option<Arc<Auth>>,
    pub store: crate::store::Store,
    pub providers: Vec<ProviderConfig>,
    /// Where the provider sends the browser back: `<base>/v1/auth/oidc/<name>/callback`.
    pub redirect_base: String,
    secrets: shared::secrets::SecretsCache<shared::aws::Clients>,
    secrets_id: Option<String>,
    http: openidconnect::reqwest::Client,
    metadata: Mutex<HashMap<String, (Arc<CoreProviderMetadata>, Instant)>>,
    reloaded: tokio::sync::Mutex<HashMap<String, Instant>>,
}

impl SignIn {
    /// The callback's: with the account side (it signs tokens). Fails at start, naming what is
    /// wrong, when `OIDC_PROVIDERS` is malformed.
    pub fn new(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        Self::build(app, Some(Auth::new(app)?))
    }

    /// The start's: providers and the table only (it reads no secret).
    pub fn starting(app: &shared::App) -> anyhow::Result<Arc<Self>> {
        Self::build(app, None)
    }

    fn build(app: &shared::App, auth: Option<Arc<Auth>>) -> anyhow::Result<Arc<Self>> {
        let providers = providers_from(std::env::var("OIDC_PROVIDERS").ok().as_deref())?;
        let redirect_base = std::env::var("OIDC_REDIRECT_BASE")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| app.config.jwt_issuer.clone());
        // The provider is someone else's server: rustls (the SDK's TLS), the public web's roots,
        // short timeouts, and never a redirect (the crate's own rule against SSRF).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Arc::new(SignIn {
            auth,
            store: crate::store::Store::new(app),
            providers,
            redirect_base: redirect_base.trim_end_matches('/').to_owned(),
            secrets: app.secrets.clone(),
            secrets_id: std::env::var("OIDC_CLIENT_SECRETS_ID")
                .ok()
                .filter(|s| !s.is_empty()),
            http,
            metadata: Mutex::new(HashMap::new()),
            reloaded: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    fn auth(&self) -> Result<&Auth, ApiError> {
        self.auth
            .as_deref()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("this function cannot sign in")))
    }

    fn provider(&self, name: &str) -> Result<&ProviderConfig, ApiError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no sign-in provider {name:?}")))
    }

    fn redirect_url(&self, p: &ProviderConfig) -> Result<RedirectUrl, ApiError> {
        RedirectUrl::new(format!(
            "{}/v1/auth/oidc/{}/callback",
            self.redirect_base, p.name
        ))
        .map_err(ApiError::internal)
    }

    /// The provider's metadata and keys (discovered, cached for [`METADATA_TTL`]); `fresh`
    /// fetches them again.
    async fn metadata(
        &self,
        p: &ProviderConfig,
        fresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, ApiError> {
        if !fresh
            && let Some((m, at)) = self.metadata.lock().expect("metadata").get(&p.name)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(p.issuer.clone()).map_err(ApiError::internal)?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                metrics::counter!("OidcProviderErrors", "provider" => p.name.clone()).increment(1);
                tracing::warn!(provider = %p.name, error = %shared::error_chain(&e), "discovering the provider failed");
                ApiError::service_unavailable("the sign-in provider is unavailable; try again shortly")
            })?;
        let m = Arc::new(m);
        self.metadata
            .lock()
            .expect("metadata")
            .insert(p.name.clone(), (m.clone(), Instant::now()));
        Ok(m)
    }

    /// Our client secret at `p` (from Secrets Manager).
    async fn client_secret(&self, p: &ProviderConfig) -> Result<ClientSecret, ApiError> {
        use secrecy::ExposeSecret;
        let id = self.secrets_id.as_deref().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("OIDC_CLIENT_SECRETS_ID is not set"))
        })?;
        let text: secrecy::SecretString = self.secrets.get(id).await.map_err(ApiError::internal)?;
        let all: HashMap<String, String> =
            serde_json::from_str(text.expose_secret()).map_err(|_| {
                ApiError::internal(anyhow::anyhow!(
                    "the OIDC client secrets are not a JSON object"
                ))
            })?;
        all.get(&p.name)
            .map(|s| ClientSecret::new(s.clone()))
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("no OIDC client secret for {}", p.name))
            })
    }
}

fn digest(value: &str) -> String {
    shared::ids::digest_hex(value)
}

fn state_key(state: &str) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        ("pk".into(), s(format!("OIDC#{}", digest(state)))),
        ("sk".into(), s("STATE")),
    ])
}

fn identity_key(
    provider: &str,
    subject: &str,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        ("pk".into(), s(format!("IDENTITY#{provider}#{subject}"))),
        ("sk".into(), s("IDENTITY")),
    ])
}

/// A started sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignInStarted {
    /// Send the browser here.
    pub authorization_url: String,
    /// This client's proof that it started the sign-in: also set as the `oidc_binding` cookie;
    /// a client that is not a browser sends it back as `X-OIDC-Binding` with the callback.
    pub binding: String,
    /// Seconds the sign-in may take.
    pub expires_in: u64,
}

shared::error_answers!(
    /// What starting a sign-in answers besides the URL.
    StartErrors:
    NOT_FOUND => "No provider of that name",
    SERVICE_UNAVAILABLE => "The provider's discovery document could not be read",
);

#[utoipa::path(get, path = "/v1/auth/oidc/{provider}/start", tag = "auth", operation_id = "oidc_start",
    params(("provider" = String, Path, description = "A configured provider's name")),
    responses(
        (status = 200, description = "The provider's authorization URL (with state, nonce and a PKCE S256 challenge) and this client's binding (also set as a cookie)", body = SignInStarted),
        StartErrors,
    ))]
pub async fn start(si: &SignIn, req: Request) -> Result<Response, ApiError> {
    let name: String = req.path_param("provider")?;
    let p = si.provider(&name)?;
    let metadata = si.metadata(p, false).await?;
    let client = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(p.client_id.clone()),
        None,
    )
    .set_redirect_uri(si.redirect_url(p)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let binding = CsrfToken::new_random().secret().clone();
    let now = shared::auth::now_unix();
    let mut item = state_key(state.secret());
    item.insert("provider".into(), s(&p.name));
    item.insert("verifier".into(), s(verifier.secret()));
    item.insert("nonce".into(), s(nonce.secret()));
    item.insert("binding".into(), s(digest(&binding)));
    item.insert("expires_at".into(), n(now + STATE_TTL_S));
    si.store
        .ddb
        .put_item()
        .table_name(&si.store.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
    metrics::counter!("OidcStarted", "provider" => p.name.clone()).increment(1);
    let mut r = json(
        StatusCode::OK,
        &SignInStarted {
            authorization_url: url.to_string(),
            binding: binding.clone(),
            expires_in: STATE_TTL_S,
        },
    )?;
    let cookie = format!(
        "{BINDING_COOKIE}={binding}; Path=/v1/auth/oidc/{}/; Max-Age={STATE_TTL_S}; HttpOnly; Secure; SameSite=Lax",
        p.name
    );
    r.headers_mut().append(
        http::header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(r)
}

/// The callback's parameters (the query of a GET, or a JSON or form body of a POST).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's error (`access_denied`, ...), instead of a code.
    pub error: Option<String>,
    /// The issuer, when the provider says (RFC 9207); checked against the configured one.
    pub iss: Option<String>,
}

fn callback_params(req: &Request) -> Result<Callback, ApiError> {
    use lambda_http::RequestExt;
    if req.method() == http::Method::POST {
        let ct = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct.starts_with("application/x-www-form-urlencoded") {
            let body = std::str::from_utf8(req.body().as_ref()).unwrap_or("");
            let mut c = Callback::default();
            for (k, v) in form_urlencoded::parse(body.as_bytes()) {
                let v = Some(v.into_owned());
                match k.as_ref() {
                    "code" => c.code = v,
                    "state" => c.state = v,
                    "error" => c.error = v,
                    "iss" => c.iss = v,
                    _ => {}
                }
            }
            return Ok(c);
        }
        return req.json_body();
    }
    let q = req.query_string_parameters();
    Ok(Callback {
        code: q.first("code").map(str::to_owned),
        state: q.first("state").map(str::to_owned),
        error: q.first("error").map(str::to_owned),
        iss: q.first("iss").map(str::to_owned),
    })
}

/// The binding this client holds: `X-OIDC-Binding`, else the `oidc_binding` cookie.
fn binding_of(req: &Request) -> Option<String> {
    if let Some(h) = req
        .headers()
        .get(BINDING_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.trim().to_owned());
    }
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == BINDING_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn state_refused(detail: &str) -> ApiError {
    metrics::counter!("OidcRefused", "reason" => "state").increment(1);
    ApiError::of(problems::OIDC_STATE).detail(detail)
}

fn refused(reason: &'static str, detail: impl Into<String>) -> ApiError {
    metrics::counter!("OidcRefused", "reason" => reason).increment(1);
    tracing::info!(target: "audit", audit_event = "oidc_login.refused", reason, "security event");
    ApiError::of(problems::OIDC_REFUSED).detail(detail)
}

shared::error_answers!(
    /// What a sign-in's callback answers besides tokens.
    CallbackErrors:
    VALIDATION => "`state` or `code` is missing",
    NOT_FOUND => "No provider of that name",
    OIDC_STATE => "Unknown, used or expired state, or another client's (binding)",
    OIDC_REFUSED => "The provider refused the code or the verifier, or the ID token failed a check",
    EMAIL_TAKEN => "An account already has this email: sign in with the password, then link the provider",
    FORBIDDEN => "The provider has not verified the email of this new account",
    SERVICE_UNAVAILABLE => "The provider is unavailable",
);

#[utoipa::path(get, path = "/v1/auth/oidc/{provider}/callback", tag = "auth", operation_id = "oidc_callback",
    params(("provider" = String, Path, description = "A configured provider's name"),
        ("code" = Option<String>, Query, description = "The provider's authorization code"),
        ("state" = Option<String>, Query, description = "The state of the sign-in (from its start)"),
        ("error" = Option<String>, Query, description = "The provider's error, instead of a code"),
        ("iss" = Option<String>, Query, description = "The provider's issuer (RFC 9207)")),
    responses(
        (status = 200, description = "Tokens, or an MFA challenge (as a password login)", body = crate::api::LoginAnswer),
        CallbackErrors,
    ))]
pub async fn callback(si: &SignIn, req: Request) -> Result<Response, ApiError> {
    callback_of(si, req).await
}

/// The same callback as a POST: a JSON (or form, the provider's `form_post`) body with `code`
/// and `state`, from a client that sends its binding as `X-OIDC-Binding`.
#[utoipa::path(post, path = "/v1/auth/oidc/{provider}/callback", tag = "auth", operation_id = "oidc_callback_post",
    params(("provider" = String, Path, description = "A configured provider's name"),
        ("X-OIDC-Binding" = Option<String>, Header, description = "The `binding` of the sign-in's start (else the `oidc_binding` cookie)")),
    request_body = Callback,
    responses(
        (status = 200, description = "Tokens, or an MFA challenge (as a password login)", body = crate::api::LoginAnswer),
        CallbackErrors,
    ))]
pub async fn callback_post(si: &SignIn, req: Request) -> Result<Response, ApiError> {
    callback_of(si, req).await
}

async fn callback_of(si: &SignIn, req: Request) -> Result<Response, ApiError> {
    let name: String = req.path_param("provider")?;
    let p = si.provider(&name)?.clone();
    let params = callback_params(&req)?;
    if let Some(error) = &params.error {
        return Err(refused(
            "provider_error",
            format!("the provider answered {error:?}"),
        ));
    }
    let state = params
        .state
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or_else(|| ApiError::validation("state", "the sign-in's state is required"))?;
    let code = params
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| ApiError::validation("code", "the provider's code is required"))?;
    // The state is taken whatever follows: a callback is answered once.
    let taken = si
        .store
        .ddb
        .delete_item()
        .table_name(&si.store.table)
        .set_key(Some(state_key(&state)))
        .condition_expression("attribute_exists(pk)")
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    let item = match taken {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e) if shared::ddb::condition_failed(&e) => {
            return Err(state_refused(
                "no sign-in has this state (unknown, used or expired): start again",
            ));
        }
        Err(e) => return Err(ApiError::internal(anyhow::Error::from(e))),
    };
    let now = shared::auth::now_unix();
    let binding = binding_of(&req).unwrap_or_default();
    if get_s(&item, "provider").as_deref() != Some(p.name.as_str())
        || get_n(&item, "expires_at").is_none_or(|e| e <= now)
        || binding.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            digest(&binding).as_bytes(),
            get_s(&item, "binding").unwrap_or_default().as_bytes(),
        ))
    {
        return Err(state_refused(
            "this sign-in was not started here, by this client, recently: start again",
        ));
    }
    if params.iss.as_deref().is_some_and(|iss| iss != p.issuer) {
        return Err(refused(
            "issuer",
            "the callback names another issuer (RFC 9207)",
        ));
    }
    let verifier = get_s(&item, "verifier").unwrap_or_default();
    let nonce = Nonce::new(get_s(&item, "nonce").unwrap_or_default());
    let metadata = si.metadata(&p, false).await?;
    let secret = si.client_secret(&p).await?;
    let client = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(p.client_id.clone()),
        Some(secret.clone()),
    )
    .set_redirect_uri(si.redirect_url(&p)?);
    let exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            ApiError::internal(anyhow::anyhow!("the provider has no token endpoint: {e}"))
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&si.http)
        .await;
    let tokens = exchange.map_err(|e| {
        tracing::info!(provider = %p.name, error = %shared::error_chain(&e), "the code exchange failed");
        refused("exchange", "the provider refused the code (used, expired, or another sign-in's)")
    })?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| refused("no_id_token", "the provider sent no ID token"))?;
    let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
        Ok(c) => c.clone(),
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::NoMatchingKey,
        )) => {
            // A key the cached JWKS lacks: the provider may have rotated. Reload once (per
            // provider, at most every UNKNOWN_KEY_RELOAD_EVERY) and verify again.
            let fresh = si.reload_for_unknown_key(&p).await?;
            let client = CoreClient::from_provider_metadata(
                (*fresh).clone(),
                ClientId::new(p.client_id.clone()),
                Some(secret),
            );
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|e| {
                    refused(
                        "id_token",
                        format!("the ID token failed a check: {}", shared::error_chain(&e)),
                    )
                })?
                .clone()
        }
        Err(e) => {
            return Err(refused(
                "id_token",
                format!("the ID token failed a check: {}", shared::error_chain(&e)),
            ));
        }
    };
    let subject = claims.subject().as_str().to_owned();
    let email = claims.email().map(|e| e.as_str().to_owned());
    let verified = claims.email_verified() == Some(true);
    si.sign_in(&p, &subject, email.as_deref(), verified).await
}

impl SignIn {
    async fn reload_for_unknown_key(
        &self,
        p: &ProviderConfig,
    ) -> Result<Arc<CoreProviderMetadata>, ApiError> {
        let mut last = self.reloaded.lock().await;
        if last
            .get(&p.name)
            .is_some_and(|t| t.elapsed() < UNKNOWN_KEY_RELOAD_EVERY)
        {
            return self.metadata(p, false).await;
        }
        last.insert(p.name.clone(), Instant::now());
        metrics::counter!("OidcKeysReloaded", "provider" => p.name.clone()).increment(1);
        self.metadata(p, true).await
    }

    /// The account of a verified subject: its own (seen before), or a new one.
    async fn sign_in(
        &self,
        p: &ProviderConfig,
        subject: &str,
        email: Option<&str>,
        verified: bool,
    ) -> Result<Response, ApiError> {
        let auth = self.auth()?;
        let store = &self.store;
        let linked =
            shared::ddb::get_consistent(&store.ddb, &store.table, identity_key(&p.name, subject))
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
                .and_then(|i| get_s(&i, "user_id"));
        if let Some(user_id) = linked {
            let user = store.user(&user_id).await?.ok_or_else(|| {
                refused("no_account", "the account linked to this identity is gone")
            })?;
            return auth.signed_in(&user, "oidc_login").await;
        }
        let email = email.ok_or_else(|| {
            ApiError::forbidden("the provider gave no email for this new account")
        })?;
        let email = Email::parse(email)
            .map_err(|e| ApiError::forbidden(format!("the provider's email is not usable: {e}")))?;
        if !verified {
            metrics::counter!("OidcRefused", "reason" => "unverified_email").increment(1);
            return Err(ApiError::forbidden(
                "the provider has not verified this email: a new account needs a verified one",
            ));
        }
        // A new account: no password anyone knows (a random one, hashed as any), the identity
        // claimed in the same transaction as the email.
        let id = shared::ids::new_id("usr")?;
        let unusable = crate::model::random_token(32)?;
        let hash = crate::password::hash(secrecy::SecretString::from(unusable)).await?;
        let now = shared::auth::now_unix();
        let mut identity = identity_key(&p.name, subject);
        identity.insert("user_id".into(), s(&id));
        identity.insert("linked_at".into(), n(now));
        let claim = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&store.table)
            .set_item(Some(identity))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(ApiError::internal)?;
        let display = email
            .as_str()
            .split('@')
            .next()
            .unwrap_or("user")
            .to_owned();
        let created = store
            .create_user(
                &id,
                &email,
                &display,
                &hash,
                now,
                vec![
                    aws_sdk_dynamodb::types::TransactWriteItem::builder()
                        .put(claim)
                        .build(),
                ],
            )
            .await?;
        if !created {
            // The email has an account (or this identity was linked a moment ago): never linked
            // silently.
            metrics::counter!("OidcRefused", "reason" => "email_taken").increment(1);
            tracing::info!(target: "audit", audit_event = "oidc_login.email_taken", provider = %p.name, "security event");
            return Err(AuthError::EmailTaken.into());
        }
        tracing::info!(target: "audit", audit_event = "oidc_login.account_created", user_id = %id, provider = %p.name, "security event");
        metrics::counter!("OidcAccountsCreated", "provider" => p.name.clone()).increment(1);
        let user = store.user(&id).await?.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("the new account is not readable"))
        })?;
        auth.signed_in(&user, "oidc_login").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_read_and_checked() {
        assert_eq!(providers_from(None).unwrap(), vec![]);
        assert_eq!(providers_from(Some("  ")).unwrap(), vec![]);
        let p = providers_from(Some(
            r#"[{"name":"local","issuer":"http://127.0.0.1:4000","client_id":"c"}]"#,
        ))
        .unwrap();
        assert_eq!(p[0].name, "local");
        for bad in [
            "{}",
            r#"[{"name":"Local","issuer":"http://x","client_id":"c"}]"#,
            r#"[{"name":"a","issuer":"not a url","client_id":"c"}]"#,
            r#"[{"name":"a","issuer":"http://x","client_id":""}]"#,
            r#"[{"name":"a","issuer":"http://x","client_id":"c","client_secret":"no"}]"#,
        ] {
            assert!(providers_from(Some(bad)).is_err(), "{bad}");
        }
    }
}
