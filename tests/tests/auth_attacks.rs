//! Attacks on auth, performed through the local stack (issue 11): each test does what an
//! attacker would and asserts that it fails — and, where it applies, that the owner still
//! gets in. Each test sends from its own loopback addresses.

use base64::Engine;
use e2e::client::current_secret;
use e2e::{Api, PASSWORD, Reply, Stack, admin_credentials, email, s};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::Role;

fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// A demoted admin still holds an access token that says `admin` (up to its lifetime). With it,
/// they try to give themself admin back; the route must go by the roles stored now.
#[tokio::test]
async fn a_demoted_admin_cannot_re_grant_themself_admin_with_their_old_token() {
    let (stack, api) = Stack::with_api([127, 0, 8, 1]);
    let (root_email, root_password) = admin_credentials();
    let root = api.login(&root_email, &root_password).await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.body);
    let root_token = s(&root.body, "access_token");

    let mallory = email();
    let id = s(&api.register(&mallory).await.body, "id");
    let set = |who: String, token: String, roles: serde_json::Value| {
        let api = api.clone();
        async move {
            api.send(
                Method::PUT,
                &format!("/v1/admin/users/{who}/roles"),
                Some(json!({ "roles": roles })),
                Some(&token),
            )
            .await
        }
    };
    let granted = set(id.clone(), root_token.clone(), json!(["admin"])).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    let login = api.login(&mallory, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let (old_access, old_refresh) = (
        s(&login.body, "access_token"),
        s(&login.body, "refresh_token"),
    );

    let demoted = set(id.clone(), root_token.clone(), json!([])).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    assert_eq!(demoted.body["roles"], json!(["attendee"]));

    // The attack: the old token (roles: admin, not yet expired) on the admin route. The role
    // change ended every session of the account, so the token's session is dead.
    let regrant = set(id.clone(), old_access.clone(), json!(["admin"])).await;
    assert_eq!(regrant.status, StatusCode::UNAUTHORIZED, "{}", regrant.body);
    assert_eq!(regrant.headers["content-type"], "application/problem+json");
    let refreshed = api.refresh(&old_refresh).await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refreshed.body
    );
    // A new login carries the roles as they are now.
    let again = api.login(&mallory, PASSWORD).await;
    let new_access = s(&again.body, "access_token");
    let me = api.me(&new_access).await;
    assert_eq!(me.body["roles"], json!(["attendee"]), "{}", me.body);
    // And were the session alive (a revocation that had not landed yet), a token claiming
    // admin would still be refused: the route reads the account's roles, not the token's.
    let minter = stack.token_minter().await;
    let sid = jwt_claims(&new_access)["sid"].as_str().unwrap().to_owned();
    let forged = minter.token_for(&id, &[Role::Attendee, Role::Admin], &sid);
    let regrant = set(id.clone(), forged, json!(["admin"])).await;
    assert_eq!(regrant.status, StatusCode::FORBIDDEN, "{}", regrant.body);
    let me = api.me(&new_access).await;
    assert_eq!(me.body["roles"], json!(["attendee"]), "still no admin");

    // The path id is validated, and named when it is not one.
    let bad = set("ADMINS".into(), root_token.clone(), json!(["admin"])).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["invalid_params"][0]["name"], "id");
}

/// An account with TOTP on: (user id, email, TOTP secret, recovery codes). The activation uses
/// the current step's code, so later logins must wait for the next step.
async fn account_with_totp(api: &Api) -> (String, String, String, Vec<String>) {
    let victim = email();
    let registered = api.register(&victim).await;
    assert_eq!(registered.status, StatusCode::CREATED);
    let access = s(&api.login(&victim, PASSWORD).await.body, "access_token");
    let enroll = api.enroll_totp(&access).await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let secret = s(&enroll.body, "secret");
    // The current code: the server takes the current or the previous step, so a step boundary
    // between here and there does not matter.
    let code = auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let act = api.activate_totp(&access, &code).await;
    assert_eq!(act.status, StatusCode::OK, "{}", act.body);
    let recovery = serde_json::from_value(act.body["recovery_codes"].clone()).unwrap();
    (s(&registered.body, "id"), victim, secret, recovery)
}

