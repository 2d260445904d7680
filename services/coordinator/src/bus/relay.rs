//! Relays: one task per source stream, in every coordinator; the one holding the source's lease
//! (`bus_sources`) follows the stream from the stored position over gRPC (the context's own
//! `Subscribe`, catch-up then follow) and puts each batch on the bus together with the new
//! position, fenced by the lease, so a coordinator that lost it writes nothing. After a crash
//! the next holder resumes from the last committed batch; events relayed twice are dropped on
//! their id.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use phoenix_proto::events::v1 as pb;
use phoenix_runtime::client::PeerChannel;
use phoenix_runtime::stream::EventStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Bus, ingest_of, metrics, store};

/// How long a relay's lease lasts; it is renewed at a third of it.
pub const SOURCE_LEASE: Duration = Duration::from_secs(10);
/// Events put on the bus per transaction, at most.
const BATCH: usize = 500;
/// How long a relay waits for more events before it writes what it has.
const LINGER: Duration = Duration::from_millis(5);
/// Wait before reconnecting a stream that failed, or trying a lease again.
const RETRY: Duration = Duration::from_secs(1);

/// Where a relay reads.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A context's `Subscribe` RPC, over this channel.
    Peer(&'static str, PeerChannel),
    /// The ledger's `Subscribe` of one tenant.
    LedgerTenant(Uuid, PeerChannel),
    /// The coordinator's own stream, in process.
    Own(EventStream),
}

/// A followed stream.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name on the bus and in `bus_sources`: the context's name, `ledger/<tenant>`.
    pub name: String,
    pub origin: Origin,
}

impl Source {
    pub fn peer(service: &'static str, channel: PeerChannel) -> Self {
        Self {
            name: service.to_owned(),
            origin: Origin::Peer(service, channel),
        }
    }

    pub fn ledger_tenant(tenant: Uuid, channel: PeerChannel) -> Self {
        Self {
            name: format!("ledger/{tenant}"),
            origin: Origin::LedgerTenant(tenant, channel),
        }
    }

    pub fn own(stream: EventStream) -> Self {
        Self {
            name: "coordinator".to_owned(),
            origin: Origin::Own(stream),
        }
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<(i64, pb::Event), String>> + Send>>;

/// Long enough for a follow stream; the server caps it at its maximum deadline, after which
/// the relay reconnects from its position.
const STREAM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

async fn open(origin: &Origin, after: i64) -> Result<Events, String> {
    fn request<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(STREAM_TIMEOUT);
        request
    }
    fn events<T: Send + 'static>(
        stream: tonic::Streaming<T>,
        read: fn(T) -> Option<(i64, pb::Event)>,
    ) -> Events {
        Box::pin(stream.filter_map(move |item| async move {
            match item {
                Ok(message) => read(message).map(Ok),
                Err(status) => Some(Err(format!("{}: {}", status.code(), status.message()))),
            }
        }))
    }
    let failed = |status: tonic::Status| format!("{}: {}", status.code(), status.message());
    match origin {
        Origin::Peer(service, channel) => {
            let channel = channel.clone();
            match *service {
                "directory" => {
                    use phoenix_proto::directory::v1 as d;
                    let stream = d::directory_service_client::DirectoryServiceClient::new(channel)
                        .subscribe(request(d::SubscribeRequest {
                            after_position: after,
                        }))
                        .await
                        .map_err(failed)?;
                    Ok(events(stream.into_inner(), |m| {
                        Some((m.position, m.event?))
                    }))
                }
                "narrative" => {
                    use phoenix_proto::narrative::v1 as n;
                    let stream = n::narrative_service_client::NarrativeServiceClient::new(channel)
                        .subscribe(request(n::SubscribeRequest {
                            after_position: after,
                        }))
                        .await
                        .map_err(failed)?;
                    Ok(events(stream.into_inner(), |m| {
                        Some((m.position, m.event?))
                    }))
                }
                "goals" => {
                    use phoenix_proto::goals::v1 as g;
                    let stream = g::goals_service_client::GoalsServiceClient::new(channel)
                        .subscribe(request(g::SubscribeRequest {
                            after_position: after,
                        }))
                        .await
                        .map_err(failed)?;
                    Ok(events(stream.into_inner(), |m| {
                        Some((m.position, m.event?))
                    }))
                }
                "conversations" => {
                    use phoenix_proto::conversations::v1 as c;
                    let stream =
                        c::conversations_service_client::ConversationsServiceClient::new(channel)
                            .subscribe(request(c::SubscribeRequest {
                                after_position: after,
                            }))
                            .await
                            .map_err(failed)?;
                    Ok(events(stream.into_inner(), |m| {
                        Some((m.position, m.event?))
                    }))
                }
                other => Err(format!("{other} has no event stream the bus can follow")),
            }
        }
        Origin::LedgerTenant(tenant, channel) => {
            use phoenix_proto::ledger::v1 as l;
            let stream =
                l::event_store_service_client::EventStoreServiceClient::new(channel.clone())
                    .subscribe(request(l::SubscribeRequest {
                        tenant_id: tenant.to_string(),
                        after_position: after,
                    }))
                    .await
                    .map_err(failed)?;
            Ok(events(stream.into_inner(), |m| {
                let stored = m.event?;
                Some((stored.position, stored.event?))
            }))
        }
        Origin::Own(stream) => {
            let events = stream
                .follow(None, after)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::pin(events.map(|item| {
                item.map(|event| (event.position, event.envelope()))
                    .map_err(|e| e.to_string())
            })))
        }
    }
}

