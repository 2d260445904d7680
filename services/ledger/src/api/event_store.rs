//! EventStoreService: read streams, subscribe, rehydrate.

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use phoenix_proto::events::v1 as events_pb;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::event_store_service_server::EventStoreService;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Ledger, invalid, page_size, tenant_of, uuid_field};
use crate::domain::Refusal;
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let body = request.get_ref();
        let mut refusals = Vec::new();
        if body.aggregate_type.is_empty() {
            refusals.push(Refusal::invalid(
                "aggregate_type",
                "REQUIRED",
                "is required, e.g. account",
            ));
        }
        if body.aggregate_id.is_empty() {
            refusals.push(Refusal::invalid("aggregate_id", "REQUIRED", "is required"));
        }
        if body.from_version < 0 {
            refusals.push(Refusal::invalid(
                "from_version",
                "INVALID_VERSION",
                "must be 0 or more",
            ));
        }
        if !refusals.is_empty() {
            return Err(invalid(refusals).into());
        }
        let limit = page_size(body.max_count, 100, 1000)?;
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let after = request.get_ref().after_position;
        if after < 0 {
            return Err(invalid(vec![Refusal::invalid(
                "after_position",
                "INVALID_POSITION",
                "must be 0 (from the start) or the position of a delivered event",
            )])
            .into());
        }
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let account_id = uuid_field("account_id", &request.get_ref().account_id)?;
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
