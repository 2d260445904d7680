//! The Parquet export of the event log: files per day read back field by field against the
//! database, reruns that write nothing, leftovers of an interrupted run replaced without
//! duplicates, and a folder that cannot be written.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use phoenix_goals::ops::export::{self, ExportArgs};
use phoenix_proto::goals::v1 as pb;
use prost::Message;
use sqlx::Row;
use support::Harness;
use uuid::Uuid;

/// A folder removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("goals-export-{}", Uuid::new_v4()));
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One exported row, every column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExportedRow {
    position: i64,
    event_id: String,
    event_type: String,
    entity_type: String,
    entity_id: String,
    entity_version: i64,
    user_id: Option<String>,
    occurred_at_micros: i64,
    priority: i32,
    traceparent: String,
    correlation_id: String,
    payload: Vec<u8>,
}

/// Every row of every event file under `out`, by file (relative path).
fn read_back(out: &Path) -> BTreeMap<String, Vec<ExportedRow>> {
    let mut files = BTreeMap::new();
    for day in std::fs::read_dir(out).expect("out") {
        let day = day.expect("entry");
        if !day.file_type().expect("type").is_dir() {
            continue;
        }
        for file in std::fs::read_dir(day.path()).expect("day") {
            let file = file.expect("entry");
            let relative = format!(
                "{}/{}",
                day.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            let reader = SerializedFileReader::new(std::fs::File::open(file.path()).expect("open"))
                .expect("a parquet file");
            let rows = reader
                .get_row_iter(None)
                .expect("rows")
                .map(|row| {
                    let row = row.expect("row");
                    ExportedRow {
                        position: row.get_long(0).expect("position"),
                        event_id: row.get_string(1).expect("id").clone(),
                        event_type: row.get_string(2).expect("type").clone(),
                        entity_type: row.get_string(3).expect("entity type").clone(),
                        entity_id: row.get_string(4).expect("entity id").clone(),
                        entity_version: row.get_long(5).expect("version"),
                        user_id: row.get_string(6).ok().cloned(),
                        occurred_at_micros: row.get_timestamp_micros(7).expect("time"),
                        priority: row.get_int(8).expect("priority"),
                        traceparent: row.get_string(9).expect("traceparent").clone(),
                        correlation_id: row.get_string(10).expect("correlation").clone(),
                        payload: row.get_bytes(11).expect("payload").data().to_vec(),
                    }
                })
                .collect();
            files.insert(relative, rows);
        }
    }
    files
}

/// Every positioned event as the database holds it, with the user its payload names.
async fn from_database(pool: &sqlx::PgPool) -> Vec<ExportedRow> {
    let rows = sqlx::query(
        "SELECT p.position, e.* FROM event_positions p JOIN events e ON e.seq = p.seq
         ORDER BY p.position",
    )
    .fetch_all(pool)
    .await
    .expect("events");
    rows.iter()
        .map(|row| {
            let event_type: String = row.get("event_type");
            let payload: Vec<u8> = row.get("payload");
            let occurred_at: DateTime<Utc> = row.get("occurred_at");
            ExportedRow {
                position: row.get("position"),
                event_id: row.get::<Uuid, _>("event_id").to_string(),
                user_id: phoenix_goals::proto::event_user(&event_type, &payload),
                event_type,
                entity_type: row.get("aggregate_type"),
                entity_id: row.get("aggregate_id"),
                entity_version: row.get("aggregate_version"),
                occurred_at_micros: occurred_at.timestamp_micros(),
                priority: i32::from(row.get::<i16, _>("priority")),
                traceparent: row.get("traceparent"),
                correlation_id: row.get("correlation_id"),
                payload,
            }
        })
        .collect()
}

/// A GoalCreated of an earlier day, appended straight to the log (as a change made then).
async fn event_days_ago(pool: &sqlx::PgPool, days: i64, user: &str) {
    event_at(pool, Utc::now() - Duration::days(days), user).await;
}

/// A GoalCreated that occurred at `at`, appended straight to the log.
async fn event_at(pool: &sqlx::PgPool, at: DateTime<Utc>, user: &str) {
    let payload = pb::GoalCreated {
        goal: Some(pb::Goal {
            id: Uuid::new_v4().to_string(),
            user_id: user.into(),
            title: "old".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec();
    sqlx::query(
        "INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id, aggregate_version,
                             event_type, payload, occurred_at)
         VALUES ($1, $2, 'goal', $3, 1, 'phoenix.goals.v1.GoalCreated', $4, $5)",
    )
    .bind(Uuid::nil())
    .bind(Uuid::now_v7())
    .bind(Uuid::new_v4().to_string())
    .bind(payload)
    .bind(at)
    .execute(pool)
    .await
    .expect("an old event");
}

async fn some_changes(h: &mut Harness) {
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    h.move_task(&task, pb::TaskStatus::InProgress)
        .await
        .expect("started");
    h.client
        .create_code_snapshot(pb::CreateCodeSnapshotRequest {
            task_id: task.id.clone(),
            file_path: "main.rs".into(),
            language: "rust".into(),
            content: "fn main() {}".into(),
            ..Default::default()
        })
        .await
        .expect("snapshot");
}

#[tokio::test]
async fn the_export_writes_each_day_once_and_reads_back_field_by_field() {
    let mut h = Harness::start().await;
    let pool = h.goals.pool.clone();
    event_days_ago(&pool, 2, &h.user).await;
    some_changes(&mut h).await;
    let folder = Folder::new();
    let args = ExportArgs {
        out: folder.0.clone(),
        since: None,
        until: None,
    };
    let report = export::run(&pool, &args).await.expect("exported");
    let database = from_database(&pool).await;
    assert_eq!(report.events, database.len());
    assert_eq!(report.files.len(), 2, "two days: {:?}", report.files);
    let files = read_back(&folder.0);
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), report.files);
    let old_day = (Utc::now() - Duration::days(2)).date_naive();
    assert!(report.files[0].starts_with(&format!("date={old_day}/")));
    let exported: Vec<ExportedRow> = files.values().flatten().cloned().collect();
    assert_eq!(exported, database, "every field of every event");
    assert!(
        exported
            .iter()
            .all(|r| r.user_id.as_deref() == Some(h.user.as_str()))
    );

    // What went where is recorded beside the log.
    let recorded: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, parquet_path FROM event_exports ORDER BY position")
            .fetch_all(&pool)
            .await
            .expect("records");
    assert_eq!(recorded.len(), database.len());
    for (position, path) in &recorded {
        assert!(files[path].iter().any(|r| r.position == *position));
    }

    // A rerun writes nothing new.
    let again = export::run(&pool, &args).await.expect("rerun");
    assert_eq!((again.events, again.files.len()), (0, 0));
    assert_eq!(read_back(&folder.0), files);
}

#[tokio::test]
async fn an_interrupted_export_resumes_without_duplicates() {
    let mut h = Harness::start().await;
    let pool = h.goals.pool.clone();
    some_changes(&mut h).await;
    let folder = Folder::new();
    let args = ExportArgs {
        out: folder.0.clone(),
        since: None,
        until: None,
    };
    let first = export::run(&pool, &args).await.expect("exported");
    // An interrupted run: more events, written to a file that was never recorded (made here by
    // exporting them elsewhere and forgetting the record), and a half-written one.
    some_changes(&mut h).await;
    let elsewhere = Folder::new();
    let written = export::run(
        &pool,
        &ExportArgs {
            out: elsewhere.0.clone(),
            since: None,
            until: None,
        },
    )
    .await
    .expect("written elsewhere");
    let stale = written.files[0].clone();
    sqlx::query("DELETE FROM event_exports WHERE parquet_path = $1")
        .bind(&stale)
        .execute(&pool)
        .await
        .expect("record forgotten");
    let day = folder
        .0
        .join(first.files[0].split('/').next().expect("day"));
    std::fs::create_dir_all(folder.0.join(stale.split('/').next().expect("day"))).expect("day");
    std::fs::copy(elsewhere.0.join(&stale), folder.0.join(&stale))
        .expect("a stale unrecorded file");
    std::fs::write(day.join("events-00000000000000000099.parquet.tmp"), b"half").expect("tmp");
    // And an unrecorded copy of this log's exported events under another name.
    std::fs::copy(
        folder.0.join(&first.files[0]),
        day.join("events-00000000000000000098.parquet"),
    )
    .expect("an unrecorded duplicate");

    let resumed = export::run(&pool, &args).await.expect("resumed");
    assert_eq!(resumed.removed.len(), 3, "{:?}", resumed.removed);
    assert_eq!(
        resumed.files,
        [stale],
        "the same events, in the same file again"
    );
    let mut positions: Vec<i64> = read_back(&folder.0)
        .values()
        .flatten()
        .map(|r| r.position)
        .collect();
    positions.sort_unstable();
    let all: Vec<i64> = from_database(&pool)
        .await
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(positions, all, "each event in exactly one file");
}

#[tokio::test]
async fn a_folder_that_cannot_be_written_fails_and_records_nothing() {
    let mut h = Harness::start().await;
    some_changes(&mut h).await;
    let folder = Folder::new();
    std::fs::create_dir_all(&folder.0).expect("folder");
    let blocker = folder.0.join("a-file");
    std::fs::write(&blocker, b"not a folder").expect("file");
    let args = ExportArgs {
        out: blocker.join("out"),
        since: None,
        until: None,
    };
    let error = export::run(&h.goals.pool, &args)
        .await
        .expect_err("not writable");
    let message = format!("{error:#}");
    assert!(
        message.contains("cannot be created") && message.contains("a-file/out"),
        "{message}"
    );
    assert_eq!(h.count("event_exports").await, 0);

    let since_after_until = ExportArgs {
        out: folder.0.join("ok"),
        since: Some(Utc::now()),
        until: Some(Utc::now() - Duration::days(1)),
    };
    let error = export::run(&h.goals.pool, &since_after_until)
        .await
        .expect_err("bad range");
    assert!(
        format!("{error}").contains("must be before --until"),
        "{error}"
    );
}

#[tokio::test]
async fn files_this_database_did_not_write_are_never_removed_or_overwritten() {
    let mut first = Harness::start().await;
    let mut second = Harness::start().await;
    some_changes(&mut first).await;
    some_changes(&mut second).await;
    let folder = Folder::new();
    let args = ExportArgs {
        out: folder.0.clone(),
        since: None,
        until: None,
    };
    let exported = export::run(&first.goals.pool, &args)
        .await
        .expect("first database exported");
    let before = read_back(&folder.0);
    // A foreign file of another name: kept, and the second database's export goes beside it.
    let day = folder
        .0
        .join(exported.files[0].split('/').next().expect("day"));
    std::fs::rename(
        folder.0.join(&exported.files[0]),
        day.join("events-00000000000000999999.parquet"),
    )
    .expect("renamed");
    let beside = export::run(&second.goals.pool, &args)
        .await
        .expect("second database exported beside it");
    assert!(beside.removed.is_empty(), "{:?}", beside.removed);
    assert_eq!(beside.files, exported.files);
    let foreign = day.join("events-00000000000000999999.parquet");
    let rows = |files: &BTreeMap<String, Vec<ExportedRow>>, name: &str| {
        files
            .iter()
            .find(|(path, _)| path.ends_with(name))
            .map(|(_, rows)| rows.clone())
    };
    let after = read_back(&folder.0);
    assert_eq!(
        rows(&after, "events-00000000000000999999.parquet"),
        before.values().next().cloned(),
        "the foreign file is untouched"
    );

    // A foreign file of the very name the export would write: the run fails, naming it, and
    // neither overwrites it nor records anything.
    some_changes(&mut first).await;
    let other = Folder::new();
    let again = export::run(
        &first.goals.pool,
        &ExportArgs {
            out: other.0.clone(),
            since: None,
            until: None,
        },
    )
    .await
    .expect("first database's new events, elsewhere");
    let target = folder.0.join(&again.files[0]);
    std::fs::create_dir_all(target.parent().expect("day")).expect("day");
    std::fs::copy(other.0.join(&again.files[0]), &target).expect("copied");
    some_changes(&mut second).await;
    let recorded = second.count("event_exports").await;
    let collision = export::run(&second.goals.pool, &args)
        .await
        .expect_err("name taken");
    let message = format!("{collision:#}");
    assert!(
        message.contains("is not a file this database recorded")
            && message.contains(&again.files[0]),
        "{message}"
    );
    assert_eq!(second.count("event_exports").await, recorded);
    assert!(foreign.exists());
    assert_eq!(
        read_back(&other.0).values().next(),
        rows(&read_back(&folder.0), &again.files[0]).as_ref(),
        "the colliding file is untouched"
    );
    assert!(
        std::fs::read_dir(target.parent().expect("day"))
            .expect("day")
            .all(|f| !f
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")),
        "no .tmp left behind"
    );
}

#[tokio::test]
async fn day_folders_and_since_until_cut_exactly_at_their_instants() {
    let h = Harness::start().await;
    let pool = h.goals.pool.clone();
    let midnight = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let just_before = midnight - Duration::microseconds(1);
    let next_midnight = midnight + Duration::days(1);
    for at in [
        just_before,
        midnight,
        next_midnight - Duration::microseconds(1),
        next_midnight,
    ] {
        event_at(&pool, at, &h.user).await;
    }
    let folder = Folder::new();
    // [midnight, next midnight): the two events of March 2nd, the first of them at 00:00.
    let day = ExportArgs {
        out: folder.0.clone(),
        since: Some(midnight),
        until: Some(next_midnight),
    };
    let report = export::run(&pool, &day).await.expect("one day");
    assert_eq!(report.events, 2);
    assert_eq!(
        report.files,
        ["date=2026-03-02/events-00000000000000000002.parquet"]
    );
    let times: Vec<i64> = read_back(&folder.0)
        .values()
        .flatten()
        .map(|r| r.occurred_at_micros)
        .collect();
    assert_eq!(
        times,
        [
            midnight.timestamp_micros(),
            (next_midnight - Duration::microseconds(1)).timestamp_micros()
        ]
    );
    let again = export::run(&pool, &day).await.expect("rerun");
    assert_eq!((again.events, again.files.len()), (0, 0), "nothing new");

    // The rest: the instant before midnight is March 1st's, the next midnight March 3rd's.
    let rest = export::run(
        &pool,
        &ExportArgs {
            out: folder.0.clone(),
            since: None,
            until: None,
        },
    )
    .await
    .expect("the rest");
    assert_eq!(
        rest.files,
        [
            "date=2026-03-01/events-00000000000000000001.parquet",
            "date=2026-03-03/events-00000000000000000004.parquet"
        ]
    );
    assert_eq!(h.count("event_exports").await, 4);
}

#[tokio::test]
async fn a_day_folder_that_cannot_be_written_records_only_the_complete_files() {
    let mut h = Harness::start().await;
    let pool = h.goals.pool.clone();
    event_days_ago(&pool, 3, &h.user).await;
    some_changes(&mut h).await;
    let folder = Folder::new();
    std::fs::create_dir_all(&folder.0).expect("folder");
    // Today's day folder cannot be made: a file holds its name.
    let today = folder.0.join(format!("date={}", Utc::now().date_naive()));
    std::fs::write(&today, b"in the way").expect("blocker");
    let args = ExportArgs {
        out: folder.0.clone(),
        since: None,
        until: None,
    };
    let error = export::run(&pool, &args).await.expect_err("today fails");
    let message = format!("{error:#}");
    assert!(message.contains(&today.display().to_string()), "{message}");
    // The earlier day's file is complete and recorded; nothing of today is.
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT parquet_path FROM event_exports")
            .fetch_all(&pool)
            .await
            .expect("records");
    assert_eq!(recorded.len(), 1);
    let old_day = (Utc::now() - Duration::days(3)).date_naive();
    assert!(recorded[0].starts_with(&format!("date={old_day}/")));
    assert_eq!(h.count("event_exports").await, 1);

    std::fs::remove_file(&today).expect("unblocked");
    let rest = export::run(&pool, &args).await.expect("the rest");
    assert_eq!(rest.files.len(), 1);
    let mut positions: Vec<i64> = read_back(&folder.0)
        .values()
        .flatten()
        .map(|r| r.position)
        .collect();
    positions.sort_unstable();
    let all: Vec<i64> = from_database(&pool)
        .await
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(positions, all, "each event once");
}
