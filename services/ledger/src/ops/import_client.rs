//! The client side of the Firebase import, behind `phoenix import`: reads Firestore exports,
//! sends them to FirebaseImportService in calls of `--batch-size` records, and prints the
//! validation report.
//!
//! Two formats are read, told apart by the file name:
//!
//! - `*.json`: a Firestore JSON export, `{"raw_signals": {"<docId>": {...}}, "campaigns": …}`
//!   (optionally wrapped in `{"__collections__": …}`). Each document is sent with the line
//!   where it starts. The whole file is parsed before anything is sent, so a broken export
//!   stops the import before it begins.
//! - `*.ndjson`, `*.jsonl`: one `{"collection": "...", "id": "...", "data": {...}}` per line.
//!   Every non-blank line is sent as read, malformed or not, so the server quarantines a bad
//!   one with its line number.
//!
//! Each run is a new batch. Each call's idempotency key is derived from the batch, the file and
//! the call's index in it, so a call retried after a transient failure (UNAVAILABLE, ABORTED)
//! takes effect once; running the whole import again imports nothing twice, because documents
//! are keyed by their Firebase id, and reports them as duplicates.
//!
//! While reading, the client counts the distinct document ids of each collection and their
//! checksum ([`import::checksum`]); the server compares them with what the database holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::domain::import;

/// Arguments of `phoenix import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Tenant the documents belong to (UUID).
    #[arg(long)]
    pub tenant: Uuid,
    /// Name of the source, recorded on the batch (e.g. firebase-prod-2025-12-01).
    #[arg(long)]
    pub source_name: String,
    /// Records per ImportRecords call (1-1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Firestore JSON exports (*.json) and NDJSON files (*.ndjson, *.jsonl), imported in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What an import did. `matches` is the verdict: the database accounts for every document of
/// the source (imported or quarantined); the command should fail when it is false.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub batch_id: Uuid,
    pub status: pb::ImportBatchStatus,
    pub matches: bool,
    pub records_read: i64,
    pub inserted: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    /// The full validation report, with the first page of rejected records.
    pub report: pb::ImportReport,
}

/// Most bytes of records one call carries, well under the server's default 4 MiB message limit.
const MAX_CALL_BYTES: usize = 3 * 1024 * 1024;
/// Most bytes of one record sent whole; a larger one is sent as its first [`CUT_RECORD_BYTES`]
/// bytes, marked, and the server quarantines it (RECORD_TOO_LARGE) instead of the call failing.
const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of an over-size record sent for its quarantine row.
const CUT_RECORD_BYTES: usize = 1024;
/// Attempts of a call that fails with a transient error.
const ATTEMPTS: u32 = 5;

