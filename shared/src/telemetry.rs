//! Telemetry, set up once per cold start: JSON log lines, OpenTelemetry spans with X-Ray ids,
//! and CloudWatch Embedded Metric Format (EMF) metrics.
//!
//! Everything goes to one sink (stdout in Lambda, where CloudWatch Logs picks it up and turns
//! EMF documents into metrics). Log records pass through [`crate::redact`] on the way out.
//! Spans go to X-Ray when `AWS_XRAY_DAEMON_ADDRESS` is set ([`crate::xray`]); otherwise, or
//! with `LOG_SPANS` on, they are written as JSON lines too (`"type":"span"`), one per finished
//! span, so a local run shows the whole trace of a request, its AWS SDK calls included.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{Targets, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::Config;
use crate::redact;

/// Where log lines, span lines and EMF documents go.
#[derive(Clone, Default)]
pub enum Sink {
    #[default]
    Stdout,
    /// An in-memory buffer, for tests that read what a request logged.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    /// Writes one line atomically with respect to other lines of this process.
    pub fn write_line(&self, line: &[u8]) {
        static LOCK: Mutex<()> = Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line);
                let _ = out.write_all(b"\n");
                let _ = out.flush();
            }
            Sink::Buffer(buf) => {
                let mut buf = buf.lock().unwrap_or_else(|e| e.into_inner());
                buf.extend_from_slice(line);
                buf.push(b'\n');
            }
        }
    }
}

/// The handles that outlive init: the EMF collector and the tracer provider.
pub struct Telemetry {
    pub sink: Sink,
    collector: &'static metrics_cloudwatch_embedded::Collector,
    provider: SdkTracerProvider,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// Sets up logging, tracing and metrics for this process; later calls return the first setup.
pub fn init(config: &Config, sink: Sink) -> &'static Telemetry {
    TELEMETRY.get_or_init(|| {
        // The sampler follows the parent (Lambda's trace header, a message's): what Lambda did
        // not sample builds no span data and exports nothing. A root (no header) is sampled.
        let mut builder = SdkTracerProvider::builder()
            .with_id_generator(opentelemetry_aws::trace::XrayIdGenerator::default())
            .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                opentelemetry_sdk::trace::Sampler::AlwaysOn,
            )))
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_attributes([
                        opentelemetry::KeyValue::new("service.name", config.function_name.clone()),
                        opentelemetry::KeyValue::new("cloud.provider", "aws"),
                        opentelemetry::KeyValue::new("cloud.platform", "aws_lambda"),
                    ])
                    .build(),
            );
        let mut to_xray = false;
        if let Some(daemon) = config.xray_daemon {
            match crate::xray::exporter(daemon, config.log_group.as_deref()) {
                Ok(exporter) => {
                    builder = builder.with_simple_exporter(exporter);
                    to_xray = true;
                }
                Err(e) => {
                    eprintln!("X-Ray daemon client for {daemon} failed ({e}); spans go to the log")
                }
            }
        }
        if !to_xray || config.log_spans {
            builder = builder.with_simple_exporter(JsonSpanExporter { sink: sink.clone() });
        }
        let provider = builder.build();
        let tracer = crate::xray::tracer_of(&provider);
        crate::xray::install(tracer.clone());

        // lambda_runtime's own per-invocation span duplicates ours; keep it out unless asked for.
        let directives = if config.log_level.contains("lambda_runtime") {
            config.log_level.clone()
        } else {
            format!("{},lambda_runtime=warn", config.log_level)
        };
        // `level` or `target=level` items, comma-separated (no span or field filters: they
        // would link a regex engine into every function, decision 0017).
        let log_filter = log_targets(&directives).unwrap_or_else(|e| {
            eprintln!(
                "LOG_LEVEL {:?} is not a valid filter ({e}); using info",
                config.log_level
            );
            Targets::new().with_default(tracing::Level::INFO)
        });
        // Spans for tracing: ours at info and above. The AWS SDK's calls get theirs from
        // `xray::SdkCallSpans` (the SDK's own spans cannot say which table or which error).
        let span_filter = filter_fn(|meta| {
            if meta.target().starts_with("lambda_runtime") || meta.target().starts_with("aws_") {
                false
            } else {
                meta.is_span() && *meta.level() <= tracing::Level::INFO
            }
        });
        let subscriber = Registry::default()
            .with(
                JsonLogLayer {
                    sink: sink.clone(),
                    function: config.function_name.clone(),
                }
                .with_filter(log_filter),
            )
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_filter(span_filter),
            );
        if subscriber.try_init().is_err() {
            eprintln!("a tracing subscriber was already installed; keeping it");
        }
        // In-process tests log to a buffer; they also need the default hook's message on stderr.
        install_panic_hook(matches!(sink, Sink::Buffer(_)));

        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(config.metrics_namespace.clone())
            .with_dimension("function", config.function_name.clone())
            .init()
            .unwrap_or_else(|e| panic!("metrics recorder could not be installed: {e}"));
        describe_metrics();
        Telemetry {
            sink,
            collector,
            provider,
        }
    })
}

