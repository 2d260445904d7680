//! `phoenix import conversations`, `phoenix export conversations` and `phoenix legacy
//! conversations compare`: the move off the legacy bot's two JSON files and the rollback to
//! them. The formats and the rules are in [`crate::domain::legacy`] and the service's README.
//!
//! - The import reads both files whole (a file that is not one JSON object of records stops it
//!   before anything is written), merges both records of each number, and imports each contact
//!   in its own transaction, once per phone: a contact whose phone exists is left as it is, so
//!   a second run changes nothing. A record that breaks a rule, or that the database refuses,
//!   is quarantined alone (file, key, field path, rule, message quoting at most a short prefix
//!   of the value) and the import goes on.
//! - The export writes both files back from the database, each record as it was read while
//!   its fields hold what the import gave them, with every field the formats do not define.
//! - The compare renders the database as the export would and prints every difference from the
//!   files, field by field; records the import quarantines are listed apart, not as
//!   differences.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::app::Conversations;
use crate::app::legacy::Imported;
use crate::domain::legacy::{
    self, FileRecords, GUESTS_FILE, GuestView, Rejection, THREADS_FILE, ThreadView,
};
use crate::store::legacy::ExportRow;

/// Where the two files are.
#[derive(Debug, Clone, clap::Args)]
pub struct LegacyFiles {
    /// threads-data.json
    #[arg(long)]
    pub threads: PathBuf,
    /// guest-memory.json
    #[arg(long)]
    pub guests: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub files: LegacyFiles,
    /// Check everything (the database's refusals too) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the quarantine report goes (one JSON object per rejection); default
    /// `<guests>.quarantine.ndjson`.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
}

/// What an import did (or, with a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub dry_run: bool,
    /// Records in both files.
    pub records: usize,
    /// Contacts the records make (both files merged).
    pub contacts: usize,
    pub imported: usize,
    /// Contacts whose phone was already imported.
    pub unchanged: usize,
    /// Contacts rejected (each with one rejection or more in `quarantine`).
    pub quarantined: usize,
    /// Records rejected as a second spelling of a number their file already has.
    pub duplicates: usize,
    pub quarantine: Vec<Rejection>,
}

impl ImportSummary {
    pub fn line(&self) -> String {
        format!(
            "conversations-import dry_run={} records={} contacts={} imported={} unchanged={} quarantined={} duplicates={}",
            self.dry_run,
            self.records,
            self.contacts,
            self.imported,
            self.unchanged,
            self.quarantined,
            self.duplicates
        )
    }
}

fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// The records of threads-data.json and guest-memory.json.
type Records = (FileRecords, FileRecords);

/// Both files as records, or the rejections of the files that cannot be read at all (bytes
/// that are not UTF-8 included: read "lossily", they would import changed text).
fn records(files: &LegacyFiles) -> anyhow::Result<Result<Records, Vec<Rejection>>> {
    let threads = legacy::file_records(THREADS_FILE, &read_bytes(&files.threads)?);
    let guests = legacy::file_records(GUESTS_FILE, &read_bytes(&files.guests)?);
    Ok(match (threads, guests) {
        (Ok(t), Ok(g)) => Ok((t, g)),
        (t, g) => Err([t.err(), g.err()].into_iter().flatten().collect()),
    })
}

/// Imports both files, calling `progress(done, total)` per contact, and writes the quarantine
/// report to `report`.
pub async fn import(
    conversations: &Conversations,
    args: &ImportArgs,
    report: &Path,
    progress: impl Fn(u64, u64),
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary {
        dry_run: args.dry_run,
        ..Default::default()
    };
    let (threads, guests) = match records(&args.files)? {
        Ok(both) => both,
        Err(rejections) => {
            summary.quarantine = rejections;
            write_report(report, &summary.quarantine)?;
            return Ok(summary);
        }
    };
    let read = legacy::read(&threads, &guests);
    // A key repeated verbatim is a record too: reported, never dropped without a word.
    let repeats: Vec<Rejection> = threads.repeats.into_iter().chain(guests.repeats).collect();
    summary.records = read.records + repeats.len();
    summary.contacts = read.contacts.len() + read.rejected_contacts;
    summary.quarantined = read.rejected_contacts;
    summary.duplicates = read.duplicates + repeats.len();
    summary.quarantine = read.rejections;
    summary.quarantine.extend(repeats);
    let total = read.contacts.len() as u64;
    for (done, contact) in read.contacts.iter().enumerate() {
        progress(done as u64 + 1, total);
        match conversations.import_contact(contact, args.dry_run).await {
            Ok(Imported::Created) => summary.imported += 1,
            Ok(Imported::Unchanged) => summary.unchanged += 1,
            Err(
                error @ (phoenix_runtime::Error::Unavailable { .. }
                | phoenix_runtime::Error::DeadlineExceeded { .. }),
            ) => {
                write_report(report, &summary.quarantine)?;
                return Err(anyhow::anyhow!(
                    "contact {}: {error}; the report so far is in {}",
                    contact.phone,
                    report.display()
                ));
            }
            // The database refused this contact: it alone is quarantined.
            Err(error) => {
                summary.quarantined += 1;
                summary.quarantine.push(refused(contact, &error));
            }
        }
    }
    write_report(report, &summary.quarantine)?;
    Ok(summary)
}

