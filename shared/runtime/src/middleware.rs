//! The tower layer in front of every RPC. In order, it:
//!
//! 1. gives the call a request id (the caller's `x-request-id`, or a new UUID) and a span that
//!    continues the caller's W3C trace, so every log line of the call carries both ids;
//! 2. sets the deadline from `grpc-timeout`, capped by `PHOENIX_MAX_DEADLINE`, and answers
//!    DEADLINE_EXCEEDED when it passes;
//! 3. sheds load: past `PHOENIX_MAX_CONCURRENT_RPCS` calls in flight, RESOURCE_EXHAUSTED at once
//!    instead of a queue that grows until everything times out;
//! 4. authenticates the bearer token when authentication is on;
//! 5. injects the configured faults (`PHOENIX_FAULT_*`, off by default: see [`crate::fault`]);
//! 6. records the call's status code and latency in the metrics, writes one log line, and
//!    ends the span with the code (`rpc.grpc.status_code`) and, for the codes that say the
//!    server failed, status error (see [`telemetry::rpc`]).
//!
//! Health and reflection are exempt from 2–5: probes must work when the service is saturated,
//! and `Watch` streams outlive any deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use opentelemetry::trace::TraceContextExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Code;
use tonic::body::Body;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::Authenticator;
use crate::error::{Error, RUNTIME_DOMAIN, Refusal, RefusalKind, quote};
use crate::fault::{Fault, FaultPlan, StallPhase};
use crate::metrics::{self, MethodLabels, RpcLabels, ServiceLabels};
use crate::telemetry;

/// Header carrying the request id, read from the caller and echoed in the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Probes and tooling: never shed, never deadline-capped, never authenticated.
pub const EXEMPT_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

tokio::task_local! {
    /// The call being served, for the client interceptor's deadline and request id.
    pub static CURRENT_CALL: RequestContext;
}

/// Our deadline fires this much before the caller's, so the caller gets DEADLINE_EXCEEDED from
/// us rather than tonic's own `grpc-timeout` timer, which answers CANCELLED.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1);

/// What a handler can learn about the call it serves (from `request.extensions()`).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The serving service (`ledger`); its errors' ErrorInfo domain is `ledger.phoenix`.
    pub service: &'static str,
    pub request_id: String,
    pub deadline: Instant,
}