impl Telemetry {
    /// Emits the invocation's EMF document and any pending spans. Called once per invocation,
    /// before the response is handed back (after which Lambda may freeze the process).
    pub fn flush(&self, properties: &[(&str, String)]) {
        for (name, value) in properties {
            self.collector
                .set_property(name.to_string(), Value::String(value.clone()));
        }
        let mut docs = Vec::new();
        if self.collector.flush(&mut docs).is_ok() {
            for doc in merge_emf(&docs) {
                self.sink.write_line(doc.as_bytes());
            }
        }
        let _ = self.provider.force_flush();
    }
}

/// `LOG_LEVEL` (plus the `lambda_runtime=warn` the telemetry adds) as tracing-subscriber's
/// `Targets`: comma-separated items, each a level (`info`) or `target=level` with a target of
/// letters, digits, `_` and `::`; empty items are skipped, and without a bare level the rest
/// logs at `info`. Anything else is refused rather than
/// read as `Targets` would (a bare word as a target to trace, an empty item as `error`), so a
/// typo or an `EnvFilter` span filter never silently turns the logs off.
fn log_targets(directives: &str) -> Result<Targets, String> {
    use tracing_subscriber::filter::LevelFilter;
    let mut items = Vec::new();
    for item in directives
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (target, level) = match item.split_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, item),
        };
        let target_ok = target.is_none_or(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        });
        if !target_ok || level.is_empty() || level.parse::<LevelFilter>().is_err() {
            return Err(format!("{item:?} is not a level or target=level"));
        }
        items.push(match target {
            Some(target) => format!("{target}={level}"),
            None => level.to_owned(),
        });
    }
    let has_default = items.iter().any(|i| !i.contains('='));
    let targets = items
        .join(",")
        .parse::<Targets>()
        .map_err(|e| e.to_string())?;
    // Only `target=level` items (or none at all): everything else at info, not off.
    Ok(if has_default {
        targets
    } else {
        targets.with_default(LevelFilter::INFO)
    })
}

/// The collector writes one EMF document per label set; CloudWatch accepts several metric
/// directives in one document, so documents whose members agree are merged, and a request
/// costs one log line of metrics. Documents that disagree on a member (the same metric with two
/// label values in one invocation) stay separate.
///
/// Values are compared and copied as their JSON text (`RawValue`), never parsed into trees: a
/// parse and print of every document was a third of the middleware's time per request.
fn merge_emf(lines: &[u8]) -> Vec<String> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Aws<'a> {
        #[serde(rename = "Timestamp", borrow)]
        timestamp: &'a RawValue,
        #[serde(rename = "CloudWatchMetrics", borrow)]
        directives: Vec<&'a RawValue>,
    }
    struct Doc<'a> {
        aws: Aws<'a>,
        members: BTreeMap<String, &'a RawValue>,
    }
    fn parse(line: &[u8]) -> Option<Doc<'_>> {
        let mut members: BTreeMap<String, &RawValue> = serde_json::from_slice(line).ok()?;
        let aws = serde_json::from_str(members.remove("_aws")?.get()).ok()?;
        Some(Doc { aws, members })
    }
    let mut docs = lines.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    // One document (one label set): nothing to merge.
    if let (Some(only), None) = (docs.next(), docs.next())
        && let Ok(doc) = std::str::from_utf8(only)
    {
        return vec![doc.to_owned()];
    }
    let mut merged: Vec<Doc> = Vec::new();
    for doc in lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse)
    {
        let target = merged.iter_mut().find(|m| {
            doc.members
                .iter()
                .all(|(k, v)| m.members.get(k).is_none_or(|have| have.get() == v.get()))
        });
        match target {
            Some(m) => {
                m.members.extend(doc.members);
                m.aws.directives.extend(doc.aws.directives);
            }
            None => merged.push(doc),
        }
    }
    merged
        .into_iter()
        .filter_map(|m| {
            let aws = serde_json::value::to_raw_value(&m.aws).ok()?;
            let mut out: BTreeMap<&str, &RawValue> = BTreeMap::new();
            out.insert("_aws", &aws);
            out.extend(m.members.iter().map(|(k, v)| (k.as_str(), *v)));
            serde_json::to_string(&out).ok()
        })
        .collect()
}