fn refused(contact: &legacy::LegacyContact, error: &phoenix_runtime::Error) -> Rejection {
    let (file, key, field) = match (error.reason(), &contact.thread, &contact.guest) {
        ("THREAD_OF_ANOTHER_CONTACT", Some(thread), _) => {
            (THREADS_FILE, thread.key.clone(), "threadId".to_owned())
        }
        (_, thread, guest) => {
            let (file, key) = guest
                .as_ref()
                .map(|g| (GUESTS_FILE, g.key.clone()))
                .or_else(|| thread.as_ref().map(|t| (THREADS_FILE, t.key.clone())))
                .unwrap_or((GUESTS_FILE, contact.phone.to_string()));
            (
                file,
                key,
                error
                    .refusal()
                    .and_then(|r| r.field())
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    let message = match error.refusal() {
        Some(refusal) => refusal.message.clone(),
        None => phoenix_runtime::quote(&error.to_string()),
    };
    Rejection {
        file: file.to_owned(),
        key,
        field,
        rule: error.reason().to_owned(),
        message,
    }
}

fn write_report(path: &Path, quarantine: &[Rejection]) -> anyhow::Result<()> {
    let mut text = String::new();
    for entry in quarantine {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// A changed record's text: its file's fields in their order, each unchanged one as written,
/// the changed ones from `record`, then the fields the file did not have; `None` when the
/// stored text cannot serve (then the record is pretty-printed whole).
fn in_file_order(text: &str, record: &Map<String, Value>) -> Option<String> {
    let fields = legacy::fields_of(text)?;
    let mut out = String::from("{");
    let mut written = BTreeSet::new();
    for (key, raw) in &fields {
        if !written.insert(key.as_str()) {
            return None;
        }
        let value = record.get(key)?;
        let unchanged = serde_json::from_str::<Value>(raw.get()).ok().as_ref() == Some(value);
        let text = if unchanged {
            raw.get().to_owned()
        } else {
            serde_json::to_string_pretty(value)
                .ok()?
                .replace('\n', "\n    ")
        };
        field(&mut out, key, &text)?;
    }
    for (key, value) in record.iter().filter(|(k, _)| !written.contains(k.as_str())) {
        let text = serde_json::to_string_pretty(value)
            .ok()?
            .replace('\n', "\n    ");
        field(&mut out, key, &text)?;
    }
    out.push_str(if out.len() > 1 { "\n  }" } else { "}" });
    Some(out)
}

fn field(out: &mut String, key: &str, text: &str) -> Option<()> {
    out.push_str(if out.len() > 1 { ",\n    " } else { "\n    " });
    out.push_str(&serde_json::to_string(key).ok()?);
    out.push_str(": ");
    out.push_str(text);
    Some(())
}

/// One record as the export writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The key as the file wrote it (the phone's digits for a contact the files did not have).
    pub key: String,
    pub record: Map<String, Value>,
    /// The record's text as its file held it, while it still says exactly `record`: written
    /// back byte for byte (key order, number spelling, spacing).
    pub verbatim: Option<String>,
    position: Option<i32>,
}

/// The two files as the database renders them (threads-data.json, guest-memory.json), each in
/// its file's order, then the contacts the file did not have in phone order.
pub fn render(rows: &[ExportRow]) -> (Vec<Written>, Vec<Written>) {
    let mut threads = Vec::new();
    let mut guests = Vec::new();
    for row in rows {
        let c = &row.contact;
        let thread_original = row.threads_key.as_ref().map(|_| &row.legacy_thread);
        let guest_original = row.guests_key.as_ref().map(|_| &row.legacy_guest);
        if let Some(thread_id) = &row.thread_id {
            let view = ThreadView {
                thread_id: thread_id.clone(),
                chat_id: c.profile.chat_id.clone(),
                user_name: row.thread_user_name.clone(),
            };
            let original = thread_original.cloned().unwrap_or_default();
            threads.push(written(
                row.threads_key.as_deref(),
                row,
                legacy::render_thread(&original, &view),
                thread_original.and(row.legacy_thread_text.as_deref()),
                row.threads_position,
            ));
        }
        if row.in_guest_memory {
            let imported_name = imported_name(thread_original, guest_original);
            let view = GuestView {
                name: c.profile.name.clone(),
                labels: c.profile.labels.clone(),
                last_activity_at: c.profile.last_activity_at,
            };
            let original = guest_original.cloned().unwrap_or_default();
            guests.push(written(
                row.guests_key.as_deref(),
                row,
                legacy::render_guest(&original, imported_name.as_deref(), &view),
                guest_original.and(row.legacy_guest_text.as_deref()),
                row.guests_position,
            ));
        }
    }
    for file in [&mut threads, &mut guests] {
        file.sort_by_key(|w| (w.position.is_none(), w.position));
    }
    (threads, guests)
}

fn written(
    key: Option<&str>,
    row: &ExportRow,
    record: Map<String, Value>,
    text: Option<&str>,
    position: Option<i32>,
) -> Written {
    // The text is written only while it reads as exactly what the database renders; a changed
    // record keeps its fields' order and the text of its unchanged fields.
    let same = |text: &str| {
        serde_json::from_str::<Value>(text).ok().as_ref() == Some(&Value::Object(record.clone()))
    };
    let verbatim = text.and_then(|text| {
        if same(text) {
            return Some(text.to_owned());
        }
        in_file_order(text, &record).filter(|t| same(t))
    });
    Written {
        key: key.map_or_else(|| row.contact.phone.to_string(), str::to_owned),
        record,
        verbatim,
        position,
    }
}

/// A file's records by key, as compared.
fn records_of(file: &[Written]) -> Map<String, Value> {
    file.iter()
        .map(|w| (w.key.clone(), Value::Object(w.record.clone())))
        .collect()
}

/// The name the import gave a contact from its records (see `LegacyContact::name`).
fn imported_name(
    thread: Option<&Map<String, Value>>,
    guest: Option<&Map<String, Value>>,
) -> Option<String> {
    let guest = guest.and_then(|g| legacy::guest_record("", &Value::Object(g.clone())).ok());
    let thread = thread.and_then(|t| legacy::thread_record("", &Value::Object(t.clone())).ok());
    guest
        .and_then(|g| g.name)
        .or_else(|| thread.and_then(|t| t.user_name))
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub threads: usize,
    pub guests: usize,
}

impl ExportSummary {
    pub fn line(&self) -> String {
        format!(
            "conversations-export threads={} guests={}",
            self.threads, self.guests
        )
    }
}

/// Writes both files from the database, each replaced atomically (written beside, then
/// renamed), in the order the import read them: an unchanged record as its file held it, a
/// changed one pretty-printed as the bot's `JSON.stringify(data, null, 2)` wrote them.
pub async fn export(
    conversations: &Conversations,
    files: &LegacyFiles,
) -> anyhow::Result<ExportSummary> {
    let (threads, guests) = render(&conversations.export_rows().await?);
    // Both written beside before either replaces its file: a failure leaves both as they were
    // (never a threads file of today beside a guests file of yesterday).
    let threads_partial = write_partial(&files.threads, &threads)?;
    let guests_partial = write_partial(&files.guests, &guests).inspect_err(|_| {
        let _ = std::fs::remove_file(&threads_partial);
    })?;
    for (partial, path) in [
        (threads_partial, &files.threads),
        (guests_partial, &files.guests),
    ] {
        std::fs::rename(&partial, path)
            .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    }
    Ok(ExportSummary {
        threads: threads.len(),
        guests: guests.len(),
    })
}

/// Writes a file's records beside `path` (`<path>.partial`), answering where.
fn write_partial(path: &Path, records: &[Written]) -> anyhow::Result<PathBuf> {
    let mut text = String::from("{");
    for (i, w) in records.iter().enumerate() {
        text.push_str(if i == 0 { "\n  " } else { ",\n  " });
        text.push_str(&serde_json::to_string(&w.key)?);
        text.push_str(": ");
        match &w.verbatim {
            Some(verbatim) => text.push_str(verbatim),
            // Nested one level: newlines only separate tokens (a string's are escaped).
            None => text.push_str(&serde_json::to_string_pretty(&w.record)?.replace('\n', "\n  ")),
        }
    }
    text.push_str(if records.is_empty() { "}\n" } else { "\n}\n" });
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?;
    Ok(partial)
}

/// One difference between the files and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub file: &'static str,
    pub key: String,
    /// The record's field; empty when the whole record is missing on one side.
    pub field: String,
    pub in_file: Option<String>,
    pub in_database: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "(absent)".to_owned(), phoenix_runtime::quote)
        };
        write!(
            f,
            "{} {} {}: file {} database {}",
            self.file,
            phoenix_runtime::quote(&self.key),
            if self.field.is_empty() {
                "(record)"
            } else {
                &self.field
            },
            side(&self.in_file),
            side(&self.in_database)
        )
    }
}

