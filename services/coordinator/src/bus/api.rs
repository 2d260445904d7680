//! `EventBusService`: requests decoded and validated, then one bus operation.

use std::time::Duration;

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::event_bus_service_server::EventBusService;
use phoenix_proto::events::v1 as events;
use phoenix_runtime::auth::Access;
use phoenix_runtime::error::{Error, Refusal, Violations};
use phoenix_runtime::stream::ResponseStream;
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::domain::{self, GroupName, Patterns};
use super::{BUS_ADMIN_ROLE, Bus, Leased, store};

/// Events one Publish may carry.
pub const MAX_PUBLISH: usize = 500;
/// Ids one Ack or ReplayDeadLetters may carry (per list).
pub const MAX_IDS: usize = 1_000;
const DEFAULT_IN_FLIGHT: i64 = 100;
const MAX_IN_FLIGHT: i64 = 1_000;
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ERROR_CHARS: usize = 1_000;

/// The tonic face of the bus.
#[derive(Debug, Clone)]
pub struct EventBusApi {
    bus: Bus,
}

impl EventBusApi {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }
}

fn admin<T>(request: &Request<T>) -> Result<(), Status> {
    Access::of(request, BUS_ADMIN_ROLE).admin()?;
    Ok(())
}

/// The ids of `values` (field `field[i]`), each a UUID.
fn uuids(violations: &mut Violations, field: &str, values: &[String]) -> Vec<Uuid> {
    if values.len() > MAX_IDS {
        violations.add(
            field,
            "TOO_MANY_IDS",
            format!("at most {MAX_IDS}, got {}", values.len()),
        );
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| violations.uuid(&format!("{field}[{i}]"), v))
        .collect()
}

fn known_group(exists: bool, group: &GroupName) -> Result<(), Error> {
    if exists {
        Ok(())
    } else {
        Err(Refusal::not_found(
            "CONSUMER_GROUP_NOT_FOUND",
            format!("no consumer group {} has subscribed", group.as_str()),
        )
        .at("consumer_group")
        .with("consumer_group", group.as_str())
        .into())
    }
}

/// A published event, validated, as it goes on the bus.
fn published(
    violations: &mut Violations,
    i: usize,
    event: &events::Event,
) -> Option<store::Ingest> {
    let field = |name: &str| format!("events[{i}].{name}");
    violations.uuid(&field("id"), &event.id);
    domain::check_event_type(violations, &field("type"), &event.r#type);
    violations.text(&field("aggregate_type"), &event.aggregate_type, 64);
    violations.text(&field("aggregate_id"), &event.aggregate_id, 256);
    violations.optional_uuid(&field("tenant_id"), &event.tenant_id);
    if event.priority != 0 && events::Priority::try_from(event.priority).is_err() {
        violations.add(
            field("priority"),
            "INVALID_ENUM",
            format!("{} is not a known priority", event.priority),
        );
    }
    if event.payload.as_ref().is_none_or(|p| p.type_url.is_empty()) {
        violations.add(
            field("payload"),
            "REQUIRED",
            "is required: a typed payload (Any)",
        );
    }
    if let Some(at) = &event.occurred_at {
        violations.check(
            phoenix_runtime::convert::time_from_proto(at).is_some(),
            &field("occurred_at"),
            "INVALID_TIMESTAMP",
            "must be a valid timestamp between 0001-01-01 and 9999-12-31",
        );
    }
    super::ingest_of(event.clone(), "publish", 0).ok()
}

fn delivery(leased: Leased) -> pb::SubscribeResponse {
    pb::SubscribeResponse {
        delivery: Some(pb::Delivery {
            delivery_id: leased.delivery_id.to_string(),
            event: events::Event::decode(leased.envelope.as_slice()).ok(),
            catalog_type: leased.catalog_type.unwrap_or_default(),
            attempt: leased.attempt,
            source: leased.source,
            source_position: leased.source_position,
        }),
    }
}

/// Page token of ListDeadLetters: `<dead_at micros>.<bus_seq>`.
fn dead_token(at: chrono::DateTime<chrono::Utc>, bus_seq: i64) -> String {
    format!("{}.{bus_seq}", at.timestamp_micros())
}

fn parse_dead_token(token: &str) -> Option<(chrono::DateTime<chrono::Utc>, i64)> {
    let (micros, seq) = token.split_once('.')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        seq.parse().ok()?,
    ))
}

