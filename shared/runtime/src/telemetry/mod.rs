//! Logs and traces. Every service logs through `tracing`: JSON lines in production,
//! human-readable text on a terminal. Spans are OpenTelemetry spans, exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context travels in gRPC metadata
//! (`traceparent`, `tracestate`), so a chain of calls across services is one trace.
//!
//! What is traced: a SERVER span per call served ([`crate::middleware`]), a CLIENT span per
//! call to a peer ([`crate::client`]), both per OpenTelemetry's RPC conventions ([`rpc`]); a
//! CLIENT span per SQL statement under them ([`sql`]); and each service's spans carry its own
//! `service.name` (`phoenix-ledger`), also when several run in one process ([`routing`]).
//!
//! The log filter (`PHOENIX_LOG`) and the trace filter (`PHOENIX_TRACE_FILTER`) are separate:
//! quieter logs do not thin the traces, and sqlx's per-statement events, which the SQL spans are
//! made from, reach the SQL layer without reaching the log.

pub mod routing;
pub mod rpc;
pub mod sql;

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};
pub use routing::ServiceRoute;

/// Keeps the tracer provider alive; dropping it flushes spans still buffered for export.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports every span that has ended so far. Blocks: call it outside the async runtime's
    /// worker threads (`spawn_blocking`).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.provider
            .force_flush()
            .map_err(|e| anyhow::anyhow!("flushing traces failed: {e}"))
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber, tracer provider and propagator for a process that runs one
/// service, whose spans carry `service.name = service_name`. Call once, at start, inside a
/// Tokio runtime (the OTLP exporter runs on it).
pub fn init(config: &TelemetryConfig, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    init_for_services(config, service_name, &[])
}

/// As [`init`], for a process that runs several services (`phoenix up`): the spans of each
/// service in `services` (runtime names, `ledger`) carry `service.name = phoenix-<service>`;
/// spans that belong to none (a background job's) carry `process_name`.
pub fn init_for_services(
    config: &TelemetryConfig,
    process_name: &str,
    services: &[&'static str],
) -> anyhow::Result<TelemetryGuard> {
    let filter = |setting: &str, value: &str| {
        EnvFilter::try_new(value)
            .map_err(|e| anyhow::anyhow!("{setting}: invalid filter {value:?}: {e}"))
    };
    let log_filter = filter("PHOENIX_LOG / --log", &config.log_filter)?;
    let endpoint = config.otlp_endpoint.as_deref();
    let provider = tracer_provider(endpoint, process_name, services)?;
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("phoenix"))
        .with_filter(filter("PHOENIX_TRACE_FILTER", &config.trace_filter)?);
    // The SQL layer must see the spans the OpenTelemetry layer sees (their statements hang
    // under them) and sqlx's statement events, which nothing else enables.
    let sql_layer = match endpoint {
        None => None,
        Some(_) => {
            let spans = tracing_subscriber::filter::filter_fn(|metadata| metadata.is_span())
                .and(filter("PHOENIX_TRACE_FILTER", &config.trace_filter)?);
            let statements = tracing_subscriber::filter::Targets::new()
                .with_target(sql::SQLX_TARGET, tracing::Level::TRACE);
            Some(sql::SqlSpans::new(provider.tracer("phoenix")).with_filter(spans.or(statements)))
        }
    };

    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(log_filter))
        .with(otel_layer)
        .with(sql_layer)
        .try_init()?;
    install_propagation(&provider);
    if let Some(endpoint) = endpoint {
        tracing::info!(endpoint, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

/// Telemetry for tests: silent unless `PHOENIX_TEST_LOG` holds a filter (e.g. `debug`), but
/// with real span contexts so trace propagation behaves as in production. Safe to call often,
/// and a no-op in a test binary that installed its own telemetry first ([`init`]).
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let provider = SdkTracerProvider::builder().build();
        let filter = std::env::var("PHOENIX_TEST_LOG").unwrap_or_else(|_| "off".to_owned());
        let otel_layer =
            tracing_opentelemetry::layer().with_tracer(provider.tracer("phoenix-test"));
        let fmt_layer = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(EnvFilter::new(filter));
        // Span contexts need the OpenTelemetry layer to see every span, so the filter only
        // applies to the log output.
        let installed = tracing_subscriber::registry()
            .with(fmt_layer)
            .with(otel_layer)
            .try_init();
        if installed.is_ok() {
            install_propagation(&provider);
        }
    });
}

