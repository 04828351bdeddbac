//! AWS X-Ray: the spans of every function as segment documents to the X-Ray daemon, and one
//! subsegment per AWS SDK call (issue 15; docs/decisions/0003-telemetry.md).
//!
//! - **Export.** `opentelemetry-aws`'s [`XrayExporter`] translates each finished span into an
//!   X-Ray (sub)segment document and its daemon client sends it over UDP to
//!   `AWS_XRAY_DAEMON_ADDRESS` (Lambda's daemon when active tracing is on; the local stack's
//!   stand-in locally). The span processor is the simple one: a span is sent when it ends, so
//!   everything is out before the handler's response goes back and Lambda may freeze us.
//! - **Shape.** A function's own spans are subsegments of the segment Lambda records for the
//!   invocation (its id is the `Parent` of Lambda's trace header). The relay's per-record span
//!   and the consumer's per-message span are segments of the writer's trace (kind `server`), so
//!   the service map shows API → function → DynamoDB → relay → SQS → consumer as one trace.
//! - **Sampling.** The sampler follows the parent: an invocation Lambda did not sample, or a
//!   message whose trace header says `Sampled=0`, exports nothing, and builds nothing here.
//! - **SDK calls.** [`SdkCallSpans`], an interceptor on each SDK client, records one span per
//!   operation (service, operation, table or queue, region, request id, HTTP status, retries,
//!   consumed capacity when the request asked for it) and marks failures: a 5xx or no answer is
//!   a fault, a 4xx an error, throttling a throttle, each with the error's code and message.

use std::net::SocketAddr;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_aws::xray_exporter::SegmentTranslator;
use opentelemetry_aws::xray_exporter::XrayExporter;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde::Deserialize;

/// Span attributes indexed as X-Ray annotations (searchable: `annotation.user_id = "..."`).
/// Everything else stays out of X-Ray unless named in [`METADATA`]: span fields can hold what
/// the logs redact, so nothing is exported by default.
pub const ANNOTATIONS: [&str; 6] = [
    "route",
    "user_id",
    "event_id",
    "aggregate_id",
    "message_type",
    "request_id",
];
/// Span attributes kept as X-Ray metadata (shown, not searchable).
pub const METADATA: [&str; 5] = [
    "lambda_request_id",
    "outbox_id",
    "seq",
    "message_id",
    "dependency",
];

/// The exporter every function uses when the daemon's address is set.
pub(crate) fn exporter(
    daemon: SocketAddr,
    log_group: Option<&str>,
) -> std::io::Result<NamedSpanExporter> {
    let mut translator = SegmentTranslator::new()
        .with_indexed_attrs(ANNOTATIONS.iter().map(|s| (*s).to_owned()))
        .with_metadata_attrs(METADATA.iter().map(|s| (*s).to_owned()));
    if let Some(group) = log_group {
        translator = translator.with_log_group_name(group.to_owned());
    }
    Ok(NamedSpanExporter(
        XrayExporter::new(XrayDaemonClient::new(daemon)?).with_translator(translator),
    ))
}

/// The X-Ray exporter behind a step that makes our spans valid X-Ray documents: a name is
/// only letters, digits, spaces and `_ . : / % & # = + - @` (a route's `{id}` becomes `:id`),
/// and the request span's `method`/`status` fields become the HTTP attributes X-Ray reads
/// (`http.request.method`, `http.response.status_code`: a 5xx marks a fault, a 4xx an error).
#[derive(Debug)]
pub(crate) struct NamedSpanExporter(XrayExporter<XrayDaemonClient>);

