//! Missions' consumer on the coordinator's event bus: goals' `TaskCompleted` takes linked
//! bosses' shields down (`app::tasks`). Started when the coordinator is configured as a peer
//! (`PHOENIX_COORDINATOR_URL`; `phoenix up` sets it).
//!
//! One subscription of the consumer group [`GROUP`], reconnected after any failure. Each
//! delivery is applied, then acknowledged: done, a duplicate (de-duplicated on the event id),
//! or refused by the rules (nothing to do). When the database cannot serve, the delivery is left
//! unacknowledged, and the bus delivers it again after the ack timeout. An event that can never
//! be applied (no UUID id, an undecodable payload) is reported failed, so it ends among the
//! group's dead letters.

use std::time::Duration;

use phoenix_proto::coordinator::v1 as bus;
use phoenix_proto::coordinator::v1::event_bus_service_client::EventBusServiceClient;
use phoenix_proto::goals::v1::TaskCompleted;
use phoenix_runtime::Error;
use phoenix_runtime::client::PeerChannel;
use prost::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::Missions;

/// The consumer group on the bus.
pub const GROUP: &str = "missions";
/// The types it receives: goals' envelope type and the name for it.
pub const PATTERNS: [&str; 2] = ["phoenix.goals.v1.TaskCompleted", "goals.task_completed"];
/// Deliveries held unacknowledged at once.
const IN_FLIGHT: i32 = 32;
/// Time to acknowledge a delivery before the bus delivers it again.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Deliveries without an acknowledgement (failures and ack timeouts) before a dead letter:
/// about 50 minutes of database outage at the ack timeout.
const MAX_DELIVERIES: i32 = 100;
/// Wait before subscribing again after the stream failed or ended.
const RETRY: Duration = Duration::from_secs(1);
/// Long enough for a follow stream; the bus caps it, and the consumer subscribes again.
const STREAM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What to answer the bus for one delivery.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ack,
    Fail(String),
    /// Not acknowledged: delivered again after the ack timeout.
    Leave,
}

/// Runs the consumer in the background until `shutdown`.
pub fn start(missions: Missions, channel: PeerChannel, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut client = EventBusServiceClient::new(channel);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = follow(&missions, &mut client) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    });
}

/// One subscription, until it fails or ends.
async fn follow(missions: &Missions, client: &mut EventBusServiceClient<PeerChannel>) {
    let mut request = tonic::Request::new(bus::SubscribeRequest {
        consumer_group: GROUP.to_owned(),
        patterns: PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
        max_in_flight: IN_FLIGHT,
        ack_timeout: prost_types::Duration::try_from(ACK_TIMEOUT).ok(),
        max_deliveries: MAX_DELIVERIES,
    });
    request.set_timeout(STREAM_TIMEOUT);
    let mut stream = match client.subscribe(request).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "cannot subscribe to the bus");
            return;
        }
    };
    tracing::info!(group = GROUP, "following goals' TaskCompleted on the bus");
    loop {
        let delivery = match stream.message().await {
            Ok(Some(message)) => match message.delivery {
                Some(delivery) => delivery,
                None => continue,
            },
            Ok(None) => return,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "the bus subscription failed");
                return;
            }
        };
        let verdict = handle(missions, &delivery).await;
        let ack = match verdict {
            Verdict::Ack => bus::AckRequest {
                consumer_group: GROUP.to_owned(),
                delivery_ids: vec![delivery.delivery_id],
                failures: Vec::new(),
            },
            Verdict::Fail(error) => bus::AckRequest {
                consumer_group: GROUP.to_owned(),
                delivery_ids: Vec::new(),
                failures: vec![bus::DeliveryFailure {
                    delivery_id: delivery.delivery_id,
                    error,
                }],
            },
            Verdict::Leave => continue,
        };
        // A lost ack only means a redelivery, which the event id de-duplicates.
        if let Err(status) = client.ack(ack).await {
            tracing::warn!(code = ?status.code(), message = status.message(), "cannot acknowledge on the bus");
        }
    }
}

