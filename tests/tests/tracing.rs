//! Issue 15: traces that reach X-Ray. Through the local stack (its Lambda service records each
//! invocation's segment and its daemon stand-in forwards the functions' UDP segment documents
//! to moto's X-Ray API, which refuses documents X-Ray would refuse), read back with the real
//! SDK's BatchGetTraces:
//! - one join is ONE trace: the join function (its DynamoDB TransactWriteItems), the outbox
//!   relay (its SQS SendMessage) and the notifications consumer (its DynamoDB write), in causal
//!   order, every piece's parent in the trace; a hot event's join too, through its intake
//!   queue and the writer's admission;
//! - a request its caller did not sample exports nothing, anywhere down the outbox;
//! - a DynamoDB call that fails is a fault carrying its error, and so is the request.

use e2e::joining::{create_event, create_hot_event, key, with_organizer};
use e2e::xray::{Trace, new_trace_id};
use e2e::{Caller, Reply, Stack, faults};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared::auth::Role;

/// The tests of this binary one at a time: one of them turns a fault plan on.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn notified(api: &e2e::Api, user: &Caller, event: &str, kind: &str) -> bool {
    let r = api
        .send_as(user, Method::GET, "/v1/me/notifications?limit=100", None)
        .await;
    r.body["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["event_id"] == event && i["type"] == kind)
    })
}

/// Joins `event` as `user` with the X-Ray header `Root=<root>;Sampled=<0|1>` (the local stack
/// continues a client's header; docs/runbook.md).
async fn join_traced(
    api: &e2e::Api,
    user: &Caller,
    event: &str,
    root: &str,
    sampled: bool,
) -> Reply {
    let k = key();
    let header = format!("Root={root};Sampled={}", u8::from(sampled));
    api.call(Some(user), |r| {
        r.post(&format!("/v1/events/{event}/join"))
            .header("Idempotency-Key", &k)
            .header("X-Amzn-Trace-Id", &header)
    })
    .await
}

fn consumer_wrote(trace: &Trace) -> bool {
    trace
        .find(|p| p.segment && p.name == "NotificationsConsumerFunction")
        .is_some_and(|c| {
            trace.pieces.iter().any(|p| {
                p.name == "DynamoDB"
                    && matches!(
                        p.operation(),
                        "PutItem" | "TransactWriteItems" | "BatchWriteItem" | "UpdateItem"
                    )
                    && trace.is_under(p, &c.id)
            })
        })
}

