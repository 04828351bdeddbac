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
use shared::ddb::{get_s, n, s};
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
/// The cookie that binds a started sign-in to the client that started it (`__Host-`: only
/// this host sets it, over TLS, for the whole host — a sibling subdomain cannot plant one).
pub const BINDING_COOKIE: &str = "__Host-oidc_binding";
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

/// Whether the provider URL `url` may be used: https, or (`loopback_http`: the local stack's
/// `OIDC_ALLOW_LOOPBACK_HTTP=true`) http on 127.0.0.1 only. The client secret and the codes go
/// to these URLs.
pub fn allowed_url(url: &str, loopback_http: bool) -> bool {
    url.starts_with("https://") || (loopback_http && url.starts_with("http://127.0.0.1:"))
}

fn loopback_http() -> bool {
    std::env::var("OIDC_ALLOW_LOOPBACK_HTTP").is_ok_and(|v| v == "true")
}

/// Reads `OIDC_PROVIDERS`; none configured is an empty list (the routes answer 404).
pub fn providers_from(text: Option<&str>) -> anyhow::Result<Vec<ProviderConfig>> {
    providers_checked(text, loopback_http())
}

fn providers_checked(text: Option<&str>, loopback: bool) -> anyhow::Result<Vec<ProviderConfig>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let list: Vec<ProviderConfig> = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("OIDC_PROVIDERS is not a JSON list of {{name, issuer, client_id}}: {e}")
    })?;
    let mut seen = std::collections::HashSet::new();
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
        anyhow::ensure!(
            allowed_url(&p.issuer, loopback),
            "OIDC_PROVIDERS: {}: the issuer must be https",
            p.name
        );
        // One issuer, one name (identities are keyed by issuer: a second name would be a second
        // way in to the same accounts), and one provider per name.
        anyhow::ensure!(
            seen.insert(p.issuer.clone()) && seen.insert(format!("name:{}", p.name)),
            "OIDC_PROVIDERS: {} or {} is listed twice",
            p.name,
            p.issuer
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
        let endpoints = [
            m.token_endpoint().map(|u| u.url().as_str().to_owned()),
            Some(m.jwks_uri().url().as_str().to_owned()),
        ];
        let loopback = loopback_http();
        if endpoints
            .iter()
            .flatten()
            .any(|u| !allowed_url(u, loopback))
        {
            tracing::warn!(provider = %p.name, "the provider's token endpoint or keys are not https");
            return Err(ApiError::service_unavailable(
                "the sign-in provider is misconfigured; try again later",
            ));
        }
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

fn link_key(token: &str) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        ("pk".into(), s(format!("OIDCLINK#{}", digest(token)))),
        ("sk".into(), s("LINK")),
    ])
}

/// The item that lists an identity under its account (`USER#<id>` / `IDENTITY#...`).
fn listed_key(
    user_id: &str,
    issuer: &str,
    subject: &str,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        ("pk".into(), s(format!("USER#{user_id}"))),
        (
            "sk".into(),
            s(format!("IDENTITY#{}#{subject}", &digest(issuer)[..32])),
        ),
    ])
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

