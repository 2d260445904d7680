//! The SQL repository against a real PostgreSQL: the snapshot and the relational rows hold the
//! same board, writes of one board are serialized, the database refuses what the rules forbid,
//! the batch day close takes only due boards, and the audit, catalog and analytics work on it.

// The update closures return the service's one error type, as the API's do; its size is the
// service's business, not these tests'.
#![allow(clippy::result_large_err)]

#[path = "support/boards.rs"]
mod boards;

use std::collections::HashSet;
use std::sync::Arc;

use boards::{active_run, at, board, date, idle_board};
use chrono::Duration;
use phoenix_missions::app::migration::{AuditReport, audit};
use phoenix_missions::domain::analytics::{AdherenceWeek, PageToken, RewardsWeek, WeekFilter};
use phoenix_missions::domain::board::{
    Board, BoardKey, Communication, CommunicationKind, Heartbeat, RunStatus, SlotKey, SlotState,
};
use phoenix_missions::domain::catalog::{Catalog, EffectKind, MissionTarget};
use phoenix_missions::store::analytics;
use phoenix_missions::store::sql::SqlBoards;
use phoenix_missions::store::{Saved, catalog};
use phoenix_runtime::Error;
use sqlx::PgPool;
use uuid::Uuid;

async fn database() -> (phoenix_testkit::TestDatabase, PgPool) {
    phoenix_testkit::migrated_database(&phoenix_missions::spec()).await
}

async fn version(pool: &PgPool, key: &BoardKey) -> i64 {
    sqlx::query_scalar(
        "SELECT version FROM missions_v2_state WHERE user_id = $1 AND season_id = $2",
    )
    .bind(key.user_id)
    .bind(&key.season_id)
    .fetch_one(pool)
    .await
    .expect("the board's snapshot row")
}

/// The board as the snapshot and as the relational rows hold it; both must be `expected`.
async fn assert_stored(boards: &SqlBoards, expected: &Board) {
    let key = expected.key();
    let snapshot = boards.load(&key).await.expect("load");
    assert_eq!(snapshot.as_ref(), Some(expected), "the snapshot");
    let relational = boards.load_relational(&key).await.expect("load_relational");
    assert_eq!(
        relational.as_ref(),
        Some(expected),
        "the relational rebuild"
    );
}

#[tokio::test]
async fn a_saved_board_reads_back_the_same_from_the_snapshot_and_from_the_rows() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let lived_in = board(Uuid::new_v4(), "2024-s1");

    assert_eq!(boards.put(&lived_in).await.expect("put"), None);

    assert_stored(&boards, &lived_in).await;
    assert_eq!(version(&pool, &lived_in.key()).await, 1);
    assert_eq!(
        boards.keys_of_user(lived_in.user_id).await.expect("keys"),
        vec![lived_in.key()]
    );
    assert_eq!(
        boards
            .load(&BoardKey {
                user_id: Uuid::new_v4(),
                season_id: "2024-s1".into()
            })
            .await
            .expect("load"),
        None
    );
}

#[tokio::test]
async fn instants_are_kept_to_the_microsecond_in_both_forms() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool);
    let mut nanos = board(Uuid::new_v4(), "2024-s1");
    nanos.updated_at = at("2024-03-08T09:30:00.123456789Z");

    boards.put(&nanos).await.expect("put");

    let mut expected = nanos.clone();
    expected.updated_at = at("2024-03-08T09:30:00.123456Z");
    assert_stored(&boards, &expected).await;
}

#[tokio::test]
async fn an_update_saves_only_what_changed_and_both_forms_follow() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");

    let answer = boards
        .update(&saved.key(), |current| {
            let mut board = current.expect("the board exists");
            let now = at("2024-03-09T10:00:00Z");
            let run = active_run(&mut board);
            run.heartbeats.push(Heartbeat {
                heartbeat_id: Uuid::new_v4(),
                date: date("2024-03-09"),
                petals_before: 2,
                petals_after: 2,
                created_at: now,
            });
            run.progress.current = 3;
            run.updated_at = now;
            board.slot_mut(SlotKey::Main).offers += 1;
            board.communications.push(Communication {
                communication_id: Uuid::new_v4(),
                kind: CommunicationKind::Daily,
                message: "Heartbeat kept.".into(),
                created_at: now,
            });
            board.updated_at = now;
            Ok(Saved::Write(board.clone(), board))
        })
        .await
        .expect("update");

    assert_stored(&boards, &answer).await;
    assert_eq!(version(&pool, &saved.key()).await, 2);
}

