//! What `make bench` (infra/bench.sh) replays against every function: the callers, events and
//! keys its API Gateway events name, made through the bench's own local stack as a client
//! would. Not a test: ignored, run by infra/bench.sh with `BENCH_FIXTURES=<file>`, which gets
//! them as JSON. Tokens last two hours (the bench replays one request per function for
//! longer than a login's five minutes).

use e2e::client::claims;
use e2e::joining::{create_event, join, key};
use e2e::{Api, Stack};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::auth::Role;

const LASTING: u64 = 2 * 3600;

#[tokio::test]
#[ignore = "run by make bench (infra/bench.sh)"]
async fn bench_fixtures() {
    let out = std::env::var("BENCH_FIXTURES").expect("BENCH_FIXTURES: where the JSON goes");
    let (stack, api) = Stack::with_api([127, 0, 99, 1]);
    let minter = stack.token_minter().await;
    let minted = |roles: &[Role]| {
        let minter = minter.clone();
        let roles = roles.to_vec();
        async move {
            let caller = minter.user(&roles).await;
            let sid = claims(&caller.current_token().await)["sid"]
                .as_str()
                .unwrap()
                .to_owned();
            let token = minter.token_lasting(&caller.id, &roles, &sid, LASTING);
            (caller, token)
        }
    };
    // A real account (registered, logged in): its lasting token keeps the login's session.
    let account = |api: Api| {
        let minter = minter.clone();
        async move {
            let caller = api.account(&[]).await;
            let sid = claims(&caller.current_token().await)["sid"]
                .as_str()
                .unwrap()
                .to_owned();
            let token = minter.token_lasting(&caller.id, &[Role::Attendee], &sid, LASTING);
            (caller, token)
        }
    };

    let (organizer, organizer_token) = minted(&[Role::Organizer, Role::Attendee]).await;
    let event = create_event(&api, &organizer, 1000).await;
    let to_change = create_event(&api, &organizer, 10).await;
    let to_cancel = create_event(&api, &organizer, 10).await;
    let etag = api
        .call(Some(&organizer), |r| {
            r.get(&format!("/v1/events/{to_change}"))
        })
        .await
        .headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();

    let (attendee, attendee_token) = minted(&[Role::Attendee]).await;
    let joined = join(&api, &attendee, &event, &key()).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let (leaver, leaver_token) = minted(&[Role::Attendee]).await;
    let joined = join(&api, &leaver, &event, &key()).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let (_joiner, joiner_token) = minted(&[Role::Attendee]).await;
    let (_admin, admin_token) = minted(&[Role::Admin]).await;

    let (me, me_token) = account(Api::new(&stack, [127, 0, 99, 2])).await;
    let (_out, logout_token) = account(Api::new(&stack, [127, 0, 99, 3])).await;
    let (login_email, login) = Api::new(&stack, [127, 0, 99, 4]).sign_up().await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);

    let signing = stack.resource("SigningKeysSecret");
    let described = aws_sdk_secretsmanager::Client::new(&stack.sdk().await)
        .describe_secret()
        .secret_id(&signing)
        .send()
        .await
        .expect("DescribeSecret");
    let current_version = described
        .version_ids_to_stages()
        .expect("its versions")
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(v, _)| v.clone())
        .expect("a current version");

    let fixtures: Value = json!({
        "event": event,
        "city": "Joinville",
        "event_to_change": to_change,
        "event_to_change_etag": etag,
        "event_to_cancel": to_cancel,
        "organizer": organizer_token,
        "attendee": attendee_token,
        "leaver": leaver_token,
        "joiner": joiner_token,
        "admin": admin_token,
        "me": me_token,
        "me_id": me.id,
        "logout": logout_token,
        "login_email": login_email,
        "password": e2e::PASSWORD,
        "refresh_token": login.body["refresh_token"],
        "signing_secret": signing,
        "signing_version": current_version,
        "attendee_id": attendee.id,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&fixtures).unwrap()).unwrap();
}