/// An identity: the subject at its issuer (a `sub` is unique only within one issuer; never keyed
/// by our name for the provider, which an operator may point elsewhere).
fn identity_key(
    issuer: &str,
    subject: &str,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        (
            "pk".into(),
            s(format!("IDENTITY#{}#{subject}", &digest(issuer)[..32])),
        ),
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
        // SameSite=None: a provider's form_post comes back as a cross-site POST; the binding's
        // value, not the cookie's presence, is what an attacker cannot supply.
        "{BINDING_COOKIE}={binding}; Path=/; Max-Age={STATE_TTL_S}; HttpOnly; Secure; SameSite=None"
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
        if ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
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

/// A refusal: the client learns which step failed (`reason`), the log also why (`why`: the
/// verifier's own words, the provider's error), never the client.
fn refused(reason: &'static str, why: impl Into<String>) -> ApiError {
    let why = why.into();
    metrics::counter!("OidcRefused", "reason" => reason).increment(1);
    tracing::info!(target: "audit", audit_event = "oidc_login.refused", reason, why = %why, "security event");
    let detail = match reason {
        "exchange" => {
            "the provider refused the code (used, expired, or another sign-in's): start again"
        }
        "id_token" | "no_id_token" => "the provider's ID token failed a check: start again",
        "provider_error" => "the provider did not sign you in",
        _ => "the sign-in could not be completed: start again",
    };
    ApiError::of(problems::OIDC_REFUSED)
        .detail(detail)
        .extension("reason", reason.into())
}

/// The ID token verifier, also checking `iat`: not in the future (a minute of clock skew),
/// not older than the code's own lifetime allows (10 minutes).
fn with_iat_check<'a>(
    verifier: openidconnect::core::CoreIdTokenVerifier<'a>,
    now: u64,
) -> openidconnect::core::CoreIdTokenVerifier<'a> {
    verifier.set_issue_time_verifier_fn(move |iat| {
        let iat = iat.timestamp();
        let now = now as i64;
        if iat > now + 60 {
            Err(format!("issued in the future ({iat})"))
        } else if iat < now - 600 {
            Err(format!("issued too long ago ({iat})"))
        } else {
            Ok(())
        }
    })
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
    // The state is taken, in one conditional delete, only by the client that started it, for
    // this provider, in time: a callback is answered once, and a state seen elsewhere (a log,
    // a history) cannot be burnt by someone without the binding.
    let binding = binding_of(&req)
        .filter(|b| !b.is_empty() && b.len() <= 128)
        .ok_or_else(|| {
            state_refused("this client did not start a sign-in (no binding): start again")
        })?;
    let now = shared::auth::now_unix();
    let taken = si
        .store
        .ddb
        .delete_item()
        .table_name(&si.store.table)
        .set_key(Some(state_key(&state)))
        .condition_expression(
            "attribute_exists(pk) AND provider = :p AND binding = :b AND expires_at > :now",
        )
        .expression_attribute_values(":p", s(&p.name))
        .expression_attribute_values(":b", s(digest(&binding)))
        .expression_attribute_values(":now", n(now))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    let item = match taken {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e) if shared::ddb::condition_failed(&e) => {
            return Err(state_refused(
                "no sign-in of this client has this state (unknown, used, expired, or another client's): start again",
            ));
        }
        Err(e) => return Err(ApiError::internal(anyhow::Error::from(e))),
    };
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
    let claims = match id_token.claims(&with_iat_check(client.id_token_verifier(), now), &nonce) {
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
                .claims(&with_iat_check(client.id_token_verifier(), now), &nonce)
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
    // openidconnect checks `azp` only as far as the audiences go: a token issued to another
    // party (azp) for an audience that includes us is not ours.
    if claims
        .authorized_party()
        .is_some_and(|azp| azp.as_str() != p.client_id)
    {
        return Err(refused(
            "id_token",
            "azp: the ID token was issued to another client",
        ));
    }
    let subject = claims.subject().as_str().to_owned();
    let email = claims.email().map(|e| e.as_str().to_owned());
    let verified = claims.email_verified() == Some(true);
    let mut signed_in = si.sign_in(&p, &subject, email.as_deref(), verified).await?;
    // The binding is spent: the browser forgets it.
    signed_in.headers_mut().append(
        http::header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-oidc_binding=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None",
        ),
    );
    Ok(signed_in)
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

    /// The account linked to `subject` at `p`'s issuer, if any.
    async fn linked_account(
        &self,
        p: &ProviderConfig,
        subject: &str,
    ) -> Result<Option<crate::store::User>, ApiError> {
        let store = &self.store;
        let linked =
            shared::ddb::get_consistent(&store.ddb, &store.table, identity_key(&p.issuer, subject))
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
                .and_then(|i| get_s(&i, "user_id"));
        let Some(user_id) = linked else {
            return Ok(None);
        };
        let user = store
            .user(&user_id)
            .await?
            .ok_or_else(|| refused("no_account", "the account linked to this identity is gone"))?;
        Ok(Some(user))
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
        if let Some(user) = self.linked_account(p, subject).await? {
            return auth.signed_in(&user, "oidc_login").await;
        }
        let email = email.ok_or_else(|| {
            ApiError::forbidden("the provider gave no email for this new account")
        })?;
        let parsed = Email::parse(email)
            .map_err(|e| ApiError::forbidden(format!("the provider's email is not usable: {e}")))?;
        // The address the provider verified, not another one normalisation made of it.
        if !parsed.as_str().eq_ignore_ascii_case(email) {
            return Err(ApiError::forbidden(
                "the provider's email is not in a form this API keeps as it is",
            ));
        }
        let email = parsed;
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
        let mut identity = identity_key(&p.issuer, subject);
        identity.insert("user_id".into(), s(&id));
        identity.insert("issuer".into(), s(&p.issuer));
        identity.insert("provider".into(), s(&p.name));
        identity.insert("linked_at".into(), n(now));
        let claim = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&store.table)
            .set_item(Some(identity))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(ApiError::internal)?;
        let mut listed = listed_key(&id, &p.issuer, subject);
        listed.insert("provider".into(), s(&p.name));
        listed.insert("issuer".into(), s(&p.issuer));
        listed.insert("subject".into(), s(subject));
        listed.insert("linked_at".into(), n(now));
        let listed = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&store.table)
            .set_item(Some(listed))
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
                    aws_sdk_dynamodb::types::TransactWriteItem::builder()
                        .put(listed)
                        .build(),
                ],
            )
            .await?;
        if !created {
            // Two first sign-ins of one subject at once: the other one made the account.
            if let Some(user) = self.linked_account(p, subject).await? {
                return auth.signed_in(&user, "oidc_login").await;
            }
            // The email has an account: never linked silently. The one who proves that account
            // (signed in to it) may link this identity with the link token (10 minutes, once).
            metrics::counter!("OidcRefused", "reason" => "email_taken").increment(1);
            tracing::info!(target: "audit", audit_event = "oidc_login.email_taken", provider = %p.name, "security event");
            let token = CsrfToken::new_random().secret().clone();
            let mut link = link_key(&token);
            link.insert("issuer".into(), s(&p.issuer));
            link.insert("provider".into(), s(&p.name));
            link.insert("subject".into(), s(subject));
            link.insert("email".into(), s(email.as_str()));
            // Compared as accounts are unique: by the email's key (case folded).
            link.insert("email_key".into(), s(email.key()));
            link.insert("issued_at_ms".into(), n(shared::ratelimit::now_ms()));
            link.insert("expires_at".into(), n(now + STATE_TTL_S));
            store
                .ddb
                .put_item()
                .table_name(&store.table)
                .set_item(Some(link))
                .send()
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
            return Err(ApiError::from(AuthError::EmailTaken)
                .detail("an account has this email: sign in to it (password and second factor), then link this identity with POST /v1/me/identities and the link_token (10 minutes)")
                .extension("link_token", token.into())
                .extension("expires_in", STATE_TTL_S.into()));
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
        let p = providers_checked(
            Some(r#"[{"name":"local","issuer":"http://127.0.0.1:4000","client_id":"c"}]"#),
            true,
        )
        .unwrap();
        assert_eq!(p[0].name, "local");
        assert!(
            providers_checked(
                Some(r#"[{"name":"local","issuer":"http://127.0.0.1:4000","client_id":"c"}]"#),
                false
            )
            .is_err(),
            "http only on loopback, and only when allowed"
        );
        assert!(
            providers_checked(
                Some(r#"[{"name":"a","issuer":"https://x.example","client_id":"c"},{"name":"b","issuer":"https://x.example","client_id":"d"}]"#),
                false
            )
            .is_err(),
            "one issuer under two names"
        );
        for bad in [
            "{}",
            r#"[{"name":"Local","issuer":"http://x","client_id":"c"}]"#,
            r#"[{"name":"a","issuer":"not a url","client_id":"c"}]"#,
            r#"[{"name":"a","issuer":"http://x","client_id":""}]"#,
            r#"[{"name":"a","issuer":"http://x","client_id":"c","client_secret":"no"}]"#,
        ] {
            assert!(providers_checked(Some(bad), true).is_err(), "{bad}");
        }
    }
}

// ------------------------------------------------------------------ linked identities

pub use crate::identities::{LinkedIdentity, identities};

/// At most this many identities unlinked by one request (two writes each, with the session
/// guard and the account's stamp in one transaction of at most 100 actions).
const MAX_UNLINKED: usize = 48;

/// Linking an identity: the link token a sign-in answered with (409 `email-taken`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    #[schema(min_length = 1, max_length = 128)]
    pub link_token: String,
}

shared::error_answers!(
    /// What linking an identity answers besides the identities.
    LinkErrors:
    NOT_FOUND => "No link token of this account: unknown, used, expired, for another account's email, or issued before the account last unlinked an identity",
    UNAUTHORIZED => "Not signed in, or the session was revoked",
    IDENTITY_LINKED => "The identity is linked to an account already",
);

#[utoipa::path(post, path = "/v1/me/identities", tag = "auth", operation_id = "link_identity", security(("bearer" = [])),
    request_body = Link,
    responses(
        (status = 201, description = "Linked: the account's identities", body = [LinkedIdentity]),
        LinkErrors,
    ))]
