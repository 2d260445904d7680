//! The CLIENT span of every call to a peer, per OpenTelemetry's RPC conventions: named
//! `package.Service/Method`, with `rpc.system`, `rpc.service`, `rpc.method`, the peer's
//! `server.address` and `server.port`, and when the call ends its `rpc.grpc.status_code`,
//! with status error for every code but OK. The call ends with its status: in the response
//! headers (a trailers-only answer), in the trailers after the last message (streams too), or
//! never, when the caller stops reading first (CANCELLED).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::{Code, Status};
use tracing::Instrument;

use crate::telemetry::rpc::{
    AwaitsStatus, CallStatus, Side, StatusWatch, Trailers, record_status, status_in,
};

/// The response body of a call through [`ClientSpans`]: the span ends with it.
pub type ClientBody<B> = StatusWatch<B, CallRecord>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps a channel (with its interceptor) so that each call is a client span; the interceptor
/// runs inside it, so the `traceparent` it sends names this span.
#[derive(Debug, Clone)]
pub struct ClientSpans<S> {
    inner: S,
    peer: Arc<Peer>,
}

/// Where the calls go, for `server.address` and `server.port`.
#[derive(Debug)]
pub struct Peer {
    address: String,
    port: u16,
}

impl Peer {
    pub fn of(uri: &http::Uri) -> Self {
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        Self {
            address: uri.host().unwrap_or_default().to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
        }
    }
}

impl<S> ClientSpans<S> {
    pub fn new(inner: S, peer: Peer) -> Self {
        Self {
            inner,
            peer: Arc::new(peer),
        }
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ClientSpans<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: http_body::Body + Send + 'static,
{
    type Response = http::Response<ClientBody<ResBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = %path,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            server.address = %self.peer.address,
            server.port = i64::from(self.peer.port),
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        let called = span.in_scope(|| self.inner.call(request));
        let mut record = CallRecord {
            span: span.clone(),
            status: None,
        };
        Box::pin(
            async move {
                match called.await {
                    Ok(response) => {
                        record.status = status_in(response.headers());
                        let (parts, body) = response.into_parts();
                        Ok(http::Response::from_parts(
                            parts,
                            StatusWatch::new(body, Trailers(record)),
                        ))
                    }
                    Err(error) => {
                        // What the generated client makes of the failure, so the span says
                        // what the caller sees (UNAVAILABLE for a refused connection…).
                        let status = Status::from_error(error.into());
                        record.status = Some((status.code(), Some(status.message().to_owned())));
                        drop(record);
                        Err(Box::new(status) as BoxError)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// Follows the call to its status, and ends the span with it.
pub struct CallRecord {
    span: tracing::Span,
    status: Option<CallStatus>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let (code, message) = self.status.take().unwrap_or((
            Code::Cancelled,
            Some("the caller stopped reading before the call's status".to_owned()),
        ));
        record_status(&self.span, Side::Client, code, message.as_deref());
        // The span ends when it is last exited: now, not when the headers arrived.
        let _entered = self.span.enter();
    }
}

impl AwaitsStatus for CallRecord {
    fn status_seen(&mut self, status: CallStatus) {
        self.status = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytes::Bytes;
    use opentelemetry::trace::{SpanKind, Status as SpanStatus, TracerProvider as _};
    use opentelemetry::{Key, Value};
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};
    use tower::ServiceExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::testing::Collect;

    /// A response body that yields its frames, then ends.
    struct Frames(VecDeque<http_body::Frame<Bytes>>);

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    fn trailers(code: &'static str) -> http_body::Frame<Bytes> {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static(code));
        trailers.insert("grpc-message", http::HeaderValue::from_static("not%20here"));
        http_body::Frame::trailers(trailers)
    }

    /// Calls a fake peer that streams two messages and then `code` in its trailers, reading
    /// the response to its end, or dropping it after the first message (`read_all` false).
    async fn stream_ending_with(code: &'static str, read_all: bool) -> SpanData {
        use http_body::Body as _;
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(collect.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);

        let peer = tower::service_fn(move |_request: http::Request<()>| async move {
            let frames = VecDeque::from([
                http_body::Frame::data(Bytes::from_static(b"one")),
                http_body::Frame::data(Bytes::from_static(b"two")),
                trailers(code),
            ]);
            Ok::<_, BoxError>(http::Response::new(Frames(frames)))
        });
        let channel = ClientSpans::new(peer, Peer::of(&"http://ledger:50051".parse().unwrap()));
        let request = http::Request::builder()
            .uri("http://ledger:50051/phoenix.ledger.v1.LedgerService/Follow")
            .body(())
            .expect("request");
        let response = channel.oneshot(request).await.expect("a response");
        let mut body = Box::pin(response.into_body());
        let reads = if read_all { 3 } else { 1 };
        for _ in 0..reads {
            std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
                .await
                .expect("a frame")
                .expect("not an error");
        }
        drop(body);
        let spans = collect.spans();
        assert_eq!(spans.len(), 1, "{spans:?}");
        spans.into_iter().next().expect("the client span")
    }

    fn attribute(span: &SpanData, key: &'static str) -> Option<Value> {
        let key = Key::from_static_str(key);
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.clone())
    }

    #[tokio::test]
    async fn a_stream_s_span_ends_with_the_code_of_its_trailers() {
        let span = stream_ending_with("5", true).await;
        assert_eq!(span.name, "phoenix.ledger.v1.LedgerService/Follow");
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(
            attribute(&span, "rpc.service"),
            Some("phoenix.ledger.v1.LedgerService".into())
        );
        assert_eq!(attribute(&span, "rpc.method"), Some("Follow".into()));
        assert_eq!(attribute(&span, "server.address"), Some("ledger".into()));
        assert_eq!(attribute(&span, "server.port"), Some(Value::I64(50051)));
        assert_eq!(
            attribute(&span, "rpc.grpc.status_code"),
            Some(Value::I64(5))
        );
        assert_eq!(span.status, SpanStatus::error("not here"));

        let span = stream_ending_with("0", true).await;
        assert_eq!(
            attribute(&span, "rpc.grpc.status_code"),
            Some(Value::I64(0))
        );
        assert_eq!(span.status, SpanStatus::Unset);
    }

    #[tokio::test]
    async fn a_stream_the_caller_stops_reading_is_cancelled() {
        let span = stream_ending_with("0", false).await;
        assert_eq!(
            attribute(&span, "rpc.grpc.status_code"),
            Some(Value::I64(1))
        );
        assert!(
            matches!(span.status, SpanStatus::Error { .. }),
            "{:?}",
            span.status
        );
    }
}
