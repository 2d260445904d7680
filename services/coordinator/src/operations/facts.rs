//! The reads an operation makes before it starts a saga: the user (directory), the fragment
//! with the narrative's own requirement check, and the facts of the other contexts a
//! fragment's requirements name (VIP, XP and the level curve, holdings, badges). Only the
//! facts a fragment requires are read.

use std::collections::BTreeMap;

use phoenix_proto::directory::v1 as directory;
use phoenix_proto::missions::v1 as missions;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_runtime::Error;

use super::participants::{LedgerBook, Participants, within};
use super::requirements::{Facts, LevelStep, Required};
use super::settings::OperationsSettings;
use super::{READ_TIMEOUT, peer_error};

/// The user, or NOT_FOUND `USER_NOT_FOUND` from the directory.
pub async fn user(participants: &Participants, user_id: &str) -> Result<directory::User, Error> {
    let mut client = participants.directory.clone();
    let answer = client
        .get_user(within(
            directory::GetUserRequest {
                id: user_id.to_owned(),
            },
            READ_TIMEOUT,
        ))
        .await
        .map_err(|status| peer_error("directory", &status))?;
    answer
        .into_inner()
        .user
        .ok_or_else(|| Error::invariant("PEER_ANSWER_COMPLETE", "GetUser answered no user"))
}

/// The fragment personalised for the user (its check included), or NOT_FOUND
/// `FRAGMENT_NOT_FOUND` from the narrative. `include_content` shows the content whatever the
/// narrative's own judgement (the coordinator resolved the rest).
pub async fn fragment(
    participants: &Participants,
    user_id: &str,
    fragment_id: &str,
    include_content: bool,
) -> Result<narrative::GetFragmentResponse, Error> {
    let mut client = participants.narrative.clone();
    Ok(client
        .get_fragment(within(
            narrative::GetFragmentRequest {
                fragment_id: fragment_id.to_owned(),
                user_id: user_id.to_owned(),
                include_content,
            },
            READ_TIMEOUT,
        ))
        .await
        .map_err(|status| peer_error("narrative", &status))?
        .into_inner())
}

/// What the fragment requires, from the narrative's check: its own missing facts, and the
/// external facts it lists for the coordinator to resolve.
pub fn required(check: &narrative::RequirementCheck) -> Required {
    let mut required = Required {
        missing_experiences: check.missing_experience_ids.clone(),
        missing_fragments: check.missing_fragment_ids.clone(),
        ..Required::default()
    };
    for fact in check.external_facts.iter().filter_map(|f| f.fact.as_ref()) {
        use narrative::external_fact::Fact;
        match fact {
            Fact::Vip(vip) => required.vip |= *vip,
            Fact::MinLevel(level) => required.min_level = required.min_level.max(*level),
            Fact::Item(item) => {
                *required.items.entry(item.item_id.clone()).or_default() += item.quantity;
            }
            Fact::AchievementId(id) => required.achievements.push(id.clone()),
        }
    }
    required
}

/// Whether the user has VIP access now (directory CheckVip).
pub async fn vip(
    participants: &Participants,
    user_id: &str,
) -> Result<directory::VipMembership, Error> {
    let mut client = participants.directory.clone();
    client
        .check_vip(within(
            directory::CheckVipRequest {
                user_id: user_id.to_owned(),
            },
            READ_TIMEOUT,
        ))
        .await
        .map_err(|status| peer_error("directory", &status))?
        .into_inner()
        .membership
        .ok_or_else(|| Error::invariant("PEER_ANSWER_COMPLETE", "CheckVip answered no membership"))
}

/// The facts `required` names, read from their contexts.
pub async fn facts(
    participants: &Participants,
    book: &LedgerBook,
    settings: &OperationsSettings,
    user_id: &str,
    required: &Required,
) -> Result<Facts, Error> {
    let mut facts = Facts::default();
    if required.needs_vip() {
        facts.vip = Some(vip(participants, user_id).await?.vip);
    }
    if required.needs_level() {
        let mut ledger = participants.ledger.clone();
        let xp = book
            .accounts_of(&mut ledger, user_id, READ_TIMEOUT)
            .await
            .map_err(|status| peer_error("ledger", &status))?
            .into_iter()
            .find(|account| account.asset_code == settings.xp_asset && account.kind == "wallet")
            .and_then(|account| account.balance)
            .map_or(0, |balance| balance.posted);
        let mut catalog = participants.catalog.clone();
        let curve = catalog
            .get_level_curve(within(missions::GetLevelCurveRequest {}, READ_TIMEOUT))
            .await
            .map_err(|status| peer_error("missions", &status))?
            .into_inner()
            .levels
            .into_iter()
            .map(|level| LevelStep {
                level: level.level,
                min_xp: level.min_xp,
            })
            .collect();
        facts.xp = Some((xp, curve));
    }
    if required.needs_items() {
        let mut stock = participants.stock.clone();
        facts.holdings = Some(
            book.holdings(&mut stock, user_id, READ_TIMEOUT)
                .await
                .map_err(|status| peer_error("ledger", &status))?,
        );
    }
    if required.needs_achievements() {
        let mut client = participants.missions.clone();
        let badges = client
            .list_user_badges(within(
                missions::ListUserBadgesRequest {
                    user_id: user_id.to_owned(),
                },
                READ_TIMEOUT,
            ))
            .await
            .map_err(|status| peer_error("missions", &status))?
            .into_inner()
            .badges;
        facts.badges = Some(badges.into_iter().map(|badge| badge.badge_id).collect());
    }
    Ok(facts)
}

/// Item code → quantity, from the narrative's item amounts (quantities of one item added up).
pub fn items(amounts: &[narrative::ItemAmount]) -> BTreeMap<String, i64> {
    let mut items = BTreeMap::new();
    for amount in amounts {
        *items.entry(amount.item_id.clone()).or_default() += amount.quantity;
    }
    items
}
