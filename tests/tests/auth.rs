//! Accounts, sessions, MFA, lockout, rate limits and key rotation through the local gateway.
//! Each test sends from its own loopback address, so per-IP rate limits do not couple tests.

use std::time::Duration;

use base64::Engine;
use e2e::{Api, PASSWORD, Reply, Stack, email, s};
use serde_json::{Value, json};

/// The JOSE header or claims of a JWT.
fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn without_request_specifics(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("request_id");
    v
}

#[tokio::test]
async fn register_login_me_refresh_logout_and_then_refresh_fails() {
    let api = Api::at([127, 0, 1, 1]);
    let email = email();
    let r = api.register(&email).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body.get("access_token").is_none(),
        "register returns no tokens"
    );

    // The same account whatever the domain's case and the surrounding spaces.
    let t = api
        .login(
            &format!("  {}  ", email.replace("example.com", "EXAMPLE.com")),
            PASSWORD,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let (access, refresh) = (s(&t.body, "access_token"), s(&t.body, "refresh_token"));
    assert_eq!(jwt_part(&access, 0)["typ"], "at+jwt");

    let me = api.me(&access).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["roles"], json!(["attendee"]));
    assert_eq!(me.headers["x-ratelimit-limit"], "100");

    let rotated = api.refresh(&refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let (access2, refresh2) = (
        s(&rotated.body, "access_token"),
        s(&rotated.body, "refresh_token"),
    );
    assert_ne!(refresh2, refresh);

    let out = api
        .send(
            reqwest::Method::POST,
            "/v1/auth/logout",
            None,
            Some(&access2),
        )
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        api.refresh(&refresh2).await.status,
        401,
        "the session's refresh token is revoked"
    );
    assert_eq!(
        api.me(&access2).await.status,
        401,
        "auth endpoints refuse a logged-out session at once"
    );
}

#[tokio::test]
async fn totp_enroll_activate_challenge_verify_replay_and_recovery_codes() {
    let (stack, api) = Stack::with_api([127, 0, 1, 2]);
    let email = email();
    let registered = api.register(&email).await;
    assert_eq!(registered.status, 201);
    let user_id = s(&registered.body, "id");
    let t = api.login(&email, PASSWORD).await;
    let access = s(&t.body, "access_token");

    let enroll = api.enroll_totp(&access).await;
    assert_eq!(enroll.status, 200, "{}", enroll.body);
    let secret = s(&enroll.body, "secret");
    assert!(s(&enroll.body, "otpauth_uri").starts_with("otpauth://totp/"));
    assert!(s(&enroll.body, "qr_png").starts_with("data:image/png;base64,"));

    // Activate with the previous step's code, so the current step is still unused for login.
    let now = wait_away_from_step_boundary().await;
    let step = auth::totp::step_of(now);
    let previous = auth::totp::code_at(&secret, step - 1).unwrap();
    let act = api.activate_totp(&access, &previous).await;
    assert_eq!(act.status, 200, "{}", act.body);
    let codes: Vec<String> = serde_json::from_value(act.body["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    // At rest (issue 11, item 10): the table holds the secret sealed (AES-GCM under the MFA
    // key) and the codes keyed-hashed, so a copy of the table gives neither.
    let profile = stack
        .item(&format!("USER#{user_id}"), "PROFILE")
        .await
        .unwrap();
    let sealed = profile["totp_secret"].as_s().unwrap();
    assert!(
        sealed.starts_with("v1.") && !sealed.contains(&secret),
        "{sealed}"
    );
    let stored = profile["recovery_codes"].as_ss().unwrap();
    assert_eq!(stored.len(), 10);
    for code in &codes {
        let plain = auth::store::digest(&code.replace('-', ""));
        assert!(!stored.contains(&plain), "not a plain hash of {code}");
    }
    assert!(stored.iter().all(|h| h.starts_with("v1.")), "{stored:?}");
    assert_eq!(
        api.me(&access).await.status,
        401,
        "turning MFA on revokes every session"
    );

    let challenge = api.login(&email, PASSWORD).await;
    assert_eq!(challenge.status, 200);
    assert_eq!(challenge.body["mfa_required"], true);
    assert!(challenge.body.get("access_token").is_none());
    let current = auth::totp::code_at(&secret, step).unwrap();
    let ok = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": s(&challenge.body, "challenge"), "code": current}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(api.me(&s(&ok.body, "access_token")).await.status, 200);

    let again = api.login(&email, PASSWORD).await;
    let replay = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": s(&again.body, "challenge"), "code": current}),
        )
        .await;
    assert_eq!(replay.status, 401, "a TOTP code is accepted once");

    let recovered = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": s(&again.body, "challenge"), "code": codes[0]}),
        )
        .await;
    assert_eq!(
        recovered.status, 200,
        "a recovery code works: {}",
        recovered.body
    );
    let third = api.login(&email, PASSWORD).await;
    let reused = api
        .post(
            "/v1/auth/mfa/verify",
            json!({"challenge": s(&third.body, "challenge"), "code": codes[0]}),
        )
        .await;
    assert_eq!(reused.status, 401, "a recovery code works once");
}

