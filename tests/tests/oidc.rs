//! Issue 18: sign in with an OpenID Connect provider — through the local stack and a real,
//! OpenID Certified provider (oidc-provider, infra/oidc) — and the attacks on it, each its own
//! test: a missing, unknown, replayed or another client's state, a code of another sign-in (its
//! PKCE verifier does not match), ID tokens from another issuer or for another audience,
//! expired, with another nonce or signed by a key the provider never published, and an email
//! that an account already has (verified or not) never taking that account over.

use e2e::oidc::{self, Provider};
use e2e::{Api, Stack, s};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn account() -> String {
    format!("oidc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn setup(ip: [u8; 4]) -> (Stack, Api, Provider) {
    let (stack, api) = Stack::with_api(ip);
    let provider = Provider::of(&stack);
    (stack, api, provider)
}

async fn me(api: &Api, access: &str) -> serde_json::Value {
    let r = api.me(access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_full_sign_in_with_pkce_creates_an_account_and_the_next_one_finds_it() {
    let (_stack, api, provider) = setup([127, 0, 18, 1]);
    let who = account();
    let r = oidc::sign_in(&api, &provider, &who).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let first = me(&api, &s(&r.body, "access_token")).await;
    assert_eq!(first["email"], format!("{who}@example.test"));
    assert!(r.body["refresh_token"].is_string());
    // The same subject again: the same account, a new session.
    let r = oidc::sign_in(&api, &provider, &who).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again = me(&api, &s(&r.body, "access_token")).await;
    assert_eq!(again["id"], first["id"]);
    // The account has no password anyone knows: a password login fails as any wrong one.
    let login = api
        .login(
            &format!("{who}@example.test"),
            "a guess that is long enough",
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    assert_eq!(
        login.body["type"], "/problems/invalid-credentials",
        "{}",
        login.body
    );
}

#[tokio::test]
async fn a_callback_without_state_or_code_names_the_field() {
    let (_stack, api, provider) = setup([127, 0, 18, 2]);
    let r = api
        .exec(
            api.request(
                Method::POST,
                &format!("/v1/auth/oidc/{}/callback", provider.name),
            )
            .json(&json!({"code": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["invalid_params"][0]["name"], "state", "{}", r.body);
    let r = api
        .exec(
            api.request(
                Method::POST,
                &format!("/v1/auth/oidc/{}/callback", provider.name),
            )
            .json(&json!({"state": "x"})),
        )
        .await;
    assert_eq!(r.body["invalid_params"][0]["name"], "code", "{}", r.body);
    // An unknown provider.
    let r = api
        .exec(api.request(Method::GET, "/v1/auth/oidc/nobody/start"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn a_state_no_sign_in_has_is_refused() {
    let (_stack, api, provider) = setup([127, 0, 18, 3]);
    let started = oidc::start(&api, &provider.name).await;
    let (code, _) = oidc::authorize(&provider, &started.authorization_url, &account()).await;
    let r = oidc::callback(
        &api,
        &provider.name,
        &code,
        "made-up-state",
        Some(&started.binding),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-state");
}

#[tokio::test]
async fn a_callback_replayed_after_success_is_refused() {
    let (_stack, api, provider) = setup([127, 0, 18, 4]);
    let started = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &started.authorization_url, &account()).await;
    let r = oidc::callback(&api, &provider.name, &code, &state, Some(&started.binding)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again = oidc::callback(&api, &provider.name, &code, &state, Some(&started.binding)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.body["type"], "/problems/oidc-state");
}

#[tokio::test]
async fn a_state_replayed_after_a_failed_callback_is_refused() {
    let (_stack, api, provider) = setup([127, 0, 18, 5]);
    let started = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &started.authorization_url, &account()).await;
    // A first try with a wrong code burns the state: the right code after it is refused too.
    let r = oidc::callback(
        &api,
        &provider.name,
        "wrong-code",
        &state,
        Some(&started.binding),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = oidc::callback(&api, &provider.name, &code, &state, Some(&started.binding)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-state");
}

#[tokio::test]
async fn a_callback_from_a_client_that_did_not_start_the_sign_in_is_refused() {
    // Login CSRF: the attacker's own code and state, handed to a victim's client, which has
    // no binding (or its own).
    let (_stack, api, provider) = setup([127, 0, 18, 6]);
    let attacker = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &attacker.authorization_url, &account()).await;
    let r = oidc::callback(&api, &provider.name, &code, &state, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-state");
    // The victim's client holds a binding of its own sign-in: not this one's.
    let victim = oidc::start(&api, &provider.name).await;
    let attacker = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &attacker.authorization_url, &account()).await;
    let r = oidc::callback(&api, &provider.name, &code, &state, Some(&victim.binding)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-state");
}

#[tokio::test]
async fn a_code_of_another_sign_in_fails_its_pkce_check() {
    // Code injection: a code obtained for sign-in B, sent with sign-in A's state: exchanged
    // with A's verifier, which does not match B's challenge.
    let (_stack, api, provider) = setup([127, 0, 18, 7]);
    let a = oidc::start(&api, &provider.name).await;
    let b = oidc::start(&api, &provider.name).await;
    let (code_b, _) = oidc::authorize(&provider, &b.authorization_url, &account()).await;
    let r = oidc::callback(&api, &provider.name, &code_b, &a.state, Some(&a.binding)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-refused");
    // Refused at the token endpoint (the verifier), before any ID token was looked at.
    assert_eq!(r.body["reason"], "exchange", "{}", r.body);
}

/// A sign-in whose ID token the provider's token endpoint alters by `changes`.
async fn with_tampered_id_token(ip: [u8; 4], changes: serde_json::Value) -> (Stack, e2e::Reply) {
    let (stack, api, provider) = setup(ip);
    let started = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &started.authorization_url, &account()).await;
    provider.tamper(&code, changes).await;
    let r = oidc::callback(&api, &provider.name, &code, &state, Some(&started.binding)).await;
    (stack, r)
}

/// Refused as an ID token that failed the check `why`: the client is told only that the ID
/// token failed; the audit line of its request says which check (the verifier's own words).
async fn assert_refused(stack: &Stack, r: &e2e::Reply, why: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/oidc-refused", "{}", r.body);
    assert_eq!(r.body["reason"], "id_token", "{}", r.body);
    assert!(r.body.get("access_token").is_none());
    assert!(
        !r.body.to_string().to_lowercase().contains(why),
        "the client is told which check: {}",
        r.body
    );
    let request = r.body["request_id"].as_str().unwrap().to_owned();
    let lines = stack
        .log_lines_until("OidcCallbackFunction", |ls| {
            ls.iter().any(|l| {
                l["request_id"] == request.as_str() && l["audit_event"] == "oidc_login.refused"
            })
        })
        .await;
    let line = lines
        .iter()
        .find(|l| l["request_id"] == request.as_str() && l["audit_event"] == "oidc_login.refused")
        .unwrap();
    assert!(
        line["why"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains(why),
        "{why}: {line}"
    );
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let (stack, r) =
        with_tampered_id_token([127, 0, 18, 8], json!({"iss": "https://evil.example"})).await;
    assert_refused(&stack, &r, "issuer").await;
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let (stack, r) =
        with_tampered_id_token([127, 0, 18, 9], json!({"aud": "another-client"})).await;
    assert_refused(&stack, &r, "audience").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (stack, r) = with_tampered_id_token([127, 0, 18, 10], json!({"exp_offset": -120})).await;
    assert_refused(&stack, &r, "expired").await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let (stack, r) =
        with_tampered_id_token([127, 0, 18, 11], json!({"nonce": "replayed-nonce"})).await;
    assert_refused(&stack, &r, "nonce").await;
}

#[tokio::test]
async fn an_id_token_signed_with_an_unknown_key_is_refused() {
    let (stack, r) = with_tampered_id_token([127, 0, 18, 12], json!({"unknown_key": true})).await;
    assert_refused(&stack, &r, "key").await;
}

#[tokio::test]
async fn an_id_token_issued_in_the_future_is_refused() {
    let (stack, r) = with_tampered_id_token([127, 0, 18, 14], json!({"iat_offset": 3600})).await;
    assert_refused(&stack, &r, "future").await;
}

#[tokio::test]
async fn an_id_token_issued_to_another_party_is_refused() {
    let (stack, r) =
        with_tampered_id_token([127, 0, 18, 15], json!({"azp": "another-client"})).await;
    assert_refused(&stack, &r, "azp").await;
}

#[tokio::test]
async fn a_new_account_needs_an_email_the_provider_verified() {
    let (_stack, api, provider) = setup([127, 0, 18, 16]);
    let r = oidc::sign_in(&api, &provider, &format!("unverified-{}", account())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn a_browser_callback_carries_its_binding_in_the_cookie() {
    // GET, as the provider's redirect arrives in a browser: the binding is the cookie the
    // start set (the test sends it by hand: the local gateway is http, the cookie is Secure).
    let (_stack, api, provider) = setup([127, 0, 18, 17]);
    let started = oidc::start(&api, &provider.name).await;
    let (code, state) = oidc::authorize(&provider, &started.authorization_url, &account()).await;
    let path = format!(
        "/v1/auth/oidc/{}/callback?code={code}&state={state}&iss={}",
        provider.name,
        url::form_urlencoded::byte_serialize(provider.issuer.as_bytes()).collect::<String>()
    );
    let without = api.exec(api.request(Method::GET, &path)).await;
    assert_eq!(without.status, StatusCode::BAD_REQUEST, "{}", without.body);
    let with = api
        .exec(
            api.request(Method::GET, &path)
                .header("cookie", format!("__Host-oidc_binding={}", started.binding)),
        )
        .await;
    assert_eq!(with.status, StatusCode::OK, "{}", with.body);
    assert!(with.body["access_token"].is_string());
    // The binding is spent: the answer clears the cookie.
    assert!(
        with.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-oidc_binding=;")),
        "{:?}",
        with.headers
    );
}

#[tokio::test]
async fn an_email_an_account_has_never_takes_that_account_over() {
    let (_stack, api, provider) = setup([127, 0, 18, 13]);
    // A password account, and a provider identity with its email: verified or not, the
    // provider's sign-in is refused and the account is untouched.
    for prefix in ["", "unverified-"] {
        let email = format!("{prefix}{}@example.test", account());
        let r = api.register(&email).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = oidc::sign_in(&api, &provider, &email).await;
        let expected = if prefix.is_empty() {
            StatusCode::CONFLICT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status, expected, "{email}: {}", r.body);
        assert!(r.body.get("access_token").is_none());
        // The owner still signs in with the password.
        let login = api.login(&email, e2e::PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    }
}

/// `POST /v1/me/identities` with `link_token`, as the holder of `access`.
async fn link(api: &Api, access: &str, link_token: &str) -> e2e::Reply {
    api.send(
        Method::POST,
        "/v1/me/identities",
        Some(json!({ "link_token": link_token })),
        Some(access),
    )
    .await
}

/// A password account: its email and a password login's access token.
async fn password_account(api: &Api) -> (String, String) {
    let email = format!("{}@example.test", account());
    let r = api.register(&email).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let login = api.login(&email, e2e::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    (email, s(&login.body, "access_token"))
}

#[tokio::test]
async fn an_account_links_a_provider_only_after_proving_itself_and_its_second_factor_still_applies()
{
    let (_stack, api, provider) = setup([127, 0, 18, 18]);
    let (email, access) = password_account(&api).await;
    // The provider's verified email matches: 409, with a link token for whoever proves the
    // account.
    let r = oidc::sign_in(&api, &provider, &email).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let token = s(&r.body, "link_token");
    // Another account cannot redeem it (its email is not the identity's), and the token stays.
    let (_, other) = password_account(&Api::new(&Stack::get(), [127, 0, 18, 19])).await;
    let r = link(&api, &other, &token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // The owner, signed in with the password, links it (once).
    let r = link(&api, &access, &token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[0]["provider"], provider.name.as_str(), "{}", r.body);
    // The same token again (a retry whose answer was lost): the same answer, one identity.
    let again = link(&api, &access, &token).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(
        again.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        again.body
    );
    let profile = me(&api, &access).await;
    assert_eq!(profile["identities"][0]["provider"], provider.name.as_str());
    // Now the provider signs in to that account.
    let r = oidc::sign_in(&api, &provider, &email).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        me(&api, &s(&r.body, "access_token")).await["id"],
        profile["id"]
    );
    // With TOTP on, a provider's sign-in gets the same challenge as a password login (the
    // provider's own factors do not count: docs/decisions/0015-oidc.md).
    let enroll = api.enroll_totp(&access).await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let secret = s(&enroll.body, "secret");
    let code = auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let act = api.activate_totp(&access, &code).await;
    assert_eq!(act.status, StatusCode::OK, "{}", act.body);
    let r = oidc::sign_in(&api, &provider, &email).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{}", r.body);
    assert!(r.body.get("access_token").is_none(), "{}", r.body);
}

#[tokio::test]
async fn unlinking_needs_the_password_and_then_the_provider_reaches_nothing() {
    let (_stack, api, provider) = setup([127, 0, 18, 20]);
    let (email, access) = password_account(&api).await;
    let r = oidc::sign_in(&api, &provider, &email).await;
    let r = link(&api, &access, &s(&r.body, "link_token")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let path = format!("/v1/me/identities/{}", provider.name);
    let unlink = |password: &'static str| {
        let (api, path, access) = (api.clone(), path.clone(), access.clone());
        async move {
            api.send(
                Method::DELETE,
                &path,
                Some(json!({ "password": password })),
                Some(&access),
            )
            .await
        }
    };
    let wrong = unlink("not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert_eq!(
        wrong.body["type"], "/problems/invalid-credentials",
        "{}",
        wrong.body
    );
    let r = unlink(e2e::PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(me(&api, &access).await.get("identities").is_none());
    // The provider's sign-in finds no account of its own again: 409, never the account.
    let r = oidc::sign_in(&api, &provider, &email).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let gone = unlink(e2e::PASSWORD).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

#[tokio::test]
async fn an_account_links_an_identity_whose_email_differs_only_in_case() {
    // Accounts are unique by the email folded to lower case; so is a link token's match.
    let (_stack, api, provider) = setup([127, 0, 18, 21]);
    let email = format!("Mixed-{}@example.test", account());
    let r = api.register(&email).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let login = api.login(&email, e2e::PASSWORD).await;
    let access = s(&login.body, "access_token");
    let r = oidc::sign_in(&api, &provider, &email.to_lowercase()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = link(&api, &access, &s(&r.body, "link_token")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn a_link_token_links_once_keeps_for_a_retry_and_dies_with_an_unlink() {
    let (stack, api, provider) = setup([127, 0, 18, 22]);
    let (email, access) = password_account(&api).await;
    // Two sign-ins before any link: two tokens for one identity (each from its own address:
    // the sign-in routes' per-address budget; the link route allows the account 5 a minute,
    // which this test uses up).
    let mut tokens = Vec::new();
    for ip in [23, 24] {
        let r = oidc::sign_in(&Api::new(&stack, [127, 0, 18, ip]), &provider, &email).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        tokens.push(s(&r.body, "link_token"));
    }
    let r = link(&api, &access, &tokens[0]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Whoever signs in with the identity now reaches the account (a session of their own).
    let r = oidc::sign_in(&Api::new(&stack, [127, 0, 18, 27]), &provider, &email).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let provider_session = s(&r.body, "access_token");
    // The identity is linked: a second token answers its own problem, not a taken email.
    let r = link(&api, &access, &tokens[1]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/identity-linked", "{}", r.body);
    // Unlinked: the tokens issued before it (one unspent by the refused link) link nothing,
    // so whoever took the identity over has no way back with them.
    let r = api
        .send(
            Method::DELETE,
            &format!("/v1/me/identities/{}", provider.name),
            Some(json!({ "password": e2e::PASSWORD })),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The provider's session is revoked; the caller's is not.
    let r = api.me(&provider_session).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    me(&api, &access).await;
    // The spent token does not link again.
    let r = link(&api, &access, &tokens[0]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    for token in &tokens[1..] {
        let r = link(&api, &access, token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        // Not spent by the refused link (it was a transaction's part): refused as too old.
        assert!(s(&r.body, "detail").contains("issued before"), "{}", r.body);
    }
    // A token issued after the unlink links again.
    let r = oidc::sign_in(&Api::new(&stack, [127, 0, 18, 26]), &provider, &email).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = link(&api, &access, &s(&r.body, "link_token")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        me(&api, &access).await["identities"][0]["provider"],
        provider.name.as_str()
    );
}
