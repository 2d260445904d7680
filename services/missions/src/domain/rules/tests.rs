//! The rules told as user stories, with a hand-driven clock and stable ids.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use chrono_tz::{America, Asia, Europe, Pacific};
use uuid::Uuid;

use super::*;
use crate::domain::RefusalKind;
use crate::domain::board::{CommunicationKind, ProgressUnit};
use crate::domain::catalog::{Boss, Difficulty, EffectKind, Mission};

/// Ids 1, 2, 3, … so boards built twice are equal.
struct SequentialIds(u128);

impl Ids for SequentialIds {
    fn next_id(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(self.0)
    }
}

const MAIN_READING: Uuid = Uuid::from_u128(0xA1);
const MAIN_RUNNING: Uuid = Uuid::from_u128(0xA2);
const HUNT_BUGS: Uuid = Uuid::from_u128(0xB1);
const HUNT_TRAPS: Uuid = Uuid::from_u128(0xB2);
const SKILL_PIANO: Uuid = Uuid::from_u128(0xC1);
const STREAK_FREEZE: Uuid = Uuid::from_u128(0xE1);
const FOCUS_AURA: Uuid = Uuid::from_u128(0xE2);
const DRAGON: Uuid = Uuid::from_u128(0xD1);
const DRAGON_TASK: Uuid = Uuid::from_u128(0xD7);

fn mission(mission_id: Uuid, slot_key: SlotKey, duration_days: i32, target: i32) -> Mission {
    Mission {
        mission_id,
        slot_key,
        name: format!("mission {mission_id}"),
        summary: String::new(),
        requirements: String::new(),
        objective: String::new(),
        difficulty: Difficulty::Medium,
        duration_days,
        progress_target: target,
        progress_unit: ProgressUnit::Tasks,
        targets: Vec::new(),
        reward: Reward {
            xp: 100,
            currency: 50,
            items: Vec::new(),
            badge_id: None,
            aura_id: Some(FOCUS_AURA),
        },
        badge_ids: Vec::new(),
        metadata: serde_json::json!({}),
        active: true,
    }
}

fn catalog() -> Catalog {
    Catalog {
        missions: vec![
            mission(MAIN_READING, SlotKey::Main, 7, 5),
            mission(HUNT_BUGS, SlotKey::Hunt, 7, 5),
            mission(MAIN_RUNNING, SlotKey::Main, 14, 10),
            mission(SKILL_PIANO, SlotKey::Skill, 3, 3),
            mission(HUNT_TRAPS, SlotKey::Hunt, 7, 5),
        ],
        badges: Vec::new(),
        effects: vec![
            EffectDefinition {
                effect_id: STREAK_FREEZE,
                kind: EffectKind::Amulet,
                name: "streak freeze".to_owned(),
                description: String::new(),
                payload: serde_json::json!({"protectsDay": true}),
                duration_days: Some(7),
            },
            EffectDefinition {
                effect_id: FOCUS_AURA,
                kind: EffectKind::Aura,
                name: "focus".to_owned(),
                description: String::new(),
                payload: serde_json::json!({"xpBoost": 1.1}),
                duration_days: Some(3),
            },
        ],
        bosses: vec![Boss {
            boss_id: DRAGON,
            code: "dragon".to_owned(),
            name: "The dragon".to_owned(),
            description: String::new(),
            shield_max: 10,
            reward: Reward {
                xp: 500,
                currency: 0,
                items: Vec::new(),
                badge_id: None,
                aura_id: Some(FOCUS_AURA),
            },
            metadata: serde_json::json!({}),
        }],
    }
}