/// Imports `args.files` over `channel` and prints the validation report on stdout. A progress
/// bar is drawn on stderr when it is a terminal.
pub async fn run(channel: Channel, args: ImportArgs) -> anyhow::Result<ImportSummary> {
    let files = inspect(&args.files)?;
    let total_bytes = files.iter().map(|f| f.bytes).sum();
    let progress = progress_bar(total_bytes);
    let client = FirebaseImportServiceClient::new(channel);
    let tenant_id = args.tenant.to_string();

    let start = pb::StartImportBatchRequest {
        tenant_id: tenant_id.clone(),
        source_name: args.source_name.clone(),
        idempotency_key: format!("import-start/{}", Uuid::new_v4()),
    };
    let batch = call("StartImportBatch", || {
        let mut client = client.clone();
        let request = start.clone();
        async move { client.start_import_batch(request).await }
    })
    .await?
    .batch
    .context("StartImportBatch answered without a batch")?;
    let batch_id: Uuid = batch
        .id
        .parse()
        .context("StartImportBatch answered a bad batch id")?;

    let mut sender = Sender {
        client: client.clone(),
        tenant_id: tenant_id.clone(),
        batch_id,
        batch_size: usize::from(args.batch_size),
        progress: progress.clone(),
        stats: BTreeMap::new(),
        records: Vec::new(),
        record_bytes: 0,
        key_prefix: String::new(),
        call_index: 0,
        totals: [0; 3],
    };
    let sent: anyhow::Result<()> = async {
        for (index, file) in files.iter().enumerate() {
            sender.key_prefix = format!("import/{batch_id}/{index}-{}", file_tag(&file.path));
            sender.call_index = 0;
            match file.format {
                Format::FirestoreExport => send_export(&mut sender, file).await?,
                Format::Ndjson => send_ndjson(&mut sender, file).await?,
            }
            sender.flush().await?;
        }
        Ok(())
    }
    .await;
    // The server fails a batch that takes no more calls as stale; say so, so the operator
    // knows what became of it and what to do.
    sent.with_context(|| {
        format!(
            "batch {batch_id} was not finished: the server fails it as stale once it has taken \
             no call for PHOENIX_LEDGER_IMPORT_STALE_AFTER (1h by default); rerun the import, \
             and what this batch imported is found as duplicates"
        )
    })?;

    let finish = pb::FinishImportBatchRequest {
        tenant_id,
        batch_id: batch_id.to_string(),
        sources: sender
            .stats
            .iter()
            .map(|(collection, ids)| pb::SourceCollection {
                collection: collection.clone(),
                document_count: i64::try_from(ids.len()).unwrap_or(i64::MAX),
                checksum: import::checksum(ids.iter().map(String::as_str)),
            })
            .collect(),
        idempotency_key: format!("import/{batch_id}/finish"),
    };
    let report = call("FinishImportBatch", || {
        let mut client = client.clone();
        let request = finish.clone();
        async move { client.finish_import_batch(request).await }
    })
    .await?
    .report
    .context("FinishImportBatch answered without a report")?;
    progress.finish_and_clear();
    print!("{}", render(&report));

    let batch = report.batch.clone().unwrap_or_default();
    Ok(ImportSummary {
        batch_id,
        status: batch.status(),
        matches: report.matches,
        records_read: batch.records_read,
        inserted: batch.inserted_count,
        duplicates: batch.duplicate_count,
        quarantined: batch.quarantined_count,
        report,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    FirestoreExport,
    Ndjson,
}

struct SourceFile {
    path: PathBuf,
    /// The name records carry, as given on the command line.
    name: String,
    format: Format,
    bytes: u64,
}

/// Tells each file's format and checks that it can be read, before anything is sent: an
/// export that is not JSON stops the import here.
fn inspect(paths: &[PathBuf]) -> anyhow::Result<Vec<SourceFile>> {
    paths
        .iter()
        .map(|path| {
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let format = match extension.as_deref() {
                Some("json") => Format::FirestoreExport,
                Some("ndjson" | "jsonl") => Format::Ndjson,
                _ => bail!(
                    "{}: cannot tell the format; name a Firestore JSON export *.json and an NDJSON file *.ndjson or *.jsonl",
                    path.display()
                ),
            };
            let bytes = std::fs::metadata(path)
                .with_context(|| format!("{}: cannot read it", path.display()))?
                .len();
            let file = SourceFile {
                path: path.clone(),
                name: path.display().to_string(),
                format,
                bytes,
            };
            let holds_records = match format {
                Format::FirestoreExport => {
                    let text = read_export(&file)?;
                    !export_documents(&file.name, &text)?.is_empty()
                }
                Format::Ndjson => ndjson_holds_a_line(&file)?,
            };
            if !holds_records {
                bail!(
                    "{}: holds no record; an empty file is refused, so a source that was not \
                     exported is never taken for one that was imported",
                    file.name
                );
            }
            Ok(file)
        })
        .collect()
}

/// Whether an NDJSON file has a line that is not blank (read up to the first one).
fn ndjson_holds_a_line(file: &SourceFile) -> anyhow::Result<bool> {
    let opened = std::fs::File::open(&file.path)
        .with_context(|| format!("{}: cannot open it", file.name))?;
    let mut reader = std::io::BufReader::new(opened);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}: cannot read it", file.name))?;
        if read == 0 {
            return Ok(false);
        }
        let text = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line);
        if !text.iter().all(u8::is_ascii_whitespace) {
            return Ok(true);
        }
    }
}

/// A short tag of a file name for idempotency keys (which must be short printable ASCII).
fn file_tag(path: &Path) -> String {
    Sha256::digest(path.as_os_str().as_encoded_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_export(file: &SourceFile) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&file.path)
        .with_context(|| format!("{}: cannot read it as UTF-8 text", file.name))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// One document of an export, borrowed from the file's text.
#[derive(Debug, PartialEq, Eq)]
struct ExportDocument<'a> {
    collection: String,
    id: String,
    json: &'a str,
    line: i64,
}