impl RequestContext {
    /// Time left before the call's deadline; what a downstream call may still spend.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The request context of a tonic request.
pub fn request_context<T>(request: &tonic::Request<T>) -> Option<&RequestContext> {
    request.extensions().get::<RequestContext>()
}

/// Limits and checks applied to every RPC of one service.
#[derive(Debug)]
pub struct RpcPolicy {
    pub service: &'static str,
    /// `package.Service/Method` of every RPC the server routes. Other paths are counted under
    /// `unknown`, so callers cannot grow the metrics without bound.
    pub known_methods: std::collections::HashSet<String>,
    pub max_deadline: Duration,
    pub permits: Arc<Semaphore>,
    pub authenticator: Option<Arc<Authenticator>>,
    /// Faults injected on purpose (`PHOENIX_FAULT_*`); `None` when off.
    pub faults: Option<FaultPlan>,
    /// What the health watcher last learned about the database: while it is known down, calls
    /// answer UNAVAILABLE at once instead of waiting for a connection that will not come.
    pub database: DatabaseState,
}

/// Whether the service's database answered its last health check.
#[derive(Debug, Clone, Default)]
pub struct DatabaseState {
    down: Arc<std::sync::atomic::AtomicBool>,
    /// How soon the next check may find it back: the RetryInfo delay callers get.
    recheck: Arc<std::sync::Mutex<Duration>>,
}

impl DatabaseState {
    pub fn set_down(&self, down: bool, recheck: Duration) {
        *self.recheck.lock().unwrap_or_else(|e| e.into_inner()) = recheck;
        self.down.store(down, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unavailable(&self) -> Error {
        let recheck = *self.recheck.lock().unwrap_or_else(|e| e.into_inner());
        Error::unavailable(
            "DATABASE_UNAVAILABLE",
            "the service's database did not answer its last health check; retry with backoff",
            Some(recheck),
        )
    }
}

#[derive(Debug, Clone)]
pub struct RpcLayer {
    policy: Arc<RpcPolicy>,
}

impl RpcLayer {
    pub fn new(policy: RpcPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    policy: Arc<RpcPolicy>,
}

impl<S, B> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must serve the call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        let started = Instant::now();

        let (grpc_service, grpc_method) = split_path(request.uri().path());
        let known = policy
            .known_methods
            .contains(request.uri().path().trim_start_matches('/'));
        let exempt = known && EXEMPT_SERVICES.contains(&grpc_service.as_str());
        let (grpc_service, grpc_method) = if known {
            (grpc_service, grpc_method)
        } else {
            ("unknown".to_owned(), "unknown".to_owned())
        };
        let request_id = request_id(request.headers());
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("{grpc_service}/{grpc_method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %grpc_service,
            rpc.method = %grpc_method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            caller = tracing::field::Empty,
        );
        let _ = span.set_parent(telemetry::server_parent(request.headers(), policy.service));
        let trace_context = span.context();
        span.record(
            "trace_id",
            tracing::field::display(trace_context.span().span_context().trace_id()),
        );

        let mut record = RpcRecord::start(
            policy.service,
            &grpc_service,
            &grpc_method,
            started,
            span.clone(),
        );
        let mut request = request.map(|body| {
            Body::new(telemetry::rpc::Watched::new(
                body,
                RequestBroken(record.request_broken.clone()),
            ))
        });
        let future = async move {
            let admitted = if exempt {
                Ok((policy.max_deadline, None))
            } else {
                admit(&policy, &mut request)
            };
            let mut response = match admitted {
                Err(error) => error.into_status(RUNTIME_DOMAIN).into_http::<Body>(),
                Ok((timeout, permit)) => {
                    record.permit = permit;
                    let fault = match &policy.faults {
                        Some(plan) if !exempt => {
                            plan.draw(request.uri().path().trim_start_matches('/'))
                        }
                        _ => None,
                    };
                    let context = RequestContext {
                        service: policy.service,
                        request_id: request_id.clone(),
                        deadline: started + timeout,
                    };
                    request.extensions_mut().insert(context.clone());
                    // A panicking handler must cost one call, not the connection and every call on it.
                    let call = CURRENT_CALL.scope(
                        context,
                        AssertUnwindSafe(inner.call(request)).catch_unwind(),
                    );
                    let call = with_fault(fault, call);
                    let outcome = if exempt {
                        Ok(call.await)
                    } else {
                        tokio::time::timeout_at((started + timeout).into(), call).await
                    };
                    match outcome {
                        Ok(Ok(response)) => undecodable_as_invalid(response?),
                        Ok(Err(panic)) => handler_panicked(panic.as_ref()),
                        Err(_) => deadline_exceeded(timeout),
                    }
                }
            };
            if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            telemetry::inject_context(&trace_context, response.headers_mut());
            record.status = telemetry::rpc::status_in(response.headers());
            let (parts, body) = response.into_parts();
            Ok(http::Response::from_parts(
                parts,
                Body::new(telemetry::rpc::StatusWatch::new(
                    body,
                    telemetry::rpc::Trailers(record),
                )),
            ))
        };
        Box::pin(future.instrument(span))
    }
}

/// The call as an injected fault changes it: refused before its handler, or held before or
/// after it (inside the deadline, which then passes).
async fn with_fault<F, E>(fault: Option<Fault>, call: F) -> F::Output
where
    F: Future<Output = Result<Result<http::Response<Body>, E>, Box<dyn std::any::Any + Send>>>,
{
    match fault {
        None => call.await,
        Some(Fault::Unavailable) => Ok(Ok(Fault::unavailable_error()
            .into_status(RUNTIME_DOMAIN)
            .into_http::<Body>())),
        Some(Fault::Stall { hold, phase }) => {
            if phase == StallPhase::Before {
                Fault::hold(hold).await;
            }
            let outcome = call.await;
            if phase == StallPhase::After {
                Fault::hold(hold).await;
            }
            outcome
        }
    }
}

/// Deadline, load shedding, authentication and the database's known state, in that order.
fn admit<B>(
    policy: &RpcPolicy,
    request: &mut http::Request<B>,
) -> Result<(Duration, Option<OwnedSemaphorePermit>), Error> {
    let timeout = match request.headers().get("grpc-timeout") {
        None => policy.max_deadline,
        Some(value) => parse_grpc_timeout(value.as_bytes())
            .ok_or_else(|| {
                Refusal::invalid(
                    "grpc-timeout",
                    "INVALID_TIMEOUT",
                    "must be 1 to 8 digits followed by a unit: H, M, S, m, u or n",
                )
            })?
            .min(policy.max_deadline),
    };
    let Some(timeout) = timeout
        .checked_sub(DEADLINE_MARGIN)
        .filter(|t| !t.is_zero())
    else {
        return Err(deadline_error(timeout));
    };
    let permit = policy.permits.clone().try_acquire_owned().map_err(|_| {
        metrics::global()
            .rpcs_shed
            .get_or_create(&ServiceLabels {
                service: policy.service.to_owned(),
            })
            .inc();
        Refusal::new(
            RefusalKind::Exhausted,
            "OVERLOADED",
            "the service is at its concurrency limit; retry with backoff",
        )
    })?;
    if let Some(authenticator) = &policy.authenticator {
        let caller = authenticator.authenticate(request.headers())?;
        tracing::Span::current().record("caller", tracing::field::display(&caller.subject));
        request.extensions_mut().insert(caller);
    }
    if policy.database.is_down() {
        return Err(policy.database.unavailable());
    }
    Ok((timeout, Some(permit)))
}

fn deadline_error(timeout: Duration) -> Error {
    Error::DeadlineExceeded {
        reason: "DEADLINE_EXCEEDED".into(),
        message: format!("the call's deadline of {timeout:?} passed"),
    }
}

fn deadline_exceeded(timeout: Duration) -> http::Response<Body> {
    deadline_error(timeout)
        .into_status(RUNTIME_DOMAIN)
        .into_http::<Body>()
}

/// tonic answers a request body it cannot decode (a wrong wire type, a truncated field, a
/// `Struct` nested past prost's recursion limit) with INTERNAL. That is the caller's malformed
/// input, not a fault of the service: INVALID_ARGUMENT `MALFORMED_MESSAGE`, with what prost
/// said (it describes the structure, never the values).
fn undecodable_as_invalid(response: http::Response<Body>) -> http::Response<Body> {
    const PREFIX: &str = "failed to decode Protobuf message";
    let headers = response.headers();
    if headers.get("grpc-status").is_none_or(|code| code != "13") {
        return response;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .filter(|m| m.starts_with(PREFIX))
    else {
        return response;
    };
    // prost says "<field path>: <what went wrong>"; the path of a deep message is long.
    let what = message[PREFIX.len()..].trim_start_matches(':').trim();
    let (path, cause) = what.rsplit_once(": ").unwrap_or(("", what));
    Error::from(Refusal::new(
        RefusalKind::Invalid,
        "MALFORMED_MESSAGE",
        format!(
            "the request is not a valid protobuf message of this method: {} (at {})",
            quote(cause),
            quote(path)
        ),
    ))
    .into_status(RUNTIME_DOMAIN)
    .into_http::<Body>()
}

fn handler_panicked(panic: &(dyn std::any::Any + Send)) -> http::Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    Error::internal(format_args!("handler panicked: {message}"))
        .into_status(RUNTIME_DOMAIN)
        .into_http::<Body>()
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}

fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Parses a `grpc-timeout` value as the gRPC over HTTP/2 spec defines it.
fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(amount * 3600),
        b"M" => Duration::from_secs(amount * 60),
        b"S" => Duration::from_secs(amount),
        b"m" => Duration::from_millis(amount),
        b"u" => Duration::from_micros(amount),
        b"n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Follows one call to its end (the last response byte, or the client going away): then it
/// counts the call, observes its latency and writes the access log line.
struct RpcRecord {
    service: &'static str,
    grpc_service: String,
    grpc_method: String,
    started: Instant,
    span: tracing::Span,
    /// The `grpc-status` seen, and its `grpc-message`.
    status: Option<telemetry::rpc::CallStatus>,
    /// Set when reading the request failed in the transport: the caller went away mid-request.
    request_broken: Arc<AtomicBool>,
    permit: Option<OwnedSemaphorePermit>,
}

/// Watches a request body for an error: the transport broke it (the caller's connection
/// closed, or its stream was reset, before the request was all sent).
struct RequestBroken(Arc<AtomicBool>);

impl<D, E> telemetry::rpc::WatchesFrames<D, E> for RequestBroken {
    fn polled(&mut self, polled: &Option<Result<http_body::Frame<D>, E>>) {
        if let Some(Err(_)) = polled {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

impl RpcRecord {
    fn start(
        service: &'static str,
        grpc_service: &str,
        grpc_method: &str,
        started: Instant,
        span: tracing::Span,
    ) -> Self {
        metrics::global()
            .rpcs_in_flight
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc();
        Self {
            service,
            grpc_service: grpc_service.to_owned(),
            grpc_method: grpc_method.to_owned(),
            started,
            span,
            status: None,
            request_broken: Arc::default(),
            permit: None,
        }
    }
}

impl Drop for RpcRecord {
    fn drop(&mut self) {
        // No status seen means the client went away before the end of the response. A request
        // the transport broke means it went away before the end of the request: tonic answers
        // that UNKNOWN (or INTERNAL), to nobody, and it is no fault of this service.
        let (code, message) = if self.request_broken.load(Ordering::Relaxed) {
            (
                Code::Cancelled,
                Some("the caller went away before the end of its request".to_owned()),
            )
        } else {
            self.status.take().unwrap_or((Code::Cancelled, None))
        };
        let elapsed = self.started.elapsed();
        let metrics = metrics::global();
        metrics
            .rpcs_in_flight
            .get_or_create(&ServiceLabels {
                service: self.service.to_owned(),
            })
            .dec();
        metrics
            .rpcs_handled
            .get_or_create(&RpcLabels {
                service: self.service.to_owned(),
                grpc_service: self.grpc_service.clone(),
                grpc_method: self.grpc_method.clone(),
                grpc_code: format!("{code:?}"),
            })
            .inc();
        metrics
            .rpc_duration
            .get_or_create(&MethodLabels {
                service: self.service.to_owned(),
                grpc_service: self.grpc_service.clone(),
                grpc_method: self.grpc_method.clone(),
            })
            .observe(elapsed.as_secs_f64());
        telemetry::rpc::record_status(
            &self.span,
            telemetry::rpc::Side::Server,
            code,
            message.as_deref(),
        );
        let _entered = self.span.enter();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        match code {
            Code::Ok
            | Code::NotFound
            | Code::AlreadyExists
            | Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::Aborted => {
                tracing::info!(grpc.code = ?code, elapsed_ms, "rpc finished");
            }
            _ => tracing::warn!(grpc.code = ?code, elapsed_ms, "rpc finished"),
        }
    }
}

impl telemetry::rpc::AwaitsStatus for RpcRecord {
    fn status_seen(&mut self, status: telemetry::rpc::CallStatus) {
        self.status = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_follows_the_spec() {
        assert_eq!(parse_grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout(b"250m"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_grpc_timeout(b"1n"), Some(Duration::from_nanos(1)));
        assert_eq!(parse_grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout(b"123456789S"), None, "at most 8 digits");
        assert_eq!(parse_grpc_timeout(b"S"), None);
        assert_eq!(parse_grpc_timeout(b"10x"), None);
        assert_eq!(parse_grpc_timeout(b""), None);
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, http::HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(
            REQUEST_ID_HEADER,
            http::HeaderValue::from_static("has space"),
        );
        assert_ne!(request_id(&headers), "has space");
    }

    fn policy() -> RpcPolicy {
        RpcPolicy {
            service: "test",
            known_methods: ["phoenix.test.v1.TestService/Explode".to_owned()].into(),
            max_deadline: Duration::from_secs(5),
            permits: Arc::new(Semaphore::new(4)),
            authenticator: None,
            faults: None,
            database: DatabaseState::default(),
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_and_frees_its_slot() {
        use tower::{Layer, ServiceExt};
        let policy = policy();
        let permits = policy.permits.clone();
        let service = RpcLayer::new(policy).layer(tower::service_fn(explode));
        let request = http::Request::builder()
            .uri("/phoenix.test.v1.TestService/Explode")
            .body(Body::empty())
            .expect("request");

        let response = service
            .oneshot(request)
            .await
            .expect("a response, not a dropped connection");

        assert_eq!(
            telemetry::rpc::status_in(response.headers()).map(|(code, _)| code),
            Some(Code::Internal)
        );
        drop(response);
        assert_eq!(
            permits.available_permits(),
            4,
            "the panicking call gave its slot back"
        );
    }

    async fn explode(
        _request: http::Request<Body>,
    ) -> Result<http::Response<Body>, std::convert::Infallible> {
        panic!("boom")
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/phoenix.ledger.v1.LedgerService/Transfer"),
            (
                "phoenix.ledger.v1.LedgerService".to_owned(),
                "Transfer".to_owned()
            )
        );
    }
}
