//! One `service.name` per service when several run in one process (`phoenix up`).
//!
//! OpenTelemetry puts `service.name` on the resource, and a tracer provider has one resource.
//! So the process gets one exporting processor per service, each with its own resource, behind
//! a [`ServiceRouter`] that hands each finished span to the processor of the service it belongs
//! to. Which service that is travels in the OpenTelemetry context ([`ServiceRoute`]): the RPC
//! layer puts the serving service into the context its server span starts from, every span
//! started under it (client calls, SQL statements, the handler's own spans) inherits that
//! context, and [`ServiceRouter::on_start`] writes it on the span as `phoenix.service`, which
//! [`ServiceRouter::on_end`] reads back. A span started outside any call (a background job's)
//! goes to the process's own processor.

use std::time::Duration;

use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// The span attribute naming the Phoenix service a span belongs to (`ledger`).
pub const SERVICE_ATTRIBUTE: &str = "phoenix.service";

/// The service whose work the current context describes; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRoute(pub &'static str);

/// Routes each span to the processor of its service; see the module documentation.
#[derive(Debug)]
pub struct ServiceRouter<P> {
    /// The processor of spans that belong to no listed service.
    process: P,
    services: Vec<(&'static str, P)>,
}

impl<P: SpanProcessor> ServiceRouter<P> {
    /// `process` gets the spans of no listed service. Each processor must already know its
    /// resource: the provider's [`SpanProcessor::set_resource`] is not passed on, since it would
    /// give every service the same name.
    pub fn new(process: P, services: Vec<(&'static str, P)>) -> Self {
        Self { process, services }
    }

    fn processor(&self, service: Option<&str>) -> &P {
        service
            .and_then(|service| {
                self.services
                    .iter()
                    .find(|(name, _)| *name == service)
                    .map(|(_, processor)| processor)
            })
            .unwrap_or(&self.process)
    }

    fn all(&self) -> impl Iterator<Item = &P> {
        std::iter::once(&self.process).chain(self.services.iter().map(|(_, p)| p))
    }
}

impl<P: SpanProcessor> SpanProcessor for ServiceRouter<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let route = cx.get::<ServiceRoute>().copied();
        if let Some(ServiceRoute(service)) = route {
            span.set_attribute(KeyValue::new(SERVICE_ATTRIBUTE, service));
        }
        self.processor(route.map(|r| r.0)).on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let service = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == SERVICE_ATTRIBUTE)
            .map(|kv| kv.value.as_str());
        let processor = self.processor(service.as_deref());
        processor.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        first_error(self.all().map(SpanProcessor::force_flush))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        first_error(self.all().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // Each processor was given its service's resource when it was built.
    }
}

fn first_error(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let errors: Vec<OTelSdkError> = results.filter_map(Result::err).collect();
    match errors.into_iter().next() {
        None => Ok(()),
        Some(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::testing::Collect;
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    #[test]
    fn spans_go_to_the_processor_of_the_service_in_their_context() {
        let process = Collect::default();
        let ledger = Collect::default();
        let router = ServiceRouter::new(process.clone(), vec![("ledger", ledger.clone())]);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(router)
            .build();
        let tracer = provider.tracer("test");

        let in_ledger = Context::new().with_value(ServiceRoute("ledger"));
        tracer.start_with_context("served", &in_ledger).end();
        tracer
            .start_with_context("background", &Context::new())
            .end();
        let elsewhere = Context::new().with_value(ServiceRoute("missing"));
        tracer
            .start_with_context("unknown service", &elsewhere)
            .end();

        assert_eq!(ledger.names(), ["served"]);
        assert_eq!(process.names(), ["background", "unknown service"]);
        let spans = ledger.spans();
        assert!(
            spans[0]
                .attributes
                .contains(&KeyValue::new(SERVICE_ATTRIBUTE, "ledger")),
            "{:?}",
            spans[0].attributes
        );
    }
}