#[tokio::test]
async fn overwriting_a_board_removes_the_rows_it_no_longer_has() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");

    let mut smaller = saved.clone();
    // The failed skill run goes (its progress with it), and so do one heartbeat, one day close,
    // the claim, an effect, the boss and a communication; one heartbeat is rewritten in place.
    smaller.runs.retain(|run| run.status != RunStatus::Failed);
    smaller.slot_mut(SlotKey::Skill).run_id = None;
    smaller.slot_mut(SlotKey::Skill).state = SlotState::Idle;
    let run = active_run(&mut smaller);
    run.heartbeats.remove(0);
    run.heartbeats[0].petals_after = 1;
    run.days.pop();
    smaller.claims.clear();
    smaller.effects.remove(1);
    smaller.boss = None;
    smaller.communications.remove(1);

    let previous = boards.put(&smaller).await.expect("put");

    assert_eq!(previous.as_ref(), Some(&saved));
    assert_stored(&boards, &smaller).await;
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_mission_progress")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(runs, 2, "the removed run's progress went with it");
}

#[tokio::test]
async fn a_new_board_for_a_key_replaces_the_old_one_entirely() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let old = board(Uuid::new_v4(), "2024-s1");
    boards.put(&old).await.expect("put");

    let new = board(old.user_id, "2024-s1");
    boards.put(&new).await.expect("put");

    assert_stored(&boards, &new).await;
    let leftovers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM missions_v2_boards WHERE board_id = $1")
            .bind(old.board_id)
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(leftovers, 0);
}

#[tokio::test]
async fn concurrent_updates_of_one_board_are_serialized() {
    let (_database, pool) = database().await;
    let boards = Arc::new(SqlBoards::new(pool.clone()));
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");
    let offers_before = saved.slot(SlotKey::Hunt).offers;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let boards = boards.clone();
            let key = saved.key();
            tokio::spawn(async move {
                boards
                    .update(&key, |current| {
                        let mut board = current.expect("the board exists");
                        board.slot_mut(SlotKey::Hunt).offers += 1;
                        Ok(Saved::Write(board, ()))
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("update");
    }

    let stored = boards
        .load(&saved.key())
        .await
        .expect("load")
        .expect("board");
    assert_eq!(stored.slot(SlotKey::Hunt).offers, offers_before + 20);
    assert_stored(&boards, &stored).await;
    assert_eq!(version(&pool, &saved.key()).await, 21);
}

#[tokio::test]
async fn concurrent_creators_of_one_board_create_it_once() {
    let (_database, pool) = database().await;
    let boards = Arc::new(SqlBoards::new(pool));
    let user_id = Uuid::new_v4();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let boards = boards.clone();
            tokio::spawn(async move { boards.insert_if_absent(&board(user_id, "2024-s1")).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.expect("task").expect("insert_if_absent") {
            created += 1;
        }
    }

    assert_eq!(created, 1);
    let key = BoardKey {
        user_id,
        season_id: "2024-s1".into(),
    };
    let stored = boards.load(&key).await.expect("load").expect("board");
    assert_stored(&boards, &stored).await;
}

#[tokio::test]
async fn a_change_that_fails_or_keeps_writes_nothing() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");

    let refused = boards
        .update(&saved.key(), |_| -> Result<Saved<()>, Error> {
            Err(phoenix_missions::domain::Refusal::not_found("RUN_NOT_FOUND", "no such run").into())
        })
        .await;
    let kept = boards
        .update(&saved.key(), |current| Ok(Saved::Keep(current.is_some())))
        .await
        .expect("update");

    assert!(matches!(refused, Err(Error::Refused(_))));
    assert!(kept);
    assert_stored(&boards, &saved).await;
    assert_eq!(version(&pool, &saved.key()).await, 1);
}

/// The write was refused by the database's `constraint`: a broken invariant, named in the log.
#[track_caller]
fn assert_constraint<T: std::fmt::Debug>(written: Result<T, Error>, constraint: &str) {
    let Err(Error::Invariant { invariant, detail }) = written else {
        panic!("{constraint} must refuse the write, got {written:?}");
    };
    assert_eq!(invariant, "BOARD_CONSTRAINT");
    assert!(
        detail.contains(&format!("constraint {constraint}:")),
        "{detail}"
    );
}

#[tokio::test]
async fn the_database_refuses_a_second_heartbeat_of_a_run_on_one_local_day() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");
    let mut twice = saved.clone();
    let run = active_run(&mut twice);
    let mut again = run.heartbeats[1].clone();
    again.heartbeat_id = Uuid::new_v4();
    run.heartbeats.push(again);

    let written = boards.put(&twice).await;

    assert_constraint(written, "missions_v2_heartbeat_once_a_day");
    assert_stored(&boards, &saved).await;
}

#[tokio::test]
async fn the_database_refuses_a_second_claim_of_a_run_and_petals_out_of_range() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");

    let mut claimed_twice = saved.clone();
    let mut second = claimed_twice.claims[0].clone();
    second.claim_id = Uuid::new_v4();
    claimed_twice.claims.push(second);
    let mut too_many_petals = saved.clone();
    too_many_petals.slot_mut(SlotKey::Main).petals_remaining = 4;

    for (board, constraint) in [
        (claimed_twice, "missions_v2_claims_once_per_run"),
        (too_many_petals, "missions_v2_slots_petals_in_range"),
    ] {
        assert_constraint(boards.put(&board).await, constraint);
    }
    assert_stored(&boards, &saved).await;
}

#[tokio::test]
async fn a_slot_runs_one_active_run_at_a_time() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool);
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");
    let mut two_active = saved.clone();
    let mut second = active_run(&mut two_active).clone();
    second.run_id = Uuid::new_v4();
    second.heartbeats.clear();
    second.days.clear();
    two_active.runs.push(second);

    let written = boards.put(&two_active).await;

    assert_constraint(written, "missions_v2_one_active_run_per_slot");
}

