//! Events through the local gateway: the ETag flow, who may change what, batch reads, search
//! and cursor pagination. Each test sends from its own loopback addresses and uses its own city.

use std::collections::HashSet;

use e2e::{Api, Reply, Stack, s};
use events::model::{Event, EventData, utc};
use events::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

fn city() -> String {
    format!("testville {}", uuid::Uuid::new_v4().simple())
}

fn at(days: i64, hours: i64) -> String {
    let t = OffsetDateTime::now_utc() + Duration::days(days) + Duration::hours(hours);
    utc(t.replace_nanosecond(0).unwrap())
}

fn new_event(city: &str, title: &str, description: &str, tags: &[&str], start_day: i64) -> Value {
    json!({
        "title": title, "description": description, "city": city, "category": "music",
        "venue": "The Hall", "tags": tags, "starts_at": at(start_day, 0),
        "ends_at": at(start_day, 3), "capacity": 50,
    })
}

async fn create(api: &Api, token: &str, body: Value) -> Reply {
    api.send(Method::POST, "/v1/events", Some(body), Some(token))
        .await
}

async fn created(api: &Api, token: &str, body: Value) -> String {
    let r = create(api, token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s(&r.body, "id")
}

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "id"))
        .collect()
}

/// How the tests of creating and finding events begin: a client from `ip` (an address of the
/// test's own), an organizer's access token signed in from it, and a city of the test's own.
async fn organizer_in_a_new_city(ip: [u8; 4]) -> (Api, String, String) {
    let api = Api::at(ip);
    let (_, token) = api.account_with_roles(&["organizer"]).await;
    (api, token, city())
}

async fn list(api: &Api, query: &str) -> Reply {
    api.send(Method::GET, &format!("/v1/events?{query}"), None, None)
        .await
}

fn q(v: &str) -> String {
    url_encode(v)
}

fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn etag_flow_428_412_200_and_304() {
    let (stack, api) = Stack::with_api([127, 0, 3, 1]);
    let (user_id, token) = api.account_with_roles(&["organizer"]).await;
    let c = city();
    let r = create(
        &api,
        &token,
        new_event(&c, "Jazz night", "Smooth", &["Jazz"], 3),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = s(&r.body, "id");
    let request_id = header(&r, "x-request-id");
    // The function's log reaches its file through the local stack: allow it a moment.
    let mut access: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + e2e::PATIENCE;
    while std::time::Instant::now() < deadline {
        access = stack
            .log_lines("CreateEventFunction")
            .into_iter()
            .filter(|l| {
                l["message"] == "request completed" && l["request_id"] == request_id.as_str()
            })
            .collect();
        if !access.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(access.len(), 1, "one access line per request");
    assert_eq!(
        access[0]["user_id"],
        user_id.as_str(),
        "the access line names the caller"
    );
    assert_eq!(access[0]["status"], 201);
    assert_eq!(header(&r, "location"), format!("/v1/events/{id}"));
    assert_eq!(header(&r, "etag"), "W/\"v1.0.0\"");
    assert_eq!(r.body["tags"], json!(["jazz"]));

    let path = format!("/v1/events/{id}");
    let got = api.send(Method::GET, &path, None, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(header(&got, "etag"), "W/\"v1.0.0\"");
    assert_eq!(
        header(&got, "cache-control"),
        "public, max-age=5, stale-while-revalidate=30"
    );
    let get_if_none_match_v1 = || {
        api.exec(
            api.request(Method::GET, &path)
                .header("if-none-match", "W/\"v1.0.0\""),
        )
    };
    let not_modified = get_if_none_match_v1().await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(header(&not_modified, "etag"), "W/\"v1.0.0\"");

    let patch = |etag: Option<&'static str>| {
        let mut req = api
            .request(Method::PATCH, &path)
            .bearer_auth(&token)
            .json(&json!({"title": "Late jazz night"}));
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        api.exec(req)
    };
    let without = patch(None).await;
    assert_eq!(
        without.status,
        StatusCode::PRECONDITION_REQUIRED,
        "{}",
        without.body
    );
    assert_eq!(header(&without, "content-type"), "application/problem+json");
    let stale = patch(Some("\"v0\"")).await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    let ok = patch(Some("\"v1\"")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(header(&ok, "etag"), "W/\"v2.0.0\"");
    assert_eq!(ok.body["title"], "Late jazz night");
    let again = patch(Some("\"v1\"")).await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "the old ETag is stale now"
    );
    let changed = get_if_none_match_v1().await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.body["version"], 2);

    let unknown = api
        .send(
            Method::GET,
            "/v1/events/evt_0000000000000000000000000000",
            None,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = api
        .send(Method::GET, "/v1/events/not-an-id", None, None)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["invalid_params"][0]["name"], "id");
}

#[tokio::test]
async fn only_organizers_create_and_only_the_owner_or_an_admin_change() {
    let stack = Stack::get();
    let (_, attendee) = Api::new(&stack, [127, 0, 3, 2])
        .account_with_roles(&[])
        .await;
    let owner_api = Api::new(&stack, [127, 0, 3, 3]);
    let (_, owner) = owner_api.account_with_roles(&["organizer"]).await;
    let (_, other) = Api::new(&stack, [127, 0, 3, 4])
        .account_with_roles(&["organizer"])
        .await;
    let (_, admin) = Api::new(&stack, [127, 0, 3, 5])
        .account_with_roles(&["admin"])
        .await;
    let api = owner_api;
    let c = city();

    let refused = create(
        &api,
        &attendee,
        new_event(&c, "Not mine to make", "", &[], 2),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let anonymous = api
        .send(
            Method::POST,
            "/v1/events",
            Some(new_event(&c, "No token", "", &[], 2)),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let id = created(&api, &owner, new_event(&c, "Owner's gig", "", &[], 2)).await;
    let path = format!("/v1/events/{id}");
    let edit = |token: String, etag: &'static str| {
        api.exec(
            api.request(Method::PATCH, &path)
                .bearer_auth(token)
                .header("if-match", etag)
                .json(&json!({"venue": "Elsewhere"})),
        )
    };
    assert_eq!(
        edit(other.clone(), "\"v1\"").await.status,
        StatusCode::FORBIDDEN
    );
    let cancel_by_other = api.send(Method::DELETE, &path, None, Some(&other)).await;
    assert_eq!(cancel_by_other.status, StatusCode::FORBIDDEN);
    let by_admin = edit(admin.clone(), "\"v1\"").await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.body);
    assert_eq!(by_admin.body["venue"], "Elsewhere");

    let cancelled = api.send(Method::DELETE, &path, None, Some(&admin)).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let kept = api.send(Method::GET, &path, None, None).await;
    assert_eq!(kept.body["status"], "cancelled", "kept for history");
    let edit_cancelled = edit(owner.clone(), "\"v3\"").await;
    assert_eq!(
        edit_cancelled.status,
        StatusCode::CONFLICT,
        "{}",
        edit_cancelled.body
    );
    let listed = list(&api, &format!("city={}", q(&c))).await;
    assert!(
        ids(&listed.body).is_empty(),
        "a cancelled event is not upcoming"
    );
    let search = list(&api, &format!("city={}&q=gig", q(&c))).await;
    assert!(ids(&search.body).is_empty(), "nor found by search");
}

#[tokio::test]
async fn batch_answers_in_order_with_misses_and_refuses_101_ids() {
    let (api, token, c) = organizer_in_a_new_city([127, 0, 3, 6]).await;
    let mut known = Vec::new();
    for i in 0..3 {
        known.push(
            created(
                &api,
                &token,
                new_event(&c, &format!("Batch {i}"), "", &[], 2 + i),
            )
            .await,
        );
    }
    let unknown: Vec<String> = (0..5).map(|i| format!("evt_{:028x}", i + 1)).collect();
    let mut asked = vec![
        known[2].clone(),
        unknown[0].clone(),
        known[0].clone(),
        known[2].clone(),
    ];
    asked.extend(unknown.iter().cloned());
    while asked.len() < 100 {
        asked.push(known[1].clone());
    }
    let r = api.post("/v1/events/batch", json!({ "ids": asked })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got: Vec<String> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "id"))
        .collect();
    assert_eq!(
        got,
        vec![known[2].clone(), known[0].clone(), known[1].clone()]
    );
    assert_eq!(r.body["not_found"], json!(unknown));

    let too_many: Vec<String> = (0..101).map(|i| format!("evt_{:028x}", i)).collect();
    let r = api
        .post("/v1/events/batch", json!({ "ids": too_many }))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["invalid_params"][0]["name"], "ids");
    let r = api
        .post("/v1/events/batch", json!({ "ids": ["evt_x"] }))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["invalid_params"][0]["name"], "ids[0]");
}