#[tokio::test]
async fn one_join_is_one_trace_from_the_request_through_the_outbox_to_the_consumer() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (stack, api, minter, organizer) = with_organizer([127, 0, 15, 1]).await;
    let event = create_event(&api, &organizer, 5).await;
    let user = minter.user(&[Role::Attendee]).await;
    let root = new_trace_id();
    let r = join_traced(&api, &user, &event, &root, true).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let trace = stack.trace_until(&root, consumer_wrote).await;
    let all = trace.waterfall();
    assert!(
        consumer_wrote(&trace),
        "the consumer's write never arrived:\n{all}"
    );

    // The join function: Lambda's segment for the invocation, the root of the trace (the
    // client sent no parent); the handler a subsegment of it; the transaction under the handler.
    let lambda = trace
        .find(|p| p.segment && p.name == "JoinEventFunction")
        .unwrap_or_else(|| panic!("no segment of the join function:\n{all}"));
    assert_eq!(lambda.doc["origin"], "AWS::Lambda::Function");
    assert!(lambda.parent.is_none(), "{all}");
    let handler = trace
        .children_of(&lambda.id)
        .find(|p| p.name == "POST /v1/events/:id/join")
        .unwrap_or_else(|| panic!("no handler subsegment:\n{all}"));
    assert!(!handler.segment);
    assert_eq!(
        handler.doc["annotations"]["event_id"],
        event.as_str(),
        "{all}"
    );
    assert_eq!(
        handler.doc["annotations"]["user_id"],
        user.id.as_str(),
        "{all}"
    );
    assert_eq!(handler.doc["http"]["response"]["status"], 201, "{all}");
    let txn = trace
        .find(|p| {
            p.name == "DynamoDB"
                && p.operation() == "TransactWriteItems"
                && trace.is_under(p, &handler.id)
        })
        .unwrap_or_else(|| panic!("no TransactWriteItems under the handler:\n{all}"));
    assert_eq!(txn.doc["namespace"], "aws");
    assert_eq!(
        txn.doc["aws"]["table_name"],
        stack.resource("Table").as_str(),
        "{all}"
    );
    assert!(txn.doc["aws"]["request_id"].is_string(), "{all}");

    // The relay: a segment of the same trace, the handler's child, sending to SQS.
    let relay = trace
        .find(|p| p.segment && p.name == "OutboxRelayFunction")
        .unwrap_or_else(|| panic!("no relay segment:\n{all}"));
    assert!(trace.is_under(relay, &handler.id), "{all}");
    assert_eq!(relay.doc["annotations"]["aggregate_id"], event.as_str());
    let send = trace
        .children_of(&relay.id)
        .find(|p| p.name == "SQS" && p.operation() == "SendMessage")
        .unwrap_or_else(|| panic!("no SQS SendMessage in the relay:\n{all}"));
    assert_eq!(
        send.doc["aws"]["queue_url"],
        stack.resource("OutboxQueue").as_str(),
        "{all}"
    );

    // The consumer: the SendMessage's child (SQS's AWSTraceHeader), writing the inbox.
    let consumer = trace
        .find(|p| p.segment && p.name == "NotificationsConsumerFunction")
        .unwrap();
    assert_eq!(consumer.parent.as_deref(), Some(send.id.as_str()), "{all}");

    // Causal order: each hop starts after the one that caused it.
    assert!(
        lambda.start <= handler.start && handler.start <= txn.start,
        "{all}"
    );
    assert!(
        txn.start < relay.start && relay.start <= send.start,
        "{all}"
    );
    assert!(send.start < consumer.start, "{all}");
    // Searchable as an operator searches: by the event's annotation.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let found = stack
        .xray()
        .await
        .get_trace_summaries()
        .start_time(aws_sdk_xray::primitives::DateTime::from_secs(now - 3600))
        .end_time(aws_sdk_xray::primitives::DateTime::from_secs(now + 60))
        .filter_expression(format!(
            "annotation.event_id = \"{event}\" AND service(\"JoinEventFunction\")"
        ))
        .send()
        .await
        .expect("GetTraceSummaries with a filter expression");
    let ids: Vec<&str> = found
        .trace_summaries()
        .iter()
        .filter_map(|t| t.id())
        .collect();
    assert_eq!(ids, vec![root.as_str()], "the event's traces");

    // The consumer's log lines carry the same trace id (Logs Insights: lines-of-a-trace).
    let lines = stack
        .log_lines_until("NotificationsConsumerFunction", |ls| {
            ls.iter().any(|l| {
                l["trace_id"] == root.as_str() && l["message"] == "notifications delivered"
            })
        })
        .await;
    assert!(
        lines
            .iter()
            .any(|l| l["trace_id"] == root.as_str() && l["message"] == "notifications delivered"),
        "the consumer's lines do not carry the writer's trace id"
    );
    // One trace, nothing detached, nothing refused, and the ids are X-Ray's.
    assert!(
        trace.orphans().is_empty(),
        "orphans {:?}:\n{all}",
        trace.orphans()
    );
    for p in &trace.pieces {
        assert_eq!(p.id.len(), 16, "{all}");
        assert!(p.end >= p.start, "{all}");
        if p.segment {
            assert_eq!(p.doc["trace_id"], root.as_str(), "{all}");
        }
    }
}

#[tokio::test]
async fn a_hot_join_is_one_trace_through_the_intake_queue_and_its_writer() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (stack, api, minter, organizer) = with_organizer([127, 0, 15, 4]).await;
    let event = create_hot_event(&api, &organizer, 5).await;
    let user = minter.user(&[Role::Attendee]).await;
    let root = new_trace_id();
    let r = join_traced(&api, &user, &event, &root, true).await;
    assert!(
        [StatusCode::CREATED, StatusCode::ACCEPTED].contains(&r.status),
        "{}",
        r.body
    );
    let trace = stack.trace_until(&root, consumer_wrote).await;
    let all = trace.waterfall();
    assert!(
        consumer_wrote(&trace),
        "the consumer's write never arrived:\n{all}"
    );
    let handler = trace
        .find(|p| p.name == "POST /v1/events/:id/join")
        .unwrap_or_else(|| panic!("no handler subsegment:\n{all}"));
    let queued = trace
        .children_of(&handler.id)
        .find(|p| p.name == "SQS" && p.operation() == "SendMessage")
        .unwrap_or_else(|| panic!("no SendMessage to the intake queue:\n{all}"));
    assert_eq!(
        queued.doc["aws"]["queue_url"],
        stack.resource("JoinIntakeQueue").as_str(),
        "{all}"
    );
    // The writer's admission: a segment whose parent is that SendMessage, committing the join.
    let writer = trace
        .find(|p| p.segment && p.name == "JoinWriterFunction")
        .unwrap_or_else(|| panic!("no writer segment:\n{all}"));
    assert_eq!(writer.parent.as_deref(), Some(queued.id.as_str()), "{all}");
    assert!(
        trace
            .children_of(&writer.id)
            .any(|p| p.operation() == "TransactWriteItems"),
        "{all}"
    );
    let relay = trace
        .find(|p| p.segment && p.name == "OutboxRelayFunction")
        .unwrap_or_else(|| panic!("no relay segment:\n{all}"));
    assert!(trace.is_under(relay, &writer.id), "{all}");
    assert!(
        handler.start < queued.start && queued.start < writer.start,
        "{all}"
    );
    assert!(writer.start < relay.start, "{all}");
    assert!(trace.orphans().is_empty(), "{all}");
}