/// Unix time at least two seconds away from the next TOTP step boundary.
async fn wait_away_from_step_boundary() -> u64 {
    loop {
        let now = shared::auth::now_unix();
        if now % 30 < 27 {
            return now;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn presenting_a_used_refresh_token_revokes_the_whole_family() {
    let (stack, api) = Stack::with_api([127, 0, 1, 3]);
    let (_, t) = api.sign_up().await;
    let first = s(&t.body, "refresh_token");
    let second = api.refresh(&first).await;
    assert_eq!(second.status, 200);
    // The successor is used too, so `first` is past any grace: presenting it is a reuse.
    let third = api.refresh(&s(&second.body, "refresh_token")).await;
    assert_eq!(third.status, 200, "{}", third.body);
    let reuse = api.refresh(&first).await;
    assert_eq!(reuse.status, 401);
    assert_eq!(
        api.refresh(&s(&third.body, "refresh_token")).await.status,
        401,
        "the newest token of the family is revoked too"
    );
    assert_eq!(api.me(&s(&third.body, "access_token")).await.status, 401);
    let audit = stack
        .log_lines_until("RefreshFunction", |ls| {
            ls.iter().any(|l| l["audit_event"] == "refresh.reuse")
        })
        .await;
    assert!(
        audit.iter().any(|l| l["audit_event"] == "refresh.reuse"),
        "reuse is logged as a security event"
    );
}

#[tokio::test]
async fn wrong_passwords_get_one_answer_and_unknown_emails_get_the_same_answers() {
    let stack = Stack::get();
    let email = email();
    let a = Api::new(&stack, [127, 0, 1, 4]);
    assert_eq!(a.register(&email).await.status, 201);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let r = a.login(&email, "wrong password entirely").await;
        assert_eq!(r.status, 401);
        answers.push(without_request_specifics(r.body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    // Where the lock falls (the address, not the account): auth_attacks.rs.

    let c = Api::new(&stack, [127, 0, 1, 6]);
    let other = self::email();
    c.register(&other).await;
    let wrong = c.login(&other, "wrong password entirely").await;
    let unknown = c
        .login(&format!("nobody-{other}"), "wrong password entirely")
        .await;
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(
        without_request_specifics(wrong.body),
        without_request_specifics(unknown.body)
    );
}

#[tokio::test]
async fn two_gateways_sharing_one_table_let_exactly_100_of_120_parallel_requests_through() {
    let stack = Stack::get();
    let second = Stack::second_gateway();
    let api = Api::new(&stack, [127, 0, 1, 7]);
    let (_, login) = api.sign_up().await;
    let access = s(&login.body, "access_token");

    let clients = [
        Api::new(&stack, [127, 0, 1, 7]),
        Api::new(&second, [127, 0, 1, 7]),
    ];
    let requests = (0..120).map(|i| {
        let api = &clients[i % 2];
        let access = access.clone();
        async move { api.me(&access).await }
    });
    let replies = futures_util::future::join_all(requests).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, limited.len()),
        (100, 20),
        "statuses: {:?}",
        replies
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    for r in &limited {
        assert_eq!(r.body["type"], "/problems/rate-limited");
        assert!(r.headers.contains_key("retry-after"));
        assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    }
}

#[tokio::test]
async fn the_sixth_login_attempt_from_one_ip_within_a_minute_is_429() {
    let api = Api::at([127, 0, 1, 8]);
    for i in 0..5 {
        let r = api.login(&email(), "wrong password entirely").await;
        assert_eq!(r.status, 401, "attempt {}", i + 1);
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let sixth = api.login(&email(), "wrong password entirely").await;
    assert_eq!(sixth.status, 429);
    assert_eq!(sixth.body["type"], "/problems/rate-limited");
    assert!(sixth.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn after_a_rotation_old_tokens_verify_new_ones_use_the_new_key_and_jwks_lists_both() {
    let api = Api::at([127, 0, 1, 9]);
    let (email, login) = api.sign_up().await;
    let old = s(&login.body, "access_token");
    let old_kid = jwt_part(&old, 0)["kid"].as_str().unwrap().to_owned();

    let rotated = api.post("/_local/rotate-keys", json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the functions' key cache TTL is 1 s here

    assert_eq!(
        api.me(&old).await.status,
        200,
        "a token of the previous key still verifies"
    );
    let jwks = api
        .send(reqwest::Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.len() >= 2,
        "{kids:?}"
    );
    assert!(
        jwks.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let new = s(&api.login(&email, PASSWORD).await.body, "access_token");
    assert_ne!(
        jwt_part(&new, 0)["kid"],
        old_kid.as_str(),
        "new tokens are signed with the new key"
    );
    assert_eq!(api.me(&new).await.status, 200);
}

#[tokio::test]
async fn forged_tokens_get_401_with_www_authenticate_and_wrong_roles_get_403() {
    let api = Api::at([127, 0, 1, 10]);
    let (_, login) = api.sign_up().await;
    let token = s(&login.body, "access_token");
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut claims = jwt_part(&token, 1);
    claims["roles"] = json!(["admin"]);
    let elevated = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        parts[1]
    );
    for (name, forged) in [
        ("altered payload", elevated.as_str()),
        ("alg none", none.as_str()),
        ("garbage", "not-a-jwt"),
    ] {
        let r = api.me(forged).await;
        assert_eq!(r.status, 401, "{name}");
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{name}"
        );
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    let no_token = api.send(reqwest::Method::GET, "/v1/me", None, None).await;
    assert_eq!(no_token.status, 401);
    let attendee = api
        .send(
            reqwest::Method::PUT,
            "/v1/admin/users/usr_x/roles",
            Some(json!({"roles": ["admin"]})),
            Some(&token),
        )
        .await;
    assert_eq!(attendee.status, 403);
}

#[tokio::test]
async fn an_admin_grants_a_role_that_ends_the_users_sessions_and_arrives_with_the_next_login() {
    let stack = Stack::get();
    let admin_creds = serde_json::from_str::<Value>(
        &std::fs::read_to_string(std::env::var("CITY_EVENTS_STACK").unwrap()).unwrap(),
    )
    .unwrap()["admin"]
        .clone();
    let api = Api::new(&stack, [127, 0, 1, 11]);
    let email = email();
    let user_id = s(&api.register(&email).await.body, "id");
    let user = api.login(&email, PASSWORD).await;

    let admin = api
        .login(&s(&admin_creds, "email"), &s(&admin_creds, "password"))
        .await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let set = api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/admin/users/{user_id}/roles"),
            Some(json!({"roles": ["organizer"]})),
            Some(&s(&admin.body, "access_token")),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["roles"], json!(["attendee", "organizer"]));

    assert_eq!(
        jwt_part(&s(&user.body, "access_token"), 1)["roles"],
        json!(["attendee"])
    );
    // Tokens carry roles, so a role change ends the user's sessions (issue 11): the refresh
    // fails, and the next login carries the new roles.
    let refreshed = api.refresh(&s(&user.body, "refresh_token")).await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.body);
    let again = api.login(&email, PASSWORD).await;
    assert_eq!(
        jwt_part(&s(&again.body, "access_token"), 1)["roles"],
        json!(["attendee", "organizer"])
    );
    let changed =
        |l: &Value| l["audit_event"] == "roles.changed" && l["user_id"] == user_id.as_str();
    let audit = stack
        .log_lines_until("SetRolesFunction", |ls| ls.iter().any(changed))
        .await;
    assert!(audit.iter().any(changed));
}