/// What a tick at the end of Friday, Mar 8, does to the fixture board: Friday closes on its
/// active run and the skill slot's cooldown ends (both at 23:00 UTC). It is due again when the
/// hunt slot's cooldown ends, on Saturday at 09:00 UTC.
fn close_friday(board: &mut phoenix_missions::domain::board::Board) {
    let active = board
        .runs
        .iter_mut()
        .find(|run| run.status == RunStatus::Active)
        .expect("the fixture has an active run");
    let mut friday = active.days.last().expect("closed days").clone();
    assert!(friday.date < date("2024-03-08"));
    friday.date = date("2024-03-08");
    active.days.push(friday);
    let skill = board.slot_mut(SlotKey::Skill);
    assert_eq!(skill.cooldown_until, Some(at("2024-03-08T23:00:00Z")));
    skill.state = SlotState::Idle;
    skill.run_id = None;
    skill.cooldown_until = None;
}

#[tokio::test]
async fn the_batch_day_close_takes_only_due_boards_and_skips_locked_ones() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    // Due: an active run whose last change was on Friday (Madrid); the day ended at 23:00 UTC.
    let due = board(Uuid::new_v4(), "2024-s1");
    let locked = board(Uuid::new_v4(), "2024-s1");
    // Not due yet: due for its weekly summary on Monday.
    let idle = idle_board(Uuid::new_v4(), "2024-s1");
    // Not due yet: Friday (Mar 8) is closed, and the hunt slot rests until Saturday 09:00 UTC.
    let mut later = board(Uuid::new_v4(), "2024-s1");
    close_friday(&mut later);
    for board in [&due, &locked, &idle, &later] {
        boards.put(board).await.expect("put");
    }
    let mut holder = pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM missions_v2_state WHERE user_id = $1 FOR UPDATE")
        .bind(locked.user_id)
        .execute(&mut *holder)
        .await
        .expect("lock");

    let now = at("2024-03-09T00:30:00Z");
    let mut seen = Vec::new();
    let batch = boards
        .update_due(now, 100, &[], |board| {
            seen.push(board.user_id);
            close_friday(board);
            board.updated_at = now;
            Some(())
        })
        .await
        .expect("update_due");

    assert_eq!((batch.saved.len(), batch.refused.len()), (1, 0));
    assert_eq!(seen, vec![due.user_id]);
    let mut closed = due.clone();
    close_friday(&mut closed);
    closed.updated_at = now;
    assert_stored(&boards, &closed).await;
    let due_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT due_at FROM missions_v2_state WHERE user_id = $1")
            .bind(due.user_id)
            .fetch_one(&pool)
            .await
            .expect("due_at");
    assert_eq!(
        due_at,
        at("2024-03-09T09:00:00Z"),
        "due again when the hunt slot's cooldown ends"
    );
    holder.rollback().await.expect("rollback");

    let mut seen = Vec::new();
    let batch = boards
        .update_due(now, 100, &[], |board| {
            seen.push(board.user_id);
            None::<()>
        })
        .await
        .expect("update_due");
    assert_eq!(
        (batch.saved.len(), seen),
        (0, vec![locked.user_id]),
        "the lock is gone: its turn"
    );
}

