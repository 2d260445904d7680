//! Reactions: registering a user's reaction (paying its reward once) and its compensation.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{IDEMPOTENCY_TTL, Narrative, UserChange};
use crate::domain::{ContentKind, ContentRef, Reaction, ReactionReward, Reverted};
use crate::store::{catalog, reactions as store};
use crate::{error, proto};

/// What RegisterReaction answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionOutcome {
    pub reaction: Reaction,
    pub created: bool,
    pub besitos_to_grant: i64,
}

/// NOT_FOUND naming `field` when `content` is a fragment or experience that does not exist
/// (channel posts belong to the channel, and are taken as given).
pub(super) async fn content_exists(
    connection: &mut PgConnection,
    content: &ContentRef,
    field: &str,
) -> Result<(), Error> {
    let experiences = match content.kind {
        ContentKind::ChannelPost => return Ok(()),
        ContentKind::Fragment => false,
        ContentKind::Experience => true,
    };
    let id = Uuid::try_parse(&content.id).map_err(|_| {
        Error::invariant(
            "CONTENT_ID_UNCHECKED",
            "a content id reached the use case unparsed",
        )
    })?;
    if catalog::missing(&mut *connection, experiences, &[id])
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let refusal = if experiences {
        error::experience_not_found(id)
    } else {
        error::fragment_not_found(id)
    };
    Err(refusal.at(field).into())
}

fn reaction_event(change: &mut UserChange, reaction: &Reaction, what: &str) {
    change.record(
        "phoenix.narrative.v1.ReactionChanged",
        &pb::ReactionChanged {
            reaction: Some(proto::reaction(reaction)),
            change: what.to_owned(),
        },
    );
}

impl Narrative {
    /// Registers the reaction once per key; a new one is paid its reward's besitos, once.
    pub async fn register_reaction(
        &self,
        user_id: Uuid,
        content: &ContentRef,
        reaction_text: &str,
        key: &RequestKey,
    ) -> Result<ReactionOutcome, Error> {
        let (content, reaction_text) = (content.clone(), reaction_text.to_owned());
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                content_exists(connection, &content, "content.content_id").await?;
                let mut change = UserChange::begin(connection, user_id).await?;
                if let Some(existing) =
                    store::get(&mut *connection, user_id, &content, &reaction_text).await?
                {
                    return Ok(ReactionOutcome {
                        reaction: existing,
                        created: false,
                        besitos_to_grant: 0,
                    });
                }
                let reward =
                    catalog::reaction_reward(&mut *connection, &content, &reaction_text).await?;
                let reaction = Reaction {
                    user_id,
                    content,
                    reaction: reaction_text,
                    besitos: ReactionReward::pays(reward.as_ref()),
                    created_at: change.now,
                };
                store::insert(connection, &reaction).await?;
                reaction_event(&mut change, &reaction, "registered");
                change.finish(connection).await?;
                Ok(ReactionOutcome {
                    besitos_to_grant: reaction.besitos,
                    reaction,
                    created: true,
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Removes the reaction once per key; answers the besitos it had paid. One never registered
    /// is `NotApplied`.
    pub async fn revert_reaction(
        &self,
        user_id: Uuid,
        content: &ContentRef,
        reaction_text: &str,
        key: &RequestKey,
    ) -> Result<(Reverted, i64), Error> {
        let (content, reaction_text) = (content.clone(), reaction_text.to_owned());
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let Some(existing) =
                    store::get(&mut *connection, user_id, &content, &reaction_text).await?
                else {
                    return Ok((Reverted::NotApplied, 0));
                };
                store::delete(connection, user_id, &content, &reaction_text).await?;
                reaction_event(&mut change, &existing, "reverted");
                change.finish(connection).await?;
                Ok((Reverted::Reverted, existing.besitos))
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }
}
