//! Issue 16: what a request costs. Read back from the local stack's X-Ray (every AWS call of a
//! sampled request is a subsegment):
//! - a public read is ONE DynamoDB request (its GetItem): no rate-limit write, no item left
//!   for the caller's address (anonymous reads are braked per instance and throttled by the
//!   gateway: docs/decisions/0013-public-read-protection.md);
//! - an authenticated read still counts against its caller's exact budget in the table, but
//!   beside the read, not before it: the read's own request starts before the count's ends;
//! - a write counts beside its idempotency claim, and changes nothing before it is admitted;
//!   refused, it changes nothing at all and frees its key.

use e2e::joining::{create_event, event_body, key, with_organizer};
use e2e::xray::{Piece, Trace, new_trace_id};
use reqwest::{Method, StatusCode};
use shared::auth::Role;

fn dynamodb_calls(trace: &Trace) -> Vec<&Piece> {
    trace
        .pieces
        .iter()
        .filter(|p| p.name == "DynamoDB")
        .collect()
}

fn handler_done(trace: &Trace, function: &str, route: &str) -> bool {
    trace
        .find(|p| p.segment && p.name == function)
        .is_some_and(|f| trace.children_of(&f.id).any(|p| p.name == route))
}

/// The trace `root` once `function`'s handler for `route` is in it, and its waterfall.
async fn handled(stack: &e2e::Stack, root: &str, function: &str, route: &str) -> (Trace, String) {
    let trace = stack
        .trace_until(root, |t| handler_done(t, function, route))
        .await;
    let all = trace.waterfall();
    assert!(
        handler_done(&trace, function, route),
        "no {function} handler for {route}:\n{all}"
    );
    (trace, all)
}

/// The trace's DynamoDB call of `operation` (the first, if several).
fn call<'t>(trace: &'t Trace, operation: &str, all: &str) -> &'t Piece {
    trace
        .pieces
        .iter()
        .find(|p| p.name == "DynamoDB" && p.operation() == operation)
        .unwrap_or_else(|| panic!("no DynamoDB {operation}:\n{all}"))
}

#[tokio::test]
async fn a_public_read_is_one_dynamodb_request_and_writes_nothing() {
    let ip = [127, 0, 16, 1];
    let (stack, api, _minter, organizer) = with_organizer(ip).await;
    let event = create_event(&api, &organizer, 5).await;
    // Anonymous, from an address no other test uses.
    let anonymous = e2e::Api::new(&stack, [127, 0, 16, 2]);
    let mut roots = Vec::new();
    for _ in 0..3 {
        let root = new_trace_id();
        let r = anonymous
            .exec(
                anonymous
                    .request(Method::GET, &format!("/v1/events/{event}"))
                    .header("X-Amzn-Trace-Id", format!("Root={root};Sampled=1")),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            !r.headers.contains_key("x-ratelimit-limit"),
            "the per-instance brake does not claim a fleet-wide budget"
        );
        roots.push(root);
    }
    for root in &roots {
        let (trace, all) = handled(&stack, root, "GetEventFunction", "GET /v1/events/:id").await;
        let calls = dynamodb_calls(&trace);
        assert_eq!(
            calls.len(),
            1,
            "one DynamoDB request per public read:\n{all}"
        );
        assert_eq!(calls[0].operation(), "GetItem", "{all}");
    }
    let (dynamodb, table) = stack.table().await;
    for subject in ["ip:127.0.16.2"] {
        let item = dynamodb
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("RATE#api#{subject}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("RATE".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        assert!(
            item.item.is_none(),
            "a public read left a rate-limit window in the table: {:?}",
            item.item
        );
    }
}

#[tokio::test]
async fn an_authenticated_read_counts_its_limit_beside_the_read_not_before_it() {
    let (stack, api) = e2e::Stack::with_api([127, 0, 16, 3]);
    // A real account (signed up and signed in): /v1/me reads its session and its profile.
    let user = api.account(&[]).await;
    let root = new_trace_id();
    let header = format!("Root={root};Sampled=1");
    let r = api
        .call(Some(&user), |r| {
            r.get("/v1/me").header("X-Amzn-Trace-Id", &header)
        })
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.headers["x-ratelimit-limit"], "100",
        "the exact budget is kept"
    );
    let (trace, all) = handled(&stack, &root, "MeFunction", "GET /v1/me").await;
    let calls = dynamodb_calls(&trace);
    let count = call(&trace, "UpdateItem", &all);
    let first_read = calls
        .iter()
        .filter(|p| p.operation() != "UpdateItem")
        .min_by(|a, b| a.start.total_cmp(&b.start))
        .unwrap_or_else(|| panic!("no read:\n{all}"));
    assert!(
        first_read.start < count.end,
        "the read waited for the count (read starts {:.4}, count ends {:.4}):\n{all}",
        first_read.start,
        count.end
    );
}

