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
    AwaitsStatus, CallStatus, Side, StatusWatch, record_status, status_in,
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
            server.port = self.peer.port,
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
                            StatusWatch::new(body, record),
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