#[tokio::test]
async fn the_batch_day_close_takes_at_most_its_limit_oldest_due_first() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool);
    let mut saved = Vec::new();
    for day in 1..=5 {
        let mut board = board(Uuid::new_v4(), "2024-s1");
        board.updated_at = at(&format!("2024-03-0{day}T12:00:00Z"));
        boards.put(&board).await.expect("put");
        saved.push(board.user_id);
    }

    let mut seen = Vec::new();
    let batch = boards
        .update_due(at("2024-03-20T00:00:00Z"), 2, &[], |board| {
            seen.push(board.user_id);
            board.updated_at += Duration::days(30);
            Some(())
        })
        .await
        .expect("update_due");

    assert_eq!(batch.saved.len(), 2);
    assert_eq!(seen, saved[..2]);
}

#[tokio::test]
async fn the_batch_day_close_saves_the_other_boards_when_the_database_refuses_one() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let due: Vec<Board> = (0..3).map(|_| board(Uuid::new_v4(), "2024-s1")).collect();
    for board in &due {
        boards.put(board).await.expect("put");
    }
    let refused = due[1].key();
    let now = at("2024-03-09T00:30:00Z");
    let close = |board: &mut Board| {
        close_friday(board);
        board.updated_at = now;
        // A rule bug on one board: more petals than the slot holds, which the database refuses.
        if board.key() == refused {
            board.slot_mut(SlotKey::Main).petals_remaining = 4;
        }
        Some(board.user_id)
    };

    let batch = boards
        .update_due(now, 100, &[], close)
        .await
        .expect("the batch goes through");

    let saved: HashSet<Uuid> = batch.saved.into_iter().collect();
    assert_eq!(saved, HashSet::from([due[0].user_id, due[2].user_id]));
    assert_eq!(batch.refused, std::slice::from_ref(&refused));
    for mut board in [due[0].clone(), due[2].clone()] {
        close_friday(&mut board);
        board.updated_at = now;
        assert_stored(&boards, &board).await;
        assert_eq!(version(&pool, &board.key()).await, 2);
    }
    assert_stored(&boards, &due[1]).await;
    assert_eq!(version(&pool, &refused).await, 1, "left as it was");

    // Still due: picked again, unless the caller leaves it out.
    let mut seen = Vec::new();
    let skipped = boards
        .update_due(now, 100, std::slice::from_ref(&refused), |board| {
            seen.push(board.key());
            None::<()>
        })
        .await
        .expect("update_due");
    assert!(seen.is_empty() && skipped.saved.is_empty());
    boards
        .update_due(now, 100, &[], |board| {
            seen.push(board.key());
            None::<()>
        })
        .await
        .expect("update_due");
    assert_eq!(seen, [refused]);
}

#[tokio::test]
async fn divergences_are_recorded() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let key = BoardKey {
        user_id: Uuid::new_v4(),
        season_id: "2024-s1".into(),
    };

    boards
        .record_divergence(
            &key,
            "snapshot_differs",
            &serde_json::json!({"fields": ["slots"]}),
        )
        .await
        .expect("record");

    let row: (Uuid, String, String, serde_json::Value) =
        sqlx::query_as("SELECT user_id, season_id, kind, detail FROM missions_v2_divergences")
            .fetch_one(&pool)
            .await
            .expect("the divergence");
    assert_eq!(
        row,
        (
            key.user_id,
            key.season_id,
            "snapshot_differs".into(),
            serde_json::json!({"fields": ["slots"]})
        )
    );
}

