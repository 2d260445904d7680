//! RegisterReaction and RevertReaction.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;

use super::{Access, Answer, decode};
use crate::app::Narrative;
use crate::proto;

pub async fn register(
    n: &Narrative,
    body: &pb::RegisterReactionRequest,
    access: &Access,
) -> Answer<pb::RegisterReactionResponse> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", &body.user_id);
    let content = decode::content(&mut v, "content", body.content.as_ref());
    let reaction = decode::reaction_text(&mut v, "reaction", &body.reaction);
    let key = v.idempotency_key(&body.idempotency_key);
    let content = v.finish_with(content)?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "RegisterReaction", body);
    let outcome = n.register_reaction(user, &content, &reaction, &key).await?;
    Ok(Response::new(pb::RegisterReactionResponse {
        reaction: Some(proto::reaction(&outcome.reaction)),
        created: outcome.created,
        besitos_to_grant: outcome.besitos_to_grant,
    }))
}

pub async fn revert(
    n: &Narrative,
    body: &pb::RevertReactionRequest,
    access: &Access,
) -> Answer<pb::RevertReactionResponse> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", &body.user_id);
    let content = decode::content(&mut v, "content", body.content.as_ref());
    let reaction = decode::reaction_text(&mut v, "reaction", &body.reaction);
    let key = v.idempotency_key(&body.idempotency_key);
    let content = v.finish_with(content)?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "RevertReaction", body);
    let (outcome, besitos) = n.revert_reaction(user, &content, &reaction, &key).await?;
    Ok(Response::new(pb::RevertReactionResponse {
        outcome: proto::reverted(outcome),
        besitos,
    }))
}
