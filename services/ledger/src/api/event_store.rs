//! EventStoreService: read streams, subscribe, rehydrate.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::event_store_service_server::EventStoreService;
use tonic::{Request, Response, Status};

use phoenix_runtime::Violations;
use phoenix_runtime::stream::{self, StoredEvent};

use super::tenant_of;
use crate::app::Ledger;
use crate::domain::owner::MAX_OWNER_REF_CHARS;
use crate::domain::stock;
use crate::proto;

/// Longest stream type a request may name (the ledger's are words such as `inventory_item`).
const MAX_AGGREGATE_TYPE_CHARS: usize = 64;
/// Longest stream id a request may name: the longest the ledger writes is a holding's
/// `owner/item`.
const MAX_AGGREGATE_ID_CHARS: usize = MAX_OWNER_REF_CHARS + 1 + stock::MAX_CODE_CHARS;

/// `max_count`, a page size by another name: the runtime's page-size rule, refused naming
/// `max_count` (`Violations::page_size` names its field `page_size`).
fn max_count(violations: &mut Violations, value: i32) -> i64 {
    violations.page_size_of("max_count", value, 100, 1000)
}

fn stored_event(event: &StoredEvent) -> pb::StoredEvent {
    pb::StoredEvent {
        position: event.position,
        event: Some(event.envelope()),
    }
}

#[tonic::async_trait]
impl EventStoreService for Ledger {
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let aggregate_type = violations.text(
            "aggregate_type",
            &body.aggregate_type,
            MAX_AGGREGATE_TYPE_CHARS,
        );
        let aggregate_id =
            violations.text("aggregate_id", &body.aggregate_id, MAX_AGGREGATE_ID_CHARS);
        violations.check(
            body.from_version >= 0,
            "from_version",
            "INVALID_VERSION",
            "must be 0 or more",
        );
        let limit = max_count(&mut violations, body.max_count);
        violations.finish()?;
        let (events, stream_version) = self
            .stream_events(
                tenant_id,
                &aggregate_type,
                &aggregate_id,
                body.from_version,
                limit,
            )
            .await?;
        Ok(Response::new(pb::ReadStreamResponse {
            events: events.iter().map(stored_event).collect(),
            stream_version,
        }))
    }

    type SubscribeStream = stream::ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        let after = stream::after_position(&mut violations, request.get_ref().after_position);
        violations.finish()?;
        let events = self.follow_events(tenant_id, after).await?;
        Ok(Response::new(stream::response_stream(events, |event| {
            pb::SubscribeResponse {
                event: Some(stored_event(event)),
            }
        })))
    }

    async fn rehydrate_account(
        &self,
        request: Request<pb::RehydrateAccountRequest>,
    ) -> Result<Response<pb::RehydrateAccountResponse>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        let account_id = violations.uuid("account_id", &request.get_ref().account_id);
        violations.finish()?;
        let rebuilt = self.rebuild_account(tenant_id, account_id).await?;
        Ok(Response::new(pb::RehydrateAccountResponse {
            balance: Some(proto::balance(&rebuilt.balances)),
            version: rebuilt.version,
            snapshot_version: rebuilt.snapshot_version,
            events_replayed: rebuilt.events_replayed,
        }))
    }
}