#[tokio::test]
async fn the_board_migrations_go_down_and_up_again() {
    let (_database, pool) = database().await;
    let set = phoenix_missions::spec()
        .migration_set()
        .expect("migrations");
    let migrator = phoenix_runtime::migrate::Migrator::new(&set, &pool);
    let tables = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'missions' AND c.relname LIKE '%missions_v2%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count")
    };
    let at_head = tables().await;

    // Every migration after 0001, which only creates the schema.
    let board_migrations = set.migrations().len() - 1;
    migrator.down(board_migrations, false).await.expect("down");
    assert_eq!(tables().await, 0);
    migrator.up(None, false).await.expect("up");
    assert_eq!(tables().await, at_head);

    let boards = SqlBoards::new(pool.clone());
    let saved = board(Uuid::new_v4(), "2024-s1");
    boards.put(&saved).await.expect("put");
    assert_stored(&boards, &saved).await;
}

#[tokio::test]
async fn boards_saved_without_a_due_time_are_due_at_once_after_migration_0005() {
    let (_database, pool) = database().await;
    let set = phoenix_missions::spec()
        .migration_set()
        .expect("migrations");
    let migrator = phoenix_runtime::migrate::Migrator::new(&set, &pool);
    let boards = SqlBoards::new(pool.clone());
    let idle = idle_board(Uuid::new_v4(), "2024-s1");
    let running = board(Uuid::new_v4(), "2024-s1");
    boards.put(&idle).await.expect("put");
    boards.put(&running).await.expect("put");
    let due_at = |user: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
                "SELECT due_at FROM missions_v2_state WHERE user_id = $1",
            )
            .bind(user)
            .fetch_one(&pool)
            .await
            .expect("due_at")
        }
    };
    let running_due = due_at(running.user_id).await;

    // Before 0005, only boards with an active run had a due time. Down to 0004: every
    // migration from 0005 on.
    migrator
        .down(set.migrations().len() - 4, false)
        .await
        .expect("down");
    assert_eq!(due_at(idle.user_id).await, None);
    assert_eq!(due_at(running.user_id).await, running_due);

    migrator.up(None, false).await.expect("up");
    let now = chrono::Utc::now();
    assert!(due_at(idle.user_id).await.is_some_and(|due| due <= now));
    assert_eq!(due_at(running.user_id).await, running_due);
}

// The catalog.

fn default_catalog() -> Catalog {
    serde_json::from_str(include_str!("../catalog/default.json")).expect("the default catalog")
}

#[tokio::test]
async fn the_default_catalog_is_loaded_once_when_replicas_start_together() {
    let (_database, pool) = database().await;

    let starts: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { catalog::ensure_default(&pool).await })
        })
        .collect();
    let mut loaded = 0;
    for start in starts {
        if start.await.expect("task").expect("ensure_default") {
            loaded += 1;
        }
    }

    assert_eq!(loaded, 1);
    assert_eq!(catalog::load(&pool).await.expect("load"), default_catalog());
    assert!(
        !catalog::ensure_default(&pool)
            .await
            .expect("ensure_default")
    );
}

#[test]
fn the_default_catalog_offers_every_slot_a_choice_a_streak_freeze_an_aura_and_a_boss() {
    let catalog = default_catalog();
    for slot in SlotKey::ALL {
        let missions: Vec<_> = catalog.offerable(slot).collect();
        assert!(
            missions.len() >= 3,
            "{slot:?} has {} missions",
            missions.len()
        );
        let difficulties: HashSet<_> = missions.iter().map(|m| m.difficulty).collect();
        assert!(
            difficulties.len() >= 2,
            "{slot:?} missions vary in difficulty"
        );
    }
    let units: HashSet<_> = catalog.missions.iter().map(|m| m.progress_unit).collect();
    assert_eq!(units.len(), 4, "every progress unit is used");
    assert!(
        catalog
            .effects
            .iter()
            .any(|e| e.kind == EffectKind::Amulet && e.protects_day())
    );
    assert!(catalog.effects.iter().any(|e| e.kind == EffectKind::Aura));
    assert!(!catalog.bosses.is_empty());
    for mission in &catalog.missions {
        for id in mission.badge_ids.iter().chain(&mission.reward.badge_id) {
            assert!(
                catalog.badge(*id).is_some(),
                "{} names a badge the catalog has",
                mission.name
            );
        }
        if let Some(aura) = mission.reward.aura_id {
            assert!(
                catalog.effect(aura).is_some(),
                "{} names an aura the catalog has",
                mission.name
            );
        }
    }
}