/// `POST /v1/me/identities`: links the identity of a sign-in that found the caller's email
/// taken to the caller's account. The caller proves the account (a live session, reached with
/// the password and the second factor); the provider proved the identity and the email; the
/// two emails must be the same, so a link token handed to someone else links nothing of theirs.
pub async fn link(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let input: Link = req.json_body()?;
    let user = auth.account(caller).await?;
    let now = shared::auth::now_unix();
    let email_key = Email::parse(&user.email)
        .map(|e| e.key())
        .unwrap_or_else(|_| user.email.to_lowercase());
    let bad = || {
        ApiError::not_found(
            "no link token of this account: unknown, used, expired, or for another account's email",
        )
    };
    // Read, then spent in the link's own transaction: a link that fails (a revoked session, an
    // identity linked meanwhile, a busy store) leaves the token for a retry.
    let item = shared::ddb::get_consistent(
        &auth.store.ddb,
        &auth.store.table,
        link_key(&input.link_token),
    )
    .await
    .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
    .ok_or_else(bad)?;
    let expires_at = shared::ddb::get_n(&item, "expires_at").unwrap_or(0);
    if expires_at <= now || get_s(&item, "email_key").as_deref() != Some(email_key.as_str()) {
        return Err(bad());
    }
    let (issuer, provider, subject) = (
        get_s(&item, "issuer").ok_or_else(bad)?,
        get_s(&item, "provider").ok_or_else(bad)?,
        get_s(&item, "subject").ok_or_else(bad)?,
    );
    // Spent by this account already (a retry whose answer was lost): the same answer while the
    // identity is still linked here; a spent token never links again.
    if let Some(spent_by) = get_s(&item, "spent_by") {
        if spent_by == user.id && linked_to(auth, &issuer, &subject).await? == Some(user.id.clone())
        {
            return json(
                StatusCode::CREATED,
                &identities(&auth.store, &user.id).await?,
            );
        }
        return Err(bad());
    }
    let issued_at_ms = shared::ddb::get_n(&item, "issued_at_ms")
        .unwrap_or_else(|| expires_at.saturating_sub(STATE_TTL_S) * 1000);
    let mut identity = identity_key(&issuer, &subject);
    identity.insert("user_id".into(), s(&user.id));
    identity.insert("issuer".into(), s(&issuer));
    identity.insert("provider".into(), s(&provider));
    identity.insert("linked_at".into(), n(now));
    let mut listed = listed_key(&user.id, &issuer, &subject);
    listed.insert("provider".into(), s(&provider));
    listed.insert("issuer".into(), s(&issuer));
    listed.insert("subject".into(), s(&subject));
    listed.insert("linked_at".into(), n(now));
    let put = |item, condition: Option<&str>| {
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&auth.store.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map(|p| {
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(p)
                    .build()
            })
            .map_err(ApiError::internal)
    };
    let spend = aws_sdk_dynamodb::types::Update::builder()
        .table_name(&auth.store.table)
        .set_key(Some(link_key(&input.link_token)))
        .update_expression("SET spent_by = :user")
        .condition_expression(
            "attribute_exists(pk) AND attribute_not_exists(spent_by) AND expires_at > :now AND email_key = :email",
        )
        .expression_attribute_values(":user", s(&user.id))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":email", s(&email_key))
        .build()
        .map_err(ApiError::internal)?;
    // A token issued before the account last unlinked an identity links nothing: unlinking
    // one that was taken over must not leave the taker a way back. The link counts itself on
    // the account, so an unlink that listed the identities before it fails its own condition
    // (and lists them again) instead of missing this one.
    let counted = aws_sdk_dynamodb::types::Update::builder()
        .table_name(&auth.store.table)
        .key("pk", s(format!("USER#{}", user.id)))
        .key("sk", s("PROFILE"))
        .update_expression("ADD identities_version :one")
        .condition_expression(
            "attribute_exists(pk) AND (attribute_not_exists(identities_changed_at_ms) OR identities_changed_at_ms < :issued)",
        )
        .expression_attribute_values(":issued", n(issued_at_ms))
        .expression_attribute_values(":one", n(1))
        .build()
        .map_err(ApiError::internal)?;
    let items = vec![
        shared::session::guard(&auth.store.table, caller).map_err(ApiError::internal)?,
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(spend)
            .build(),
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(counted)
            .build(),
        put(identity, Some("attribute_not_exists(pk)"))?,
        put(listed, None)?,
    ];
    match shared::ddb::transact(&auth.store.ddb, items).await {
        Ok(()) => {}
        Err(shared::ddb::TxError::Cancelled(c)) if c.failed(3) => {
            return Err(ApiError::of(problems::IDENTITY_LINKED)
                .detail("this identity is linked to an account already (this one or another)"));
        }
        Err(shared::ddb::TxError::Cancelled(c)) if c.failed(2) => {
            return Err(ApiError::not_found(
                "this link token was issued before the account's identities last changed: sign in with the provider again for a new one",
            ));
        }
        Err(shared::ddb::TxError::Cancelled(_)) => return Err(bad()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(target: "audit", audit_event = "oidc.identity_linked", user_id = %user.id, provider = %provider, "security event");
    json(
        StatusCode::CREATED,
        &identities(&auth.store, &user.id).await?,
    )
}

/// The account an identity is linked to now, if any (read consistently).
async fn linked_to(auth: &Auth, issuer: &str, subject: &str) -> Result<Option<String>, ApiError> {
    Ok(shared::ddb::get_consistent(
        &auth.store.ddb,
        &auth.store.table,
        identity_key(issuer, subject),
    )
    .await
    .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
    .and_then(|i| get_s(&i, "user_id")))
}

shared::error_answers!(
    /// What unlinking an identity answers besides nothing.
    UnlinkErrors:
    VALIDATION => "The password is missing",
    UNAUTHORIZED => "Not signed in, or the session was revoked",
    INVALID_CREDENTIALS => "The password is wrong",
    ACCOUNT_LOCKED => "Too many wrong passwords: locked for a while",
    NOT_FOUND => "No identity of that provider is linked",
);

#[utoipa::path(delete, path = "/v1/me/identities/{provider}", tag = "auth", operation_id = "unlink_identity", security(("bearer" = [])),
    params(("provider" = String, Path, description = "The linked provider's name")),
    request_body = crate::api::StepUp,
    responses(
        (status = 204, description = "Unlinked: signing in with that provider no longer reaches the account"),
        UnlinkErrors,
    ))]
