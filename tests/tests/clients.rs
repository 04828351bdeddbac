//! The test clients themselves, through the local stack: a long-running client outlives its
//! access token and goes on working, as a real one does — it renews before expiry, and after a
//! 401 (a skewed clock) renews once and sends the same request again, Idempotency-Key and all.

use e2e::client::now_unix;
use e2e::joining::{create_event, get_event, join, key, with_organizer};
use e2e::{Api, Stack};
use reqwest::{Method, StatusCode};
use shared::auth::Role;

#[tokio::test]
async fn a_caller_renews_a_token_that_is_about_to_expire_before_sending() {
    let (stack, api) = Stack::with_api([127, 0, 7, 1]);
    let minter = stack.token_minter().await;
    // The client believes 30 s are left, under the two minutes it keeps in hand (the token
    // itself lives ten minutes, so the check of the old token below cannot race its expiry).
    let caller = minter
        .user_expiring(&[Role::Attendee], 600, now_unix() + 30)
        .await;
    let before = caller.current_token().await;
    let me = api
        .send_as(&caller, Method::GET, "/v1/me/joins", None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let after = caller.current_token().await;
    assert_ne!(after, before, "renewed before sending");
    assert_eq!(
        api.send(Method::GET, "/v1/me/joins", None, Some(&before))
            .await
            .status,
        me.status,
        "the old token still works until it expires: renewal is not revocation"
    );
}

#[tokio::test]
async fn a_caller_refused_with_401_renews_once_and_resends_the_same_join() {
    let (_, api, minter, organizer) = with_organizer([127, 0, 7, 2]).await;
    let event = create_event(&api, &organizer, 5).await;
    // Expired a minute ago (past the verifier's leeway), while the client's clock says it has
    // an hour left: the only way it can learn is the 401.
    let caller = minter
        .user_expiring(&[Role::Attendee], -60, now_unix() + 3600)
        .await;
    let stale = caller.current_token().await;
    let refused = api
        .exec(
            api.request(Method::POST, &format!("/v1/events/{event}/join"))
                .bearer_auth(&stale)
                .header("Idempotency-Key", key()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);

    let k = key();
    let joined = join(&api, &caller, &event, &k).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_ne!(caller.current_token().await, stale, "renewed after the 401");
    let again = join(&api, &caller, &event, &k).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(get_event(&api, &organizer, &event).await["joined"], 1);
}

#[tokio::test]
async fn an_account_renews_through_the_refresh_endpoint_and_the_old_refresh_token_is_spent() {
    let api = Api::at([127, 0, 7, 3]);
    let caller = api.account(&[]).await;
    let first = caller.current_token().await;
    caller.believe_expiry(now_unix()).await;
    let me = api.send_as(&caller, Method::GET, "/v1/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["id"], caller.id.as_str());
    assert_ne!(caller.current_token().await, first, "a new access token");
    // Twice more: each renewal used the refresh token the previous one returned (a reused
    // one would have revoked the session and failed the renewal).
    for _ in 0..2 {
        caller.believe_expiry(now_unix()).await;
        let me = api.send_as(&caller, Method::GET, "/v1/me", None).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    }
}