#[tokio::test]
async fn an_upserted_mission_reads_back_as_written_and_replaces_its_targets() {
    let (_database, pool) = database().await;
    catalog::ensure_default(&pool)
        .await
        .expect("ensure_default");
    let defaults = default_catalog();
    let mut mission = defaults.missions[0].clone();
    mission.mission_id = Uuid::now_v7();
    // Targets keep the order given, not their sort order; badges too.
    mission.targets = vec![
        MissionTarget {
            target_id: Uuid::new_v4(),
            task_id: Uuid::new_v4(),
            name: "Second".into(),
            tag: "b".into(),
            sort_order: 2,
        },
        MissionTarget {
            target_id: Uuid::new_v4(),
            task_id: Uuid::new_v4(),
            name: "First".into(),
            tag: "a".into(),
            sort_order: 1,
        },
    ];
    mission.badge_ids = defaults.badges.iter().rev().map(|b| b.badge_id).collect();

    let stored = catalog::upsert_mission(&pool, &mission)
        .await
        .expect("upsert");
    assert_eq!(stored, mission);

    mission.targets.truncate(1);
    mission.active = false;
    mission.badge_ids.clear();
    let stored = catalog::upsert_mission(&pool, &mission)
        .await
        .expect("upsert again");
    assert_eq!(stored, mission);
    let loaded = catalog::load(&pool).await.expect("load");
    assert_eq!(loaded.mission(mission.mission_id), Some(&mission));
    assert_eq!(loaded.missions.len(), defaults.missions.len() + 1);
}

#[tokio::test]
async fn the_catalog_refuses_a_taken_code_and_an_unknown_badge_naming_the_field() {
    let (_database, pool) = database().await;
    catalog::ensure_default(&pool)
        .await
        .expect("ensure_default");
    let defaults = default_catalog();
    let mut twin = defaults.badges[0].clone();
    twin.badge_id = Uuid::now_v7();
    let mut mission = defaults.missions[0].clone();
    mission.reward.badge_id = Some(Uuid::new_v4());

    let taken = catalog::upsert_badge(&pool, &twin).await;
    let unknown = catalog::upsert_mission(&pool, &mission).await;

    let Err(taken @ Error::Refused(_)) = taken else {
        panic!("a taken code must be refused, got {taken:?}");
    };
    assert_eq!(
        (taken.code(), taken.reason()),
        (tonic::Code::AlreadyExists, "BADGE_CODE_TAKEN")
    );
    let Err(unknown @ Error::Refused(_)) = unknown else {
        panic!("an unknown badge must be refused, got {unknown:?}");
    };
    assert_eq!(
        (unknown.code(), unknown.reason()),
        (tonic::Code::InvalidArgument, "UNKNOWN_BADGE")
    );
    assert_eq!(
        unknown.refusal().and_then(|refusal| refusal.field()),
        Some("mission.reward.badge_id")
    );
    assert_eq!(
        catalog::load(&pool).await.expect("load"),
        defaults,
        "nothing was written"
    );
}