#[tokio::test]
async fn search_stems_ands_ranks_and_combines_with_filters() {
    let (api, token, c) = organizer_in_a_new_city([127, 0, 3, 7]).await;
    let create_in_city = |title: &str, description: &str, tags: &[&str], start_day: i64| {
        created(
            &api,
            &token,
            new_event(&c, title, description, tags, start_day),
        )
    };
    let run_club = create_in_city("Morning run club", "Easy pace", &["running"], 5).await;
    let expo = create_in_city("Shoe expo", "Shoes for running and walking", &[], 2).await;
    let charity = create_in_city("Charity runs", "Five km", &[], 3).await;
    let jazz = create_in_city("Jazz concerts", "Three bands", &[], 4).await;
    let rock = create_in_city("Rock concert", "Loud", &["festival"], 6).await;
    let lights = create_in_city("Festivals of light", "Lanterns", &[], 7).await;
    let mut food = new_event(&c, "Street food festival", "Run by locals", &[], 8);
    food["category"] = json!("food");
    let food = created(&api, &token, food).await;

    let search = |terms: &'static str, extra: String| {
        let api = &api;
        let c = c.clone();
        async move {
            let r = list(api, &format!("city={}&q={}{extra}", q(&c), q(terms))).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            ids(&r.body)
        }
    };
    // Ranked by the number of fields matched (title and tags: 2), then start time.
    assert_eq!(
        search("running", String::new()).await,
        vec![
            run_club.clone(),
            expo.clone(),
            charity.clone(),
            food.clone()
        ]
    );
    assert_eq!(
        search("runs", String::new()).await,
        search("run", String::new()).await
    );
    assert_eq!(
        search("concerts", String::new()).await,
        vec![jazz.clone(), rock.clone()]
    );
    assert_eq!(
        search("festival", String::new()).await,
        vec![rock.clone(), lights.clone(), food.clone()]
    );
    assert_eq!(
        search("festivals", String::new()).await,
        search("festival", String::new()).await
    );
    assert_eq!(
        search("running club", String::new()).await,
        vec![run_club.clone()],
        "terms are AND-ed"
    );
    assert_eq!(
        search("the running", String::new()).await,
        search("running", String::new()).await,
        "stop words are dropped"
    );
    assert_eq!(
        search("festival", "&category=food".into()).await,
        vec![food.clone()]
    );
    assert_eq!(
        search("festival", format!("&to={}", q(&at(6, 1)))).await,
        vec![rock.clone()]
    );
    assert_eq!(
        search("running", format!("&from={}&limit=1", q(&at(3, 1)))).await,
        vec![run_club.clone()]
    );
    let stop_only = list(&api, &format!("city={}&q=the", q(&c))).await;
    assert_eq!(stop_only.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stop_only.body["invalid_params"][0]["name"], "q");

    // Search pages with the same cursor rules.
    let first = list(&api, &format!("city={}&q=running&limit=3", q(&c))).await;
    assert_eq!(ids(&first.body), vec![run_club, expo, charity]);
    let next = list(
        &api,
        &format!(
            "city={}&q=running&limit=3&cursor={}",
            q(&c),
            q(&s(&first.body, "next_cursor"))
        ),
    )
    .await;
    assert_eq!(ids(&next.body), vec![food]);
    assert!(next.body.get("next_cursor").is_none());
}

