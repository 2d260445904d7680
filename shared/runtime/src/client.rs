//! Service-to-service calls. [`ClientBuilder`] makes a channel whose every call carries a deadline
//! (the caller's remaining time or a default), the current W3C trace context and request id, and
//! optionally a bearer token (fixed, or read from a file that may be rotated: [`BearerToken`]).
//! Every call is a CLIENT span ([`ClientSpans`]), the parent of the peer's server span.
//! [`ServiceContext::peer`](crate::ServiceContext::peer) builds one from the
//! `PHOENIX_PEER_*` settings. [`call_idempotent`] retries a call marked idempotent, with
//! exponential backoff and jitter, while the peer's answer says a retry can help, waiting at
//! least the delay of the peer's RetryInfo.

mod spans;

pub use spans::{ClientBody, ClientSpans, Peer};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use crate::error::{RemoteError, Retry};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A channel to a peer service with the outgoing interceptor installed and a span per call.
pub type PeerChannel = ClientSpans<InterceptedService<Channel, OutgoingCall>>;

/// Builds a [`PeerChannel`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    deadline: Duration,
    connect_timeout: Duration,
    tls: Option<ClientTlsConfig>,
    bearer_token: Option<BearerToken>,
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
    pub fn bearer_token(mut self, token: BearerToken) -> Self {
        self.bearer_token = Some(token);
        self
    }

    /// The credentials the `PHOENIX_PEER_*` settings give: their token, and for an `https://`
    /// peer their CA and client certificate. A file that cannot be read, or an `https://` peer
    /// without a CA to verify it, is an error naming the setting, so the service does not start.
    pub fn peer_credentials(
        mut self,
        settings: &crate::config::PeerCredentialsConfig,
    ) -> anyhow::Result<Self> {
        let read = |path: &Path, variable: &str| {
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("{variable}: cannot read {}: {e}", path.display()))
        };
        if let Some(token) = &settings.peer_token {
            self.bearer_token = Some(
                BearerToken::fixed(token)
                    .map_err(|e| anyhow::anyhow!("PHOENIX_PEER_TOKEN: {e}"))?,
            );
        } else if let Some(path) = &settings.peer_token_file {
            self.bearer_token = Some(
                BearerToken::from_file(path)
                    .map_err(|e| anyhow::anyhow!("PHOENIX_PEER_TOKEN_FILE: {e}"))?,
            );
        }
        if self.url.starts_with("https://") {
            let ca = settings.peer_tls_ca_file.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "PHOENIX_PEER_TLS_CA_FILE: {} is reached over https and needs a CA to verify it",
                    self.url
                )
            })?;
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca, "PHOENIX_PEER_TLS_CA_FILE")?));
            if let (Some(cert), Some(key)) =
                (&settings.peer_tls_cert_file, &settings.peer_tls_key_file)
            {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "PHOENIX_PEER_TLS_CERT_FILE")?,
                    read(key, "PHOENIX_PEER_TLS_KEY_FILE")?,
                ));
            }
            self.tls = Some(tls);
        }
        Ok(self)
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
        let peer = Peer::of(endpoint.uri());
        Ok(ClientSpans::new(
            InterceptedService::new(
                endpoint.connect_lazy(),
                OutgoingCall {
                    deadline: self.deadline,
                    authorization: self.bearer_token,
                },
            ),
            peer,
        ))
    }
}

/// Stamps every outgoing call with deadline, trace context and credentials. The trace context
/// is the current span's: inside [`ClientSpans`], the call's client span.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    deadline: Duration,
    authorization: Option<BearerToken>,
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
        if let Some(token) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", token.header());
        }
        Ok(request)
    }
}

/// How often a token file is looked at for a new token.
const TOKEN_FILE_CHECK: Duration = Duration::from_secs(5);

/// The bearer token a service sends to its peers: fixed, or the content of a file that is read
/// again when it changes (looked at no more than every few seconds), so a rotated Kubernetes
/// projected token or secret is picked up without a restart. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct BearerToken(Arc<Source>);

