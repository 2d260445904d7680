//! Logs and traces. Every service logs through `tracing`: JSON lines in production,
//! human-readable text on a terminal. Spans are OpenTelemetry spans, exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context travels in gRPC metadata
//! (`traceparent`, `tracestate`), so a chain of calls across services is one trace.

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Keeps the tracer provider alive; dropping it flushes spans still buffered for export.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber, tracer provider and propagator. Call once, at start, inside a
/// Tokio runtime (the OTLP exporter runs on it).
pub fn init(config: &TelemetryConfig, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| {
        anyhow::anyhow!(
            "PHOENIX_LOG / --log: invalid filter {:?}: {e}",
            config.log_filter
        )
    })?;
    let provider = tracer_provider(config.otlp_endpoint.as_deref(), service_name)?;
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("phoenix"));

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
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    install_propagation(&provider);
    if config.otlp_endpoint.is_some() {
        tracing::info!(
            endpoint = config.otlp_endpoint.as_deref(),
            "exporting traces over OTLP"
        );
    }
    Ok(TelemetryGuard { provider })
}

/// Telemetry for tests: silent unless `PHOENIX_TEST_LOG` holds a filter (e.g. `debug`), but
/// with real span contexts so trace propagation behaves as in production. Safe to call often.
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
        let _ = tracing_subscriber::registry()
            .with(fmt_layer)
            .with(otel_layer)
            .try_init();
        install_propagation(&provider);
    });
}

fn tracer_provider(
    endpoint: Option<&str>,
    service_name: &str,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(endpoint) = endpoint else {
        // No exporter: spans still get real trace and span ids, which logs and propagation use.
        return Ok(builder.build());
    };
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| {
            anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export to {endpoint:?}: {e}")
        })?;
    // The batch processor runs on Tokio because the tonic exporter needs its reactor.
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(builder.with_span_processor(processor).build())
}

fn install_propagation(provider: &SdkTracerProvider) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
}

/// Reads W3C trace context from HTTP/2 headers (gRPC metadata).
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