/// An attacker who has the password but not the authenticator sends 20 guesses at one MFA
/// challenge at once, each from its own address (the per-address limit is 5 a minute).
#[tokio::test]
async fn mfa_codes_cannot_be_brute_forced_even_in_parallel_and_the_owner_still_gets_in() {
    let (stack, api) = Stack::with_api([127, 0, 8, 2]);
    let (user_id, victim, secret, recovery) = account_with_totp(&api).await;

    let challenge = s(&api.login(&victim, PASSWORD).await.body, "challenge");
    let step = auth::totp::step_of(shared::auth::now_unix());
    let valid: Vec<String> = (step - 1..=step + 3)
        .map(|k| auth::totp::code_at(&secret, k).unwrap())
        .collect();
    let wrong: Vec<String> = (0..100_000u32)
        .map(|i| format!("{:06}", i * 7 + 13))
        .filter(|c| !valid.contains(c))
        .take(20)
        .collect();
    let answers = futures_util::future::join_all(wrong.iter().enumerate().map(|(i, code)| {
        let attacker = Api::new(&stack, [127, 0, 9, 10 + i as u8]);
        let challenge = challenge.clone();
        async move {
            attacker
                .post(
                    "/v1/auth/mfa/verify",
                    json!({"challenge": challenge, "code": code}),
                )
                .await
        }
    }))
    .await;
    for r in &answers {
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status),
            "{}",
            r.body
        );
    }
    // Each attempt is reserved on the challenge before its code is checked: of 20 at once,
    // at most 5 were checked.
    // (Read once all 20 access lines are in: each request's audit line precedes its own.)
    let ids: Vec<String> = answers
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap().to_owned())
        .collect();
    let lines = stack
        .log_lines_until("MfaVerifyFunction", |ls| {
            ids.iter().all(|id| {
                ls.iter()
                    .any(|l| l["request_id"] == id.as_str() && l["message"] == "request completed")
            })
        })
        .await;
    let checked = lines
        .iter()
        .filter(|l| l["audit_event"] == "mfa.failure" && l["user_id"] == user_id.as_str())
        .count();
    assert!((1..=5).contains(&checked), "{checked} codes were checked");
    // The next guess is the right code: the challenge is burnt, so it cannot be the one.
    let now_code =
        auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let burnt = Api::new(&stack, [127, 0, 9, 40])
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": challenge, "code": now_code}),
        )
        .await;
    assert_eq!(burnt.status, StatusCode::UNAUTHORIZED, "{}", burnt.body);

    // Five wrong codes lock the account's second factor: a fresh password login buys no new
    // guesses while the lock holds, not even a right one.
    let fresh = s(&api.login(&victim, PASSWORD).await.body, "challenge");
    let locked = Api::new(&stack, [127, 0, 9, 41])
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": fresh, "code": now_code}),
        )
        .await;
    assert_eq!(checked, 5, "all five attempts were wrong codes");
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    let wait: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&wait),
        "the first lock is a minute: {wait}"
    );

    // The owner, after the lock (and in a later TOTP step than the activation's): in.
    tokio::time::sleep(std::time::Duration::from_secs(wait + 1)).await;
    let challenge = s(&api.login(&victim, PASSWORD).await.body, "challenge");
    let code = auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let owner = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    let session = s(&owner.body, "access_token");

    // Turning MFA off takes the password and a code: a stolen access token is not enough.
    let disable = |body: serde_json::Value| {
        let (api, session) = (api.clone(), session.clone());
        async move {
            api.send(
                Method::DELETE,
                "/v1/me/mfa/totp",
                Some(body),
                Some(&session),
            )
            .await
        }
    };
    let no_password = disable(json!({"code": recovery[0]})).await;
    assert_eq!(no_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_password.body["invalid_params"][0]["name"], "password");
    let wrong_password =
        disable(json!({"code": recovery[0], "password": "not the password at all"})).await;
    assert_eq!(
        wrong_password.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        wrong_password.body
    );
    let off = disable(json!({"code": recovery[1], "password": PASSWORD})).await;
    assert_eq!(off.status, StatusCode::NO_CONTENT, "{}", off.body);
}