/// Runs the relay of `source` until shutdown: takes the lease when it is free, relays while it
/// holds it, and gives it up at shutdown.
pub async fn run(bus: Bus, source: Source, shutdown: CancellationToken) {
    let owner = Uuid::new_v4();
    while !shutdown.is_cancelled() {
        match store::lease_source(bus.pool(), &source.name, owner, SOURCE_LEASE).await {
            Ok(Some(position)) => {
                if let Err(error) = relay(&bus, &source, owner, position, &shutdown).await {
                    metrics::relay_failed(&source.name);
                    tracing::warn!(source = %source.name, %error, "relay stopped; resuming from the stored position");
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(source = %source.name, %error, "could not take the relay lease")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
    let _ = store::release_source(bus.pool(), &source.name, owner).await;
}

/// Relays while `owner` holds the lease; returns when the stream fails or the lease is lost.
async fn relay(
    bus: &Bus,
    source: &Source,
    owner: Uuid,
    mut position: i64,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut events = open(&source.origin, position).await?;
    let mut renewed = Instant::now();
    loop {
        let renew_in = (SOURCE_LEASE / 3).saturating_sub(renewed.elapsed());
        let first = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            item = events.next() => item,
            () = tokio::time::sleep(renew_in) => {
                if store::lease_source(bus.pool(), &source.name, owner, SOURCE_LEASE)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    return Err("the relay lease was taken over".into());
                }
                renewed = Instant::now();
                continue;
            }
        };
        let mut batch = vec![first.ok_or("the stream ended")??];
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut failure = None;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(item))) => batch.push(item),
                Ok(Some(Err(error))) => {
                    failure = Some(error);
                    break;
                }
                Ok(None) => {
                    failure = Some("the stream ended".to_owned());
                    break;
                }
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(position, |item| item.0);
        let newest = batch
            .iter()
            .filter_map(|item| item.1.occurred_at.as_ref())
            .filter_map(phoenix_runtime::convert::time_from_proto)
            .max();
        let mut ingests = Vec::with_capacity(batch.len());
        for (at, event) in batch {
            match ingest_of(event, &source.name, at) {
                Ok(ingest) => ingests.push(ingest),
                Err(problem) => {
                    metrics::relay_skipped(&source.name);
                    tracing::error!(source = %source.name, position = at, %problem, "event skipped");
                }
            }
        }
        let written = bus
            .ingest(&ingests, (&source.name, owner, last))
            .await
            .map_err(|e| e.to_string())?;
        if written.is_none() {
            return Err("the relay lease was taken over".into());
        }
        renewed = Instant::now();
        position = last;
        metrics::relayed(&source.name, position, newest, ingests.len());
        bus.wake();
        if let Some(error) = failure {
            return Err(error);
        }
    }
}
