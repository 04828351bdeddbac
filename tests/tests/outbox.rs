//! The event sources of the local stack: an outbox item committed to the table reaches the
//! queue through the stream relay, and the consumer turns it into an inbox item that carries
//! the trace of the write.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{PATIENCE, Stack};

/// Writes an outbox item as a committed change would (the stream relay picks it up).
async fn commit_outbox_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    message: String,
    trace: Option<&str>,
) {
    let mut put = ddb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("OUTBOX#{id}")))
        .item("sk", AttributeValue::S("OUTBOX".into()))
        .item("message", AttributeValue::S(message));
    if let Some(t) = trace {
        put = put.item("trace", AttributeValue::S(t.into()));
    }
    put.send().await.unwrap();
}

#[tokio::test]
async fn a_committed_outbox_item_reaches_the_recipients_inbox_once_with_its_trace() {
    let stack = Stack::get();
    let (ddb, table) = stack.table().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let user = format!("usr_{}", uuid::Uuid::new_v4().simple());
    let trace = "Root=1-6b040000-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    let message = serde_json::json!({
        "id": id, "type": "event.changed", "aggregate_id": "evt_e2e", "occurred_at": "2026-11-23T10:00:00Z",
        "recipients": [user], "summary": "The venue changed", "data": {}
    })
    .to_string();
    commit_outbox_item(&ddb, &table, &id, message, Some(trace)).await;

    let deadline = Instant::now() + PATIENCE;
    let items = loop {
        let out = ddb
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
            .send()
            .await
            .unwrap();
        if out.count() > 0 || Instant::now() > deadline {
            break out.items.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(items.len(), 1, "exactly one notification");
    let item = &items[0];
    assert_eq!(item["message_id"].as_s().unwrap(), &id);
    assert_eq!(
        item["trace_id"].as_s().unwrap(),
        "1-6b040000-0123456789abcdef01234567",
        "the writer's trace continues in the consumer"
    );
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    let stack = Stack::get();
    let (ddb, table) = stack.table().await;
    let user = format!("usr_{}", uuid::Uuid::new_v4().simple());
    let aggregate = format!("evt_kill_{}", uuid::Uuid::new_v4().simple());
    let count = 100;
    for i in 0..count {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let message = serde_json::json!({
            "id": id, "type": "event.changed", "aggregate_id": aggregate,
            "occurred_at": format!("2026-11-23T10:00:{:02}.000000Z", i % 60),
            "recipients": [user], "summary": format!("change {i}"), "data": {}
        })
        .to_string();
        commit_outbox_item(&ddb, &table, &id, message, None).await;
    }
    let inbox = |ddb: aws_sdk_dynamodb::Client, table: String, user: String| async move {
        ddb.query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    };
    // Kill every consumer process as soon as the first notifications land (mid-batch: the
    // consumer writes a batch's items one after another).
    let deadline = Instant::now() + PATIENCE;
    while inbox(ddb.clone(), table.clone(), user.clone())
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the consumer never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = inbox(ddb.clone(), table.clone(), user.clone()).await.len();
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", "target/debug/notifications_consumer"])
        .status()
        .expect("pkill runs");
    assert!(
        killed.success(),
        "a consumer process was running and was killed"
    );
    assert!(
        before_kill < count,
        "killed while {before_kill} of {count} were delivered"
    );
    // The batch that was in flight comes back after the visibility timeout to a new instance.
    let deadline = Instant::now() + PATIENCE;
    let items = loop {
        let items = inbox(ddb.clone(), table.clone(), user.clone()).await;
        if items.len() >= count || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        items.len(),
        count,
        "every message delivered once, none lost"
    );
    let mut ids: Vec<&String> = items
        .iter()
        .map(|i| i["message_id"].as_s().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "no message delivered twice");
}

/// Issue 12, 3: a notification that reaches the inbox after the user marked everything read
/// (its change committed earlier; its delivery was late) is shown unread, and marking again
/// reads it.
#[tokio::test]
async fn a_notification_that_arrives_after_the_read_mark_is_unread() {
    use reqwest::{Method, StatusCode};
    use shared::auth::Role;
    let stack = Stack::get();
    let api = e2e::Api::new(&stack, [127, 0, 9, 30]);
    let user = stack.token_minter().await.user(&[Role::Attendee]).await;
    let mark = format!("2099-01-01T00:00:00.000000Z#{}", "f".repeat(32));
    let read = |up_to: String| {
        let (api, user) = (api.clone(), user.clone());
        async move {
            api.send_as(
                &user,
                Method::POST,
                "/v1/me/notifications/read",
                Some(serde_json::json!({ "up_to": up_to })),
            )
            .await
        }
    };
    assert_eq!(read(mark.clone()).await.status, StatusCode::OK);

    let ddb = stack.dynamodb().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let message = serde_json::json!({
        "id": id, "type": "event.changed", "aggregate_id": "evt_late", "occurred_at": "2026-11-23T10:00:00.000000Z",
        "recipients": [user.id], "summary": "The venue changed", "data": {}
    })
    .to_string();
    commit_outbox_item(&ddb, &stack.env("TABLE_NAME"), &id, message, None).await;
    let list = || {
        let (api, user) = (api.clone(), user.clone());
        async move {
            let r = api
                .send_as(&user, Method::GET, "/v1/me/notifications", None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let deadline = Instant::now() + PATIENCE;
    let items = loop {
        let items = list().await;
        if !items.is_empty() || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["read"], false,
        "it arrived after the mark: {}",
        items[0]
    );
    assert_eq!(read(mark).await.status, StatusCode::OK);
    assert_eq!(list().await[0]["read"], true);
}