/// A thief with the owner's access token (not the password) tries to enrol their own
/// authenticator, which would end the owner's sessions and give the thief the recovery codes.
#[tokio::test]
async fn a_stolen_access_token_cannot_enrol_an_authenticator_or_replace_one() {
    let (stack, api) = Stack::with_api([127, 0, 8, 5]);
    let owner = email();
    assert_eq!(api.register(&owner).await.status, StatusCode::CREATED);
    let stolen = s(&api.login(&owner, PASSWORD).await.body, "access_token");
    let enroll = |body: Option<Value>| {
        let (api, stolen) = (api.clone(), stolen.clone());
        async move {
            api.send(Method::POST, "/v1/me/mfa/totp", body, Some(&stolen))
                .await
        }
    };
    let bare = enroll(None).await;
    assert_eq!(
        bare.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        bare.body
    );
    let no_password = enroll(Some(json!({}))).await;
    assert_eq!(
        no_password.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_password.body
    );
    assert_eq!(no_password.body["invalid_params"][0]["name"], "password");
    let guessed = enroll(Some(json!({"password": "a guess at the password"}))).await;
    assert_eq!(guessed.status, StatusCode::UNAUTHORIZED, "{}", guessed.body);
    assert!(guessed.body.get("secret").is_none());
    // Nothing is pending, so nothing can be activated; the owner's session still works.
    let activate = api.activate_totp(&stolen, "123456").await;
    assert_eq!(activate.status, StatusCode::CONFLICT, "{}", activate.body);
    assert_eq!(api.me(&stolen).await.status, StatusCode::OK);

    // With MFA on, a factor is replaced only by turning it off first (password and code):
    // even with the password, enrolling another is refused.
    let other = Api::new(&stack, [127, 0, 8, 6]);
    let (_, victim, _, recovery) = account_with_totp(&other).await;
    let challenge = s(&other.login(&victim, PASSWORD).await.body, "challenge");
    let session = other
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": challenge, "code": recovery[0]}),
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    let replace = other.enroll_totp(&s(&session.body, "access_token")).await;
    assert_eq!(replace.status, StatusCode::CONFLICT, "{}", replace.body);
}