/// Every metric this project emits, with its unit (docs/metrics.md lists them).
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "Requests",
        Unit::Count,
        "HTTP requests by route and status class"
    );
    describe_histogram!(
        "Latency",
        Unit::Milliseconds,
        "HTTP request latency by route"
    );
    describe_counter!("ColdStart", Unit::Count, "first invocation of a process");
    describe_counter!(
        "Panics",
        Unit::Count,
        "handler panics caught by the HTTP guard"
    );
    describe_counter!(
        "Invocations",
        Unit::Count,
        "event-source invocations by outcome"
    );
    describe_counter!(
        "TraceExportFailures",
        Unit::Count,
        "span batches the X-Ray daemon client could not send"
    );
}

/// Routes panic messages through the JSON log instead of raw stderr text.
fn install_panic_hook(chain_default: bool) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if chain_default {
            default(info);
        }
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic.location = %location, panic.message = %payload, "panic");
    }));
}

/// Formats a trace id the way X-Ray writes it: `1-<8 hex epoch>-<24 hex>`.
pub fn xray_trace_id(trace_id: TraceId) -> String {
    let hex = format!("{trace_id:032x}");
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

/// The X-Ray-formatted trace id of the current span, if it belongs to a trace.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| xray_trace_id(sc.trace_id()))
}

/// The remote parent of an invocation: Lambda's own trace header first (it carries the trace
/// API Gateway continued), then an incoming `X-Amzn-Trace-Id`, then W3C `traceparent`.
pub fn remote_parent(
    lambda_trace: Option<&str>,
    headers: &http::HeaderMap,
) -> Option<opentelemetry::Context> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Lambda's header, when there is one, decides (trace and sampling): a client's headers
    // never take over, even if Lambda's could not be read.
    let lambda_trace = lambda_trace.filter(|s| !s.is_empty());
    let xray = lambda_trace
        .or_else(|| header("x-amzn-trace-id"))
        .and_then(opentelemetry_aws::trace::xray_propagator::span_context_from_str)
        .filter(SpanContext::is_valid);
    if let Some(sc) = xray {
        return Some(opentelemetry::Context::new().with_remote_span_context(sc));
    }
    if lambda_trace.is_some() {
        return None;
    }
    let traceparent = header("traceparent")?;
    let carrier: HashMap<String, String> =
        HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Makes `span` continue the trace of `header` (an outbox item's, an SQS message's), and its log
/// lines carry that trace's id. Call it before the span is first entered.
pub fn continue_trace(span: &tracing::Span, header: Option<&str>) {
    if let Some(parent) = remote_parent(header, &http::HeaderMap::new()) {
        let _ = span.set_parent(parent);
    }
    if let Some(id) = span.in_scope(current_trace_id) {
        span.record("trace_id", id.as_str());
    }
}

/// Links `span` to the trace of `header` (another request served by the same work).
pub fn link_trace(span: &tracing::Span, header: Option<&str>) {
    if let Some(sc) = header
        .and_then(opentelemetry_aws::trace::xray_propagator::span_context_from_str)
        .filter(SpanContext::is_valid)
    {
        span.add_link(sc);
    }
}

/// The X-Ray header value that continues the current span's trace downstream (SQS message
/// attributes, outgoing calls).
pub fn current_xray_header() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    opentelemetry_aws::trace::xray_propagator::span_context_to_string(span.span_context())
}

/// One JSON object per tracing event, carrying the fields of the spans it happened in.
struct JsonLogLayer {
    sink: Sink,
    function: String,
}

/// Fields recorded on a span, kept in its extensions so events inside it can carry them.
#[derive(Default)]
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor(&mut fields.0));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut record = Map::new();
        record.insert(
            "timestamp".into(),
            Value::String(rfc3339(SystemTime::now())),
        );
        record.insert("level".into(), Value::String(meta.level().to_string()));
        record.insert("target".into(), Value::String(meta.target().to_owned()));
        record.insert("function".into(), Value::String(self.function.clone()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        if !k.starts_with("otel.") {
                            record.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut record));
        let mut value = Value::Object(record);
        redact::redact_value(&mut value);
        if let Ok(line) = serde_json::to_vec(&value) {
            self.sink.write_line(&line);
        }
    }
}

