//! What the bus tests share: a coordinator (optionally following a directory) on either bus
//! backend, a second coordinator on the same database, events to publish, and reading
//! deliveries. [`on_both_backends!`] runs a test body on PostgreSQL and on NATS JetStream.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::event_bus_service_client::EventBusServiceClient;
use phoenix_proto::events::v1 as events;
use phoenix_runtime::RunningService;
use phoenix_testkit::TestService;
use prost::Message;
use tonic::transport::Channel;

pub type Bus = EventBusServiceClient<Channel>;

pub use phoenix_coordinator::bus::nats::Backend;
use phoenix_coordinator::bus::nats::server::LocalNatsServer;

/// Runs each `async fn name(backend: Backend)` of the test file on both backends, as the
/// tests `name::postgres` and `name::nats`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
            #[tokio::test]
            async fn nats() {
                super::$name(super::Backend::Nats).await
            }
        }
    )*};
}

/// The bus backend of a test's coordinators: on NATS, a `nats-server -js` of the test's own
/// (stopped when this is dropped: declare it before the coordinators).
pub struct BusBackend {
    pub backend: Backend,
    pub nats: Option<LocalNatsServer>,
    /// More `--bus-*` arguments for every coordinator on this backend.
    pub extra: Vec<String>,
}

impl BusBackend {
    /// Starts what `backend` needs; without nats-server the test fails saying how to get it.
    pub async fn start(backend: Backend) -> Self {
        let nats = match backend {
            Backend::Postgres => None,
            Backend::Nats => Some(
                LocalNatsServer::start()
                    .await
                    .unwrap_or_else(|e| panic!("the NATS bus tests need nats-server: {e:#}")),
            ),
        };
        Self {
            backend,
            nats,
            extra: Vec::new(),
        }
    }

    /// The coordinator's service arguments for this backend.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(nats) = &self.nats {
            args.push("--bus-backend=nats".to_owned());
            args.push(format!("--bus-nats-url={}", nats.url));
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// A coordinator on a fresh database; `directory` (when given) is followed by its relay.
pub async fn coordinator(directory: Option<&TestService>) -> TestService {
    coordinator_with(directory, Vec::new()).await
}

/// A coordinator whose bus runs on `backend`.
pub async fn coordinator_on(backend: &BusBackend, directory: Option<&TestService>) -> TestService {
    coordinator_with(directory, backend.args()).await
}

async fn coordinator_with(directory: Option<&TestService>, args: Vec<String>) -> TestService {
    let url = directory.map(TestService::url);
    phoenix_testkit::spawn_with(phoenix_coordinator::spec(), move |config| {
        if let Some(url) = url {
            config.peers.set_url("directory", url);
        }
        config.service_args.extend(args);
    })
    .await
}

/// A second coordinator on `first`'s database (another replica), following the same peers.
pub async fn second_instance(
    first: &TestService,
    directory: Option<&TestService>,
) -> (RunningService, Channel) {
    instance_with(&first.database.url, directory, Vec::new()).await
}

/// Like [`second_instance`], with its bus on `backend`.
pub async fn second_instance_on(
    first: &TestService,
    directory: Option<&TestService>,
    backend: &BusBackend,
) -> (RunningService, Channel) {
    instance_with(&first.database.url, directory, backend.args()).await
}

/// A coordinator on the database at `url`.
pub async fn instance_on(url: &str, directory: Option<&TestService>) -> (RunningService, Channel) {
    instance_with(url, directory, Vec::new()).await
}

/// A coordinator on the database at `url` with the service arguments `args`.
pub async fn instance_with(
    url: &str,
    directory: Option<&TestService>,
    args: Vec<String>,
) -> (RunningService, Channel) {
    let mut config = phoenix_testkit::test_config();
    config.service_args = args;
    if let Some(directory) = directory {
        config.peers.set_url("directory", directory.url());
    }
    let config = Arc::new(config);
    phoenix_testkit::serve_on(&phoenix_coordinator::spec(), url, config).await
}

pub fn bus(channel: &Channel) -> Bus {
    EventBusServiceClient::new(channel.clone())
}

/// A catalogue event (`coordinator.decision_taken` unless `event_type` says otherwise) of
/// `aggregate` at `version`, with `priority`.
pub fn event(
    event_type: &str,
    aggregate: &str,
    version: i64,
    priority: events::Priority,
    user: &str,
) -> events::Event {
    let payload = events::CoordinatorDecisionTaken {
        user_id: user.to_owned(),
        fragment_id: format!("{aggregate}-{version}"),
        ..Default::default()
    };
    events::Event {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: event_type.to_owned(),
        aggregate_type: "saga".into(),
        aggregate_id: aggregate.to_owned(),
        aggregate_version: version,
        occurred_at: Some(phoenix_runtime::convert::timestamp(chrono::Utc::now())),
        priority: priority.into(),
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/phoenix.events.v1.CoordinatorDecisionTaken".into(),
            value: payload.encode_to_vec(),
        }),
        ..Default::default()
    }
}