impl SpanExporter for NamedSpanExporter {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in &mut batch {
            if !is_valid_name(&span.name) {
                span.name = xray_name(&span.name).into();
            }
            let mut http_status = None;
            for kv in &mut span.attributes {
                match kv.key.as_str() {
                    "method" => kv.key = "http.request.method".into(),
                    "status" => {
                        kv.key = "http.response.status_code".into();
                        let n = match &kv.value {
                            Value::I64(n) => Some(*n),
                            Value::String(s) => s.as_str().parse::<i64>().ok(),
                            _ => None,
                        };
                        if let Some(n) = n {
                            kv.value = Value::I64(n);
                            http_status = Some(n);
                        }
                    }
                    _ => {}
                }
            }
            // X-Ray marks an error (4xx), a throttle (429) or a fault (5xx) on a span in error.
            if let Some(n) = http_status.filter(|n| *n >= 400)
                && matches!(span.status, Status::Unset)
            {
                span.status = Status::error(format!("HTTP {n}"));
            }
        }
        let result = self.0.export(batch).await;
        if result.is_err() {
            // A segment the daemon never got (a full socket buffer, a document over UDP's
            // 64 KB, no daemon listening): the trace has a hole; the request is unaffected.
            metrics::counter!("TraceExportFailures").increment(1);
        }
        result
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

/// X-Ray's name rule: 1 to 200 of letters, digits, spaces and `_ . : / % & # = + \\ - @`.
/// (Only the space among whitespace: a tab or a newline is refused.)
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/%&#=+\\-@".contains(c)
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.chars().all(allowed)
}

/// `POST /v1/events/{id}/join` → `POST /v1/events/:id/join`; other invalid characters → `_`.
pub fn xray_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(200));
    for c in name.chars() {
        let c = match c {
            '{' => ':',
            '}' => continue,
            c if allowed(c) => c,
            _ => '_',
        };
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push_str("span");
    }
    out
}

/// One span per AWS SDK operation, as an interceptor on the client of `service`. It replaces
/// the SDK's own operation span (whose fields cannot say which table, which error, how many
/// retries). Without a sampled span around the call (init's warm-up) it records nothing.
#[derive(Debug, Clone)]
pub struct SdkCallSpans {
    service: &'static str,
    region: Option<String>,
}

impl SdkCallSpans {
    pub fn new(service: &'static str, region: Option<String>) -> Self {
        Self { service, region }
    }
}

/// The call's span, started when the operation starts and kept in the operation's config bag
/// to its end. Dropped unended (the caller stopped waiting: a timeout around the call, a
/// `try_join!` whose other branch failed), it ends as a fault saying so.
struct CallSpan(std::sync::Mutex<Option<opentelemetry_sdk::trace::Span>>);

impl std::fmt::Debug for CallSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallSpan")
    }
}

impl Storable for CallSpan {
    type Storer = StoreReplace<Self>;
}

impl CallSpan {
    fn take(&self) -> Option<opentelemetry_sdk::trace::Span> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }

    /// The X-Ray header naming this call as the parent (for what it sends on: SQS messages).
    fn header(&self) -> Option<String> {
        let guard = self.0.lock().ok()?;
        let span = guard.as_ref()?;
        opentelemetry_aws::trace::xray_propagator::span_context_to_string(span.span_context())
    }
}

impl Drop for CallSpan {
    fn drop(&mut self) {
        if let Some(mut span) = self.0.get_mut().ok().and_then(|s| s.take()) {
            let message = "the caller stopped waiting (cancelled)";
            span.set_attribute(KeyValue::new("http.response.status_code", 500_i64));
            span.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", "Cancelled"),
                    KeyValue::new("exception.message", message),
                ],
            );
            span.set_status(Status::error(format!("Cancelled: {message}")));
            span.end();
        }
    }
}

/// The parts of a JSON request body that say what an operation touched.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RequestProbe {
    table_name: Option<String>,
    queue_url: Option<String>,
    secret_id: Option<String>,
    index_name: Option<String>,
    /// BatchGetItem / BatchWriteItem: table name → requests.
    request_items: Option<std::collections::BTreeMap<String, serde::de::IgnoredAny>>,
    /// TransactWriteItems / TransactGetItems: one action per item, each naming its table.
    transact_items: Option<Vec<std::collections::BTreeMap<String, TableOf>>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableOf {
    table_name: Option<String>,
}