/// Applies one delivery.
async fn handle(missions: &Missions, delivery: &bus::Delivery) -> Verdict {
    let (event_id, user_id, task_id) = match decode(delivery) {
        Ok(decoded) => decoded,
        Err(reason) => {
            tracing::error!(delivery = %delivery.delivery_id, %reason, "undecodable TaskCompleted");
            return Verdict::Fail(reason);
        }
    };
    match missions
        .apply_task_completed(event_id, user_id, task_id)
        .await
    {
        Ok(outcome) => {
            tracing::debug!(%event_id, ?outcome, "TaskCompleted applied");
            Verdict::Ack
        }
        Err(Error::Refused(refusal)) => {
            tracing::info!(%event_id, %refusal, "TaskCompleted refused: nothing to do");
            Verdict::Ack
        }
        Err(error) => {
            tracing::warn!(%event_id, %error, "TaskCompleted not applied now; the bus delivers it again");
            Verdict::Leave
        }
    }
}

/// The event id, the task's user and the task of a delivery.
fn decode(delivery: &bus::Delivery) -> Result<(Uuid, Uuid, Uuid), String> {
    let event = delivery.event.as_ref().ok_or("the delivery has no event")?;
    let event_id =
        Uuid::parse_str(&event.id).map_err(|_| format!("event id {:?} is not a UUID", event.id))?;
    let payload = event.payload.as_ref().ok_or("the event has no payload")?;
    let completed = TaskCompleted::decode(payload.value.as_slice())
        .map_err(|e| format!("the payload is not a TaskCompleted: {e}"))?;
    let task = completed.task.ok_or("the TaskCompleted has no task")?;
    let user_id = Uuid::parse_str(&task.user_id)
        .map_err(|_| format!("task user_id {:?} is not a UUID", task.user_id))?;
    let task_id =
        Uuid::parse_str(&task.id).map_err(|_| format!("task id {:?} is not a UUID", task.id))?;
    Ok((event_id, user_id, task_id))
}

#[cfg(test)]
mod tests {
    use phoenix_proto::events::v1::Event;
    use phoenix_proto::goals::v1::Task;

    use super::*;

    fn delivery(id: &str, payload: Vec<u8>) -> bus::Delivery {
        bus::Delivery {
            delivery_id: "d".into(),
            event: Some(Event {
                id: id.into(),
                payload: Some(prost_types::Any {
                    type_url: "type.googleapis.com/phoenix.goals.v1.TaskCompleted".into(),
                    value: payload,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn completed(user: &str, task: &str) -> Vec<u8> {
        TaskCompleted {
            task: Some(Task {
                id: task.into(),
                user_id: user.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn a_task_completed_gives_its_event_user_and_task() {
        let (event, user, task) = (Uuid::now_v7(), Uuid::new_v4(), Uuid::new_v4());
        let decoded = decode(&delivery(
            &event.to_string(),
            completed(&user.to_string(), &task.to_string()),
        ));
        assert_eq!(decoded, Ok((event, user, task)));
    }

    #[test]
    fn what_can_never_be_applied_is_named() {
        let task = Uuid::new_v4().to_string();
        let user = Uuid::new_v4().to_string();
        let event = Uuid::now_v7().to_string();
        let cases = [
            (delivery("e-1", completed(&user, &task)), "is not a UUID"),
            (delivery(&event, vec![0xff, 0xff]), "is not a TaskCompleted"),
            (delivery(&event, completed("someone", &task)), "user_id"),
            (delivery(&event, completed(&user, "t-1")), "task id"),
            (delivery(&event, Vec::new()), "has no task"),
        ];
        for (delivery, reason) in cases {
            let error = decode(&delivery).expect_err(reason);
            assert!(error.contains(reason), "{error} names {reason}");
        }
    }
}
