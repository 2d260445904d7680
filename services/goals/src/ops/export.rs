//! `phoenix export goals-events`: the event log to Parquet files, one folder per day.
//!
//! Files are `<out>/date=YYYY-MM-DD/events-<first position>.parquet`, each holding positioned
//! events of that day (UTC) in position order. After a file is written completely (to a
//! `.tmp` name, synced, renamed), the positions it holds are recorded in `event_exports` with
//! its path relative to `<out>`; an event is exported once. So a rerun writes nothing new, and
//! a run interrupted between writing a file and recording it leaves a file no record names:
//! the next run (under the same advisory lock, so never while another export writes) removes
//! such leftovers, and `.tmp` files, from the day folders before it writes, then exports those
//! events again. A leftover is known by its first event: one of this log (same position and id). A
//! file of any other origin is never removed nor overwritten: a name collision fails the run. A folder that cannot be written fails the run before anything is recorded.
//!
//! Columns: position, event_id, event_type, entity_type, entity_id, entity_version, user_id
//! (the payload's user, when it names one), occurred_at (UTC microseconds), priority,
//! traceparent, correlation_id, payload (the `phoenix.goals.v1` message, protobuf-encoded).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use sqlx::PgPool;

use crate::store::exports::{self as store, ExportedEvent};

/// The files' schema.
pub const SCHEMA: &str = "message goals_event {
    required int64 position;
    required binary event_id (STRING);
    required binary event_type (STRING);
    required binary entity_type (STRING);
    required binary entity_id (STRING);
    required int64 entity_version;
    optional binary user_id (STRING);
    required int64 occurred_at (TIMESTAMP(MICROS, true));
    required int32 priority;
    required binary traceparent (STRING);
    required binary correlation_id (STRING);
    required binary payload;
}";

/// Events read (and at most written to one file) per round.
const PAGE: i64 = 10_000;

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Folder the day folders go to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Only events that occurred at or after this time (RFC 3339, or a UTC date YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only events that occurred before this time (RFC 3339, or a UTC date YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Files written, relative to the folder.
    pub files: Vec<String>,
    pub events: usize,
    /// Leftovers of an interrupted run that were removed.
    pub removed: Vec<String>,
}

impl ExportReport {
    pub fn line(&self) -> String {
        format!(
            "goals-export events={} files={} removed_leftovers={}",
            self.events,
            self.files.len(),
            self.removed.len()
        )
    }
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{value:?} is neither an RFC 3339 time nor a date YYYY-MM-DD"))
}

/// Exports every positioned event of [`since`, `until`) not exported yet to `out`.
pub async fn run(pool: &PgPool, args: &ExportArgs) -> anyhow::Result<ExportReport> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        anyhow::ensure!(
            since < until,
            "--since ({since}) must be before --until ({until})"
        );
    }
    writable(&args.out)?;
    // Events committed but not positioned yet get their positions first, waiting for the
    // service's own sequencer should it be mid-pass (skipping it would export nothing new).
    phoenix_runtime::stream::sequencer::pass_waiting(pool).await?;
    let mut connection = pool.acquire().await?;
    anyhow::ensure!(
        store::try_lock(&mut connection).await?,
        "another export of the goals events is running; try again when it has finished"
    );
    let result = export(&mut connection, args).await;
    store::unlock(&mut connection).await?;
    result
}

async fn export(
    connection: &mut sqlx::PgConnection,
    args: &ExportArgs,
) -> anyhow::Result<ExportReport> {
    let recorded: HashSet<String> = store::recorded_paths(connection)
        .await?
        .into_iter()
        .collect();
    let mut report = ExportReport {
        removed: remove_leftovers(connection, &args.out, &recorded).await?,
        ..ExportReport::default()
    };
    let mut after = 0;
    loop {
        let events = store::pending(connection, after, args.since, args.until, PAGE).await?;
        let Some(last) = events.last() else {
            break;
        };
        after = last.position;
        let mut by_day: BTreeMap<NaiveDate, Vec<ExportedEvent>> = BTreeMap::new();
        for event in events {
            by_day
                .entry(event.occurred_at.date_naive())
                .or_default()
                .push(event);
        }
        for (day, events) in by_day {
            let relative = format!("date={day}/events-{:020}.parquet", events[0].position);
            write_file(&args.out.join(&relative), &events)
                .with_context(|| format!("writing {}", args.out.join(&relative).display()))?;
            let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
            store::record(connection, &positions, &relative, Utc::now()).await?;
            report.events += events.len();
            report.files.push(relative);
        }
    }
    Ok(report)
}

/// Fails with a clear message unless `out` is (or can be made) a folder this process can
/// write a file in.
fn writable(out: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out)
        .with_context(|| format!("the export folder {} cannot be created", out.display()))?;
    let probe = out.join(format!(".write-probe-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .with_context(|| format!("the export folder {} is not writable", out.display()))
}

/// Removes, from the day folders, `.tmp` files and the event files an interrupted run of this
/// database left: written, never recorded, and holding this log's events (its first event's
/// position and id match the log's).
/// Any other file (another database's export, one from before a reset) is never touched.
async fn remove_leftovers(
    connection: &mut sqlx::PgConnection,
    out: &Path,
    recorded: &HashSet<String>,
) -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for day in fs::read_dir(out)? {
        let day = day?;
        let day_name = day.file_name().to_string_lossy().into_owned();
        if !day_name.starts_with("date=") || !day.file_type()?.is_dir() {
            continue;
        }
        let files = fs::read_dir(day.path())
            .with_context(|| format!("reading the day folder {}", day.path().display()))?;
        for file in files {
            let file = file?;
            let name = file.file_name().to_string_lossy().into_owned();
            let relative = format!("{day_name}/{name}");
            if !name.starts_with("events-") {
                continue;
            }
            let leftover = if name.ends_with(".parquet.tmp") {
                true
            } else if name.ends_with(".parquet") && !recorded.contains(&relative) {
                match first_event(&file.path()) {
                    Some((position, event_id)) => {
                        store::is_logged(connection, position, event_id).await?
                    }
                    None => false,
                }
            } else {
                false
            };
            if leftover {
                fs::remove_file(file.path())
                    .with_context(|| format!("removing the leftover {}", file.path().display()))?;
                removed.push(relative);
            }
        }
    }
    Ok(removed)
}