/// The documents of a Firestore JSON export in file order, repeated ids included (JSON objects
/// with a repeated key are legal; the server decides what a repeat is).
fn export_documents<'a>(name: &str, text: &'a str) -> anyhow::Result<Vec<ExportDocument<'a>>> {
    let lines = LineIndex::new(text);
    let mut collections: Entries<'a> = serde_json::from_str(text).with_context(|| {
        format!("{name}: not a Firestore JSON export (an object of collections of documents)")
    })?;
    if let [(key, value)] = collections.0.as_slice()
        && key == "__collections__"
    {
        collections = serde_json::from_str(value.get())
            .with_context(|| format!("{name}: __collections__ is not an object"))?;
    }
    let mut documents = Vec::new();
    for (collection, value) in collections.0 {
        let entries: Entries<'a> = serde_json::from_str(value.get()).with_context(|| {
            format!(
                "{name}:{}: collection {collection:?} must be an object of documents by id",
                lines.line_of(text, value.get())
            )
        })?;
        for (id, document) in entries.0 {
            documents.push(ExportDocument {
                collection: collection.clone(),
                id,
                json: document.get(),
                line: lines.line_of(text, document.get()),
            });
        }
    }
    Ok(documents)
}

/// The entries of a JSON object in order, repeated keys kept, values left as text.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(PhantomData<&'a ()>);
        impl<'de> serde::de::Visitor<'de> for Visitor<'de> {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Visitor(PhantomData))
    }
}

/// Byte offsets of line starts, to tell the line of a slice of the text.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self(starts)
    }

    /// The 1-based line where `part`, a slice of `text`, starts.
    fn line_of(&self, text: &str, part: &str) -> i64 {
        let offset = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        i64::try_from(self.0.partition_point(|start| *start <= offset)).unwrap_or(i64::MAX)
    }
}

async fn send_export(sender: &mut Sender, file: &SourceFile) -> anyhow::Result<()> {
    let text = read_export(file)?;
    let documents = export_documents(&file.name, &text)?;
    let mut sent = 0u64;
    for document in documents {
        let offset = (document.json.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        sender.progress.inc((offset as u64).saturating_sub(sent));
        sent = sent.max(offset as u64);
        let too_large = document.json.len() > MAX_RECORD_BYTES;
        let (json, cut_from_bytes) = if too_large {
            let mut cut = CUT_RECORD_BYTES;
            while !document.json.is_char_boundary(cut) {
                cut -= 1;
            }
            (
                &document.json[..cut],
                i64::try_from(document.json.len()).unwrap_or(i64::MAX),
            )
        } else {
            // Counted in the source only when sent whole (see send_ndjson).
            sender.count(&document.collection, &document.id);
            (document.json, 0)
        };
        let record = pb::ImportRecord {
            source_file: file.name.clone(),
            line_number: document.line,
            content: Some(pb::import_record::Content::Document(
                pb::FirestoreDocument {
                    collection: document.collection,
                    document_id: document.id,
                    json: json.to_owned(),
                },
            )),
            cut_from_bytes,
        };
        sender.push(record, json.len()).await?;
    }
    sender.progress.inc(file.bytes.saturating_sub(sent));
    Ok(())
}

async fn send_ndjson(sender: &mut Sender, file: &SourceFile) -> anyhow::Result<()> {
    let opened = std::fs::File::open(&file.path)
        .with_context(|| format!("{}: cannot open it", file.name))?;
    let mut reader = std::io::BufReader::new(opened);
    let mut line = Vec::new();
    let mut number = 0i64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}:{}: cannot read it", file.name, number + 1))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        sender.progress.inc(read as u64);
        let mut text: &[u8] = &line;
        if number == 1 {
            text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
        }
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if text.len() > MAX_RECORD_BYTES {
            // Not counted in the source: the server cannot read its id from the start alone.
            let record = pb::ImportRecord {
                source_file: file.name.clone(),
                line_number: number,
                content: Some(pb::import_record::Content::NdjsonLine(
                    text[..CUT_RECORD_BYTES].to_vec(),
                )),
                cut_from_bytes: i64::try_from(text.len()).unwrap_or(i64::MAX),
            };
            sender.push(record, CUT_RECORD_BYTES).await?;
            continue;
        }
        if let Some((collection, id)) = std::str::from_utf8(text)
            .ok()
            .and_then(import::ndjson_identity)
        {
            sender.stats.entry(collection).or_default().insert(id);
        }
        let record = pb::ImportRecord {
            source_file: file.name.clone(),
            line_number: number,
            content: Some(pb::import_record::Content::NdjsonLine(text.to_vec())),
            cut_from_bytes: 0,
        };
        sender.push(record, text.len()).await?;
    }
}

