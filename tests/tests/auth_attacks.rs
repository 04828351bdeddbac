//! Attacks on auth, performed through the local stack (issue 11): each test does what an
//! attacker would and asserts that it fails — and, where it applies, that the owner still
//! gets in. Each test sends from its own loopback addresses.

use base64::Engine;
use e2e::{Api, PASSWORD, Stack, admin_credentials, email, s};
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
    let stack = Stack::get();
    let api = Api::new(&stack, [127, 0, 8, 1]);
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

/// An attacker who has the password but not the authenticator guesses codes against one MFA
/// challenge, from a new address for every guess (the per-address limit is 5 a minute).
#[tokio::test]
async fn mfa_codes_cannot_be_brute_forced_and_the_owner_still_gets_in() {
    let stack = Stack::get();
    let api = Api::new(&stack, [127, 0, 8, 2]);
    let victim = email();
    assert_eq!(api.register(&victim).await.status, StatusCode::CREATED);
    let access = s(&api.login(&victim, PASSWORD).await.body, "access_token");
    let enroll = api
        .send(Method::POST, "/v1/me/mfa/totp", None, Some(&access))
        .await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let secret = s(&enroll.body, "secret");
    // Activate with the previous step's code, so the current one is still unused for login.
    let step = auth::totp::step_of(shared::auth::now_unix());
    let act = api
        .send(
            Method::POST,
            "/v1/me/mfa/totp/activate",
            Some(json!({"code": auth::totp::code_at(&secret, step - 1).unwrap()})),
            Some(&access),
        )
        .await;
    assert_eq!(act.status, StatusCode::OK, "{}", act.body);
    let recovery: Vec<String> = serde_json::from_value(act.body["recovery_codes"].clone()).unwrap();

    let challenge = s(&api.login(&victim, PASSWORD).await.body, "challenge");
    let valid: Vec<String> = (step - 1..=step + 1)
        .map(|k| auth::totp::code_at(&secret, k).unwrap())
        .collect();
    let wrong: Vec<String> = (0..100_000u32)
        .map(|i| format!("{:06}", i * 7 + 13))
        .filter(|c| !valid.contains(c))
        .take(5)
        .collect();
    let mut answers = Vec::new();
    for (i, code) in wrong.iter().enumerate() {
        let attacker = Api::new(&stack, [127, 0, 9, 10 + i as u8]);
        let r = attacker
            .post(
                "/v1/auth/mfa/verify",
                json!({"challenge": challenge, "code": code}),
            )
            .await;
        answers.push(r.status);
    }
    assert_eq!(
        answers[..4],
        [StatusCode::UNAUTHORIZED; 4],
        "wrong codes are refused"
    );
    assert_eq!(
        answers[4],
        StatusCode::TOO_MANY_REQUESTS,
        "the fifth wrong code locks the account's second factor"
    );
    // The sixth guess is the right code: the challenge is burnt, so it cannot be the one.
    let now_code =
        auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let burnt = Api::new(&stack, [127, 0, 9, 20])
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": challenge, "code": now_code}),
        )
        .await;
    assert_eq!(burnt.status, StatusCode::UNAUTHORIZED, "{}", burnt.body);

    // A fresh password login buys no new guesses while the lock holds, not even a right one.
    let fresh = s(&api.login(&victim, PASSWORD).await.body, "challenge");
    let locked = Api::new(&stack, [127, 0, 9, 21])
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": fresh, "code": now_code}),
        )
        .await;
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

    // The owner, after the lock: in with their authenticator.
    tokio::time::sleep(std::time::Duration::from_secs(wait + 1)).await;
    let code = auth::totp::code_at(&secret, auth::totp::step_of(shared::auth::now_unix())).unwrap();
    let owner = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": fresh, "code": code}),
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