/// What the API's validation stops never reaches the tables; should a rule ever slip through,
/// what the tables refuse is still the request's error, never INTERNAL.
#[tokio::test]
async fn a_value_the_catalog_tables_refuse_is_invalid_even_past_validation() {
    let (_database, pool) = database().await;
    catalog::ensure_default(&pool)
        .await
        .expect("ensure_default");
    let defaults = default_catalog();
    let mut effect = defaults.effects[0].clone();
    effect.name = "n".repeat(201);
    let mut mission = defaults.missions[0].clone();
    mission.metadata = serde_json::json!({"note": "a\u{0}b"});

    for (written, item) in [
        catalog::upsert_effect(&pool, &effect).await.map(drop),
        catalog::upsert_mission(&pool, &mission).await.map(drop),
    ]
    .into_iter()
    .zip(["effect", "mission"])
    {
        let Err(refused @ Error::Refused(_)) = written else {
            panic!("the {item} must be refused, got {written:?}");
        };
        assert_eq!(
            (refused.code(), refused.reason()),
            (tonic::Code::InvalidArgument, "CATALOG_CONSTRAINT")
        );
        assert_eq!(refused.refusal().and_then(|r| r.field()), Some(item));
    }
    assert_eq!(
        catalog::load(&pool).await.expect("load"),
        defaults,
        "nothing was written"
    );
}

// Analytics.

#[tokio::test]
async fn the_weekly_views_refresh_concurrently_and_list_newest_week_first() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let (first, second) = (
        board(Uuid::new_v4(), "2024-s1"),
        board(Uuid::new_v4(), "2024-s1"),
    );
    boards.put(&first).await.expect("put");
    analytics::refresh(&pool).await.expect("refresh");
    let everyone = |limit| WeekFilter {
        limit,
        ..WeekFilter::default()
    };
    let only_first = WeekFilter {
        user_id: Some(first.user_id),
        ..everyone(10)
    };

    let (weeks, next) = analytics::adherence(&pool, &only_first)
        .await
        .expect("adherence");

    // Madrid's week of Monday 4 March: heartbeats on the 6th and 8th, a petal lost on the 5th,
    // a protected 7th, hunt's run succeeded on the 6th. The week before: the hunt run's
    // heartbeat on the 2nd and its petal lost on the 1st.
    let week = |day, heartbeat_days, protected_days, petals_lost, runs_succeeded| AdherenceWeek {
        user_id: first.user_id,
        week: date(day),
        heartbeat_days,
        protected_days,
        petals_lost,
        runs_succeeded,
    };
    assert_eq!(
        weeks,
        vec![
            week("2024-03-04", 2, 1, 1, 1),
            week("2024-02-26", 1, 0, 1, 0)
        ]
    );
    assert_eq!(next, None);
    let (rewards, _) = analytics::rewards(&pool, &only_first)
        .await
        .expect("rewards");
    assert_eq!(
        rewards,
        vec![RewardsWeek {
            user_id: first.user_id,
            week: date("2024-03-04"),
            xp_total: 120,
            currency_total: 50,
            claims: 1
        }]
    );

    boards.put(&second).await.expect("put");
    assert_eq!(
        analytics::adherence(&pool, &everyone(10))
            .await
            .expect("list")
            .0
            .len(),
        2,
        "not refreshed yet"
    );
    analytics::refresh(&pool).await.expect("refresh again");
    let (page, token) = analytics::adherence(&pool, &everyone(3))
        .await
        .expect("first page");
    let rest = WeekFilter {
        after: token,
        ..everyone(3)
    };
    let (last, end) = analytics::adherence(&pool, &rest)
        .await
        .expect("second page");

    let (high, low) = if first.user_id > second.user_id {
        (first.user_id, second.user_id)
    } else {
        (second.user_id, first.user_id)
    };
    let keys: Vec<_> = page
        .iter()
        .chain(&last)
        .map(|w| (w.week, w.user_id))
        .collect();
    assert_eq!(
        keys,
        vec![
            (date("2024-03-04"), high),
            (date("2024-03-04"), low),
            (date("2024-02-26"), high),
            (date("2024-02-26"), low),
        ]
    );
    assert_eq!((page.len(), last.len(), end), (3, 1, None));
    let recent = WeekFilter {
        from_week: Some(date("2024-03-04")),
        ..everyone(10)
    };
    assert_eq!(
        analytics::adherence(&pool, &recent)
            .await
            .expect("list")
            .0
            .len(),
        2
    );
    let token = PageToken::decode(&token.expect("a next page").encode());
    assert_eq!(token, rest.after, "a token survives its text form");
}

// The audit.