/// The parts of a JSON response body X-Ray shows: the error and the consumed capacity.
#[derive(Deserialize, Default)]
struct ResponseProbe {
    #[serde(rename = "__type")]
    error_type: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "ConsumedCapacity")]
    consumed_capacity: Option<serde_json::Value>,
}

/// Error codes that X-Ray should count as throttling, whatever the HTTP status.
const THROTTLING: [&str; 5] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "Throttling",
];

impl Intercept for SdkCallSpans {
    fn name(&self) -> &'static str {
        "XRaySubsegments"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // The context of the innermost traced span around the call (tracing-opentelemetry
        // attaches it on enter); the SDK's own spans are not traced. Unsampled: nothing built.
        let parent = opentelemetry::Context::current();
        if let Some(tracer) = tracer()
            && parent.span().span_context().is_sampled()
        {
            // Named once the operation is known (its metadata is loaded after this hook).
            let builder = tracer
                .span_builder(self.service)
                .with_kind(SpanKind::Client);
            let span = tracer.build_with_context(builder, &parent);
            cfg.interceptor_state()
                .store_put(CallSpan(std::sync::Mutex::new(Some(span))));
        }
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // An SQS message carries this call as its parent in `AWSTraceHeader` (the system
        // attribute Lambda and X-Ray read): the consumer's segment is the SendMessage's child,
        // and the service map draws sender -> SQS -> consumer. Unsampled, it carries the
        // caller's own (unsampled) header: otherwise SQS would take the invocation's, which
        // the SDK sends as X-Amzn-Trace-Id, and the consumer would join the wrong trace.
        let header = cfg
            .load::<CallSpan>()
            .and_then(CallSpan::header)
            .or_else(|| {
                let cx = opentelemetry::Context::current();
                let span = cx.span();
                opentelemetry_aws::trace::xray_propagator::span_context_to_string(
                    span.span_context(),
                )
            });
        let Some(header) = header else {
            return Ok(());
        };
        if let Some(input) = context
            .input_mut()
            .downcast_mut::<aws_sdk_sqs::operation::send_message::SendMessageInput>(
        ) {
            use aws_sdk_sqs::types::{
                MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
            };
            let value = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(header)
                .build()?;
            input
                .message_system_attributes
                .get_or_insert_with(Default::default)
                .insert(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
        }
        Ok(())
    }

    fn read_after_serialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // The serialised request is gone once sent: read what it touched now.
        if cfg.load::<CallSpan>().is_some() {
            let facts = RequestFacts::of(context.request().body().bytes());
            cfg.interceptor_state().store_put(facts);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(mut span) = cfg.load::<CallSpan>().and_then(CallSpan::take) else {
            return Ok(());
        };
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "Unknown".to_owned());
        let attempts = cfg
            .load::<aws_smithy_runtime_api::client::retries::RequestAttempts>()
            .map(|a| a.attempts())
            .unwrap_or(1);
        let call = describe_call(
            self.service,
            &operation,
            self.region.as_deref(),
            attempts,
            cfg.load::<RequestFacts>()
                .unwrap_or(&RequestFacts::default()),
            context.response().map(|r| {
                (
                    r.status().as_u16(),
                    r.headers()
                        .get("x-amzn-requestid")
                        .or_else(|| r.headers().get("x-amz-request-id")),
                    r.body().bytes(),
                )
            }),
            match context.output_or_error() {
                Some(Err(e)) => Some(crate::error_chain(e)),
                _ => None,
            },
        );
        span.update_name(format!("{}.{}", self.service, operation));
        span.set_attributes(call.attributes);
        if let Some((code, message)) = call.error {
            span.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", code.clone()),
                    KeyValue::new("exception.message", message.clone()),
                ],
            );
            span.set_status(Status::error(format!("{code}: {message}")));
        }
        span.end();
        Ok(())
    }
}

/// What a request touched (tables, index, queue, secret) and whether it asked for the consumed
/// capacity, read once from its serialised JSON body before it is sent.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub attributes: Vec<KeyValue>,
    pub wants_capacity: bool,
}

impl Storable for RequestFacts {
    type Storer = StoreReplace<Self>;
}