/// Right after a rotation, tokens signed with the new key reach functions that cached the old
/// key set (the second gateway's functions keep the deployed 300 s cache): they reload the keys
/// for the unknown `kid` instead of refusing valid tokens until their cache expires.
#[tokio::test]
async fn a_token_of_a_freshly_rotated_key_is_accepted_by_warm_functions_at_once() {
    let stack = Stack::get();
    let warm = Api::new(&Stack::second_gateway(), [127, 0, 8, 3]);
    let before = stack.token_minter().await.user(&[Role::Attendee]).await;
    let r = warm
        .send_as(&before, Method::GET, "/v1/me/notifications", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let rotated = Api::new(&stack, [127, 0, 8, 4])
        .post("/_local/rotate-keys", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let after = stack.token_minter().await.user(&[Role::Attendee]).await;
    let (old_token, new_token) = (before.current_token().await, after.current_token().await);
    let kid = |t: &str| {
        let header = t.split('.').next().unwrap();
        serde_json::from_slice::<Value>(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap()["kid"]
            .clone()
    };
    assert_ne!(kid(&old_token), kid(&new_token), "signed with the new key");
    // Sent once, as it is: no client retry may hide a refusal here.
    let fresh = warm
        .send(Method::GET, "/v1/me/notifications", None, Some(&new_token))
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    let old = warm
        .send(Method::GET, "/v1/me/notifications", None, Some(&old_token))
        .await;
    assert_eq!(
        old.status,
        StatusCode::OK,
        "the previous key still verifies"
    );
    // A made-up kid is still refused (after at most one reload).
    let forged = new_token.replacen(
        new_token.split('.').next().unwrap(),
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"alg": "RS256", "typ": "at+jwt", "kid": "made-up"}).to_string()),
        1,
    );
    let refused = warm
        .send(Method::GET, "/v1/me/notifications", None, Some(&forged))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

/// Someone registers `ALICE@…` beside `alice@…`: a look-alike account that support, admins and
/// mail would confuse with the real one. Emails are one account whatever the case.
#[tokio::test]
async fn an_email_that_differs_only_in_case_is_the_same_account() {
    let api = Api::at([127, 0, 8, 7]);
    let local = format!("alice-{}", uuid::Uuid::new_v4().simple());
    let typed = format!("{local}@example.com");
    let shouted = format!("{}@EXAMPLE.com", local.to_uppercase());
    assert_eq!(api.register(&typed).await.status, StatusCode::CREATED);
    let twin = api.register(&shouted).await;
    assert_eq!(twin.status, StatusCode::CONFLICT, "{}", twin.body);
    assert_eq!(twin.body["type"], "/problems/email-taken");
    let login = api.login(&shouted, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let me = api.me(&s(&login.body, "access_token")).await;
    assert_eq!(me.body["email"], typed.as_str(), "shown as it was typed");
}

/// Item 5: a function that only verifies tokens can read the public-key secret and nothing
/// more (template test in template.rs); that secret must hold no private key, and after a
/// rotation it already lists the key the signers now use, so verifiers never need the
/// private document.
#[tokio::test]
async fn the_verifiers_secret_holds_only_public_keys_and_follows_rotation() {
    let (stack, api) = Stack::with_api([127, 0, 8, 5]);
    let rotated = api.post("/_local/rotate-keys", json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);

    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk().await);
    let read = |id: String| {
        let sm = sm.clone();
        async move {
            let text = current_secret(&sm, &id).await;
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let public = read(stack.env("PUBLIC_KEYS_SECRET_ID")).await;
    let private = read(stack.env("SIGNING_KEYS_SECRET_ID")).await;
    let text = public.to_string();
    assert!(
        !text.contains("PRIVATE KEY")
            && !text.contains("private_key_pem")
            && !text.contains("\"d\""),
        "no private material in the verifiers' secret: {text}"
    );
    let kids = |doc: &Value| {
        let mut k: Vec<String> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    assert_eq!(kids(&public), kids(&private), "published before it signs");
    let jwks = api
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(
        kids(&jwks.body),
        kids(&public),
        "JWKS serves the public secret"
    );
    // A token the signers make now verifies at a function that reads only the public keys.
    let token = s(
        &api.login(&admin_credentials().0, &admin_credentials().1)
            .await
            .body,
        "access_token",
    );
    let me = api.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
}

/// Item 9: a refresh retried after a lost answer, or sent by two tabs at once, is not a theft.
/// Within 30 s of its rotation the same token gets the same successor (sequentially and in
/// parallel), the session stays live and the successor rotates on as usual.
#[tokio::test]
async fn a_refresh_retried_or_raced_gets_the_same_successor_and_the_session_survives() {
    let stack = Stack::get();
    let (a, b, c) = (
        Api::new(&stack, [127, 0, 8, 6]),
        Api::new(&stack, [127, 0, 8, 7]),
        Api::new(&stack, [127, 0, 8, 8]),
    );
    let (_, login) = a.sign_up().await;
    let first = s(&login.body, "refresh_token");

    // A retry after a lost answer: the same successor, a fresh access token.
    let once = a.refresh(&first).await;
    let again = a.refresh(&first).await;
    assert_eq!(once.status, StatusCode::OK, "{}", once.body);
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let successor = s(&once.body, "refresh_token");
    assert_eq!(s(&again.body, "refresh_token"), successor);
    assert_eq!(
        a.me(&s(&again.body, "access_token")).await.status,
        StatusCode::OK
    );

    // Three tabs refresh the successor at the same moment: all get the same next token.
    let tabs = futures_util::future::join_all((0..3).map(|_| b.refresh(&successor))).await;
    for t in &tabs {
        assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    }
    let next = s(&tabs[0].body, "refresh_token");
    assert!(tabs.iter().all(|t| s(&t.body, "refresh_token") == next));
    assert_ne!(next, successor);

    // The family is live: the next token rotates, and its access token works.
    let later = c.refresh(&next).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
    assert_eq!(
        c.me(&s(&later.body, "access_token")).await.status,
        StatusCode::OK
    );
}

/// Item 9, the other side: the grace is short. A rotated token presented after it (here 31 s
/// later, with its successor never used) is a reuse and revokes the family.
#[tokio::test]
async fn a_refresh_token_presented_after_its_grace_revokes_the_family() {
    let api = Api::at([127, 0, 8, 9]);
    let (_, login) = api.sign_up().await;
    let first = s(&login.body, "refresh_token");
    let second = api.refresh(&first).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    let late = api.refresh(&first).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "{}", late.body);
    let successor = api.refresh(&s(&second.body, "refresh_token")).await;
    assert_eq!(
        successor.status,
        StatusCode::UNAUTHORIZED,
        "the family is revoked: {}",
        successor.body
    );
}

/// Item 8: an idempotent register keeps a record for 24 h (and sends it down the table's
/// stream). It must hold nothing from which the password could be guessed offline: no request
/// field, and a fingerprint that is not a plain hash of the body. The fingerprint still tells
/// a retry (replayed) from another request under the same key (422).
#[tokio::test]
async fn an_idempotency_record_of_a_register_holds_no_guessable_password_hash() {
    use sha2::{Digest, Sha256};
    let (stack, api) = Stack::with_api([127, 0, 8, 10]);
    let key = uuid::Uuid::new_v4().to_string();
    let email = email();
    let body = json!({"email": email, "password": PASSWORD, "display_name": "E2E"}).to_string();
    let register = |body: String| {
        let api = api.clone();
        let key = key.clone();
        async move {
            api.exec(
                api.request(Method::POST, "/v1/auth/register")
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(body),
            )
            .await
        }
    };
    let first = register(body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = register(body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = body.replace(PASSWORD, "another long passphrase 42");
    assert_eq!(
        register(other).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // The record, found as the function keys it: sha256 of (caller, route, key), each part
    // length-prefixed.
    let digest = |parts: &[&[u8]]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let pk = format!(
        "IDEM#{}",
        digest(&[b"anonymous", b"POST /v1/auth/register", key.as_bytes()])
    );
    let item = stack
        .item(&pk, "IDEM")
        .await
        .unwrap_or_else(|| panic!("no idempotency record {pk}"));
    let text = format!("{item:?}");
    assert!(
        !text.contains(PASSWORD),
        "the password is not stored: {text}"
    );
    let plain = digest(&[b"POST", b"/v1/auth/register", body.as_bytes()]);
    let stored = item["fingerprint"].as_s().unwrap();
    assert_eq!(stored.len(), 64, "an HMAC-SHA256 in hex");
    assert_ne!(
        stored, &plain,
        "the fingerprint is keyed, not a plain hash of the body"
    );
}

/// Item 4: an access token outlives its session only for reading. After logout (as after a
/// refresh reuse, a role change or an MFA change) every state-changing route refuses the
/// token at once, without any partial write; reads go on until the token's 5 minutes end.
#[tokio::test]
async fn a_logged_out_token_can_no_longer_change_anything() {
    use e2e::joining::{create_event, event_body, join, key, with_organizer};
    let (stack, api, minter, organizer) = with_organizer([127, 0, 8, 11]).await;
    let attendee = minter.user(&[Role::Attendee]).await;
    let event = create_event(&api, &organizer, 10).await;
    let other = create_event(&api, &organizer, 10).await;
    assert_eq!(
        join(&api, &attendee, &event, &key()).await.status,
        StatusCode::CREATED
    );

    let (o, a) = (
        organizer.current_token().await,
        attendee.current_token().await,
    );
    // An access token lives at most 5 minutes.
    let claims = jwt_claims(&o);
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 300);
    for token in [&o, &a] {
        let out = api
            .send(Method::POST, "/v1/auth/logout", None, Some(token))
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    }

    // Each request is sent once, as it is: no client renewal may hide the refusal.
    let send = |method: Method, path: String, body: Option<Value>, token: String| {
        let api = api.clone();
        async move {
            let mut r = api
                .request(method, &path)
                .bearer_auth(token)
                .header("idempotency-key", key())
                .header("if-match", "\"v1\"");
            if let Some(b) = body {
                r = r.json(&b);
            }
            api.exec(r).await
        }
    };
    let up_to = format!("{}#{}", "2026-01-01T00:00:00.000000Z", "0".repeat(32));
    let writes = [
        (
            Method::POST,
            "/v1/events".to_owned(),
            Some(event_body("After logout", 5)),
            &o,
        ),
        (
            Method::PATCH,
            format!("/v1/events/{event}"),
            Some(json!({"title": "Renamed"})),
            &o,
        ),
        (Method::DELETE, format!("/v1/events/{event}"), None, &o),
        (Method::POST, format!("/v1/events/{other}/join"), None, &a),
        (Method::DELETE, format!("/v1/events/{event}/join"), None, &a),
        (
            Method::POST,
            "/v1/me/notifications/read".to_owned(),
            Some(json!({"up_to": up_to})),
            &a,
        ),
    ];
    for (method, path, body, token) in writes {
        let r = send(method.clone(), path.clone(), body, token.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.body["type"], "/problems/unauthorized", "{}", r.body);
    }

    // Nothing changed, and reads still answer.
    let read = api
        .send(Method::GET, &format!("/v1/events/{event}"), None, Some(&a))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["status"], "active");
    assert_eq!(read.body["title"], "Joins", "no PATCH landed");
    assert_eq!(read.body["version"], 1, "no PATCH landed");
    assert_eq!(read.body["joined"], 1, "the attendee is still in");
    let listed = api
        .send(Method::GET, "/v1/events?city=Joinville", None, Some(&a))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);

    // A client refused so signs in again and resends the same Idempotency-Key: it gets the
    // join, not the 401 replayed.
    let acct = Api::new(&stack, [127, 0, 8, 12]);
    let (email, login) = acct.sign_up().await;
    let stale = s(&login.body, "access_token");
    let out = acct
        .send(Method::POST, "/v1/auth/logout", None, Some(&stale))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let k = key();
    let join_with = |token: String| {
        let (acct, k, path) = (acct.clone(), k.clone(), format!("/v1/events/{other}/join"));
        async move {
            acct.exec(
                acct.request(Method::POST, &path)
                    .bearer_auth(token)
                    .header("idempotency-key", k),
            )
            .await
        }
    };
    assert_eq!(join_with(stale).await.status, StatusCode::UNAUTHORIZED);
    let fresh = s(&acct.login(&email, PASSWORD).await.body, "access_token");
    let joined = join_with(fresh).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert!(joined.headers.get("idempotent-replayed").is_none());
}

/// A login to `victim` from `api` with the `wrong` password (asserted refused: 401), then one
/// with the right password: the answer to the right one.
async fn wrong_then_right(api: &Api, victim: &str, wrong: &str) -> Reply {
    let r = api.login(victim, wrong).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    api.login(victim, PASSWORD).await
}

/// Item 6: wrong passwords lock the account for the address they come from, not for its owner.
/// An attacker's address is locked after five; the owner, from a clean address, still gets in
/// (before, during and after the lock).
#[tokio::test]
async fn an_attacker_locks_only_their_own_address_out_of_an_account() {
    let stack = Stack::get();
    let attacker = Api::new(&stack, [127, 0, 8, 13]);
    let owner = Api::new(&stack, [127, 0, 8, 14]);
    let victim = email();
    assert_eq!(owner.register(&victim).await.status, StatusCode::CREATED);
    for _ in 0..4 {
        let r = attacker.login(&victim, "not the password at all").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    assert_eq!(owner.login(&victim, PASSWORD).await.status, StatusCode::OK);
    // The attacker's address has spent its five logins of this minute (the per-address rate
    // limit); the fifth failure comes in the next window.
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    let locked = wrong_then_right(&attacker, &victim, "not the password at all").await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert_eq!(locked.body["type"], "/problems/account-locked");
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let again = owner.login(&victim, PASSWORD).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the owner is not locked out: {}",
        again.body
    );
}

/// Item 6, the brake: guesses spread over many addresses (20 failures from four) brake the
/// account — every further address is locked after a single failure — while the owner's
/// correct password from a clean address still gets in.
#[tokio::test]
async fn guesses_from_many_addresses_brake_the_account_but_not_its_owner() {
    let (stack, owner) = Stack::with_api([127, 0, 8, 15]);
    let victim = email();
    assert_eq!(owner.register(&victim).await.status, StatusCode::CREATED);
    let guesses = futures_util::future::join_all((0..4u8).map(|i| {
        let api = Api::new(&stack, [127, 0, 8, 16 + i]);
        let victim = victim.clone();
        async move {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                statuses.push(api.login(&victim, "guess guess guess guess").await.status);
            }
            statuses
        }
    }))
    .await;
    assert!(
        guesses
            .iter()
            .flatten()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{guesses:?}"
    );
    let late = Api::new(&stack, [127, 0, 8, 20]);
    let braked = wrong_then_right(&late, &victim, "yet another guess here").await;
    assert_eq!(
        braked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "one failure locks a new address while the account is braked: {}",
        braked.body
    );
    let mine = owner.login(&victim, PASSWORD).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
}
