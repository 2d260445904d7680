//! What the server span ([`crate::middleware`]) and the client span ([`crate::client`]) of a
//! call record when it ends, as OpenTelemetry's RPC conventions for gRPC say: the numeric
//! `rpc.grpc.status_code`, and span status error for the codes that are errors on that side.

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Code;

/// Longest status message a span carries, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

/// A call's status, as [`status_in`] reads it: the code and its message.
pub type CallStatus = (Code, Option<String>);

/// What follows a call to its end and wants its status when the trailers bring it.
pub trait AwaitsStatus {
    fn status_seen(&mut self, status: CallStatus);
}

/// What a [`Watched`] body shows each frame it yields, or the error that broke it.
pub trait WatchesFrames<D, E> {
    fn polled(&mut self, polled: &Option<Result<http_body::Frame<D>, E>>);
}

pin_project_lite::pin_project! {
    /// A body passed through unchanged, each of its frames shown to `watcher`.
    pub struct Watched<B, W> {
        #[pin]
        inner: B,
        watcher: W,
    }
}

impl<B, W> Watched<B, W> {
    pub fn new(inner: B, watcher: W) -> Self {
        Self { inner, watcher }
    }
}

impl<B: http_body::Body, W: WatchesFrames<B::Data, B::Error>> http_body::Body for Watched<B, W> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            this.watcher.polled(frame);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Watches a response body for the `grpc-status` trailer, which it hands to its record.
#[derive(Debug)]
pub struct Trailers<R>(pub R);

impl<R: AwaitsStatus, D, E> WatchesFrames<D, E> for Trailers<R> {
    fn polled(&mut self, polled: &Option<Result<http_body::Frame<D>, E>>) {
        if let Some(Ok(frame)) = polled
            && let Some(status) = frame.trailers_ref().and_then(status_in)
        {
            self.0.status_seen(status);
        }
    }
}

/// A response body watched for its `grpc-status` trailer.
pub type StatusWatch<B, R> = Watched<B, Trailers<R>>;

/// Which side of the call a span describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    /// Whether `code` makes the span's status error. A server answers NOT_FOUND or
    /// INVALID_ARGUMENT as it should, so only the codes that say the server failed are its
    /// errors; for the client every code but OK is one.
    pub fn is_error(self, code: Code) -> bool {
        match self {
            Side::Client => code != Code::Ok,
            Side::Server => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
        }
    }
}

/// The gRPC status in `headers` (response headers of a trailers-only answer, or trailers).
pub fn status_in(headers: &http::HeaderMap) -> Option<CallStatus> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()
        .map(Code::from_i32)?;
    let message = headers
        .get("grpc-message")
        .map(|value| percent_decode(value.as_bytes()));
    Some((code, message))
}

/// Records the call's outcome on `span`, which declared the fields `rpc.grpc.status_code`,
/// `otel.status_code` and `otel.status_description`.
pub fn record_status(span: &tracing::Span, side: Side, code: Code, message: Option<&str>) {
    span.record("rpc.grpc.status_code", code as i64);
    if side.is_error(code) {
        span.record("otel.status_code", "error");
        let message = match message {
            Some(message) if !message.is_empty() => message,
            _ => code.description(),
        };
        span.record(
            "otel.status_description",
            super::bounded(message, MAX_MESSAGE_BYTES),
        );
    }
}

/// `grpc-message` is percent-encoded (the gRPC over HTTP/2 spec); bad escapes stay as they are.
fn percent_decode(value: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        let escaped = (value[index] == b'%')
            .then(|| value.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(value[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_errs_only_on_its_own_failures_and_the_client_on_any_code_but_ok() {
        for code in [Code::NotFound, Code::InvalidArgument, Code::Cancelled] {
            assert!(!Side::Server.is_error(code), "{code:?}");
            assert!(Side::Client.is_error(code), "{code:?}");
        }
        for code in [Code::Internal, Code::Unavailable, Code::DeadlineExceeded] {
            assert!(Side::Server.is_error(code), "{code:?}");
        }
        assert!(!Side::Client.is_error(Code::Ok));
    }

    #[test]
    fn status_and_message_are_read_from_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("no%20such%20account%3A%20%E2%82%AC%zz"),
        );
        assert_eq!(
            status_in(&headers),
            Some((Code::NotFound, Some("no such account: €%zz".to_owned())))
        );
    }
}
