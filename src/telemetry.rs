//! Logging and traces: `tracing` to stderr, human-readable or one JSON object per line, and,
//! when `otlp_endpoint` is set, the same spans exported to an OpenTelemetry collector over
//! OTLP/HTTP (protobuf).
//!
//! Trace context travels in W3C Trace Context headers (`traceparent`, `tracestate`): a request
//! that brings one gets a span continuing the caller's trace, and [`trace_headers`] gives what an
//! outbound request (a webhook delivery) sends on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Whether spans go to an OpenTelemetry exporter; when not, requests skip reading trace
/// context, and the database spans are disabled (they are `debug`).
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Flushes the spans still waiting to be exported when dropped: keep it until the process ends.
#[must_use = "spans not yet exported are lost when this is dropped"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("roster: exporting the last spans failed: {e}");
            }
        }
    }
}

/// The OTLP/HTTP traces URL of a collector: `otlp_endpoint` as given when it already names the
/// signal's path, otherwise with `/v1/traces` appended, as `OTEL_EXPORTER_OTLP_ENDPOINT` is read
/// (OpenTelemetry Protocol Exporter specification, "Endpoint URLs for OTLP/HTTP").
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// Installs the global subscriber for logs only; `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    // Without an endpoint nothing is built that could fail, and there is nothing to flush.
    let _ = init_with_export(format, None);
}

/// Installs the global subscriber, as [`init`]; with `otlp_endpoint`, spans are also exported
/// there in batches. The export filter is its own (Roster's spans down to `debug`, which
/// includes the database work) and `RUST_LOG` does not change it.
pub fn init_with_export(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Human => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).boxed(),
    }
    .with_filter(filter);
    let (provider, traces) = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(traces_url(endpoint))
                .build()
                .map_err(|e| anyhow::anyhow!("otlp_endpoint {endpoint}: {e}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("roster").build())
                .build();
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("roster"))
                .with_filter(Targets::new().with_target("roster", LevelFilter::DEBUG).with_default(LevelFilter::INFO));
            (Some(provider), Some(layer))
        }
        None => (None, None),
    };
    // A second init (tests start many apps in one process) keeps the first subscriber.
    if tracing_subscriber::registry().with(logs).with(traces).try_init().is_ok() && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Ok(Telemetry { provider })
}

/// Headers as the W3C Trace Context propagator reads them.
struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` continue the trace a caller's `traceparent` names (W3C Trace Context §3.2), if
/// any, and records the trace id on it so that every log line of the request carries it.
pub fn continue_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

/// The W3C Trace Context headers (`traceparent`, and `tracestate` when there is one) of the
/// current span, for an outbound request such as a webhook delivery to send, so that the
/// receiver's spans join the trace of the request or sweep that caused it. Empty when traces are
/// not exported: the propagator writes nothing for a span that has no OpenTelemetry context.
pub fn trace_headers() -> HashMap<String, String> {
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut headers);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_collector_base_url_once() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://otel.example.com/v1/traces"), "https://otel.example.com/v1/traces");
    }

    #[test]
    fn an_outbound_request_carries_the_trace_of_the_span_it_is_sent_from() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let delivery = tracing::info_span!("delivery");
            let _entered = delivery.enter();
            let context = delivery.context().span().span_context().clone();
            let headers = trace_headers();
            // traceparent = version "-" trace-id "-" parent-id "-" trace-flags (W3C §3.2.2).
            let expected = format!("00-{}-{}-01", context.trace_id(), context.span_id());
            assert_eq!(headers.get("traceparent"), Some(&expected), "{headers:?}");
        });
        assert!(trace_headers().is_empty(), "outside any traced span there is nothing to send on");
    }
}