#[tokio::test]
async fn a_request_its_caller_did_not_sample_exports_nothing_down_the_outbox() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (stack, api, minter, organizer) = with_organizer([127, 0, 15, 2]).await;
    let event = create_event(&api, &organizer, 5).await;
    let quiet_user = minter.user(&[Role::Attendee]).await;
    let quiet = new_trace_id();
    let r = join_traced(&api, &quiet_user, &event, &quiet, false).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Its notification arrives: the relay and the consumer ran for it.
    let deadline = std::time::Instant::now() + e2e::PATIENCE;
    while !notified(&api, &quiet_user, &event, "join.created").await {
        assert!(std::time::Instant::now() < deadline, "never notified");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Unsampled is still one trace: the consumer's lines carry its id (the relay's message
    // names it in AWSTraceHeader, not the relay invocation's own trace).
    let lines = stack
        .log_lines_until("NotificationsConsumerFunction", |ls| {
            ls.iter().any(|l| l["trace_id"] == quiet.as_str())
        })
        .await;
    assert!(
        lines
            .iter()
            .any(|l| l["trace_id"] == quiet.as_str() && l["message"] == "notifications delivered"),
        "the consumer did not continue the unsampled request's trace"
    );
    // A sampled join after it, through the same functions, reaches X-Ray whole: anything of the
    // unsampled one would have been sent before it.
    let loud_user = minter.user(&[Role::Attendee]).await;
    let loud = new_trace_id();
    let r = join_traced(&api, &loud_user, &event, &loud, true).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sampled = stack.trace_until(&loud, consumer_wrote).await;
    assert!(consumer_wrote(&sampled), "{}", sampled.waterfall());
    // Give the daemon stand-in one more batch interval, then nothing of the quiet trace exists.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let none = stack.trace(&quiet).await;
    assert!(
        none.pieces.is_empty(),
        "an unsampled request exported:\n{}",
        none.waterfall()
    );
}

struct FaultsOff(String);

impl Drop for FaultsOff {
    fn drop(&mut self) {
        faults(&self.0, "{}");
    }
}

#[tokio::test]
async fn a_failing_dynamodb_call_is_a_fault_with_its_error_and_so_is_the_request() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let api = e2e::Api::new(&stack, [127, 0, 15, 3]);
    let root = new_trace_id();
    // Every Query of the functions answers 500 (the SDK's retries included).
    faults(
        &stack.aws_endpoint_url,
        r#"{"seed": 15, "rules": [{"service": "dynamodb", "operation": "Query", "error": 1.0}]}"#,
    );
    let off = FaultsOff(stack.aws_endpoint_url.clone());
    let r = api
        .exec(
            api.request(Method::GET, "/v1/events?city=Tracetown")
                .header("X-Amzn-Trace-Id", format!("Root={root};Sampled=1")),
        )
        .await;
    drop(off);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);

    let has_query = |t: &Trace| t.find(|p| p.operation() == "Query").is_some();
    let trace = stack.trace_until(&root, has_query).await;
    let all = trace.waterfall();
    let query = trace
        .find(|p| p.name == "DynamoDB" && p.operation() == "Query")
        .unwrap_or_else(|| panic!("no Query subsegment:\n{all}"));
    assert!(query.is_fault(), "{}", query.doc);
    assert_eq!(query.doc["http"]["response"]["status"], 500);
    let cause: Value = query.doc["cause"].clone();
    assert_eq!(
        cause["exceptions"][0]["type"], "InternalServerError",
        "{}",
        query.doc
    );
    assert_eq!(query.doc["metadata"]["retries"], 2, "{}", query.doc);
    let handler = trace
        .find(|p| p.name == "GET /v1/events")
        .unwrap_or_else(|| panic!("no handler subsegment:\n{all}"));
    assert!(handler.is_fault(), "a 503 is a fault: {}", handler.doc);
    assert!(trace.is_under(query, &handler.id), "{all}");
    assert!(trace.orphans().is_empty(), "{all}");
}
