//! Service-to-service calls. [`ClientBuilder`] makes a channel whose every call carries a deadline
//! (the caller's remaining time or a default), the current W3C trace context and request id, and
//! optionally a bearer token. [`call_idempotent`] retries a call marked idempotent, with
//! exponential backoff and jitter, while the peer's answer says a retry can help, waiting at
//! least the delay of the peer's RetryInfo.

use std::future::Future;
use std::time::Duration;

use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::error::{RemoteError, Retry};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A channel to a peer service with the outgoing interceptor installed.
pub type PeerChannel = InterceptedService<Channel, OutgoingCall>;

/// Builds a [`PeerChannel`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    deadline: Duration,
    connect_timeout: Duration,
    tls: Option<ClientTlsConfig>,
    bearer_token: Option<String>,
}

impl ClientBuilder {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            deadline: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            tls: None,
            bearer_token: None,
        }
    }

    /// Deadline of calls that do not set their own.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Token sent as `authorization: Bearer <token>` on every call.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// A channel that connects on first use (and reconnects after failures), so a service can
    /// start before its peers.
    pub fn connect_lazy(self) -> anyhow::Result<PeerChannel> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| anyhow::anyhow!("invalid peer URL {:?}: {e}", self.url))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = self.tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        let authorization = self
            .bearer_token
            .map(|token| MetadataValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| anyhow::anyhow!("the bearer token is not a valid header value"))?;
        Ok(InterceptedService::new(
            endpoint.connect_lazy(),
            OutgoingCall {
                deadline: self.deadline,
                authorization,
            },
        ))
    }
}

/// Stamps every outgoing call with deadline, trace context and credentials.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    deadline: Duration,
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Interceptor for OutgoingCall {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        // Inside a call, the next hop gets no more than the time the caller has left.
        let caller = crate::middleware::CURRENT_CALL.try_with(Clone::clone).ok();
        if !request.metadata().contains_key("grpc-timeout") {
            let remaining = caller
                .as_ref()
                .map_or(self.deadline, |call| call.remaining().min(self.deadline));
            request.set_timeout(remaining);
        }
        if let Some(call) = &caller
            && let Ok(value) = MetadataValue::try_from(call.request_id.as_str())
        {
            request
                .metadata_mut()
                .insert(crate::middleware::REQUEST_ID_HEADER, value);
        }
        let mut headers = http::HeaderMap::new();
        crate::telemetry::inject_context(&tracing::Span::current().context(), &mut headers);
        for (name, value) in &headers {
            if let Ok(key) = MetadataKey::from_bytes(name.as_str().as_bytes())
                && let Ok(value) = MetadataValue::try_from(value.as_bytes())
            {
                request.metadata_mut().insert(key, value);
            }
        }
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}

/// How often and how patiently to retry an idempotent call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Runs `call`, an idempotent one (only such a call may run twice), and runs it again while
/// the peer's answer says a retry can help ([`RemoteError::retry`]: UNAVAILABLE, ABORTED, a
/// shed call), at most `max_attempts` times. A passed deadline is not retried: the next attempt
/// would have even less time. Backoff doubles each attempt, with full jitter, capped at
/// `max_backoff`; when the peer says how long to wait (RetryInfo), the pause is at least that,
/// and when that is longer than the current call has left, the peer's answer is returned now.
pub async fn call_idempotent<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        let status = match call().await {
            Ok(answer) => return Ok(answer),
            Err(status) => status,
        };
        if attempt >= policy.max_attempts || status.code() == Code::DeadlineExceeded {
            return Err(status);
        }
        let jittered = backoff.mul_f64(rand::random::<f64>());
        let pause = match RemoteError::from_status(&status).retry() {
            Retry::Never => return Err(status),
            Retry::Backoff => jittered,
            Retry::After(delay) => jittered.max(delay),
        };
        let remaining = crate::middleware::CURRENT_CALL
            .try_with(|call| call.remaining())
            .ok();
        if remaining.is_some_and(|left| pause >= left) {
            return Err(status);
        }
        tracing::debug!(attempt, ?pause, code = ?status.code(), error = %status.message(), "retrying");
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(policy.max_backoff);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_unavailable_then_succeeds() {
        let attempts = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let result = call_idempotent(policy, || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Status::unavailable("down"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.expect("third attempt succeeds"), 7);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_conflict_is_retried_and_a_passed_deadline_is_not() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let attempts = AtomicU32::new(0);
        let result = call_idempotent(policy, || async {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Status::aborted("moved on"))
            } else {
                Ok(1)
            }
        })
        .await;
        assert_eq!(result.expect("second attempt"), 1);
        let attempts = AtomicU32::new(0);
        let result: Result<(), _> = call_idempotent(policy, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(Status::deadline_exceeded("too late"))
        })
        .await;
        assert_eq!(result.expect_err("fails").code(), Code::DeadlineExceeded);
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let attempts = AtomicU32::new(0);
        let result: Result<(), _> = call_idempotent(RetryPolicy::default(), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(Status::invalid_argument("bad"))
        })
        .await;
        assert_eq!(result.expect_err("fails").code(), Code::InvalidArgument);
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let attempts = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let result: Result<(), _> = call_idempotent(policy, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(Status::unavailable("down"))
        })
        .await;
        assert_eq!(result.expect_err("fails").code(), Code::Unavailable);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }
}