fn seeded(city: &str, owner: &str, i: usize) -> Event {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    // Several events share a start time, so the id decides their order.
    let starts = now + Duration::hours(24 + (i / 3) as i64);
    let id = format!(
        "evt_{:012x}{:016x}",
        0x019a_0000_0000_u64 + i as u64,
        rand_u64()
    );
    let data = EventData {
        title: format!("Seeded event {i}"),
        description: String::new(),
        city: city.into(),
        category: "community".into(),
        venue: "Hall".into(),
        tags: vec![],
        starts_at: starts,
        ends_at: starts + Duration::hours(2),
        capacity: 10,
        hot: false,
    };
    Event::new(id, owner.into(), data, now)
}

fn rand_u64() -> u64 {
    u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap())
}

#[tokio::test]
async fn walking_every_page_of_250_while_events_are_added_misses_and_repeats_nothing() {
    let stack = Stack::get();
    let store = Store {
        ddb: stack.dynamodb().await,
        table: stack.env("TABLE_NAME"),
    };
    let c = city();
    let mut before = Vec::new();
    for chunk in (0..250).collect::<Vec<_>>().chunks(10) {
        let events: Vec<Event> = chunk.iter().map(|i| seeded(&c, "usr_seed", *i)).collect();
        let writes = events.iter().map(|e| {
            store.create(
                e,
                Vec::new(),
                shared::ddb::Retry::within("test", std::time::Duration::from_secs(3)),
            )
        });
        for r in futures_util::future::join_all(writes).await {
            assert!(r.is_ok(), "{r:?}");
        }
        before.extend(events.into_iter().map(|e| e.id));
    }

    let inserter = {
        let store = store.clone();
        let c = c.clone();
        tokio::spawn(async move {
            for i in 250..290 {
                store
                    .create(
                        &seeded(&c, "usr_seed", i % 250),
                        Vec::new(),
                        shared::ddb::Retry::within("test", std::time::Duration::from_secs(3)),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let api = Api::new(&stack, [127, 0, 3, 8]);
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut order: Vec<(String, String)> = Vec::new();
    loop {
        let mut query = format!("city={}&limit=7", q(&c));
        if let Some(cur) = &cursor {
            query.push_str(&format!("&cursor={}", q(cur)));
        }
        let page = list(&api, &query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        for e in items {
            seen.push(s(e, "id"));
            order.push((s(e, "starts_at"), s(e, "id")));
        }
        pages += 1;
        match page.body.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the walk ends");
    }
    inserter.await.unwrap();

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event repeated");
    let missing: Vec<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "{} of the 250 missing", missing.len());
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "ordered by start time, then id");
    assert!(pages >= 250 / 7, "{pages} pages");

    // A changed byte, or a cursor of another query, is a 400 naming the cursor.
    let first = list(&api, &format!("city={}&limit=7", q(&c))).await;
    let good = s(&first.body, "next_cursor");
    let mut tampered = good.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = format!("city={}&limit=7&cursor={}", q(&city()), q(&good));
    for query in [
        format!("city={}&limit=7&cursor={}", q(&c), q(&tampered)),
        foreign,
    ] {
        let r = list(&api, &query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.body["invalid_params"][0]["name"], "cursor");
    }
}

/// Issue 12, 0: a valid description with one very long word (over DynamoDB's 2 048-byte key
/// limit once it is a search term; 1 100 two-byte characters count in bytes) is created,
/// found by that word and changed — never a 500, and never a half-written event.
#[tokio::test]
async fn an_event_with_one_very_long_word_is_created_found_and_changed() {
    let (api, token, c) = organizer_in_a_new_city([127, 0, 3, 9]).await;
    let ascii = "x".repeat(2100);
    let wide = "é".repeat(1100);
    let id = created(
        &api,
        &token,
        new_event(&c, "Long words", &format!("a {ascii} word"), &[], 2),
    )
    .await;
    let found = list(&api, &format!("city={}&q={}", q(&c), q(&ascii))).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(ids(&found.body), vec![id.clone()]);

    let path = format!("/v1/events/{id}");
    let patched = api
        .exec(
            api.request(Method::PATCH, &path)
                .bearer_auth(&token)
                .header("if-match", "\"v1\"")
                .json(&json!({"description": format!("now {wide}")})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(header(&patched, "etag"), "W/\"v2.0.0\"");
    let by_new = list(&api, &format!("city={}&q={}", q(&c), q(&wide))).await;
    assert_eq!(ids(&by_new.body), vec![id.clone()]);
    let by_old = list(&api, &format!("city={}&q={}", q(&c), q(&ascii))).await;
    assert!(ids(&by_old.body).is_empty(), "{}", by_old.body);
}

/// Issue 12, 0: the local DynamoDB refuses a transaction DynamoDB would refuse before writing
/// anything: here a put with a partition key over 2 048 bytes beside a valid one. Neither is
/// written (moto used to write the first).
#[tokio::test]
async fn a_transaction_dynamodb_refuses_writes_nothing_locally() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
    let stack = Stack::get();
    let (ddb, table) = stack.table().await;
    let ok_pk = format!("TEST#{}", uuid::Uuid::new_v4().simple());
    let put = |pk: String| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item("pk", V::S(pk))
                    .item("sk", V::S("TEST".into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    for bad in ["k".repeat(2049), "é".repeat(1025)] {
        let r = ddb
            .transact_write_items()
            .transact_items(put(ok_pk.clone()))
            .transact_items(put(bad))
            .send()
            .await;
        let err = r.expect_err("DynamoDB refuses a key over 2 048 bytes");
        let code = err
            .as_service_error()
            .and_then(|e| e.meta().code())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(code, "ValidationException", "{err:?}");
        assert!(
            stack.item(&ok_pk, "TEST").await.is_none(),
            "nothing was written"
        );
    }
    // 101 actions are refused too, before anything is written.
    let many = (0..101)
        .map(|i| put(format!("{ok_pk}-{i}")))
        .collect::<Vec<_>>();
    let r = ddb
        .transact_write_items()
        .set_transact_items(Some(many))
        .send()
        .await;
    assert!(r.is_err());
    assert!(stack.item(&format!("{ok_pk}-0"), "TEST").await.is_none());
}

/// A list page as bytes, with the client sending `accept` and decoding nothing itself.
async fn raw_list(ip: [u8; 4], city: &str, accept: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    client
        .get(format!(
            "{}/v1/events?city={}&limit=20",
            Stack::get().url,
            q(city)
        ))
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn list_pages_are_compressed_as_the_client_accepts_and_a_real_client_decodes_them() {
    let (api, token, city) = organizer_in_a_new_city([127, 0, 3, 60]).await;
    for i in 0..8 {
        created(
            &api,
            &token,
            new_event(
                &city,
                &format!("Concert {i}"),
                "An evening of music in the hall, with a long description to list",
                &["music", "evening"],
                3,
            ),
        )
        .await;
    }
    let plain = raw_list([127, 0, 3, 61], &city, "identity").await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get("content-encoding").is_none());
    let vary = plain.headers()["vary"].to_str().unwrap().to_owned();
    assert!(vary.contains("Accept-Encoding"), "{vary}");
    let plain = plain.bytes().await.unwrap();
    let expected: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(expected["items"].as_array().map(Vec::len), Some(8));
    for encoding in ["br", "gzip"] {
        let r = raw_list([127, 0, 3, 61], &city, encoding).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-encoding"], encoding);
        let bytes = r.bytes().await.unwrap();
        println!(
            "{encoding}: {} bytes for {} ({:.0} % saved)",
            bytes.len(),
            plain.len(),
            100.0 * (1.0 - bytes.len() as f64 / plain.len() as f64)
        );
        assert!(
            bytes.len() * 3 < plain.len(),
            "{} of {}",
            bytes.len(),
            plain.len()
        );
    }
    // The test client (reqwest with gzip and brotli: it asks for both and decodes) reads the
    // same page.
    let r = list(&api, &format!("city={}&limit=20", q(&city))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, expected);

    // One event is not a page: get_event links no brotli encoder (decision 0017), so a client
    // that takes only br gets the event as it is, and one that also takes gzip gets gzip.
    let long = "A long evening of music in the hall. ".repeat(40);
    let id = created(&api, &token, new_event(&city, "Long", &long, &["music"], 3)).await;
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 3, 61]))
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    for (accept, encoding) in [("br", None), ("br, gzip;q=0.5", Some("gzip"))] {
        let r = client
            .get(format!("{}/v1/events/{id}", Stack::get().url))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            encoding,
            "{accept}"
        );
        let bytes = r.bytes().await.unwrap();
        let body: Value = match encoding {
            None => serde_json::from_slice(&bytes).unwrap(),
            Some(_) => {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(&bytes[..]),
                    &mut text,
                )
                .unwrap();
                serde_json::from_str(&text).unwrap()
            }
        };
        assert_eq!(body["description"], long.trim_end(), "{accept}");
    }
}

#[tokio::test]
async fn a_join_changes_the_etag_so_a_cached_copy_is_not_answered_304_and_if_match_still_edits() {
    use e2e::joining::{join, key};
    let (stack, api) = Stack::with_api([127, 0, 3, 62]);
    let (_, token) = api.account_with_roles(&["organizer"]).await;
    let c = city();
    let id = created(&api, &token, new_event(&c, "Counted", "", &[], 3)).await;
    let path = format!("/v1/events/{id}");
    let read = api.send(Method::GET, &path, None, None).await;
    let before = header(&read, "etag");
    assert_eq!(before, "W/\"v1.0.0\"");
    // A list page is cacheable and answers 304 to its own ETag.
    let query = format!("city={}", q(&c));
    let page = list(&api, &query).await;
    let page_tag = header(&page, "etag");
    assert!(page_tag.starts_with("W/\"p"), "{page_tag}");
    let again = api
        .exec(
            api.request(Method::GET, &format!("/v1/events?{query}"))
                .header("if-none-match", &page_tag),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    // The 304 varies as its 200 does (a cache refreshing from it keeps keying on both).
    assert_eq!(header(&again, "vary"), "Origin, Accept-Encoding");
    // A join: the seat counts move, so do both ETags.
    let attendee = stack
        .token_minter()
        .await
        .user(&[shared::auth::Role::Attendee])
        .await;
    let joined = join(&api, &attendee, &id, &key()).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let fresh = api
        .exec(
            api.request(Method::GET, &path)
                .header("if-none-match", &before),
        )
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::OK,
        "a stale copy's ETag must not answer 304"
    );
    assert_eq!(fresh.body["joined"], 1, "{}", fresh.body);
    assert_eq!(header(&fresh, "etag"), "W/\"v1.1.0\"");
    let page = api
        .exec(
            api.request(Method::GET, &format!("/v1/events?{query}"))
                .header("if-none-match", &page_tag),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["items"][0]["joined"], 1, "{}", page.body);
    // The ETag read before the join still edits: If-Match compares the version.
    let edit = api
        .exec(
            api.request(Method::PATCH, &path)
                .bearer_auth(&token)
                .header("if-match", &before)
                .json(&json!({"venue": "The Other Hall"})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    assert_eq!(header(&edit, "etag"), "W/\"v2.1.0\"");
}