#[tokio::test]
async fn a_write_counts_its_limit_beside_its_claim_and_changes_nothing_before_it() {
    let (stack, api, _minter, organizer) = with_organizer([127, 0, 16, 4]).await;
    let root = new_trace_id();
    let header = format!("Root={root};Sampled=1");
    let k = key();
    let r = api
        .call(Some(&organizer), |r| {
            r.post("/v1/events")
                .header("Idempotency-Key", &k)
                .header("X-Amzn-Trace-Id", &header)
                .json(&event_body("Counted beside its claim", 5))
        })
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["x-ratelimit-limit"], "100");
    let (trace, all) = handled(&stack, &root, "CreateEventFunction", "POST /v1/events").await;
    let count = call(&trace, "UpdateItem", &all);
    let claim = call(&trace, "PutItem", &all);
    let write = call(&trace, "TransactWriteItems", &all);
    // The handler's way to its claim (the idempotency key's secret on a cold instance, then
    // the claim) runs while the count is out: some call of it starts between the count's
    // start and its end. Counted first, nothing would.
    let beside = trace.pieces.iter().any(|p| {
        !p.segment
            && p.parent.as_deref() == count.parent.as_deref()
            && p.id != count.id
            && p.start >= count.start
            && p.start < count.end
    });
    assert!(
        beside && claim.start >= count.start,
        "the handler waited for the count:\n{all}"
    );
    assert!(
        write.start >= count.end,
        "the event was written before the count admitted it:\n{all}"
    );
}

#[tokio::test]
async fn a_write_over_the_limit_is_refused_and_changes_nothing() {
    let (stack, api, minter, _organizer) = with_organizer([127, 0, 16, 5]).await;
    let user = minter.user(&[Role::Organizer, Role::Attendee]).await;
    let token = user.token().await;
    let limit: usize = stack
        .env("RATE_LIMIT_API_PER_MINUTE")
        .parse()
        .unwrap_or(100);
    // The caller's whole budget of the minute, spent on reads (10 at a time).
    let spend = |_| {
        let (api, token) = (&api, &token);
        async move {
            api.exec(
                api.request(
                    Method::GET,
                    "/v1/events/evt_0000000000000000000000000000/join",
                )
                .bearer_auth(token),
            )
            .await
            .status
        }
    };
    let statuses: Vec<StatusCode> =
        futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(
            futures_util::stream::iter((0..limit).map(spend)),
            10,
        ))
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    let title = format!("Refused {}", uuid::Uuid::new_v4().simple());
    let r = api
        .exec(
            api.request(Method::POST, "/v1/events")
                .bearer_auth(&token)
                .header("Idempotency-Key", key())
                .json(&event_body(&title, 5)),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.body["type"], "/problems/rate-limited", "{}", r.body);
    // Refused again: an instance that has seen the table refuse this caller remembers it
    // until the window resets, and refuses without a request. (Each instance of the function
    // learns it once: a few sends reach one that has.)
    let mut costs = Vec::new();
    for _ in 0..6 {
        let root = new_trace_id();
        let again = api
            .exec(
                api.request(Method::POST, "/v1/events")
                    .bearer_auth(&token)
                    .header("Idempotency-Key", key())
                    .header("X-Amzn-Trace-Id", format!("Root={root};Sampled=1"))
                    .json(&event_body(&title, 5)),
            )
            .await;
        assert_eq!(
            again.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            again.body
        );
        let (trace, all) = handled(&stack, &root, "CreateEventFunction", "POST /v1/events").await;
        costs.push((dynamodb_calls(&trace).len(), all));
    }
    assert!(
        costs.iter().any(|(n, _)| *n == 0),
        "a caller already refused in this window costs no request: {:?}",
        costs.iter().map(|(_, all)| all).collect::<Vec<_>>()
    );
    // Nothing of it in the table.
    let (dynamodb, table) = stack.table().await;
    let found: Vec<_> = dynamodb
        .scan()
        .table_name(&table)
        .filter_expression("title = :t")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::S(title.clone()),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert!(found.is_empty(), "a refused write left {found:?}");
}