fn tracer_provider(
    endpoint: Option<&str>,
    process_name: &str,
    services: &[&'static str],
) -> anyhow::Result<SdkTracerProvider> {
    let resource = |name: &str| {
        opentelemetry_sdk::Resource::builder()
            .with_service_name(name.to_owned())
            .build()
    };
    let builder = SdkTracerProvider::builder().with_resource(resource(process_name));
    let Some(endpoint) = endpoint else {
        // No exporter: spans still get real trace and span ids, which logs and propagation use.
        return Ok(builder.build());
    };
    let processor = |name: &str| -> anyhow::Result<_> {
        use opentelemetry_otlp::WithExportConfig;
        use opentelemetry_sdk::trace::SpanProcessor;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| {
                anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export to {endpoint:?}: {e}")
            })?;
        // The batch processor runs on Tokio because the tonic exporter needs its reactor.
        let mut processor =
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .build();
        processor.set_resource(&resource(name));
        Ok(processor)
    };
    let services = services
        .iter()
        .map(|service| Ok((*service, processor(&format!("phoenix-{service}"))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let router = routing::ServiceRouter::new(processor(process_name)?, services);
    Ok(builder.with_span_processor(router).build())
}

/// `future` with the current OpenTelemetry context attached whenever it runs: for a task
/// spawned from a call, whose spans then belong to the call's trace and service.
pub fn with_current_context<F: std::future::Future>(
    future: F,
) -> opentelemetry::context::WithContext<F> {
    opentelemetry::context::FutureExt::with_current_context(future)
}

/// The context a server span of `service` starts from: the caller's trace (W3C headers; a
/// malformed `traceparent` starts a new trace) and the service the call's spans belong to.
pub fn server_parent(headers: &http::HeaderMap, service: &'static str) -> opentelemetry::Context {
    // From an empty context: without a `traceparent`, the call is a new trace, whatever the
    // thread had current.
    TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &HeaderReader(headers))
        .with_value(ServiceRoute(service))
}

fn install_propagation(provider: &SdkTracerProvider) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut: what a span
/// carries of a statement or a message.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Reads W3C trace context from HTTP/2 headers (gRPC metadata) into the current context, so
/// what it carries (the service the work belongs to, [`ServiceRoute`]) is kept.
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderReader(headers))
}

/// The current span's W3C `traceparent` and `tracestate`, to store with what the call produces
/// (events, outbox rows) so their consumers continue the trace. Empty strings without a trace.
pub fn current_trace_headers() -> (String, String) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut headers = http::HeaderMap::new();
    inject_context(&tracing::Span::current().context(), &mut headers);
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (value("traceparent"), value("tracestate"))
}

/// Writes W3C trace context into HTTP/2 headers (gRPC metadata).
pub fn inject_context(context: &opentelemetry::Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(context, &mut HeaderWriter(headers));
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// What the unit tests of spans share.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry::Context;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

    /// Keeps the spans it is handed.
    #[derive(Debug, Clone, Default)]
    pub struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl Collect {
        pub fn spans(&self) -> Vec<SpanData> {
            self.0.lock().expect("lock").clone()
        }

        pub fn names(&self) -> Vec<String> {
            self.spans()
                .iter()
                .map(|span| span.name.to_string())
                .collect()
        }
    }

    impl SpanProcessor for Collect {
        fn on_start(&self, _span: &mut Span, _cx: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().expect("lock").push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(super::bounded("short", 10), "short");
        assert_eq!(super::bounded("ééé", 3), "é…");
    }
}