impl RequestFacts {
    pub fn of(body: Option<&[u8]>) -> RequestFacts {
        let probe: RequestProbe = body
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let mut attributes = Vec::new();
        let mut tables: Vec<String> = probe.table_name.into_iter().collect();
        tables.extend(probe.request_items.into_iter().flat_map(|m| m.into_keys()));
        for action in probe.transact_items.iter().flatten() {
            tables.extend(action.values().filter_map(|t| t.table_name.clone()));
        }
        tables.sort();
        tables.dedup();
        match tables.len() {
            0 => {}
            1 => attributes.push(KeyValue::new("aws.table.name", tables.remove(0))),
            _ => attributes.push(KeyValue::new(
                "aws.dynamodb.table_names",
                Value::Array(Array::String(
                    tables.into_iter().map(StringValue::from).collect(),
                )),
            )),
        }
        if let Some(index) = probe.index_name {
            attributes.push(KeyValue::new("metadata.index_name", index));
        }
        // How many actions a transaction has (its cost: two write units per written item).
        if let Some(actions) = &probe.transact_items {
            attributes.push(KeyValue::new(
                "metadata.transact_items",
                actions.len() as i64,
            ));
        }
        if let Some(url) = probe.queue_url {
            attributes.push(KeyValue::new("aws.queue.url", url));
        }
        if let Some(secret) = probe.secret_id {
            attributes.push(KeyValue::new("metadata.secret_id", secret));
        }
        RequestFacts {
            attributes,
            wants_capacity: probe
                .return_consumed_capacity
                .is_some_and(|c| !c.eq_ignore_ascii_case("NONE")),
        }
    }
}

/// An HTTP answer: status, request id, body.
pub type Answer<'a> = (u16, Option<&'a str>, Option<&'a [u8]>);

/// What one SDK call's span says.
#[derive(Debug)]
pub struct CallDescription {
    pub attributes: Vec<KeyValue>,
    /// The error's code and message, when the call failed.
    pub error: Option<(String, String)>,
}

/// Builds the attributes of one SDK call's span from its request and response (public for
/// tests: the interceptor's inputs are the SDK's own types).
pub fn describe_call(
    service: &'static str,
    operation: &str,
    region: Option<&str>,
    attempts: u32,
    request: &RequestFacts,
    response: Option<Answer<'_>>,
    failure: Option<String>,
) -> CallDescription {
    let mut attributes = vec![
        KeyValue::new("rpc.system", "aws-api"),
        KeyValue::new("rpc.service", service),
        KeyValue::new("rpc.method", operation.to_owned()),
        KeyValue::new("metadata.retries", i64::from(attempts.saturating_sub(1))),
    ];
    if let Some(region) = region {
        attributes.push(KeyValue::new("aws.region", region.to_owned()));
    }
    attributes.extend(request.attributes.iter().cloned());
    let wants_capacity = request.wants_capacity;
    let mut error = None;
    match response {
        Some((status, request_id, body)) => {
            if let Some(id) = request_id {
                attributes.push(KeyValue::new("aws.request_id", id.to_owned()));
            }
            let parsed: ResponseProbe = if status >= 400 || wants_capacity {
                body.and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default()
            } else {
                ResponseProbe::default()
            };
            if let Some(capacity) = parsed.consumed_capacity.filter(|_| wants_capacity) {
                attributes.push(KeyValue::new(
                    "metadata.consumed_capacity",
                    capacity.to_string(),
                ));
            }
            let code = parsed
                .error_type
                .as_deref()
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
            let throttled = code
                .as_deref()
                .is_some_and(|c| THROTTLING.iter().any(|t| c.starts_with(t)));
            // X-Ray reads throttling from a 429; AWS answers it with a 400 and a code.
            let reported = if throttled { 429 } else { status };
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(reported),
            ));
            if status >= 400 {
                attributes.push(KeyValue::new("metadata.http_status", i64::from(status)));
                error = Some((
                    code.unwrap_or_else(|| format!("HTTP {status}")),
                    parsed
                        .message
                        .or(failure)
                        .unwrap_or_else(|| "no message".to_owned()),
                ));
            } else if let Some(failure) = failure {
                // A 2xx the SDK could not read (a malformed answer): a fault of the call.
                if let Some(kv) = attributes
                    .iter_mut()
                    .find(|kv| kv.key.as_str() == "http.response.status_code")
                {
                    kv.value = Value::I64(500);
                }
                error = Some(("ResponseError".to_owned(), failure));
            }
        }
        None => {
            // No answer at all (timeout, refused connection, open circuit): a fault.
            attributes.push(KeyValue::new("http.response.status_code", 500_i64));
            attributes.push(KeyValue::new("metadata.no_response", true));
            error = Some((
                "NoResponse".to_owned(),
                failure.unwrap_or_else(|| "no response".to_owned()),
            ));
        }
    }
    CallDescription { attributes, error }
}