/// An instant given as local wall time in `tz` (earliest if ambiguous).
fn local(tz: Tz, date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    tz.from_local_datetime(&date.and_hms_opt(hour, minute, 0).unwrap())
        .earliest()
        .expect("a wall time that exists")
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn key() -> BoardKey {
    BoardKey {
        user_id: Uuid::from_u128(0xF00),
        season_id: "2025-s1".to_owned(),
    }
}

/// One user's board and everything the rules need, with the clock in the test's hands.
struct Story {
    board: Board,
    catalog: Catalog,
    settings: RuleSettings,
    ids: SequentialIds,
}

impl Story {
    fn new(tz: Tz, now: DateTime<Utc>) -> Self {
        Self::with_settings(tz, now, RuleSettings::default())
    }

    fn with_settings(tz: Tz, now: DateTime<Utc>, settings: RuleSettings) -> Self {
        let catalog = catalog();
        let mut ids = SequentialIds(0);
        let board = new_board(&key(), tz, &catalog, &settings, &mut ids, now).unwrap();
        Self {
            board,
            catalog,
            settings,
            ids,
        }
    }

    fn tick(&mut self, now: DateTime<Utc>) -> Vec<ClosedDay> {
        tick(
            &mut self.board,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn activate(&mut self, slot: SlotKey, now: DateTime<Utc>) -> Result<Uuid, Refusal> {
        activate(
            &mut self.board,
            slot,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn heartbeat(&mut self, run: Uuid, now: DateTime<Utc>) -> Result<HeartbeatOutcome, Refusal> {
        heartbeat(
            &mut self.board,
            run,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn progress(&mut self, run: Uuid, current: i32, now: DateTime<Utc>) -> Result<bool, Refusal> {
        record_progress(
            &mut self.board,
            run,
            current,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn reroll(&mut self, slot: SlotKey, now: DateTime<Utc>) -> Result<Uuid, Refusal> {
        reroll(
            &mut self.board,
            slot,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn claim(&mut self, run: Uuid, now: DateTime<Utc>) -> Result<ClaimOutcome, Refusal> {
        claim(
            &mut self.board,
            run,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn grant(&mut self, effect: Uuid, now: DateTime<Utc>) -> Result<EffectInstance, Refusal> {
        grant_effect(
            &mut self.board,
            effect,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn link_boss(&mut self, task: Uuid, now: DateTime<Utc>) -> Result<(), Refusal> {
        link_boss_task(
            &mut self.board,
            task,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn damage_boss(&mut self, task: Uuid, amount: i32, now: DateTime<Utc>) -> Result<(), Refusal> {
        damage_boss(
            &mut self.board,
            task,
            amount,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn prove_boss(&mut self, proof: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        submit_boss_proof(
            &mut self.board,
            proof,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn claim_boss(&mut self, now: DateTime<Utc>) -> Result<ClaimOutcome, Refusal> {
        claim_boss(
            &mut self.board,
            &self.catalog,
            &self.settings,
            &mut self.ids,
            now,
        )
    }

    fn run(&self, run: Uuid) -> &Run {
        self.board.run(run).unwrap()
    }

    fn slot(&self, slot: SlotKey) -> &Slot {
        self.board.slot(slot)
    }

    fn communications(&self, kind: CommunicationKind) -> usize {
        self.board
            .communications
            .iter()
            .filter(|c| c.kind == kind)
            .count()
    }

    /// Asserts `rule` refuses with `reason` and leaves the board exactly as it was.
    fn assert_refused<T: std::fmt::Debug>(
        &mut self,
        reason: &str,
        rule: impl FnOnce(&mut Self) -> Result<T, Refusal>,
    ) -> Refusal {
        let before = self.board.clone();
        let refusal = rule(self).expect_err(reason);
        assert_eq!(refusal.reason, reason);
        assert_eq!(self.board, before, "{reason} changed the board");
        refusal
    }
}

fn outcomes(run: &Run) -> Vec<(NaiveDate, DayOutcome)> {
    run.days.iter().map(|d| (d.date, d.outcome)).collect()
}

// ---- days and time zones ------------------------------------------------------------------

#[test]
fn local_days_follow_the_zone_and_its_dst_changes() {
    let madrid = Europe::Madrid;
    assert_eq!(
        local_date(
            madrid,
            Utc.with_ymd_and_hms(2025, 3, 29, 23, 30, 0).unwrap()
        ),
        date(2025, 3, 30)
    );
    assert_eq!(
        start_of_day(madrid, date(2025, 3, 30)),
        Utc.with_ymd_and_hms(2025, 3, 29, 23, 0, 0).unwrap()
    );
    // Spring forward: 23 hours; fall back: 25 hours.
    let length = |tz, day| end_of_day(tz, day) - start_of_day(tz, day);
    assert_eq!(length(madrid, date(2025, 3, 30)), Duration::hours(23));
    assert_eq!(length(madrid, date(2025, 10, 26)), Duration::hours(25));
    assert_eq!(
        length(America::New_York, date(2025, 3, 9)),
        Duration::hours(23)
    );
    assert_eq!(
        length(America::New_York, date(2025, 11, 2)),
        Duration::hours(25)
    );
    assert_eq!(length(madrid, date(2025, 6, 1)), Duration::hours(24));
}

#[test]
fn a_day_whose_midnight_is_skipped_starts_at_the_first_existing_instant() {
    // Santiago moves 00:00 → 01:00 on the first Sunday of September.
    let santiago = America::Santiago;
    let start = start_of_day(santiago, date(2025, 9, 7));
    let wall = start.with_timezone(&santiago);
    assert_eq!(
        (wall.date_naive(), wall.hour(), wall.minute()),
        (date(2025, 9, 7), 1, 0)
    );
    assert_eq!(
        local_date(santiago, start - Duration::seconds(1)),
        date(2025, 9, 6)
    );
    // Samoa skipped 2011-12-30 altogether: a day of no length.
    let apia = Pacific::Apia;
    assert_eq!(
        start_of_day(apia, date(2011, 12, 30)),
        start_of_day(apia, date(2011, 12, 31))
    );
}

#[test]
fn the_next_day_close_is_the_end_of_the_local_day() {
    let tz = America::New_York;
    let story = Story::new(tz, local(tz, date(2025, 3, 8), 23, 30));
    assert_eq!(
        next_day_close_at(&story.board, local(tz, date(2025, 3, 8), 23, 30)),
        local(tz, date(2025, 3, 9), 0, 0)
    );
    // Across spring forward the next close is 23 hours after midnight.
    assert_eq!(
        next_day_close_at(&story.board, local(tz, date(2025, 3, 9), 12, 0)),
        local(tz, date(2025, 3, 9), 0, 0) + Duration::hours(23)
    );
}

// ---- a new board --------------------------------------------------------------------------

#[test]
fn a_new_board_offers_a_mission_per_slot_with_full_petals_and_rerolls_and_a_boss() {
    let tz = Europe::Madrid;
    let wednesday = local(tz, date(2025, 4, 2), 10, 0);
    let story = Story::new(tz, wednesday);
    let board = &story.board;
    let offered: Vec<_> = board
        .slots
        .iter()
        .map(|s| (s.slot_key, s.mission_id))
        .collect();
    assert_eq!(
        offered,
        [
            (SlotKey::Main, MAIN_READING),
            (SlotKey::Hunt, HUNT_BUGS),
            (SlotKey::Skill, SKILL_PIANO)
        ]
    );
    for slot in &board.slots {
        assert_eq!(slot.state, SlotState::Idle);
        assert_eq!((slot.petals_total, slot.petals_remaining), (3, 3));
        assert_eq!(slot.reroll_remaining, 1);
        assert_eq!(
            slot.reroll_reset_at,
            Some(local(tz, date(2025, 4, 7), 0, 0))
        );
        assert_eq!(slot.run_id, None);
    }
    let boss = board.boss.as_ref().unwrap();
    assert_eq!(
        (boss.boss_id, boss.phase, boss.shield_current),
        (DRAGON, 1, 10)
    );
    assert_eq!(
        next_due(board),
        local(tz, date(2025, 4, 7), 0, 0),
        "an idle board is due for its next weekly summary and reroll budgets"
    );
    assert_eq!(board.last_weekly_summary, Some(date(2025, 3, 31)));
}

#[test]
fn a_catalog_without_a_mission_for_a_slot_cannot_make_a_board() {
    let mut catalog = catalog();
    catalog.missions.retain(|m| m.slot_key != SlotKey::Skill);
    let refusal = new_board(
        &key(),
        Europe::Madrid,
        &catalog,
        &RuleSettings::default(),
        &mut SequentialIds(0),
        Utc::now(),
    )
    .unwrap_err();
    assert_eq!(refusal.reason, "NO_MISSION_FOR_SLOT");
    assert_eq!(refusal.kind, RefusalKind::Precondition);
}

#[test]
fn creating_a_board_again_is_a_replay_in_its_time_zone_only() {
    let story = Story::new(
        Europe::Madrid,
        local(Europe::Madrid, date(2025, 5, 5), 8, 0),
    );
    assert_eq!(replay_new_board(&story.board, Europe::Madrid), Ok(()));

    let refusal = replay_new_board(&story.board, Asia::Tokyo).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::AlreadyExists);
    assert_eq!(refusal.reason, "BOARD_EXISTS");
    assert!(
        refusal.message.contains("SetTimeZone"),
        "{}",
        refusal.message
    );
    assert!(
        refusal
            .metadata
            .contains(&("time_zone".to_owned(), "Europe/Madrid".to_owned()))
    );
}

// ---- lifecycle ----------------------------------------------------------------------------

#[test]
fn a_mission_goes_idle_active_succeeded_claimed_cooldown_idle() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    assert_eq!(story.slot(SlotKey::Main).state, SlotState::Active);
    assert_eq!(story.slot(SlotKey::Main).run_id, Some(run));
    assert_eq!(
        story.run(run).expires_at,
        local(tz, date(2025, 5, 12), 0, 0)
    );
    assert_eq!(story.run(run).progress.target, 5);
    assert_eq!(next_due(&story.board), local(tz, date(2025, 5, 6), 0, 0));

    assert!(!story.progress(run, 3, local(tz, day, 10, 0)).unwrap());
    assert!(story.progress(run, 5, local(tz, day, 11, 0)).unwrap());
    assert_eq!(story.run(run).status, RunStatus::Succeeded);
    assert_eq!(story.run(run).completion_at, Some(local(tz, day, 11, 0)));
    assert_eq!(story.slot(SlotKey::Main).state, SlotState::Succeeded);
    assert_eq!(
        next_due(&story.board),
        local(tz, date(2025, 5, 12), 0, 0),
        "nothing runs: next Monday's summary"
    );

    let claimed_at = local(tz, day, 12, 0);
    story.claim(run, claimed_at).unwrap();
    assert_eq!(story.run(run).status, RunStatus::Claimed);
    assert_eq!(story.slot(SlotKey::Main).state, SlotState::Claimed);
    assert_eq!(
        story.slot(SlotKey::Main).cooldown_until,
        Some(claimed_at + Duration::hours(24))
    );

    story.tick(local(tz, day, 13, 0));
    assert_eq!(story.slot(SlotKey::Main).state, SlotState::Cooldown);
    story.assert_refused("SLOT_NOT_IDLE", |s| {
        s.activate(SlotKey::Main, local(tz, day, 14, 0))
    });

    story.tick(claimed_at + Duration::hours(24));
    let slot = story.slot(SlotKey::Main);
    assert_eq!(slot.state, SlotState::Idle);
    assert_eq!(slot.run_id, None);
    assert_eq!(
        (slot.offers, slot.mission_id),
        (1, MAIN_RUNNING),
        "the next mission is offered"
    );
    assert_eq!(slot.petals_remaining, 3);
    assert_eq!(slot.cooldown_until, None);
}

#[test]
fn a_run_without_heartbeats_loses_a_petal_a_day_fails_cools_down_and_goes_idle() {
    let tz = America::New_York;
    let day = date(2025, 6, 2);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Hunt, local(tz, day, 9, 0)).unwrap();

    let closed = story.tick(local(tz, date(2025, 6, 4), 0, 0));
    assert_eq!(closed.len(), 2);
    assert!(
        closed
            .iter()
            .all(|c| c.outcome == DayOutcome::PetalLost && !c.run_failed)
    );
    assert_eq!(story.slot(SlotKey::Hunt).petals_remaining, 1);
    assert_eq!(story.communications(CommunicationKind::Daily), 2);

    let third_end = local(tz, date(2025, 6, 5), 0, 0);
    let closed = story.tick(third_end + Duration::minutes(5));
    assert_eq!(
        closed,
        [ClosedDay {
            run_id: run,
            date: date(2025, 6, 4),
            outcome: DayOutcome::PetalLost,
            run_failed: true,
        }]
    );
    let failed = story.run(run);
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.failure_at, Some(third_end));
    assert_eq!(failed.days.last().unwrap().petals_after, 0);
    let slot = story.slot(SlotKey::Hunt);
    assert_eq!(
        slot.state,
        SlotState::Cooldown,
        "failed, then cooling down in the same tick"
    );
    assert_eq!(slot.cooldown_until, Some(third_end + Duration::hours(24)));
    assert_eq!(story.communications(CommunicationKind::System), 1);
    assert_eq!(next_due(&story.board), third_end + Duration::hours(24));

    story.tick(third_end + Duration::hours(24));
    let slot = story.slot(SlotKey::Hunt);
    assert_eq!(
        (slot.state, slot.mission_id, slot.petals_remaining),
        (SlotState::Idle, HUNT_TRAPS, 3)
    );
}

// ---- heartbeats and day closes ------------------------------------------------------------

#[test]
fn one_heartbeat_per_local_day_and_a_second_is_a_replay() {
    let tz = America::New_York;
    let day = date(2025, 6, 2);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();

    let first = story.heartbeat(run, local(tz, day, 10, 0)).unwrap();
    assert!(!first.replayed);
    assert_eq!(
        (
            first.heartbeat.date,
            first.heartbeat.petals_before,
            first.heartbeat.petals_after
        ),
        (day, 3, 3)
    );
    let before = story.board.clone();
    // 23:30 in New York is already the next day in UTC, but the same local day.
    let again = story.heartbeat(run, local(tz, day, 23, 30)).unwrap();
    assert!(again.replayed);
    assert_eq!(again.heartbeat, first.heartbeat);
    assert_eq!(story.board, before, "a replay changes nothing");

    let next = story
        .heartbeat(run, local(tz, date(2025, 6, 3), 0, 30))
        .unwrap();
    assert!(!next.replayed);
    assert_eq!(next.heartbeat.date, date(2025, 6, 3));
    assert_eq!(story.run(run).heartbeats.len(), 2);
    assert_eq!(outcomes(story.run(run)), [(day, DayOutcome::Kept)]);
}

#[test]
fn a_missed_day_uses_a_protecting_effect_before_a_petal() {
    let tz = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, monday, 8, 0));
    let run = story
        .activate(SlotKey::Main, local(tz, monday, 9, 0))
        .unwrap();
    story.heartbeat(run, local(tz, monday, 10, 0)).unwrap();
    let freeze = story
        .grant(STREAK_FREEZE, local(tz, monday, 11, 0))
        .unwrap();
    assert!(freeze.protects_day);
    story.grant(FOCUS_AURA, local(tz, monday, 11, 0)).unwrap();

    let closed = story.tick(local(tz, date(2025, 5, 8), 0, 0));
    assert_eq!(
        closed.iter().map(|c| c.outcome).collect::<Vec<_>>(),
        [
            DayOutcome::Kept,
            DayOutcome::Protected,
            DayOutcome::PetalLost
        ]
    );
    let protected = &story.run(run).days[1];
    assert_eq!(
        protected.effect_instance_id,
        Some(freeze.effect_instance_id)
    );
    assert_eq!(protected.petals_after, 3);
    let consumed = story
        .board
        .effects
        .iter()
        .find(|e| e.effect_id == STREAK_FREEZE)
        .unwrap();
    assert_eq!(
        consumed.consumed_at,
        Some(local(tz, date(2025, 5, 7), 0, 0))
    );
    let aura = story
        .board
        .effects
        .iter()
        .find(|e| e.effect_id == FOCUS_AURA)
        .unwrap();
    assert_eq!(
        aura.consumed_at, None,
        "an effect that does not protect is never used up by a day"
    );
    assert_eq!(story.slot(SlotKey::Main).petals_remaining, 2);
    assert_eq!(story.communications(CommunicationKind::Daily), 2);
}

#[test]
fn an_effect_granted_after_a_day_ended_does_not_protect_it() {
    let tz = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, monday, 8, 0));
    let run = story
        .activate(SlotKey::Main, local(tz, monday, 9, 0))
        .unwrap();
    // Monday ended unseen; granting the freeze on Tuesday closes Monday first, without it.
    story
        .grant(STREAK_FREEZE, local(tz, date(2025, 5, 6), 9, 0))
        .unwrap();
    story.tick(local(tz, date(2025, 5, 6), 10, 0));
    assert_eq!(outcomes(story.run(run)), [(monday, DayOutcome::PetalLost)]);
}

#[test]
fn tick_is_idempotent_for_the_same_now() {
    let tz = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, monday, 8, 0));
    story
        .activate(SlotKey::Main, local(tz, monday, 9, 0))
        .unwrap();
    story
        .activate(SlotKey::Skill, local(tz, monday, 9, 0))
        .unwrap();
    let later = local(tz, date(2025, 5, 14), 1, 0);
    assert!(!story.tick(later).is_empty());
    let once = story.board.clone();
    assert!(story.tick(later).is_empty());
    assert_eq!(story.board, once);
    assert!(next_due(&story.board) > later);
}

/// Someone active Thursday to Friday across a DST change who heartbeats only on `kept` days
/// (offsets from `first_day`) loses exactly one petal per missed local day, whether the server
/// ticks every 15 minutes or once at the end.
fn one_petal_per_missed_local_day(tz: Tz, first_day: NaiveDate, kept: &[u64]) {
    let settings = RuleSettings {
        petals_per_run: 20,
        ..RuleSettings::default()
    };
    let start = local(tz, first_day, 9, 0);
    let end = local(tz, first_day + Days::new(9), 0, 0);
    let mut often = Story::with_settings(tz, start, settings.clone());
    let mut once = Story::with_settings(tz, start, settings);
    // Long enough for the whole story.
    for story in [&mut often, &mut once] {
        story.catalog.missions[0].duration_days = 14;
    }
    let run = often.activate(SlotKey::Main, start).unwrap();
    once.activate(SlotKey::Main, start).unwrap();
    for offset in kept {
        let noon = local(tz, first_day + Days::new(*offset), 12, 0);
        once.heartbeat(run, noon).unwrap();
    }

    let mut now = start;
    while now <= end {
        let wall = now.with_timezone(&tz);
        let offset = (wall.date_naive() - first_day).num_days();
        if wall.hour() == 12 && wall.minute() == 0 && kept.contains(&(offset as u64)) {
            often.heartbeat(run, now).unwrap();
        } else {
            often.tick(now);
        }
        now += Duration::minutes(15);
    }
    once.tick(end);

    let expected: Vec<_> = (0..9)
        .map(|offset| {
            let outcome = if kept.contains(&offset) {
                DayOutcome::Kept
            } else {
                DayOutcome::PetalLost
            };
            (first_day + Days::new(offset), outcome)
        })
        .collect();
    assert_eq!(
        outcomes(often.run(run)),
        expected,
        "ticking every 15 minutes in {tz}"
    );
    assert_eq!(outcomes(once.run(run)), expected, "ticking once in {tz}");
    let missed = 9 - kept.len() as i16;
    assert_eq!(often.slot(SlotKey::Main).petals_remaining, 20 - missed);
    assert_eq!(once.slot(SlotKey::Main).petals_remaining, 20 - missed);
}

#[test]
fn madrid_spring_forward_week_costs_one_petal_per_missed_day() {
    // 2025-03-30 (offset 3) lasts 23 hours; the user misses it and the day after.
    one_petal_per_missed_local_day(Europe::Madrid, date(2025, 3, 27), &[0, 1, 2, 5, 7]);
}

#[test]
fn madrid_fall_back_week_costs_one_petal_per_missed_day() {
    // 2025-10-26 (offset 3) lasts 25 hours.
    one_petal_per_missed_local_day(Europe::Madrid, date(2025, 10, 23), &[0, 1, 2, 5, 6]);
}

#[test]
fn new_york_spring_forward_week_costs_one_petal_per_missed_day() {
    // 2025-03-09 (offset 3).
    one_petal_per_missed_local_day(America::New_York, date(2025, 3, 6), &[0, 2, 4, 8]);
}

#[test]
fn new_york_fall_back_week_costs_one_petal_per_missed_day() {
    // 2025-11-02 (offset 3).
    one_petal_per_missed_local_day(America::New_York, date(2025, 10, 30), &[1, 2, 5]);
}

/// A user heartbeating every local noon moves from Madrid to `destination` at `moved_at`
/// (Madrid wall time on 2025-05-07); returns the run's closed days after a week.
fn move_during_a_run(destination: Tz, moved_hour: u32) -> (Story, Uuid) {
    let madrid = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::with_settings(
        madrid,
        local(madrid, monday, 8, 0),
        RuleSettings {
            petals_per_run: 20,
            ..RuleSettings::default()
        },
    );
    let run = story
        .activate(SlotKey::Main, local(madrid, monday, 9, 0))
        .unwrap();
    let moved_at = local(madrid, date(2025, 5, 7), moved_hour, 0);
    let mut now = local(madrid, monday, 9, 0);
    let end = local(madrid, date(2025, 5, 12), 0, 0);
    while now < end {
        if now == moved_at {
            story.tick(now);
            set_time_zone(&mut story.board, destination, now);
            story.tick(now);
            assert!(next_due(&story.board) > now, "never due for a closed day");
        }
        let wall = now.with_timezone(&story.board.time_zone);
        if wall.hour() == 12 && wall.minute() == 0 {
            story.heartbeat(run, now).unwrap();
        } else {
            story.tick(now);
        }
        now += Duration::minutes(15);
    }
    (story, run)
}

fn assert_each_date_closed_once_in_order(run: &Run) {
    for pair in run.days.windows(2) {
        assert_eq!(
            pair[1].date,
            next_date(pair[0].date),
            "dates close once each, in order"
        );
    }
}

#[test]
fn moving_east_never_closes_a_date_twice_nor_costs_a_petal_to_a_faithful_user() {
    // 20:00 in Madrid is already 03:00 the next day in Tokyo.
    let (story, run) = move_during_a_run(Asia::Tokyo, 20);
    let run = story.run(run);
    assert_each_date_closed_once_in_order(run);
    assert!(
        run.days.iter().all(|d| d.outcome == DayOutcome::Kept),
        "{:?}",
        outcomes(run)
    );
    assert_eq!(story.slot(SlotKey::Main).petals_remaining, 20);
    assert_eq!(run.days.first().unwrap().date, date(2025, 5, 5));
}

#[test]
fn moving_west_never_closes_a_date_twice_nor_costs_a_petal_to_a_faithful_user() {
    // 00:30 in Madrid (just after Wednesday closed) is Tuesday 15:30 in Los Angeles.
    let (story, run) = move_during_a_run(America::Los_Angeles, 0);
    let run = story.run(run);
    assert_each_date_closed_once_in_order(run);
    assert!(
        run.days.iter().all(|d| d.outcome == DayOutcome::Kept),
        "{:?}",
        outcomes(run)
    );
    assert_eq!(story.slot(SlotKey::Main).petals_remaining, 20);
}

#[test]
fn moving_west_on_the_first_day_adds_no_earlier_date_to_close() {
    let madrid = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(madrid, local(madrid, monday, 7, 0));
    // 08:00 on Monday in Madrid is still Sunday 23:00 in Los Angeles.
    let run = story
        .activate(SlotKey::Main, local(madrid, monday, 8, 0))
        .unwrap();
    assert_eq!(story.run(run).start_date, Some(monday));
    let moved_at = local(madrid, monday, 8, 30);
    story.tick(moved_at);
    set_time_zone(&mut story.board, America::Los_Angeles, moved_at);
    // It is Sunday again where the user is: the run has no day to keep yet.
    let early = story.heartbeat(run, moved_at).unwrap_err();
    assert_eq!(early.reason, "RUN_NOT_STARTED");
    assert!(story.run(run).heartbeats.is_empty());
    // Sunday has ended in Los Angeles, but the run started on Monday.
    let la_monday_morning = local(America::Los_Angeles, monday, 3, 0);
    assert!(story.tick(la_monday_morning).is_empty());
    assert_eq!(
        next_due(&story.board),
        local(America::Los_Angeles, date(2025, 5, 6), 0, 0),
        "due when Monday ends where the user is"
    );
    story
        .heartbeat(run, local(America::Los_Angeles, monday, 12, 0))
        .unwrap();
    story.tick(local(America::Los_Angeles, date(2025, 5, 6), 0, 0));
    assert_eq!(outcomes(story.run(run)), [(monday, DayOutcome::Kept)]);
    assert_eq!(story.slot(SlotKey::Main).petals_remaining, 3);
}

#[test]
fn skipping_ahead_costs_at_most_one_petal_per_local_date() {
    let madrid = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(madrid, local(madrid, monday, 8, 0));
    let run = story
        .activate(SlotKey::Main, local(madrid, monday, 9, 0))
        .unwrap();
    story.heartbeat(run, local(madrid, monday, 20, 0)).unwrap();
    // At 22:00 in Madrid it is already Tuesday 05:00 in Tokyo: Monday has ended there.
    let now = local(madrid, monday, 22, 0);
    set_time_zone(&mut story.board, Asia::Tokyo, now);
    story.tick(now);
    assert_eq!(outcomes(story.run(run)), [(monday, DayOutcome::Kept)]);
    // Back to Madrid the same evening: Monday is not closed again, Tuesday not yet.
    set_time_zone(&mut story.board, madrid, now);
    assert!(story.tick(now).is_empty());
    assert_eq!(story.run(run).days.len(), 1);
}

#[test]
fn a_board_with_nothing_running_is_due_when_a_cooldown_ends_and_for_its_weekly_summary() {
    let tz = Europe::Madrid;
    let saturday = date(2025, 5, 10);
    let mut story = Story::new(tz, local(tz, date(2025, 5, 7), 8, 0));
    let next_monday = local(tz, date(2025, 5, 12), 0, 0);
    assert_eq!(next_due(&story.board), next_monday);

    // A run succeeds and is claimed on Saturday evening: its slot rests until Sunday evening.
    let run = story
        .activate(SlotKey::Main, local(tz, saturday, 20, 0))
        .unwrap();
    story.progress(run, 5, local(tz, saturday, 21, 0)).unwrap();
    story.claim(run, local(tz, saturday, 22, 0)).unwrap();
    let cooldown_end = local(tz, date(2025, 5, 11), 22, 0);
    assert_eq!(next_due(&story.board), cooldown_end);
    story.tick(cooldown_end);
    assert_eq!(story.slot(SlotKey::Main).state, SlotState::Idle);

    assert_eq!(next_due(&story.board), next_monday);
    story.tick(next_monday);
    assert_eq!(story.communications(CommunicationKind::Weekly), 1);
    assert_eq!(next_due(&story.board), local(tz, date(2025, 5, 19), 0, 0));

    // A legacy board that never had a summary is due for one at once.
    story.board.last_weekly_summary = None;
    assert_eq!(next_due(&story.board), story.board.generated_at);
}

// ---- progress and expiry ------------------------------------------------------------------

#[test]
fn progress_only_goes_forward_and_reaching_the_target_succeeds() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    assert!(!story.progress(run, 2, local(tz, day, 10, 0)).unwrap());
    let refusal = story.assert_refused("PROGRESS_BACKWARDS", |s| {
        s.progress(run, 1, local(tz, day, 11, 0))
    });
    assert_eq!(refusal.kind, RefusalKind::Invalid);
    assert_eq!(refusal.field(), Some("current"));
    assert_eq!(refusal.metadata, [("current".to_owned(), "2".to_owned())]);

    let before = story.board.clone();
    assert!(!story.progress(run, 2, local(tz, day, 11, 0)).unwrap());
    assert_eq!(story.board, before, "the same value again is a no-op");

    assert!(
        story.progress(run, 9, local(tz, day, 12, 0)).unwrap(),
        "past the target succeeds too"
    );
    assert_eq!(story.run(run).progress.current, 9);
    let refusal = story.assert_refused("RUN_NOT_ACTIVE", |s| {
        s.progress(run, 10, local(tz, day, 13, 0))
    });
    assert_eq!(refusal.kind, RefusalKind::Precondition);
}

#[test]
fn a_run_past_its_duration_fails_after_closing_its_days() {
    let tz = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, monday, 8, 0));
    // Piano: 3 days, target 3.
    let run = story
        .activate(SlotKey::Skill, local(tz, monday, 9, 0))
        .unwrap();
    for offset in 0..3 {
        let noon = local(tz, monday + Days::new(offset), 12, 0);
        story.heartbeat(run, noon).unwrap();
    }
    story
        .progress(run, 2, local(tz, date(2025, 5, 7), 13, 0))
        .unwrap();
    let expires_at = local(tz, date(2025, 5, 8), 0, 0);
    assert_eq!(story.run(run).expires_at, expires_at);
    assert_eq!(next_due(&story.board), expires_at);

    let closed = story.tick(expires_at + Duration::days(3));
    assert_eq!(closed.len(), 1, "only the run's own days close");
    assert!(closed[0].run_failed);
    assert_eq!(closed[0].outcome, DayOutcome::Kept);
    let failed = story.run(run);
    assert_eq!(
        (failed.status, failed.failure_at),
        (RunStatus::Failed, Some(expires_at))
    );
    assert_eq!(failed.days.len(), 3);
    assert_eq!(story.slot(SlotKey::Skill).petals_remaining, 3);
    assert_eq!(story.communications(CommunicationKind::System), 1);
}

// ---- reroll -------------------------------------------------------------------------------

#[test]
fn one_reroll_a_week_and_the_budget_returns_on_local_monday() {
    let tz = America::New_York;
    let wednesday = date(2025, 5, 7);
    let mut story = Story::new(tz, local(tz, wednesday, 8, 0));
    assert_eq!(
        story
            .reroll(SlotKey::Hunt, local(tz, wednesday, 9, 0))
            .unwrap(),
        HUNT_TRAPS
    );
    let slot = story.slot(SlotKey::Hunt);
    assert_eq!(
        (slot.mission_id, slot.reroll_remaining, slot.offers),
        (HUNT_TRAPS, 0, 1)
    );
    assert_eq!(slot.reroll_used_at, Some(local(tz, wednesday, 9, 0)));

    let monday = local(tz, date(2025, 5, 12), 0, 0);
    let refusal = story.assert_refused("NO_REROLL_LEFT", |s| {
        s.reroll(SlotKey::Hunt, monday - Duration::seconds(1))
    });
    assert_eq!(
        refusal.metadata,
        [("reroll_reset_at".to_owned(), monday.to_rfc3339())]
    );
    // The other slots keep their own budget.
    assert_eq!(
        story
            .reroll(SlotKey::Main, local(tz, wednesday, 10, 0))
            .unwrap(),
        MAIN_RUNNING
    );

    assert_eq!(story.reroll(SlotKey::Hunt, monday).unwrap(), HUNT_BUGS);
    assert_eq!(
        story.slot(SlotKey::Hunt).reroll_reset_at,
        Some(local(tz, date(2025, 5, 19), 0, 0))
    );
}

#[test]
fn only_an_idle_slot_with_another_mission_rerolls() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    story.assert_refused("NO_OTHER_MISSION", |s| {
        s.reroll(SlotKey::Skill, local(tz, day, 9, 0))
    });
    story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    story.assert_refused("SLOT_NOT_IDLE", |s| {
        s.reroll(SlotKey::Main, local(tz, day, 10, 0))
    });
}

// ---- claims -------------------------------------------------------------------------------

#[test]
fn a_run_is_claimed_once_and_a_second_claim_answers_with_the_first() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    story.assert_refused("RUN_NOT_SUCCEEDED", |s| s.claim(run, local(tz, day, 9, 30)));
    story.progress(run, 5, local(tz, day, 10, 0)).unwrap();

    let first = story.claim(run, local(tz, day, 11, 0)).unwrap();
    assert!(!first.replayed);
    assert_eq!(
        (first.claim.run_id, first.claim.source),
        (run, ClaimSource::Mission)
    );
    assert_eq!(
        (first.claim.reward.xp, first.claim.reward.currency),
        (100, 50)
    );
    assert_eq!(story.run(run).claim_id, Some(first.claim.claim_id));
    let aura = story
        .board
        .effects
        .iter()
        .find(|e| e.effect_id == FOCUS_AURA)
        .unwrap();
    assert_eq!(aura.active_from, local(tz, day, 11, 0));
    assert_eq!(
        aura.active_until,
        Some(local(tz, day, 11, 0) + Duration::days(3))
    );
    assert_eq!(story.communications(CommunicationKind::System), 1);

    let before = story.board.clone();
    let second = story.claim(run, local(tz, day, 11, 5)).unwrap();
    assert!(second.replayed);
    assert_eq!(second.claim, first.claim);
    assert_eq!(story.board.claims.len(), 1);
    assert_eq!(story.board.effects.len(), 1, "nothing granted twice");
    assert_eq!(story.board.communications, before.communications);
}

#[test]
fn a_claim_grants_the_reward_the_run_started_with_whatever_the_catalog_says_since() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    let started_with = story.catalog.mission(MAIN_READING).unwrap().reward.clone();
    assert_eq!(story.run(run).reward.as_ref(), Some(&started_with));
    story.progress(run, 5, local(tz, day, 10, 0)).unwrap();
    // Between the success and the claim, an admin halves the mission's reward.
    let edited = story
        .catalog
        .missions
        .iter_mut()
        .find(|m| m.mission_id == MAIN_READING)
        .unwrap();
    edited.reward.xp = 50;
    edited.reward.aura_id = None;

    let claimed = story.claim(run, local(tz, day, 11, 0)).unwrap();
    assert_eq!(claimed.claim.reward, started_with);
    assert!(
        story
            .board
            .effects
            .iter()
            .any(|e| e.effect_id == FOCUS_AURA),
        "the aura the run started with"
    );
}

#[test]
fn a_run_from_before_runs_kept_their_reward_is_granted_the_catalog_reward() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, day, 8, 0));
    let run = story.activate(SlotKey::Main, local(tz, day, 9, 0)).unwrap();
    story.progress(run, 5, local(tz, day, 10, 0)).unwrap();
    story.board.run_mut(run).unwrap().reward = None;
    story.catalog.missions[0].reward.xp = 70;

    let claimed = story.claim(run, local(tz, day, 11, 0)).unwrap();
    assert_eq!(
        (claimed.claim.reward.xp, claimed.claim.reward.currency),
        (70, 50)
    );
}

// ---- boss ---------------------------------------------------------------------------------

#[test]
fn the_boss_goes_phase_1_to_phase_2_to_completed_and_is_claimed_once() {
    let tz = Europe::Madrid;
    let day = date(2025, 5, 5);
    let at = |hour| local(tz, day, hour, 0);
    let mut story = Story::new(tz, at(8));
    let other_task = Uuid::from_u128(0xD8);

    story.assert_refused("TASK_NOT_LINKED", |s| s.damage_boss(DRAGON_TASK, 3, at(9)));
    story.link_boss(DRAGON_TASK, at(9)).unwrap();
    story.assert_refused("TASK_NOT_LINKED", |s| s.damage_boss(other_task, 3, at(9)));
    story.assert_refused("AMOUNT_NOT_POSITIVE", |s| {
        s.damage_boss(DRAGON_TASK, 0, at(9))
    });
    story.damage_boss(DRAGON_TASK, 4, at(10)).unwrap();
    assert_eq!(story.board.boss.as_ref().unwrap().shield_current, 6);
    story.assert_refused("BOSS_NOT_IN_PHASE_2", |s| s.prove_boss("photo", at(10)));
    story.assert_refused("BOSS_NOT_COMPLETED", |s| s.claim_boss(at(10)));

    story.damage_boss(DRAGON_TASK, 50, at(11)).unwrap();
    let boss = story.board.boss.as_ref().unwrap();
    assert_eq!(
        (boss.phase, boss.shield_current, boss.phase2_ready),
        (2, 0, true)
    );
    assert_eq!(story.communications(CommunicationKind::System), 1);
    story.assert_refused("BOSS_NOT_IN_PHASE_1", |s| s.link_boss(other_task, at(11)));
    story.assert_refused("BOSS_NOT_COMPLETED", |s| s.claim_boss(at(11)));

    story.prove_boss("photo of the summit", at(12)).unwrap();
    let boss = story.board.boss.as_ref().unwrap();
    assert_eq!(boss.completed_at, Some(at(12)));
    assert_eq!(boss.phase2_proof.as_deref(), Some("photo of the summit"));
    story.assert_refused("BOSS_ALREADY_COMPLETED", |s| {
        s.prove_boss("another", at(12))
    });

    let first = story.claim_boss(at(13)).unwrap();
    assert!(!first.replayed);
    assert_eq!(
        (first.claim.source, first.claim.reward.xp),
        (ClaimSource::Boss, 500)
    );
    assert_eq!(
        story.board.boss.as_ref().unwrap().claim_id,
        Some(first.claim.claim_id)
    );
    assert_eq!(story.board.effects.len(), 1, "the boss's aura");
    let before = story.board.clone();
    let second = story.claim_boss(at(14)).unwrap();
    assert!(second.replayed);
    assert_eq!(second.claim, first.claim);
    assert_eq!(story.board, before);
}

#[test]
fn a_board_without_a_boss_refuses_boss_rules() {
    let tz = Europe::Madrid;
    let now = local(tz, date(2025, 5, 5), 8, 0);
    let mut story = Story::new(tz, now);
    story.board.boss = None;
    story.assert_refused("NO_BOSS", |s| s.link_boss(DRAGON_TASK, now));
    story.assert_refused("NO_BOSS", |s| s.damage_boss(DRAGON_TASK, 1, now));
    story.assert_refused("NO_BOSS", |s| s.prove_boss("x", now));
    story.assert_refused("NO_BOSS", |s| s.claim_boss(now));
}

#[test]
fn boss_rules_and_granted_effects_close_the_ended_days_first() {
    let tz = Europe::Madrid;
    let monday = |hour| local(tz, date(2025, 5, 5), hour, 0);
    let tuesday = local(tz, date(2025, 5, 6), 10, 0);
    type Step = fn(&mut Story, DateTime<Utc>) -> Result<(), Refusal>;
    let link: Step = |s, now| s.link_boss(DRAGON_TASK, now);
    let damage: Step = |s, now| s.damage_boss(DRAGON_TASK, 10, now);
    let prove: Step = |s, now| s.prove_boss("photo", now);
    let claim: Step = |s, now| s.claim_boss(now).map(drop);
    let grant: Step = |s, now| s.grant(STREAK_FREEZE, now).map(drop);
    // Every step but the last happens on Monday; the last, on Tuesday, is the rule told.
    let stories: [&[Step]; 5] = [
        &[link],
        &[link, damage],
        &[link, damage, prove],
        &[link, damage, prove, claim],
        &[grant],
    ];
    for steps in stories {
        let mut story = Story::new(tz, monday(8));
        let run = story.activate(SlotKey::Main, monday(9)).unwrap();
        let (told, before) = steps.split_last().unwrap();
        for step in before {
            step(&mut story, monday(10)).unwrap();
        }
        told(&mut story, tuesday).unwrap();
        assert_eq!(
            outcomes(story.run(run)),
            [(date(2025, 5, 5), DayOutcome::PetalLost)],
            "Monday closed before step {} was judged",
            steps.len()
        );
        assert_eq!(story.slot(SlotKey::Main).petals_remaining, 2);
        assert_eq!(story.board.updated_at, tuesday);
    }

    // A refusal leaves even the ended days as they were.
    let mut story = Story::new(tz, monday(8));
    story.activate(SlotKey::Main, monday(9)).unwrap();
    story.assert_refused("BOSS_NOT_IN_PHASE_2", |s| s.prove_boss("photo", tuesday));
    story.assert_refused("EFFECT_NOT_FOUND", |s| s.grant(DRAGON, tuesday));
}

// ---- refusals -----------------------------------------------------------------------------

#[test]
fn refusals_leave_the_board_as_it_was_even_with_days_waiting_to_close() {
    let tz = Europe::Madrid;
    let monday = date(2025, 5, 5);
    let mut story = Story::new(tz, local(tz, monday, 8, 0));
    let run = story
        .activate(SlotKey::Main, local(tz, monday, 9, 0))
        .unwrap();
    story.progress(run, 2, local(tz, monday, 10, 0)).unwrap();
    story.heartbeat(run, local(tz, monday, 10, 0)).unwrap();
    let failing = story
        .activate(SlotKey::Hunt, local(tz, monday, 9, 0))
        .unwrap();
    // Thursday: three days ended unseen; the hunt run loses its last petal with them.
    let later = local(tz, date(2025, 5, 8), 12, 0);
    let unknown = Uuid::from_u128(0xBAD);

    let refusal = story.assert_refused("RUN_NOT_FOUND", |s| s.heartbeat(unknown, later));
    assert_eq!(refusal.kind, RefusalKind::NotFound);
    story.assert_refused("RUN_NOT_FOUND", |s| s.claim(unknown, later));
    story.assert_refused("RUN_NOT_FOUND", |s| s.progress(unknown, 3, later));
    let refusal = story.assert_refused("RUN_NOT_ACTIVE", |s| s.heartbeat(failing, later));
    assert_eq!(
        refusal.metadata.last(),
        Some(&("status".to_owned(), "failed".to_owned()))
    );
    story.assert_refused("RUN_NOT_SUCCEEDED", |s| s.claim(failing, later));
    story.assert_refused("PROGRESS_BACKWARDS", |s| s.progress(run, 1, later));
    story.assert_refused("SLOT_NOT_IDLE", |s| s.activate(SlotKey::Main, later));
    story.assert_refused("SLOT_NOT_IDLE", |s| s.reroll(SlotKey::Main, later));

    let mut retired = story.catalog.clone();
    retired.missions.retain(|m| m.mission_id != SKILL_PIANO);
    story.assert_refused("MISSION_NOT_IN_CATALOG", |s| {
        activate(
            &mut s.board,
            SlotKey::Skill,
            &retired,
            &s.settings,
            &mut s.ids,
            later,
        )
    });

    // The same time passing without a refusal closes those days.
    assert!(!story.tick(later).is_empty());
    assert_eq!(story.run(failing).status, RunStatus::Failed);
}

// ---- weekly summary -----------------------------------------------------------------------

#[test]
fn a_weekly_summary_is_written_once_per_local_week() {
    let madrid = Europe::Madrid;
    let wednesday = date(2025, 5, 7);
    let mut story = Story::new(madrid, local(madrid, wednesday, 8, 0));
    let run = story
        .activate(SlotKey::Main, local(madrid, wednesday, 9, 0))
        .unwrap();
    story
        .heartbeat(run, local(madrid, wednesday, 10, 0))
        .unwrap();
    story.tick(local(madrid, date(2025, 5, 11), 23, 0));
    assert_eq!(
        story.communications(CommunicationKind::Weekly),
        0,
        "the first week is not over"
    );

    let monday = local(madrid, date(2025, 5, 12), 0, 30);
    story.tick(monday);
    assert_eq!(story.communications(CommunicationKind::Weekly), 1);
    let summary = story
        .board
        .communications
        .iter()
        .find(|c| c.kind == CommunicationKind::Weekly)
        .unwrap();
    assert_eq!(
        summary.message,
        "Week of 2025-05-05: 1 days kept, 0 days protected, 3 petals lost, 0 rewards claimed."
    );
    assert_eq!(story.board.last_weekly_summary, Some(date(2025, 5, 12)));

    // Moving west takes the local date back to Sunday, then forward to Monday again.
    set_time_zone(&mut story.board, America::New_York, monday);
    story.tick(monday + Duration::hours(1));
    story.tick(monday + Duration::hours(8));
    assert_eq!(story.communications(CommunicationKind::Weekly), 1);
    // The run failed in the first week: the second has nothing to tell, and says nothing.
    story.tick(local(America::New_York, date(2025, 5, 19), 0, 0));
    assert_eq!(story.communications(CommunicationKind::Weekly), 1);
    assert_eq!(story.board.last_weekly_summary, Some(date(2025, 5, 19)));
}