/// Gathers records into calls and sends them.
struct Sender {
    client: FirebaseImportServiceClient<Channel>,
    tenant_id: String,
    batch_id: Uuid,
    batch_size: usize,
    progress: ProgressBar,
    /// Distinct document ids read, by collection.
    stats: BTreeMap<String, BTreeSet<String>>,
    records: Vec<pb::ImportRecord>,
    record_bytes: usize,
    key_prefix: String,
    call_index: u64,
    /// Inserted, duplicates, quarantined so far.
    totals: [i64; 3],
}

impl Sender {
    fn count(&mut self, collection: &str, id: &str) {
        if let Some((collection, id)) = import::source_identity(collection, id) {
            self.stats.entry(collection).or_default().insert(id);
        }
    }

    async fn push(&mut self, record: pb::ImportRecord, bytes: usize) -> anyhow::Result<()> {
        if !self.records.is_empty() && self.record_bytes + bytes > MAX_CALL_BYTES {
            self.flush().await?;
        }
        self.records.push(record);
        self.record_bytes += bytes;
        if self.records.len() >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.records);
        self.record_bytes = 0;
        let first = records.first().map_or(0, |r| r.line_number);
        let last = records.last().map_or(0, |r| r.line_number);
        let file = records
            .first()
            .map(|r| r.source_file.clone())
            .unwrap_or_default();
        let request = pb::ImportRecordsRequest {
            tenant_id: self.tenant_id.clone(),
            batch_id: self.batch_id.to_string(),
            records,
            idempotency_key: format!("{}/{}", self.key_prefix, self.call_index),
        };
        self.call_index += 1;
        let client = self.client.clone();
        let answer = call("ImportRecords", || {
            let mut client = client.clone();
            let request = request.clone();
            async move { client.import_records(request).await }
        })
        .await
        .with_context(|| format!("{file}: records of lines {first} to {last}"))?;
        self.totals[0] += answer.inserted_count;
        self.totals[1] += answer.duplicate_count;
        self.totals[2] += answer.quarantined_count;
        self.progress.set_message(format!(
            "{} inserted, {} duplicates, {} quarantined",
            self.totals[0], self.totals[1], self.totals[2]
        ));
        Ok(())
    }
}

/// Calls an RPC, retrying transient failures with backoff. Safe because every mutating call
/// carries an idempotency key: a retry of a call that did take effect is answered, not redone.
async fn call<T, F, Fut>(method: &str, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let mut delay = Duration::from_millis(100);
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if tries < ATTEMPTS && transient(&status) => {
                tracing::warn!(method, code = ?status.code(), message = status.message(), "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                tries += 1;
            }
            Err(status) => {
                bail!("{method} failed: {:?}: {}", status.code(), status.message())
            }
        }
    }
}

fn transient(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Aborted)
}