#[tokio::test]
async fn the_audit_finds_nothing_on_boards_the_store_wrote() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    for board in [
        board(Uuid::new_v4(), "2024-s1"),
        board(Uuid::new_v4(), "2024-s2"),
        idle_board(Uuid::new_v4(), "2024-s1"),
    ] {
        boards.put(&board).await.expect("put");
    }

    let report = audit(&pool).await.expect("audit");

    assert_eq!(
        report,
        AuditReport {
            boards: 3,
            violations: vec![]
        }
    );
}

#[tokio::test]
async fn the_audit_catches_tampered_snapshots_and_rows_and_broken_invariants() {
    let (_database, pool) = database().await;
    let boards = SqlBoards::new(pool.clone());
    let mut users = Vec::new();
    for _ in 0..8 {
        let board = board(Uuid::new_v4(), "2024-s1");
        boards.put(&board).await.expect("put");
        users.push(board.user_id);
    }
    // The fixture's slots are main, hunt, skill; its runs hunt, skill, main (active).
    let tamper = |user: Uuid, sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .bind(user)
                .execute(&pool)
                .await
                .expect("tamper");
        }
    };
    tamper(users[0], "UPDATE missions_v2_state SET state = jsonb_set(state, '{slots,0,petalsRemaining}', '7') WHERE user_id = $1").await;
    tamper(users[1], "UPDATE missions_v2_state SET state = jsonb_set(state, '{runs,2,heartbeats}', (state #> '{runs,2,heartbeats}') || (state #> '{runs,2,heartbeats,0}')) WHERE user_id = $1").await;
    tamper(users[2], "UPDATE missions_v2_state SET state = jsonb_set(state, '{claims}', (state -> 'claims') || (state -> 'claims')) WHERE user_id = $1").await;
    tamper(users[3], "UPDATE missions_v2_state SET state = jsonb_set(state, '{slots,0,state}', '\"cooldown\"') WHERE user_id = $1").await;
    tamper(users[4], "UPDATE missions_v2_state SET state = jsonb_set(state, '{runs,2,days}', (state #> '{runs,2,days}') || (state #> '{runs,2,days,0}')) WHERE user_id = $1").await;
    tamper(users[5], "DELETE FROM missions_v2_heartbeat_log h USING missions_v2_slot_runs r, missions_v2_boards b WHERE h.run_id = r.run_id AND r.board_id = b.board_id AND b.user_id = $1 AND h.position = 0 AND r.status = 'active'").await;
    tamper(
        users[6],
        "DELETE FROM missions_v2_boards WHERE user_id = $1",
    )
    .await;
    tamper(users[7], "DELETE FROM missions_v2_state WHERE user_id = $1").await;

    let report = audit(&pool).await.expect("audit");

    let found: HashSet<(String, Uuid)> = report
        .violations
        .iter()
        .map(|v| (v.check.clone(), v.user_id.expect("about one board")))
        .collect();
    let expected: HashSet<(String, Uuid)> = [
        ("snapshot_matches_relational", users[0]),
        ("petals_within_total", users[0]),
        ("snapshot_matches_relational", users[1]),
        ("one_heartbeat_per_run_and_day", users[1]),
        ("snapshot_matches_relational", users[2]),
        ("one_claim_per_run", users[2]),
        ("snapshot_matches_relational", users[3]),
        ("no_active_run_in_cooldown", users[3]),
        ("snapshot_matches_relational", users[4]),
        ("one_close_per_run_and_day", users[4]),
        ("snapshot_matches_relational", users[5]),
        ("snapshot_has_relational_board", users[6]),
        ("relational_board_has_snapshot", users[7]),
    ]
    .into_iter()
    .map(|(check, user)| (check.to_owned(), user))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(report.violations.len(), expected.len());
    assert_eq!(report.boards, 7);
    let petals = report
        .violations
        .iter()
        .find(|v| v.check == "petals_within_total")
        .expect("petals");
    assert_eq!(petals.detail, "slot main has 7 petals of 3");
    let differs = report
        .violations
        .iter()
        .find(|v| v.check == "snapshot_matches_relational" && v.user_id == Some(users[5]))
        .expect("the tampered rows");
    assert_eq!(
        differs.detail,
        "the snapshot differs from the relational rows in: runs"
    );
}