#[tonic::async_trait]
impl EventBusService for EventBusApi {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        admin(&request)?;
        let events = &request.get_ref().events;
        let mut violations = Violations::new();
        if events.is_empty() {
            violations.add("events", "REQUIRED", "give 1 to 500 events");
        } else if events.len() > MAX_PUBLISH {
            violations.add(
                "events",
                "TOO_MANY_EVENTS",
                format!("at most {MAX_PUBLISH} events, got {}", events.len()),
            );
        }
        let mut ingests = Vec::with_capacity(events.len());
        let mut seen = std::collections::HashSet::new();
        for (i, event) in events.iter().enumerate() {
            if let Some(ingest) = published(&mut violations, i, event) {
                if !seen.insert(ingest.event_id) {
                    violations.add(
                        format!("events[{i}].id"),
                        "DUPLICATE_EVENT_ID",
                        "the same id is given twice in this request",
                    );
                }
                ingests.push(ingest);
            }
        }
        violations.finish()?;
        let (accepted, duplicates) = self.bus.publish(&ingests).await?;
        Ok(Response::new(pb::PublishResponse {
            accepted: i32::try_from(accepted).unwrap_or(i32::MAX),
            duplicates: i32::try_from(duplicates).unwrap_or(i32::MAX),
        }))
    }

    type SubscribeStream = ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        admin(&request)?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let group = GroupName::parse(&mut violations, "consumer_group", &r.consumer_group);
        let patterns = Patterns::parse(&mut violations, "patterns", &r.patterns);
        let in_flight = violations.page_size_of(
            "max_in_flight",
            r.max_in_flight,
            DEFAULT_IN_FLIGHT,
            MAX_IN_FLIGHT,
        );
        let ack_timeout = r
            .ack_timeout
            .as_ref()
            .map_or(Some(DEFAULT_ACK_TIMEOUT), |d| {
                phoenix_runtime::convert::duration_from_proto(d)
                    .and_then(|d| d.to_std().ok())
                    .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(600))
            });
        if ack_timeout.is_none() {
            violations.add(
                "ack_timeout",
                "INVALID_DURATION",
                "must be between 100 ms and 10 minutes",
            );
        }
        let max_deliveries = match r.max_deliveries {
            0 => None,
            n if (1..=100).contains(&n) => Some(n),
            n => {
                violations.add(
                    "max_deliveries",
                    "OUT_OF_RANGE",
                    format!(
                        "must be between 0 (keep the group's, 5 for a new one) and 100, got {n}"
                    ),
                );
                None
            }
        };
        violations.finish()?;
        let ack_timeout = ack_timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
        self.bus
            .join(group.as_str(), &patterns, max_deliveries, ack_timeout)
            .await?;

        let domain = phoenix_runtime::error::current_domain();
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let bus = self.bus.clone();
        let group = group.as_str().to_owned();
        tokio::spawn(async move {
            let member = Uuid::new_v4();
            let mut idle = 0;
            loop {
                let woken = bus.woken();
                tokio::pin!(woken);
                woken.as_mut().enable();
                match bus.lease(&group, member, in_flight, ack_timeout).await {
                    Ok(leased) if !leased.is_empty() => {
                        for one in leased {
                            if sender.send(Ok(delivery(one))).await.is_err() {
                                break;
                            }
                        }
                        if sender.is_closed() {
                            break;
                        }
                        idle = 0;
                        continue;
                    }
                    Ok(_) => idle += 1,
                    Err(error) => {
                        let _ = sender.send(Err(error.into_status(&domain))).await;
                        break;
                    }
                }
                tokio::select! {
                    () = sender.closed() => break,
                    more = bus.wait(woken, idle) => if !more { break },
                }
            }
            // What this stream held goes back to the line for the group's other members.
            if let Err(error) = bus.release_member(member).await {
                tracing::warn!(%error, "could not hand a closed subscription's leases back");
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn ack(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        admin(&request)?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let group = GroupName::parse(&mut violations, "consumer_group", &r.consumer_group);
        let done = uuids(&mut violations, "delivery_ids", &r.delivery_ids);
        if r.failures.len() > MAX_IDS {
            violations.add(
                "failures",
                "TOO_MANY_IDS",
                format!("at most {MAX_IDS}, got {}", r.failures.len()),
            );
        }
        let failed: Vec<(Uuid, String)> = r
            .failures
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let id = violations.uuid(&format!("failures[{i}].delivery_id"), &f.delivery_id);
                let error: String = f.error.chars().take(MAX_ERROR_CHARS).collect();
                (id, error.replace('\0', ""))
            })
            .collect();
        if done.is_empty() && failed.is_empty() {
            violations.add(
                "delivery_ids",
                "REQUIRED",
                "give the deliveries to acknowledge or report failed",
            );
        }
        violations.finish()?;
        let (acknowledged, failures) = self.bus.ack(group.as_str(), &done, &failed).await?;
        let unknown = (done.len() + failed.len()) as u64 - acknowledged - failures;
        Ok(Response::new(pb::AckResponse {
            acknowledged: i32::try_from(acknowledged).unwrap_or(i32::MAX),
            failed: i32::try_from(failures).unwrap_or(i32::MAX),
            unknown: i32::try_from(unknown).unwrap_or(i32::MAX),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        admin(&request)?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let group = GroupName::parse(&mut violations, "consumer_group", &r.consumer_group);
        let limit = violations.page_size(r.page_size, 50, 500);
        let after = violations.page_token(&r.page_token, parse_dead_token);
        violations.finish()?;
        known_group(
            store::group_exists(self.bus.pool(), group.as_str()).await?,
            &group,
        )?;
        let dead = self
            .bus
            .dead_letters(group.as_str(), after, limit + 1)
            .await?;
        let more = dead.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        let page: Vec<_> = dead
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = match page.last() {
            Some(last) if more => dead_token(last.dead_at, last.bus_seq),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: page
                .into_iter()
                .map(|d| pb::DeadLetter {
                    event: events::Event::decode(d.envelope.as_slice()).ok(),
                    catalog_type: d.catalog_type.unwrap_or_default(),
                    attempts: d.attempts,
                    last_error: d.last_error,
                    dead_at: Some(phoenix_runtime::convert::timestamp(d.dead_at)),
                    source: d.source,
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<pb::ReplayDeadLettersRequest>,
    ) -> Result<Response<pb::ReplayDeadLettersResponse>, Status> {
        admin(&request)?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let group = GroupName::parse(&mut violations, "consumer_group", &r.consumer_group);
        let ids = uuids(&mut violations, "event_ids", &r.event_ids);
        if ids.is_empty() && !r.all {
            violations.add(
                "event_ids",
                "REQUIRED",
                "give the dead letters' event ids, or set all to replay every one",
            );
        } else if !ids.is_empty() && r.all {
            violations.add(
                "all",
                "CONFLICTING_FIELDS",
                "set all, or give event_ids, not both",
            );
        }
        violations.finish()?;
        known_group(
            store::group_exists(self.bus.pool(), group.as_str()).await?,
            &group,
        )?;
        let replayed = self
            .bus
            .replay(group.as_str(), (!r.all).then_some(ids.as_slice()))
            .await?;
        Ok(Response::new(pb::ReplayDeadLettersResponse {
            replayed: i32::try_from(replayed).unwrap_or(i32::MAX),
        }))
    }
}