/// A byte progress bar on stderr, only when stderr is a terminal.
fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The validation report, for people.
pub fn render(report: &pb::ImportReport) -> String {
    let batch = report.batch.clone().unwrap_or_default();
    let status = batch
        .status()
        .as_str_name()
        .trim_start_matches("IMPORT_BATCH_STATUS_")
        .to_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Import batch {} ({:?}): {status}",
        batch.id, batch.source_name
    );
    let _ = writeln!(
        out,
        "  {} records read: {} inserted, {} duplicates, {} quarantined",
        batch.records_read, batch.inserted_count, batch.duplicate_count, batch.quarantined_count
    );
    if !batch.error.is_empty() {
        let _ = writeln!(out, "  error: {}", batch.error);
    }
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>10} {:>12} {:>10}  match",
        "collection", "source", "imported", "quarantined", "accounted"
    );
    for c in &report.collections {
        let _ = writeln!(
            out,
            "  {:<20} {:>10} {:>10} {:>12} {:>10}  {}",
            c.collection,
            c.source_count,
            c.imported_count,
            c.quarantined_count,
            c.accounted_count,
            if c.matches { "yes" } else { "NO" }
        );
    }
    if report.rejected_count > 0 {
        let _ = writeln!(out, "  rejected records ({}):", report.rejected_count);
        for r in &report.rejected {
            let document = match (r.collection.as_str(), r.document_id.as_str()) {
                ("", "") => String::new(),
                (collection, id) => format!(" {collection}/{id}"),
            };
            let _ = writeln!(
                out,
                "    {}:{} {}{document}: {}",
                r.source_file, r.line_number, r.reason, r.message
            );
        }
        let shown = i64::try_from(report.rejected.len()).unwrap_or(i64::MAX);
        if report.rejected_count > shown {
            let _ = writeln!(
                out,
                "    … and {} more (GetImportReport with batch_id {})",
                report.rejected_count - shown,
                batch.id
            );
        }
    }
    let _ = writeln!(
        out,
        "  {}",
        if report.matches {
            "every document of the source is accounted for"
        } else {
            "the database does NOT account for the source"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_split_into_documents_with_their_lines_and_repeats() {
        let text = "{\n  \"campaigns\": {\n    \"c1\": {\"name\": \"A\"},\n    \"c1\": {\"name\": \"B\"}\n  },\n  \"raw_signals\": {\"s\\u0031\": [1]}\n}\n";
        let documents = export_documents("x.json", text).expect("an export");
        let summary: Vec<_> = documents
            .iter()
            .map(|d| (d.collection.as_str(), d.id.as_str(), d.json, d.line))
            .collect();
        assert_eq!(
            summary,
            [
                ("campaigns", "c1", "{\"name\": \"A\"}", 3),
                ("campaigns", "c1", "{\"name\": \"B\"}", 4),
                ("raw_signals", "s1", "[1]", 6),
            ]
        );
    }

    #[test]
    fn a_wrapped_export_is_unwrapped() {
        let text = r#"{"__collections__": {"audit_logs": {"a1": {}}}}"#;
        let documents = export_documents("x.json", text).expect("an export");
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].collection, "audit_logs");
    }

    #[test]
    fn a_broken_export_is_refused_with_its_place() {
        let error = export_documents("x.json", "{\"campaigns\": [1, 2]}").expect_err("array");
        assert!(
            format!("{error:#}").contains("x.json:1: collection \"campaigns\""),
            "{error:#}"
        );
        let error = export_documents("x.json", "{\"campaigns\": ").expect_err("cut");
        assert!(
            format!("{error:#}").contains("not a Firestore JSON export"),
            "{error:#}"
        );
    }

    #[test]
    fn files_are_told_apart_by_their_extension() {
        let error = inspect(&[PathBuf::from("export.csv")])
            .err()
            .expect("unknown format");
        assert!(
            error.to_string().contains("cannot tell the format"),
            "{error}"
        );
    }

    #[test]
    fn the_report_reads_as_a_table() {
        let report = pb::ImportReport {
            batch: Some(pb::ImportBatch {
                id: "b1".into(),
                source_name: "sample".into(),
                status: pb::ImportBatchStatus::Completed.into(),
                records_read: 3,
                inserted_count: 2,
                quarantined_count: 1,
                ..Default::default()
            }),
            collections: vec![pb::CollectionReport {
                collection: "campaigns".into(),
                source_count: 3,
                imported_count: 2,
                quarantined_count: 1,
                accounted_count: 3,
                matches: true,
                ..Default::default()
            }],
            matches: true,
            rejected_count: 1,
            rejected: vec![pb::RejectedRecord {
                source_file: "x.ndjson".into(),
                line_number: 4,
                collection: "campaigns".into(),
                document_id: "c3".into(),
                reason: "WRONG_TYPE".into(),
                message: "field \"budgetMinor\" must be an integer".into(),
                raw_excerpt: String::new(),
            }],
            next_page_token: String::new(),
        };
        let text = render(&report);
        assert!(
            text.contains("Import batch b1 (\"sample\"): COMPLETED"),
            "{text}"
        );
        assert!(
            text.contains("x.ndjson:4 WRONG_TYPE campaigns/c3"),
            "{text}"
        );
        assert!(
            text.contains("every document of the source is accounted for"),
            "{text}"
        );
    }
}