/// Writes each finished span as one JSON line. In AWS the same spans would go to an OTLP
/// collector (the ADOT layer) for X-Ray; see docs/decisions.
#[derive(Debug)]
struct JsonSpanExporter {
    sink: Sink,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Stdout => "Stdout",
            Sink::Buffer(_) => "Buffer",
        })
    }
}

impl SpanExporter for JsonSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch {
            let mut attributes = Map::new();
            for kv in &span.attributes {
                attributes.insert(kv.key.to_string(), Value::String(kv.value.to_string()));
            }
            let duration = span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or(Duration::ZERO);
            let mut value = serde_json::json!({
                "type": "span",
                "timestamp": rfc3339(span.end_time),
                "name": span.name,
                "trace_id": xray_trace_id(span.span_context.trace_id()),
                "span_id": span.span_context.span_id().to_string(),
                "parent_span_id": span.parent_span_id.to_string(),
                "kind": format!("{:?}", span.span_kind),
                "duration_ms": duration.as_secs_f64() * 1e3,
                "status": format!("{:?}", span.status),
                "attributes": attributes,
            });
            redact::redact_value(&mut value);
            if let Ok(line) = serde_json::to_vec(&value) {
                self.sink.write_line(&line);
            }
        }
        Ok(())
    }
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_takes_levels_and_targets_and_refuses_the_rest() {
        use tracing::Level;
        let t = log_targets("info, ,shared=debug,lambda_runtime=warn,").unwrap();
        assert!(t.would_enable("shared::http", &Level::DEBUG));
        assert!(t.would_enable("events", &Level::INFO));
        assert!(!t.would_enable("events", &Level::DEBUG));
        assert!(!t.would_enable("lambda_runtime", &Level::INFO));
        // Targets alone, or nothing: the rest at info, never off.
        for only_targets in ["shared=debug,lambda_runtime=warn", ",lambda_runtime=warn"] {
            let t = log_targets(only_targets).unwrap();
            assert!(t.would_enable("events", &Level::INFO), "{only_targets}");
            assert!(!t.would_enable("events", &Level::DEBUG), "{only_targets}");
        }
        assert!(
            !log_targets("off")
                .unwrap()
                .would_enable("events", &Level::ERROR)
        );
        for bad in [
            "verbose",
            "shared=",
            "[span]=debug",
            "shared[{user}]=debug",
            "=info",
            "shared=loud",
            "a=b=c",
        ] {
            assert!(log_targets(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emf_documents_that_agree_become_one() {
        let docs = br#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function"]],"Metrics":[{"Name":"ColdStart","Unit":"Count"}]}]},"function":"f","ColdStart":1}
{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function","route"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"function":"f","route":"GET /x","Latency":[2.0]}
{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function","outcome"]],"Metrics":[{"Name":"Logins","Unit":"Count"}]}]},"function":"f","outcome":"ok","Logins":1}
{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function","outcome"]],"Metrics":[{"Name":"Logins","Unit":"Count"}]}]},"function":"f","outcome":"fail","Logins":1}
"#;
        let merged = merge_emf(docs);
        assert_eq!(merged.len(), 2, "{merged:?}");
        let first: Value = serde_json::from_str(&merged[0]).unwrap();
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(),
            3
        );
        assert_eq!(first["Latency"], serde_json::json!([2.0]));
        assert_eq!(first["outcome"], "ok");
    }

    #[test]
    fn xray_ids_have_the_xray_shape() {
        let id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        assert_eq!(xray_trace_id(id), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn an_incoming_xray_header_becomes_the_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                .parse()
                .unwrap(),
        );
        let cx = remote_parent(None, &headers).expect("parent");
        assert_eq!(
            xray_trace_id(cx.span().span_context().trace_id()),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
    }

    #[test]
    fn a_traceparent_is_used_when_there_is_no_xray_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        let cx = remote_parent(None, &headers).expect("parent");
        assert_eq!(
            format!("{:032x}", cx.span().span_context().trace_id()),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(remote_parent(None, &http::HeaderMap::new()).is_none());
    }
}