/// `DELETE /v1/me/identities/{provider}`: unlinks, with the account's password again (a stolen
/// access token is not enough; an account made by a provider has no password anyone knows,
/// so its only way in cannot be unlinked).
pub async fn unlink(auth: &Auth, req: Request) -> Result<Response, ApiError> {
    let caller = auth.live_caller(&req).await?;
    let provider: String = req.path_param("provider")?;
    let input: crate::api::StepUp = req.json_body()?;
    let user = auth.account(caller).await?;
    let now = shared::auth::now_unix();
    crate::api::step_up(auth, &user, input.password, now).await?;
    // The identities listed under this name when linked, and those of the issuer this name
    // stands for now (a provider renamed in OIDC_PROVIDERS still unlinks by its new name).
    let issuer = providers_from(std::env::var("OIDC_PROVIDERS").ok().as_deref())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name == provider)
        .map(|p| p.issuer);
    let mut unlinked = 0;
    // A link that commits between the listing and the unlink's transaction changes the
    // account's count of links, and the transaction (conditioned on the count it read) fails:
    // list again.
    for attempt in 0.. {
        let profile = shared::ddb::get_consistent(
            &auth.store.ddb,
            &auth.store.table,
            HashMap::from([
                ("pk".to_owned(), s(format!("USER#{}", user.id))),
                ("sk".to_owned(), s("PROFILE")),
            ]),
        )
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e)))?
        .ok_or_else(shared::auth::unauthorized)?;
        let version = shared::ddb::get_n(&profile, "identities_version");
        let items = crate::identities::identity_items(&auth.store, &user.id).await?;
        let found: Vec<_> = items
            .iter()
            .filter(|i| {
                get_s(i, "provider").as_deref() == Some(provider.as_str())
                    || (issuer.is_some() && get_s(i, "issuer") == issuer)
            })
            .collect();
        if found.is_empty() {
            break;
        }
        match unlink_these(auth, caller, &user.id, version, &found).await {
            Ok(()) => unlinked += found.len(),
            Err(shared::ddb::TxError::Cancelled(c)) if c.failed(1) && attempt < 3 => continue,
            Err(shared::ddb::TxError::Cancelled(c)) if c.failed(1) => {
                return Err(ApiError::service_unavailable(
                    "the account's identities kept changing: retry",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if unlinked == 0 {
        return Err(ApiError::not_found(format!(
            "no identity of {provider:?} is linked"
        )));
    }
    // Whoever signed in with the identity (maybe the one it was taken from) keeps no session:
    // every session of the account but the caller's is revoked.
    auth.store
        .revoke_sessions_but(&user.id, Some(&caller.session_id))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(target: "audit", audit_event = "oidc.identity_unlinked", user_id = %user.id, provider = %provider, "security event");
    let mut r = Response::new(lambda_http::Body::Empty);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// Deletes `found` (identities of `user_id`, at most [`MAX_UNLINKED`] per transaction) and
/// stamps the account, if its count of links is still `version`: link tokens issued before
/// the stamp link nothing.
async fn unlink_these(
    auth: &Auth,
    caller: &shared::auth::User,
    user_id: &str,
    version: Option<u64>,
    found: &[&shared::ddb::Item],
) -> Result<(), shared::ddb::TxError> {
    for chunk in found.chunks(MAX_UNLINKED) {
        let mut stamp = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&auth.store.table)
            .key("pk", s(format!("USER#{user_id}")))
            .key("sk", s("PROFILE"))
            .update_expression("SET identities_changed_at_ms = :now")
            .expression_attribute_values(":now", n(shared::ratelimit::now_ms()));
        stamp = match version {
            Some(v) => stamp
                .condition_expression("identities_version = :version")
                .expression_attribute_values(":version", n(v)),
            None => stamp.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(identities_version)",
            ),
        };
        let mut writes = vec![
            shared::session::guard(&auth.store.table, caller)?,
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(stamp.build()?)
                .build(),
        ];
        for item in chunk {
            let (issuer, subject) = (
                get_s(item, "issuer").unwrap_or_default(),
                get_s(item, "subject").unwrap_or_default(),
            );
            for key in [
                identity_key(&issuer, &subject),
                listed_key(user_id, &issuer, &subject),
            ] {
                let delete = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&auth.store.table)
                    .set_key(Some(key))
                    .build()?;
                writes.push(
                    aws_sdk_dynamodb::types::TransactWriteItem::builder()
                        .delete(delete)
                        .build(),
                );
            }
        }
        shared::ddb::transact(&auth.store.ddb, writes).await?;
    }
    Ok(())
}
