//! EventStoreService: read streams, subscribe, rehydrate.

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use phoenix_proto::events::v1 as events_pb;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::event_store_service_server::EventStoreService;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use phoenix_runtime::Violations;

use super::{Ledger, tenant_of};
use crate::proto;
use crate::store;
use crate::store::events::StoredEvent;

/// How often a caught-up subscription looks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);
/// Events read per query while catching up.
const CATCH_UP_PAGE: i64 = 500;

fn stored_event(event: StoredEvent) -> pb::StoredEvent {
    let priority = match event.priority {
        1 => events_pb::Priority::Low,
        3 => events_pb::Priority::High,
        4 => events_pb::Priority::Critical,
        _ => events_pb::Priority::Normal,
    };
    pb::StoredEvent {
        position: event.position,
        event: Some(events_pb::Event {
            id: event.event_id.to_string(),
            r#type: event.event_type.clone(),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            aggregate_version: event.version,
            occurred_at: Some(proto::timestamp(event.occurred_at)),
            priority: priority.into(),
            trace_context: Some(events_pb::TraceContext {
                traceparent: event.traceparent,
                tracestate: event.tracestate,
            }),
            payload: Some(prost_types::Any {
                type_url: format!("type.googleapis.com/{}", event.event_type),
                value: event.payload,
            }),
            tenant_id: event.tenant_id.to_string(),
            correlation_id: event.correlation_id,
        }),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventStoreService for Ledger {
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        violations.check(
            !body.aggregate_type.is_empty(),
            "aggregate_type",
            "REQUIRED",
            "is required, e.g. account",
        );
        violations.check(
            !body.aggregate_id.is_empty(),
            "aggregate_id",
            "REQUIRED",
            "is required",
        );
        violations.check(
            body.from_version >= 0,
            "from_version",
            "INVALID_VERSION",
            "must be 0 or more",
        );
        let limit = violations.page_size(body.max_count, 100, 1000);
        violations.finish()?;
        let (events, stream_version) = store::events::read_stream(
            &self.pool,
            tenant_id,
            &body.aggregate_type,
            &body.aggregate_id,
            body.from_version.max(1),
            limit,
        )
        .await?;
        Ok(Response::new(pb::ReadStreamResponse {
            events: events.into_iter().map(stored_event).collect(),
            stream_version,
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        let after = request.get_ref().after_position;
        violations.check(
            after >= 0,
            "after_position",
            "INVALID_POSITION",
            "must be 0 (from the start) or the position of a delivered event",
        );
        violations.finish()?;
        store::tenants::get(&self.pool, tenant_id).await?;
        let mut cursor = store::events::cursor_after(&self.pool, tenant_id, after).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(CATCH_UP_PAGE as usize);
        let pool = self.pool.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    () = shutdown.cancelled() => return,
                    batch = store::events::next_events(&pool, tenant_id, &mut cursor, CATCH_UP_PAGE) => batch,
                };
                match batch {
                    Ok(events) if events.is_empty() => {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = sender.closed() => return,
                            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                        }
                    }
                    Ok(events) => {
                        for event in events {
                            let message = pb::SubscribeResponse {
                                event: Some(stored_event(event)),
                            };
                            if sender.send(Ok(message)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn rehydrate_account(
        &self,
        request: Request<pb::RehydrateAccountRequest>,
    ) -> Result<Response<pb::RehydrateAccountResponse>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        let account_id = violations.uuid("account_id", &request.get_ref().account_id);
        violations.finish()?;
        let (balances, version, snapshot_version, events_replayed) =
            store::ledger::rehydrate(&self.pool, tenant_id, account_id).await?;
        Ok(Response::new(pb::RehydrateAccountResponse {
            balance: Some(proto::balance(&balances)),
            version,
            snapshot_version,
            events_replayed,
        }))
    }
}
