//! A change every attendee of a large event hears of: the consumer's fan-out goes on in bounded
//! chunks (continuations on the outbox queue, BatchWriteItem) and each inbox gets exactly one
//! notification. `make test` seeds 2 000 attendees; `make test-fanout` 10 000
//! (`FANOUT_ATTENDEES`).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use e2e::joining::{create_event, with_organizer};
use e2e::{PATIENCE, s};

fn audience() -> usize {
    std::env::var("FANOUT_ATTENDEES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The seats of `users` at `event`, written as the joins' transactions write them.
async fn seat(ddb: &aws_sdk_dynamodb::Client, table: &str, event: &str, users: &[String]) {
    let requests = users.chunks(25).map(|chunk| {
        let writes = chunk
            .iter()
            .map(|u| {
                let put = PutRequest::builder()
                    .item("pk", text(format!("EVENT#{event}")))
                    .item("sk", text(format!("SEAT#{u}")))
                    .item("type", text("seat"))
                    .item("user_id", text(u.as_str()))
                    .item("at", text("2026-12-01T10:00:00.000000Z"))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect::<Vec<_>>();
        shared::ddb::batch_write(ddb, table, writes)
    });
    let mut writes = futures_util::stream::iter(requests).buffer_unordered(8);
    while let Some(w) = writes.next().await {
        w.unwrap();
    }
}

/// The notifications in `user`'s inbox about `event`.
async fn inbox(ddb: &aws_sdk_dynamodb::Client, table: &str, user: &str, event: &str) -> Vec<Value> {
    let out = ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :notif)")
        .expression_attribute_values(":pk", text(format!("USER#{user}")))
        .expression_attribute_values(":notif", text("NOTIF#"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .filter(|i| i.get("aggregate_id").and_then(|a| a.as_s().ok()) == Some(&event.to_owned()))
        .map(|i| {
            serde_json::json!({
                "type": i.get("type").and_then(|t| t.as_s().ok()).cloned().unwrap_or_default(),
                "message_id": i.get("message_id").and_then(|t| t.as_s().ok()).cloned().unwrap_or_default(),
                "data": i.get("data").and_then(|t| t.as_s().ok()).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

#[tokio::test]
async fn cancelling_an_event_with_thousands_of_attendees_notifies_each_exactly_once() {
    let (stack, api, _minter, organizer) = with_organizer([127, 0, 0, 71]).await;
    let (ddb, table) = stack.table().await;
    let n = audience();
    let event = create_event(&api, &organizer, 100_000).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let users: Vec<String> = (0..n)
        .map(|i| format!("usr_fan{}{i:06}", &run[..12]))
        .collect();
    let seeded = Instant::now();
    seat(&ddb, &table, &event, &users).await;
    println!(
        "seeded {n} attendees in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let cancelled = Instant::now();
    let path = format!("/v1/events/{event}");
    let r = api.call(Some(&organizer), |r| r.delete(&path)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s(&r.body, "status"), "cancelled");

    // Wait until every inbox has heard (each user checked until it has), then check each holds
    // exactly one cancellation of this event.
    let deadline = Instant::now() + PATIENCE;
    let mut waiting = users.clone();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} of {n} attendees never heard of the cancellation",
            waiting.len()
        );
        let heard: Vec<bool> = futures_util::stream::iter(waiting.iter())
            .map(|u| {
                let (ddb, table, event) = (&ddb, &table, &event);
                async move { !inbox(ddb, table, u, event).await.is_empty() }
            })
            .buffered(16)
            .collect()
            .await;
        let mut heard = heard.into_iter();
        waiting.retain(|_| !heard.next().unwrap_or(false));
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let elapsed = cancelled.elapsed();
    let items: Vec<Vec<Value>> = futures_util::stream::iter(users.iter())
        .map(|u| {
            let (ddb, table, event) = (&ddb, &table, &event);
            async move { inbox(ddb, table, u, event).await }
        })
        .buffered(16)
        .collect()
        .await;
    let ids: std::collections::HashSet<String> = items
        .iter()
        .flatten()
        .map(|i| i["message_id"].as_str().unwrap().to_owned())
        .collect();
    for (user, got) in users.iter().zip(&items) {
        assert_eq!(got.len(), 1, "{user}: {got:?}");
        assert_eq!(got[0]["type"], "event.cancelled", "{user}");
        let data = got[0]["data"].as_str().unwrap();
        assert!(
            !data.contains("fanout_after"),
            "{user} sees where a chunk starts: {data}"
        );
    }
    assert_eq!(ids.len(), 1, "one cancellation message, every chunk of it");
    // What it cost: the consumer's invocations of this message (one per chunk).
    let message_id = ids.into_iter().next().unwrap_or_default();
    let of_this = |ls: &[Value]| {
        ls.iter()
            .filter(|l| l["outbox_id"] == message_id.as_str())
            .count()
    };
    let expected = n.div_ceil(1000);
    let lines = stack
        .log_lines_until("NotificationsConsumerFunction", |ls| {
            of_this(ls) >= expected
        })
        .await;
    let chunks = of_this(&lines);
    println!(
        "{n} attendees notified in {:.1} s after the cancel: {chunks} chunks, about {} BatchWriteItem requests",
        elapsed.as_secs_f64(),
        n.div_ceil(25)
    );
    assert!(chunks >= expected, "bounded chunks: {chunks}");
}
