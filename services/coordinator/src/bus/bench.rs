//! `phoenix bench bus`: the bus end to end through `EventBusService` on one backend — events
//! published in batches over many aggregates, delivered to one subscriber of a fresh group that
//! acknowledges what it receives — and the figures: events per second from the first publish
//! to the last acknowledgement answered, and the delivery latency (publish to delivery) percentiles.
//! The CLI runs it on each backend in turn and prints one line per backend.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use clap::Args;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::event_bus_service_client::EventBusServiceClient;
use phoenix_proto::events::v1 as events;
use phoenix_runtime::bench::Phase;
use prost::Message;
use tonic::transport::Channel;
use uuid::Uuid;

use super::nats::Backend;

#[derive(Debug, Clone, Args)]
pub struct BusBenchArgs {
    /// Events published per backend.
    #[arg(long, default_value_t = 5_000)]
    pub events: usize,
    /// Aggregates the events are spread over (each aggregate's events are delivered in order).
    #[arg(long, default_value_t = 256)]
    pub aggregates: usize,
    /// Events per Publish call.
    #[arg(long, default_value_t = 100)]
    pub publish_batch: usize,
    /// The subscriber's max_in_flight.
    #[arg(long, default_value_t = 500)]
    pub max_in_flight: i32,
    /// The backends to measure, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "postgres,nats"
    )]
    pub backends: Vec<Backend>,
    /// Gives up on a backend that has not delivered every event by then.
    #[arg(long, default_value = "120s", value_parser = phoenix_runtime::config::positive_duration)]
    pub timeout: Duration,
}

/// What one backend did.
#[derive(Debug, Clone)]
pub struct BusResults {
    pub backend: Backend,
    pub phase: Phase,
    /// Deliveries beyond one per event (redeliveries the subscriber saw).
    pub redelivered: u64,
}

impl BusResults {
    pub fn line(&self) -> String {
        format!(
            "bus-bench backend={} events={} events_per_s={:.0} p50_ms={:.2} p99_ms={:.2} redelivered={}",
            match self.backend {
                Backend::Postgres => "postgres",
                Backend::Nats => "nats",
            },
            self.phase.operations,
            self.phase.per_second(),
            self.phase.p50_ms,
            self.phase.p99_ms,
            self.redelivered
        )
    }
}

/// Runs the benchmark against the coordinator at `url` whose bus is on `backend`.
pub async fn run(url: &str, backend: Backend, args: &BusBenchArgs) -> anyhow::Result<BusResults> {
    anyhow::ensure!(
        args.events > 0 && args.aggregates > 0 && args.publish_batch > 0,
        "--events, --aggregates and --publish-batch must be positive"
    );
    anyhow::ensure!(
        (1..=super::api::MAX_PUBLISH).contains(&args.publish_batch),
        "--publish-batch: at most {} events per Publish",
        super::api::MAX_PUBLISH
    );
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut client = EventBusServiceClient::new(channel);
    // A run of its own: a fresh group and an event type nothing else publishes.
    let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let event_type = format!("bench.r{run}");
    let group = format!("bench-{run}");
    let mut deliveries = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: group.clone(),
            patterns: vec![event_type.clone()],
            max_in_flight: args.max_in_flight,
            ack_timeout: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
            max_deliveries: 0,
        })
        .await?
        .into_inner();

    let started = Instant::now();
    let publisher = {
        let mut client = client.clone();
        let args = args.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            while sent < args.events {
                let batch = (sent..args.events.min(sent + args.publish_batch))
                    .map(|n| bench_event(&event_type, n, args.aggregates))
                    .collect::<Vec<_>>();
                sent += batch.len();
                client.publish(pb::PublishRequest { events: batch }).await?;
            }
            anyhow::Ok(())
        })
    };

    // Acknowledged in batches of what has arrived, as a consumer keeping up would.
    let (done, mut to_ack) = tokio::sync::mpsc::unbounded_channel::<String>();
    let acker = {
        let mut client = client.clone();
        let group = group.clone();
        tokio::spawn(async move {
            while let Some(first) = to_ack.recv().await {
                let mut ids = vec![first];
                while ids.len() < super::api::MAX_IDS {
                    match to_ack.try_recv() {
                        Ok(id) => ids.push(id),
                        Err(_) => break,
                    }
                }
                client
                    .ack(pb::AckRequest {
                        consumer_group: group.clone(),
                        delivery_ids: ids,
                        failures: Vec::new(),
                    })
                    .await?;
            }
            anyhow::Ok(())
        })
    };
    let mut seen = HashSet::with_capacity(args.events);
    let mut latencies = Vec::with_capacity(args.events);
    let mut redelivered = 0;
    let deadline = tokio::time::Instant::now() + args.timeout;
    while seen.len() < args.events {
        let message = tokio::time::timeout_at(deadline, deliveries.message())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} of {} events delivered within {:?}",
                    seen.len(),
                    args.events,
                    args.timeout
                )
            })??
            .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
        let Some(delivery) = message.delivery else {
            continue;
        };
        let event = delivery.event.clone().unwrap_or_default();
        if seen.insert(event.id.clone()) {
            if let Some(at) = event
                .occurred_at
                .as_ref()
                .and_then(phoenix_runtime::convert::time_from_proto)
            {
                let waited = chrono::Utc::now() - at;
                latencies.push(waited.num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        } else {
            redelivered += 1;
        }
        done.send(delivery.delivery_id)?;
    }
    drop(done);
    acker.await??;
    let seconds = started.elapsed().as_secs_f64();
    publisher.await??;
    latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(at).copied().unwrap_or(0.0)
    };
    Ok(BusResults {
        backend,
        phase: Phase {
            operations: seen.len() as u64,
            errors: 0,
            seconds,
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
        },
        redelivered,
    })
}

/// The `n`th event: aggregate `n % aggregates`, occurred now (the latency's start).
fn bench_event(event_type: &str, n: usize, aggregates: usize) -> events::Event {
    let payload = events::CoordinatorDecisionTaken {
        fragment_id: format!("bench-{n}"),
        ..Default::default()
    };
    events::Event {
        id: Uuid::now_v7().to_string(),
        r#type: event_type.to_owned(),
        aggregate_type: "bench".into(),
        aggregate_id: format!("a{}", n % aggregates),
        aggregate_version: i64::try_from(n / aggregates + 1).unwrap_or(i64::MAX),
        occurred_at: Some(phoenix_runtime::convert::timestamp(chrono::Utc::now())),
        priority: events::Priority::Normal.into(),
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/phoenix.events.v1.CoordinatorDecisionTaken".into(),
            value: payload.encode_to_vec(),
        }),
        ..Default::default()
    }
}
