//! The catalog: upserting fragments, decisions, experiences and reaction rewards (admin), and
//! reading fragments (personalised for a user) and experiences.
//!
//! Catalog writes run one at a time (an advisory lock): the cycle check of a decision reads
//! the links that a concurrent upsert could be changing.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Narrative, now};
use crate::domain::story::{cycle_through, shows_content};
use crate::domain::{
    Decision, Experience, Fragment, FragmentInput, FragmentProgress, Known, ReactionReward,
    RequirementCheck, Requirements, Rewards, Target, rules,
};
use crate::error;
use crate::store::catalog as store;

/// A fragment as GetFragment answers it.
#[derive(Debug, Clone)]
pub struct FragmentView {
    pub fragment: Fragment,
    pub decisions: Vec<Decision>,
    pub content_shown: bool,
    /// For the user asked about.
    pub check: Option<RequirementCheck>,
    pub progress: Option<FragmentProgress>,
}

/// References of a catalog entry to other fragments and experiences, each with its field.
#[derive(Default)]
struct References {
    fragments: Vec<(String, Uuid)>,
    experiences: Vec<(String, Uuid)>,
}

impl References {
    fn fragments(&mut self, field: &str, ids: &[Uuid]) {
        for (i, id) in ids.iter().enumerate() {
            self.fragments.push((format!("{field}[{i}]"), *id));
        }
    }

    fn experiences(&mut self, field: &str, ids: &[Uuid]) {
        for (i, id) in ids.iter().enumerate() {
            self.experiences.push((format!("{field}[{i}]"), *id));
        }
    }

    fn requirements(&mut self, prefix: &str, r: &Requirements) {
        self.fragments(
            &format!("{prefix}.required_fragment_ids"),
            &r.required_fragments,
        );
        self.experiences(
            &format!("{prefix}.required_experience_ids"),
            &r.required_experiences,
        );
    }

    fn rewards(&mut self, prefix: &str, r: &Rewards) {
        self.fragments(
            &format!("{prefix}.unlock_fragment_ids"),
            &r.unlock_fragments,
        );
        self.experiences(
            &format!("{prefix}.unlock_experience_ids"),
            &r.unlock_experiences,
        );
    }

    /// FAILED_PRECONDITION `UNKNOWN_FRAGMENT` / `UNKNOWN_EXPERIENCE` naming the first field
    /// whose id names nothing; `itself` (the entry being written) counts as known.
    async fn check(self, connection: &mut PgConnection, itself: Option<Uuid>) -> Result<(), Error> {
        for (experiences, refs) in [(false, &self.fragments), (true, &self.experiences)] {
            let ids: Vec<Uuid> = refs
                .iter()
                .map(|(_, id)| *id)
                .filter(|id| Some(*id) != itself || experiences)
                .collect();
            let missing = store::missing(&mut *connection, experiences, &ids).await?;
            if let Some((field, id)) = refs.iter().find(|(_, id)| missing.contains(id)) {
                let what = if experiences {
                    "experience"
                } else {
                    "fragment"
                };
                return Err(error::unknown_reference(field, what, *id).into());
            }
        }
        Ok(())
    }
}

/// What a fragment names: its experience, and the fragments and experiences of its
/// requirements and rewards.
fn fragment_references(input: &FragmentInput) -> References {
    let mut refs = References::default();
    if let Some((experience, _)) = input.experience {
        refs.experiences
            .push(("fragment.experience_id".to_owned(), experience));
    }
    refs.requirements("fragment.requirements", &input.requirements);
    refs.rewards("fragment.rewards", &input.rewards);
    refs
}

impl Narrative {
    /// Creates or replaces a validated fragment; true when created.
    pub async fn upsert_fragment(
        &self,
        input: &FragmentInput,
    ) -> Result<(FragmentView, bool), Error> {
        let mut transaction = self.pool.begin().await?;
        store::lock(&mut transaction).await?;
        fragment_references(input)
            .check(&mut transaction, Some(input.id))
            .await?;
        let (fragment, created) = store::upsert_fragment(&mut transaction, input, now()).await?;
        let decisions = store::decisions_of(&mut *transaction, input.id).await?;
        transaction.commit().await?;
        tracing::info!(fragment_id = %input.id, created, "fragment upserted");
        Ok((
            FragmentView {
                fragment,
                decisions,
                content_shown: true,
                check: None,
                progress: None,
            },
            created,
        ))
    }

