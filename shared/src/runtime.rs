//! The runner for event-source functions (DynamoDB stream, SQS): the same per-invocation
//! span, log line and metrics flush the HTTP middleware gives, around a typed handler.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{Context, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Wires one event-source function (an SQS queue, a DynamoDB stream, a Secrets Manager
/// rotation) into the Lambda runtime: init once, build the domain with `build` (failing at
/// start, naming what is missing, when its configuration is not there), then `handler` per
/// invocation. The event-source twin of [`crate::http::serve`]: every function starts through
/// one of the two.
pub async fn serve<D, B, E, R, H, Fut>(
    name: &str,
    build: B,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    D: Send + Sync + 'static,
    B: FnOnce(&crate::App) -> anyhow::Result<Arc<D>>,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(Arc<D>, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
{
    let app = crate::init(name).await?;
    let domain = build(&app).map_err(|e| {
        eprintln!("{name}: {e}");
        e
    })?;
    run(&app, move |event, _ctx| handler(domain.clone(), event)).await
}

/// Starts the Lambda runtime with `handler` for events of type `E`.
async fn run<E, R, H, Fut>(app: &crate::App, handler: H) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(E, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
{
    let telemetry = app.telemetry;
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| {
        let handler = handler.clone();
        async move {
            let (payload, context) = event.into_parts();
            invoke(telemetry, context, |ctx| handler(payload, ctx)).await
        }
    }))
    .await
}

/// One invocation: span, handler, log line, metrics flush. Public for handler tests.
pub async fn invoke<R, F, Fut>(
    telemetry: &crate::telemetry::Telemetry,
    context: Context,
    handler: F,
) -> Result<R, lambda_runtime::Error>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let started = Instant::now();
    let cold_start = crate::http::take_cold_start();
    let span = tracing::info_span!(
        "invocation",
        otel.kind = "consumer",
        lambda_request_id = %context.request_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) =
        crate::telemetry::remote_parent(context.xray_trace_id.as_deref(), &http::HeaderMap::new())
    {
        let _ = span.set_parent(parent);
    }
    let trace_id = span
        .in_scope(crate::telemetry::current_trace_id)
        .unwrap_or_default();
    span.record("trace_id", trace_id.as_str());
    let request_id = context.request_id.clone();
    let result = handler(context).instrument(span.clone()).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| match &result {
        Ok(_) => tracing::info!(cold_start, duration_ms, "invocation completed"),
        Err(e) => tracing::error!(
            cold_start,
            duration_ms,
            error.cause_chain = %crate::error_chain_anyhow(e),
            "invocation failed"
        ),
    });
    drop(span);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("Invocations", "outcome" => outcome).increment(1);
    if cold_start {
        metrics::counter!("ColdStart").increment(1);
    }
    telemetry.flush(&[("lambdaRequestId", request_id), ("traceId", trace_id)]);
    result.map_err(|e| lambda_runtime::Error::from(crate::error_chain_anyhow(&e)))
}
