//! The level curve use cases (GetLevelCurve, SetLevelCurve, ResolveLevel) and the badges a
//! user's claims granted (ListUserBadges): what the coordinator reads to check a fragment's
//! level and achievement requirements.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use uuid::Uuid;

use super::Missions;
use crate::domain::levels::{self, Level};
use crate::store::levels as store;

/// A badge one claim granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnedBadge {
    pub badge_id: Uuid,
    pub season_id: String,
    pub claim_id: Uuid,
    pub claimed_at: DateTime<Utc>,
}

impl Missions {
    /// The level curve, level 1 first.
    pub async fn level_curve(&self) -> Result<Vec<Level>, Error> {
        store::load(&self.pool).await
    }

    /// Replaces the level curve; `levels` passed `levels::curve_violations` in the API.
    pub async fn set_level_curve(&self, levels: &[Level]) -> Result<Vec<Level>, Error> {
        store::replace(&self.pool, levels).await
    }

    /// The level `xp` reaches and the next one.
    pub async fn resolve_level(&self, xp: i64) -> Result<(Level, Option<Level>), Error> {
        let curve = self.level_curve().await?;
        let (level, next) = levels::resolve(&curve, xp).ok_or_else(|| {
            Error::invariant(
                "LEVEL_CURVE_STARTS_AT_ZERO",
                "the level curve has no level at 0 XP (migration 0008 and its trigger say it does)",
            )
        })?;
        Ok((level.clone(), next.cloned()))
    }

    /// Every badge the user's claims granted, over every board, oldest claim first.
    pub async fn user_badges(&self, user_id: Uuid) -> Result<Vec<EarnedBadge>, Error> {
        let mut badges = Vec::new();
        for key in self.repo.keys_of_user(user_id).await? {
            let Some(board) = self.repo.load(&key).await? else {
                continue;
            };
            badges.extend(board.claims.iter().filter_map(|claim| {
                claim.reward.badge_id.map(|badge_id| EarnedBadge {
                    badge_id,
                    season_id: board.season_id.clone(),
                    claim_id: claim.claim_id,
                    claimed_at: claim.claimed_at,
                })
            }));
        }
        badges.sort_by_key(|badge| (badge.claimed_at, badge.claim_id));
        Ok(badges)
    }
}