    /// Creates or replaces a validated decision; true when created. A next fragment that
    /// would close a loop is FAILED_PRECONDITION `NEXT_FRAGMENT_CYCLE`.
    pub async fn upsert_decision(&self, decision: &Decision) -> Result<bool, Error> {
        let mut transaction = self.pool.begin().await?;
        store::lock(&mut transaction).await?;
        if store::fragment_by_id(&mut *transaction, decision.fragment_id)
            .await?
            .is_none()
        {
            return Err(error::unknown_reference(
                "decision.fragment_id",
                "fragment",
                decision.fragment_id,
            )
            .into());
        }
        if let Some(existing) = store::decision_by_id(&mut *transaction, decision.id).await?
            && existing.fragment_id != decision.fragment_id
        {
            return Err(error::decision_of_another_fragment(
                decision.id,
                decision.fragment_id,
                existing.fragment_id,
            )
            .into());
        }
        let mut refs = References::default();
        if let Some(next) = decision.next_fragment {
            refs.fragments
                .push(("decision.next_fragment_id".to_owned(), next));
        }
        refs.rewards("decision.rewards", &decision.rewards);
        refs.check(&mut transaction, None).await?;
        if let Some(next) = decision.next_fragment {
            let links = store::links_reachable_from(&mut transaction, next, decision.id).await?;
            if let Some(cycle) = cycle_through(decision.fragment_id, next, &links) {
                return Err(error::next_fragment_cycle(&cycle).into());
            }
        }
        let created = store::upsert_decision(&mut transaction, decision).await?;
        transaction.commit().await?;
        Ok(created)
    }

    /// Creates or replaces a validated experience with its components; true when created.
    pub async fn upsert_experience(
        &self,
        experience: &Experience,
    ) -> Result<(Experience, DateTime<Utc>, DateTime<Utc>, bool), Error> {
        let mut transaction = self.pool.begin().await?;
        store::lock(&mut transaction).await?;
        let mut refs = References::default();
        for (i, target) in experience.components.iter().enumerate() {
            if let Target::Fragment(id) = target {
                refs.fragments
                    .push((format!("experience.components[{i}].fragment_id"), *id));
            }
        }
        refs.rewards("experience.rewards", &experience.rewards);
        refs.check(&mut transaction, None).await?;
        // Progress records components by sequence: with users under way, other components
        // would silently change what they completed (or leave them unable to finish).
        if let Some((stored, ..)) = store::experience_by_id(&mut transaction, experience.id).await?
            && stored.components != experience.components
            && store::has_progress(&mut *transaction, experience.id).await?
        {
            return Err(error::experience_components_in_use(experience.id).into());
        }
        let created = store::upsert_experience(&mut transaction, experience, now()).await?;
        let (stored, created_at, updated_at) =
            store::experience_by_id(&mut transaction, experience.id)
                .await?
                .ok_or_else(|| {
                    Error::invariant(
                        "EXPERIENCE_UPSERTED_MISSING",
                        "an upserted experience does not read back",
                    )
                })?;
        transaction.commit().await?;
        Ok((stored, created_at, updated_at, created))
    }

    /// Creates or replaces a validated reaction reward; its fragment or experience must exist.
    pub async fn upsert_reaction_reward(&self, reward: &ReactionReward) -> Result<(), Error> {
        let mut transaction = self.pool.begin().await?;
        super::reactions::content_exists(
            &mut transaction,
            &reward.content,
            "reward.content.content_id",
        )
        .await?;
        store::upsert_reaction_reward(&mut transaction, reward).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The fragment with its decisions, personalised for `user` when given: the requirement
    /// check, the user's progress, and the content only when the domain says it is shown.
    pub async fn fragment(
        &self,
        fragment_id: Uuid,
        user: Option<Uuid>,
        include_content: bool,
    ) -> Result<FragmentView, Error> {
        let (fragment, decisions, progress, known) = match user {
            Some(user) => {
                let (fragment, decisions, progress, known) =
                    store::fragment_for_user(&self.pool, fragment_id, user)
                        .await?
                        .ok_or_else(|| error::fragment_not_found(fragment_id))?;
                (fragment, decisions, Some(progress), known)
            }
            None => {
                let fragment = store::fragment_by_id(&self.pool, fragment_id)
                    .await?
                    .ok_or_else(|| error::fragment_not_found(fragment_id))?;
                let decisions = store::decisions_of(&self.pool, fragment_id).await?;
                (fragment, decisions, None, Known::default())
            }
        };
        let check = rules::evaluate(
            &fragment.input.requirements,
            fragment.input.vip_exclusive,
            &known,
        );
        let content_shown = shows_content(&check, include_content);
        let mut fragment = fragment;
        if !content_shown {
            fragment.input.content.clear();
        }
        Ok(FragmentView {
            fragment,
            decisions,
            content_shown,
            check: user.map(|_| check),
            progress,
        })
    }

    /// The experience with its components; NOT_FOUND when there is none.
    pub async fn experience(
        &self,
        id: Uuid,
    ) -> Result<(Experience, DateTime<Utc>, DateTime<Utc>), Error> {
        let mut connection = self.pool.acquire().await?;
        store::experience_by_id(&mut connection, id)
            .await?
            .ok_or_else(|| error::experience_not_found(id).into())
    }
}