#[derive(Debug)]
enum Source {
    Fixed(MetadataValue<tonic::metadata::Ascii>),
    File {
        path: PathBuf,
        read: Mutex<FileRead>,
    },
}

#[derive(Debug)]
struct FileRead {
    header: MetadataValue<tonic::metadata::Ascii>,
    modified: Option<SystemTime>,
    checked: Instant,
}

impl BearerToken {
    /// A token that never changes.
    pub fn fixed(token: &str) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(Source::Fixed(header(token.trim())?))))
    }

    /// The token in `path` (surrounding whitespace ignored). It must be readable now: a service
    /// does not start with credentials it cannot send.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let (header, modified) = read_token(path)?;
        Ok(Self(Arc::new(Source::File {
            path: path.to_owned(),
            read: Mutex::new(FileRead {
                header,
                modified,
                checked: Instant::now(),
            }),
        })))
    }

    /// The `authorization` value to send now. A token file that cannot be read any more (a
    /// rotation half-way) keeps the last token, with a warning, rather than sending none.
    pub fn header(&self) -> MetadataValue<tonic::metadata::Ascii> {
        let (path, read) = match &*self.0 {
            Source::Fixed(header) => return header.clone(),
            Source::File { path, read } => (path, read),
        };
        let mut read = read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if read.checked.elapsed() >= TOKEN_FILE_CHECK {
            read.checked = Instant::now();
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified.is_none() || modified != read.modified {
                match read_token(path) {
                    Ok((header, modified)) => {
                        read.header = header;
                        read.modified = modified;
                    }
                    Err(e) => tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        "the peer token file cannot be read; sending the last token read"
                    ),
                }
            }
        }
        read.header.clone()
    }
}

#[cfg(test)]
impl BearerToken {
    /// Makes the next [`BearerToken::header`] look at the file, as if the interval had passed.
    fn look_again_now(&self) {
        if let Source::File { read, .. } = &*self.0 {
            let mut read = read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            read.checked = Instant::now()
                .checked_sub(TOKEN_FILE_CHECK)
                .unwrap_or(read.checked);
            // The clock of a file system may be coarse: a rewrite within the same tick must
            // still be seen, so the test forgets the modification time too.
            read.modified = None;
        }
    }
}

fn header(token: &str) -> anyhow::Result<MetadataValue<tonic::metadata::Ascii>> {
    anyhow::ensure!(!token.is_empty(), "the bearer token is empty");
    MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        anyhow::anyhow!("the bearer token is not a valid header value (visible ASCII only)")
    })
}

fn read_token(
    path: &Path,
) -> anyhow::Result<(MetadataValue<tonic::metadata::Ascii>, Option<SystemTime>)> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let token = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", path.display()))?;
    let header = header(token.trim())
        .map_err(|e| anyhow::anyhow!("the token file {}: {e}", path.display()))?;
    Ok((header, modified))
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

    #[test]
    fn a_token_file_is_read_again_when_it_changes_and_kept_when_it_vanishes() {
        let folder = std::env::temp_dir().join(format!("phoenix-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&folder).expect("folder");
        let path = folder.join("token");
        std::fs::write(&path, "first\n").expect("write");
        let token = BearerToken::from_file(&path).expect("readable");
        assert_eq!(token.header(), "Bearer first");

        std::fs::write(&path, "second").expect("rotate");
        assert_eq!(
            token.header(),
            "Bearer first",
            "looked at no more than every few seconds"
        );
        token.look_again_now();
        assert_eq!(token.header(), "Bearer second", "the rotated token is sent");

        std::fs::remove_file(&path).expect("remove");
        token.look_again_now();
        assert_eq!(
            token.header(),
            "Bearer second",
            "a vanished file keeps the last token"
        );

        std::fs::write(&path, "   ").expect("empty");
        let error = BearerToken::from_file(&path)
            .expect_err("empty")
            .to_string();
        assert!(error.contains("empty"), "{error}");
        let error = BearerToken::fixed("bad\ntoken")
            .expect_err("newline")
            .to_string();
        assert!(error.contains("visible ASCII"), "{error}");
        let _ = std::fs::remove_dir_all(&folder);
    }

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