pub async fn publish(bus: &mut Bus, events: Vec<events::Event>) -> pb::PublishResponse {
    bus.publish(pb::PublishRequest { events })
        .await
        .expect("published")
        .into_inner()
}

/// Subscribes `group` to `patterns` with `ack_timeout_ms` and `max_deliveries`.
pub async fn subscribe(
    bus: &mut Bus,
    group: &str,
    patterns: &[&str],
    max_in_flight: i32,
    ack_timeout_ms: i64,
    max_deliveries: i32,
) -> tonic::Streaming<pb::SubscribeResponse> {
    bus.subscribe(pb::SubscribeRequest {
        consumer_group: group.into(),
        patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        max_in_flight,
        ack_timeout: Some(prost_types::Duration {
            seconds: ack_timeout_ms / 1000,
            nanos: i32::try_from((ack_timeout_ms % 1000) * 1_000_000).unwrap(),
        }),
        max_deliveries,
    })
    .await
    .expect("subscribed")
    .into_inner()
}

/// The next delivery, within `wait`.
pub async fn next(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
    wait: Duration,
) -> Option<pb::Delivery> {
    match tokio::time::timeout(wait, stream.message()).await {
        Ok(Ok(Some(message))) => message.delivery,
        Ok(Ok(None)) => None,
        Ok(Err(status)) => panic!("the subscription failed: {status:?}"),
        Err(_) => None,
    }
}

pub async fn ack(bus: &mut Bus, group: &str, ids: Vec<String>) -> pb::AckResponse {
    bus.ack(pb::AckRequest {
        consumer_group: group.into(),
        delivery_ids: ids,
        failures: Vec::new(),
    })
    .await
    .expect("acknowledged")
    .into_inner()
}

pub async fn fail(bus: &mut Bus, group: &str, id: String, error: &str) -> pb::AckResponse {
    bus.ack(pb::AckRequest {
        consumer_group: group.into(),
        delivery_ids: Vec::new(),
        failures: vec![pb::DeliveryFailure {
            delivery_id: id,
            error: error.into(),
        }],
    })
    .await
    .expect("failure recorded")
    .into_inner()
}

/// The fragment id the test payload carries (`<aggregate>-<version>`).
pub fn label(delivery: &pb::Delivery) -> String {
    let payload = delivery
        .event
        .as_ref()
        .and_then(|e| e.payload.as_ref())
        .expect("a payload");
    events::CoordinatorDecisionTaken::decode(payload.value.as_slice())
        .expect("the test payload")
        .fragment_id
}

/// Whether nothing is delivered for `millis`.
pub async fn quiet(stream: &mut tonic::Streaming<pb::SubscribeResponse>, millis: u64) -> bool {
    next(stream, Duration::from_millis(millis)).await.is_none()
}

/// The first page of a group's dead letters.
pub async fn dead_letters(bus: &mut Bus, group: &str) -> Vec<pb::DeadLetter> {
    bus.list_dead_letters(pb::ListDeadLettersRequest {
        consumer_group: group.into(),
        ..Default::default()
    })
    .await
    .expect("listed")
    .into_inner()
    .dead_letters
}

/// How many messages the bus's stream (`PHOENIX_BUS`) on the NATS server at `url` holds.
pub async fn stream_messages(url: &str) -> i64 {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("PHOENIX_BUS")
        .await
        .expect("the bus's stream");
    let info = stream.info().await.expect("the stream's state");
    i64::try_from(info.state.messages).unwrap()
}