/// What a compare found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub compared: usize,
    pub differences: Vec<Difference>,
    /// Records of the files the import quarantines (file, key).
    pub quarantined: Vec<(String, String)>,
}

impl Comparison {
    pub fn line(&self) -> String {
        format!(
            "conversations-compare records={} differences={} quarantined={}",
            self.compared,
            self.differences.len(),
            self.quarantined.len()
        )
    }
}

/// Every difference between the files and the database, field by field.
pub async fn compare(
    conversations: &Conversations,
    files: &LegacyFiles,
) -> anyhow::Result<Comparison> {
    let (threads, guests) = match records(files)? {
        Ok(both) => both,
        Err(rejections) => {
            let reasons: Vec<String> = rejections
                .iter()
                .map(|r| format!("{}: {} {}", r.file, r.rule, r.message))
                .collect();
            anyhow::bail!("cannot compare: {}", reasons.join("; "));
        }
    };
    let read = legacy::read(&threads, &guests);
    let skipped: BTreeSet<(String, String)> = read
        .rejections
        .iter()
        .map(|r| (r.file.clone(), r.key.clone()))
        .collect();
    let (db_threads, db_guests) = render(&conversations.export_rows().await?);
    let (db_threads, db_guests) = (records_of(&db_threads), records_of(&db_guests));
    // A repeated key's first record is compared; the repeat is listed as quarantined.
    let repeats = threads.repeats.iter().chain(&guests.repeats);
    let mut comparison = Comparison {
        quarantined: skipped
            .iter()
            .cloned()
            .chain(repeats.map(|r| (r.file.clone(), r.key.clone())))
            .collect(),
        ..Default::default()
    };
    let (threads, guests) = (threads.values(), guests.values());
    for (file, in_file, in_db) in [
        (THREADS_FILE, &threads, &db_threads),
        (GUESTS_FILE, &guests, &db_guests),
    ] {
        for (key, record) in in_file {
            if skipped.contains(&(file.to_owned(), key.clone())) {
                continue;
            }
            comparison.compared += 1;
            match in_db.get(key) {
                None => comparison.differences.push(Difference {
                    file,
                    key: key.clone(),
                    field: String::new(),
                    in_file: Some(record.to_string()),
                    in_database: None,
                }),
                Some(db) => differ(file, key, record, db, &mut comparison.differences),
            }
        }
        for (key, record) in in_db {
            if !in_file.contains_key(key) {
                comparison.differences.push(Difference {
                    file,
                    key: key.clone(),
                    field: String::new(),
                    in_file: None,
                    in_database: Some(record.to_string()),
                });
            }
        }
    }
    Ok(comparison)
}

fn differ(
    file: &'static str,
    key: &str,
    in_file: &Value,
    in_db: &Value,
    out: &mut Vec<Difference>,
) {
    let (Value::Object(a), Value::Object(b)) = (in_file, in_db) else {
        if in_file != in_db {
            out.push(Difference {
                file,
                key: key.to_owned(),
                field: String::new(),
                in_file: Some(in_file.to_string()),
                in_database: Some(in_db.to_string()),
            });
        }
        return;
    };
    let fields: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for field in fields {
        let (x, y) = (a.get(field), b.get(field));
        if x != y {
            out.push(Difference {
                file,
                key: key.to_owned(),
                field: field.clone(),
                in_file: x.map(Value::to_string),
                in_database: y.map(Value::to_string),
            });
        }
    }
}