/// The position and event id of an event file's first row; `None` when it is not one.
fn first_event(path: &Path) -> Option<(i64, uuid::Uuid)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let reader = SerializedFileReader::new(File::open(path).ok()?).ok()?;
    let row = reader.get_row_iter(None).ok()?.next()?.ok()?;
    let position = row.get_long(0).ok()?;
    let event_id = row.get_string(1).ok()?.parse().ok()?;
    Some((position, event_id))
}

/// Writes `events` to `path` whole or not at all: a `.tmp` file, synced, then renamed.
fn write_file(path: &Path, events: &[ExportedEvent]) -> anyhow::Result<()> {
    let folder = path.parent().context("an event file has a folder")?;
    fs::create_dir_all(folder)?;
    // A file of that name that survived the leftover sweep is not this database's to replace.
    anyhow::ensure!(
        !path.exists(),
        "{} exists and is not a file this database recorded (an export of another database, \
         or of this one before a reset?): export to another folder, or move it away",
        path.display()
    );
    let tmp = path.with_extension("parquet.tmp");
    let written = write_tmp(&tmp, events).and_then(|()| Ok(fs::rename(&tmp, path)?));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(folder)?.sync_all()?;
    Ok(())
}

/// Writes and syncs the events to the `.tmp` file.
fn write_tmp(tmp: &Path, events: &[ExportedEvent]) -> anyhow::Result<()> {
    let file = File::create(tmp)?;
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(file, schema, properties)?;
    let mut group = writer.next_row_group()?;
    write_columns(&mut group, events)?;
    group.close()?;
    let file = writer.into_inner()?;
    file.sync_all()?;
    Ok(())
}

fn text<'a>(values: impl Iterator<Item = &'a str>) -> Vec<ByteArray> {
    values
        .map(|v| ByteArray::from(v.as_bytes().to_vec()))
        .collect()
}

fn write_columns(
    group: &mut SerializedRowGroupWriter<'_, File>,
    events: &[ExportedEvent],
) -> anyhow::Result<()> {
    let users: Vec<Option<String>> = events
        .iter()
        .map(|e| crate::proto::event_user(&e.event_type, &e.payload))
        .collect();
    column::<Int64Type>(
        group,
        &events.iter().map(|e| e.position).collect::<Vec<_>>(),
        None,
    )?;
    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    column::<ByteArrayType>(group, &text(ids.iter().map(String::as_str)), None)?;
    column::<ByteArrayType>(
        group,
        &text(events.iter().map(|e| e.event_type.as_str())),
        None,
    )?;
    column::<ByteArrayType>(
        group,
        &text(events.iter().map(|e| e.entity_type.as_str())),
        None,
    )?;
    column::<ByteArrayType>(
        group,
        &text(events.iter().map(|e| e.entity_id.as_str())),
        None,
    )?;
    column::<Int64Type>(
        group,
        &events.iter().map(|e| e.entity_version).collect::<Vec<_>>(),
        None,
    )?;
    let levels: Vec<i16> = users.iter().map(|u| i16::from(u.is_some())).collect();
    column::<ByteArrayType>(
        group,
        &text(users.iter().flatten().map(String::as_str)),
        Some(&levels),
    )?;
    let times: Vec<i64> = events
        .iter()
        .map(|e| e.occurred_at.timestamp_micros())
        .collect();
    column::<Int64Type>(group, &times, None)?;
    let priorities: Vec<i32> = events.iter().map(|e| i32::from(e.priority)).collect();
    column::<Int32Type>(group, &priorities, None)?;
    column::<ByteArrayType>(
        group,
        &text(events.iter().map(|e| e.traceparent.as_str())),
        None,
    )?;
    column::<ByteArrayType>(
        group,
        &text(events.iter().map(|e| e.correlation_id.as_str())),
        None,
    )?;
    let payloads: Vec<ByteArray> = events
        .iter()
        .map(|e| ByteArray::from(e.payload.clone()))
        .collect();
    column::<ByteArrayType>(group, &payloads, None)?;
    anyhow::ensure!(
        group.next_column()?.is_none(),
        "the schema has a column this export does not write"
    );
    Ok(())
}

/// Writes the next column of the group.
fn column<T: DataType>(
    group: &mut SerializedRowGroupWriter<'_, File>,
    values: &[T::T],
    levels: Option<&[i16]>,
) -> anyhow::Result<()> {
    let mut writer = group
        .next_column()?
        .context("the schema has fewer columns than this export writes")?;
    writer.typed::<T>().write_batch(values, levels, None)?;
    writer.close()?;
    Ok(())
}
