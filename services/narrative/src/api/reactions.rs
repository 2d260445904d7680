//! RegisterReaction and RevertReaction.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;

use super::{Access, Answer, decode, keyed};
use crate::app::Narrative;
use crate::domain::ContentRef;
use crate::proto;
use uuid::Uuid;

/// The user, content and reaction a reaction change names, validated whole, with its key
/// under `method` once the caller may act for the user.
fn reaction_call(
    body: &impl prost::Message,
    fields: [&str; 3],
    content: Option<&pb::ContentRef>,
    method: &'static str,
    access: &Access,
) -> Result<(Uuid, ContentRef, String, RequestKey), tonic::Status> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", fields[0]);
    let content = decode::content(&mut v, "content", content);
    let reaction = decode::reaction_text(&mut v, "reaction", fields[1]);
    let key = v.idempotency_key(fields[2]);
    let content = v.finish_with(content)?;
    let key = keyed(Violations::new(), access, user, key, method, body)?;
    Ok((user, content, reaction, key))
}

pub async fn register(
    n: &Narrative,
    body: &pb::RegisterReactionRequest,
    access: &Access,
) -> Answer<pb::RegisterReactionResponse> {
    let fields = [body.user_id.as_str(), &body.reaction, &body.idempotency_key];
    let (user, content, reaction, key) = reaction_call(
        body,
        fields,
        body.content.as_ref(),
        "RegisterReaction",
        access,
    )?;
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
    let fields = [body.user_id.as_str(), &body.reaction, &body.idempotency_key];
    let (user, content, reaction, key) = reaction_call(
        body,
        fields,
        body.content.as_ref(),
        "RevertReaction",
        access,
    )?;
    let (outcome, besitos) = n.revert_reaction(user, &content, &reaction, &key).await?;
    Ok(Response::new(pb::RevertReactionResponse {
        outcome: proto::reverted(outcome),
        besitos,
    }))
}