/// The provider's tracer, for spans this module builds itself.
pub(crate) fn tracer_of(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("city-events")
}

static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracer> =
    std::sync::OnceLock::new();

/// Makes `tracer` the one the SDK call spans use (telemetry's init, once per process).
pub(crate) fn install(tracer: opentelemetry_sdk::trace::SdkTracer) {
    let _ = TRACER.set(tracer);
}

/// The tracer of this process, once telemetry is set up.
pub fn tracer() -> Option<&'static opentelemetry_sdk::trace::SdkTracer> {
    TRACER.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(d: &'a CallDescription, key: &str) -> Option<&'a Value> {
        d.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn names_become_valid_xray_names() {
        assert_eq!(
            xray_name("POST /v1/events/{id}/join"),
            "POST /v1/events/:id/join"
        );
        assert_eq!(xray_name("a<b>|c"), "a_b__c");
        assert_eq!(xray_name("GET /a\tb\n"), "GET /a_b_");
        assert!(is_valid_name(&xray_name(&"é".repeat(300))));
        assert_eq!(xray_name(&"é".repeat(300)).len(), 200);
        assert!(is_valid_name("DynamoDB.GetItem"));
        assert!(!is_valid_name("GET /v1/events/{id}"));
    }

    #[test]
    fn a_transaction_names_its_tables_and_capacity_when_asked() {
        let body = br#"{"TransactItems":[{"Put":{"TableName":"t1","Item":{}}},{"ConditionCheck":{"TableName":"t1"}},{"Update":{"TableName":"t2"}}],"ReturnConsumedCapacity":"TOTAL"}"#;
        let d = describe_call(
            "DynamoDB",
            "TransactWriteItems",
            Some("eu-west-1"),
            2,
            &RequestFacts::of(Some(body)),
            Some((
                200,
                Some("REQ1"),
                Some(br#"{"ConsumedCapacity":[{"TableName":"t1","CapacityUnits":4.0}]}"#),
            )),
            None,
        );
        assert!(d.error.is_none());
        assert!(
            matches!(attr(&d, "aws.dynamodb.table_names"), Some(Value::Array(Array::String(v))) if v.len() == 2)
        );
        assert_eq!(attr(&d, "metadata.retries"), Some(&Value::I64(1)));
        assert_eq!(attr(&d, "metadata.transact_items"), Some(&Value::I64(3)));
        assert_eq!(attr(&d, "aws.request_id"), Some(&Value::from("REQ1")));
        assert!(
            attr(&d, "metadata.consumed_capacity")
                .unwrap()
                .to_string()
                .contains("CapacityUnits")
        );
    }

    #[test]
    fn failures_carry_their_code_and_the_kind_xray_counts() {
        let throttled = describe_call(
            "DynamoDB",
            "PutItem",
            None,
            3,
            &RequestFacts::of(Some(br#"{"TableName":"t"}"#)),
            Some((
                400,
                None,
                Some(br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#),
            )),
            Some("service error".into()),
        );
        assert_eq!(
            throttled.error,
            Some((
                "ProvisionedThroughputExceededException".into(),
                "slow down".into()
            ))
        );
        assert_eq!(
            attr(&throttled, "http.response.status_code"),
            Some(&Value::I64(429))
        );
        let fault = describe_call(
            "DynamoDB",
            "GetItem",
            None,
            3,
            &RequestFacts::default(),
            Some((
                500,
                None,
                Some(br#"{"__type":"InternalServerError","message":"boom"}"#),
            )),
            None,
        );
        assert_eq!(
            attr(&fault, "http.response.status_code"),
            Some(&Value::I64(500))
        );
        assert_eq!(fault.error.unwrap().0, "InternalServerError");
        let silent = describe_call(
            "SQS",
            "SendMessage",
            None,
            3,
            &RequestFacts::default(),
            None,
            Some("dispatch failure".into()),
        );
        assert_eq!(
            silent.error,
            Some(("NoResponse".into(), "dispatch failure".into()))
        );
    }
}

#[cfg(test)]
mod export_tests {
    //! The documents the real exporter sends, read from a UDP socket standing in for the daemon.
    use super::*;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState, Tracer};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::net::UdpSocket;
    use std::time::{Duration, SystemTime};

    fn daemon() -> (UdpSocket, SdkTracerProvider) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(opentelemetry_aws::trace::XrayIdGenerator::default())
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_attributes([
                        KeyValue::new("service.name", "city-events-relay"),
                        KeyValue::new("cloud.provider", "aws"),
                        KeyValue::new("cloud.platform", "aws_lambda"),
                    ])
                    .build(),
            )
            .with_simple_exporter(
                exporter(socket.local_addr().unwrap(), Some("/aws/lambda/relay")).unwrap(),
            )
            .build();
        (socket, provider)
    }

    fn received(socket: &UdpSocket) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            let (header, doc) = text.split_once('\n').unwrap();
            assert_eq!(header, r#"{"format": "json", "version": 1}"#);
            out.push(serde_json::from_str(doc).unwrap());
        }
        out
    }

    fn lambda_parent(sampled: bool) -> opentelemetry::Context {
        let header = format!(
            "Root=1-{:08x}-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled={}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            u8::from(sampled)
        );
        let sc = opentelemetry_aws::trace::xray_propagator::span_context_from_str(&header)
            .unwrap_or_else(|| {
                SpanContext::new(
                    opentelemetry::trace::TraceId::INVALID,
                    opentelemetry::trace::SpanId::INVALID,
                    TraceFlags::default(),
                    true,
                    TraceState::default(),
                )
            });
        opentelemetry::Context::new().with_remote_span_context(sc)
    }

    #[test]
    fn a_handler_span_is_a_subsegment_of_lambdas_segment_and_sdk_calls_are_aws_subsegments() {
        let (socket, provider) = daemon();
        let tracer = tracer_of(&provider);
        let parent = lambda_parent(true);
        let handler = tracer.build_with_context(
            tracer
                .span_builder("POST /v1/events/{id}/join")
                .with_kind(SpanKind::Internal)
                .with_attributes([
                    KeyValue::new("route", "POST /v1/events/{id}/join"),
                    KeyValue::new("user_id", "u-1"),
                    KeyValue::new("event_id", "e-1"),
                    KeyValue::new("method", "POST"),
                    KeyValue::new("status", "503"),
                    KeyValue::new("password", "never exported"),
                ]),
            &parent,
        );
        let cx = parent.with_span(handler);
        let call = describe_call(
            "DynamoDB",
            "TransactWriteItems",
            Some("eu-west-1"),
            3,
            &RequestFacts::of(Some(
                br#"{"TransactItems":[{"Put":{"TableName":"events","Item":{"pk":{"S":"x"}}}}]}"#,
            )),
            Some((
                500,
                Some("R-9"),
                Some(br#"{"__type":"InternalServerError","message":"boom"}"#),
            )),
            None,
        );
        let mut sdk = tracer.build_with_context(
            tracer
                .span_builder("DynamoDB.TransactWriteItems")
                .with_kind(SpanKind::Client)
                .with_attributes(call.attributes),
            &cx,
        );
        let (code, message) = call.error.unwrap();
        sdk.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", code),
                KeyValue::new("exception.message", message),
            ],
        );
        sdk.set_status(Status::error("InternalServerError: boom"));
        sdk.end();
        cx.span().end();
        let docs = received(&socket);
        assert_eq!(docs.len(), 2, "{docs:#?}");
        let (call, handler) = (&docs[0], &docs[1]);
        // The handler: a subsegment of Lambda's segment, named by its route, searchable.
        assert_eq!(handler["type"], "subsegment", "{handler:#}");
        assert_eq!(handler["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(handler["name"], "POST /v1/events/:id/join");
        assert_eq!(handler["annotations"]["user_id"], "u-1");
        assert_eq!(handler["annotations"]["event_id"], "e-1");
        assert_eq!(handler["fault"], true, "a 503 is a fault: {handler:#}");
        assert!(!handler.to_string().contains("never exported"));
        // The SDK call: an AWS subsegment of the handler, a fault with its error.
        assert_eq!(call["type"], "subsegment");
        assert_eq!(call["parent_id"], handler["id"]);
        assert_eq!(call["trace_id"], handler["trace_id"]);
        assert_eq!(call["namespace"], "aws", "{call:#}");
        assert_eq!(call["name"], "DynamoDB");
        assert_eq!(call["aws"]["operation"], "TransactWriteItems");
        assert_eq!(call["aws"]["table_name"], "events", "{call:#}");
        assert_eq!(call["aws"]["request_id"], "R-9");
        assert_eq!(call["fault"], true);
        assert_eq!(call["metadata"]["retries"], 2, "{call:#}");
        assert!(
            call["cause"].to_string().contains("InternalServerError"),
            "{call:#}"
        );
    }

    #[test]
    fn a_record_span_is_a_segment_of_the_writers_trace_named_after_the_function() {
        let (socket, provider) = daemon();
        let tracer = tracer_of(&provider);
        let parent = lambda_parent(true);
        tracer
            .build_with_context(
                tracer
                    .span_builder("outbox.publish")
                    .with_kind(SpanKind::Server)
                    .with_attributes([KeyValue::new("aggregate_id", "e-1")]),
                &parent,
            )
            .end();
        let docs = received(&socket);
        assert_eq!(docs.len(), 1);
        let seg = &docs[0];
        assert!(seg.get("type").is_none(), "a segment: {seg:#}");
        assert_eq!(seg["name"], "city-events-relay");
        assert_eq!(seg["origin"], "AWS::Lambda::Function", "{seg:#}");
        assert_eq!(seg["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(seg["annotations"]["aggregate_id"], "e-1");
    }

    #[test]
    fn a_call_its_caller_stopped_waiting_for_ends_as_a_cancelled_fault() {
        let (socket, provider) = daemon();
        let tracer = tracer_of(&provider);
        let parent = lambda_parent(true);
        let span = tracer.build_with_context(
            tracer.span_builder("DynamoDB").with_kind(SpanKind::Client),
            &parent,
        );
        let call = CallSpan(std::sync::Mutex::new(Some(span)));
        assert!(call.header().unwrap().contains("Sampled=1"));
        drop(call); // the config bag of a dropped SDK future
        let docs = received(&socket);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["fault"], true, "{:#}", docs[0]);
        assert!(docs[0]["cause"].to_string().contains("Cancelled"));
    }

    #[test]
    fn an_unsampled_trace_exports_nothing() {
        let (socket, provider) = daemon();
        let tracer = tracer_of(&provider);
        let parent = lambda_parent(false);
        let span = tracer.build_with_context(tracer.span_builder("GET /v1/events"), &parent);
        assert!(!span.span_context().is_sampled());
        let cx = parent.with_span(span);
        tracer
            .build_with_context(
                tracer
                    .span_builder("DynamoDB.Query")
                    .with_kind(SpanKind::Client),
                &cx,
            )
            .end();
        cx.span().end();
        assert!(received(&socket).is_empty());
    }
}
