//! The Firebase import: batches, the imported documents, the quarantine, and the database side
//! of the validation report. Documents are inserted with `ON CONFLICT DO NOTHING` on
//! (tenant_id, firebase_id), so a document is imported once however often it is sent.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use phoenix_runtime::stream::{self, NewEvent};

use super::events::types;
use crate::domain::import::{
    self, BatchStatus, Collection, DatabaseCollection, Fields, ImportBatch, Planned, Quarantined,
    RejectedRecord, SourceCollection,
};
use phoenix_runtime::Error;

use crate::error;

/// Aggregate type of a batch's event stream.
pub const AGGREGATE: &str = "import_batch";

const BATCH_COLUMNS: &str = "id, tenant_id, source_name, status, records_read, inserted, \
    duplicates, quarantined, started_at, finished_at, error, event_version";

type BatchRow = (
    Uuid,
    Uuid,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
    i64,
);

/// A batch and the version of its event stream.
fn batch(row: BatchRow) -> Result<(ImportBatch, i64), Error> {
    let status = BatchStatus::parse(&row.3)
        .ok_or_else(|| error::unknown_stored("import batch status", &row.3))?;
    Ok((
        ImportBatch {
            id: row.0,
            tenant_id: row.1,
            source_name: row.2,
            status,
            records_read: row.4,
            inserted: row.5,
            duplicates: row.6,
            quarantined: row.7,
            started_at: row.8,
            finished_at: row.9,
            error: row.10,
        },
        row.11,
    ))
}

/// Opens a batch, with its `ImportBatchStarted` event.
pub async fn insert_batch(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    source_name: &str,
    now: DateTime<Utc>,
) -> Result<ImportBatch, Error> {
    let row: BatchRow = sqlx::query_as(&format!(
        "INSERT INTO import_batches (tenant_id, id, source_name, status, started_at, event_version,
                                     last_call_at)
         VALUES ($1, $2, $3, 'RUNNING', $4, 1, $4)
         RETURNING {BATCH_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(source_name)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let (started, _) = batch(row)?;
    let payload = pb::ImportBatchStarted {
        batch: Some(crate::proto::import_batch(&started)),
    };
    append(
        connection,
        &started,
        1,
        types::IMPORT_BATCH_STARTED,
        &payload,
        now,
    )
    .await?;
    Ok(started)
}

async fn append(
    connection: &mut PgConnection,
    batch: &ImportBatch,
    version: i64,
    event_type: &'static str,
    payload: &impl prost::Message,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    stream::append(
        connection,
        batch.tenant_id,
        &[NewEvent::new(
            AGGREGATE, batch.id, version, event_type, payload, now,
        )],
    )
    .await
}

/// A batch of the tenant.
pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ImportBatch>, Error> {
    let row: Option<BatchRow> = sqlx::query_as(&format!(
        "SELECT {BATCH_COLUMNS} FROM import_batches WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(batch).transpose()?.map(|(batch, _)| batch))
}

/// A batch, locked until the transaction ends: calls of one batch take turns, and none slips
/// in after the finish.
pub async fn lock(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ImportBatch>, Error> {
    let row: Option<BatchRow> = sqlx::query_as(&format!(
        "SELECT {BATCH_COLUMNS} FROM import_batches WHERE tenant_id = $1 AND id = $2
         FOR NO KEY UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(batch).transpose()?.map(|(batch, _)| batch))
}

/// Up to `limit` running batches whose last call (or start) is before `before`, locked; those
/// another transaction holds are skipped.
pub async fn stale_batches(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM import_batches
         WHERE status = 'RUNNING' AND coalesce(last_call_at, started_at) < $1
         ORDER BY coalesce(last_call_at, started_at)
         LIMIT $2
         FOR NO KEY UPDATE SKIP LOCKED",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(connection)
    .await?)
}

/// What one ImportRecords call adds to a batch's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub inserted: i64,
    pub duplicates: i64,
    pub quarantined: i64,
}

/// Adds one call's counts to a locked batch, with its `ImportRecordsApplied` event.
pub async fn add_counts(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    counts: Counts,
    now: DateTime<Utc>,
) -> Result<ImportBatch, Error> {
    let row: BatchRow = sqlx::query_as(&format!(
        "UPDATE import_batches
         SET records_read = records_read + $3 + $4 + $5, inserted = inserted + $3,
             duplicates = duplicates + $4, quarantined = quarantined + $5,
             event_version = event_version + 1, last_call_at = greatest(last_call_at, $6)
         WHERE tenant_id = $1 AND id = $2
         RETURNING {BATCH_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(batch_id)
    .bind(counts.inserted)
    .bind(counts.duplicates)
    .bind(counts.quarantined)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let (batch, version) = batch(row)?;
    let payload = pb::ImportRecordsApplied {
        batch_id: batch_id.to_string(),
        inserted_count: counts.inserted,
        duplicate_count: counts.duplicates,
        quarantined_count: counts.quarantined,
    };
    append(
        connection,
        &batch,
        version,
        types::IMPORT_RECORDS_APPLIED,
        &payload,
        now,
    )
    .await?;
    Ok(batch)
}

/// Inserts the documents of one collection that are not there yet; returns the ids inserted.
pub async fn insert_documents(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    collection: Collection,
    documents: &[&Planned],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, Error> {
    let ids: Vec<&str> = documents.iter().map(|p| p.document.id.as_str()).collect();
    // The text as sent, made jsonb by PostgreSQL: numbers stay exact (see `json_text`).
    let originals: Vec<&str> = documents
        .iter()
        .map(|p| p.document.original_text.as_str())
        .collect();
    let query = match collection {
        Collection::RawSignals => {
            let signals: Vec<_> = documents
                .iter()
                .filter_map(|p| match &p.document.fields {
                    Fields::RawSignal(signal) => Some(signal),
                    _ => None,
                })
                .collect();
            sqlx::query_scalar::<_, String>(
                "INSERT INTO raw_signals (tenant_id, firebase_id, source, signal_type, user_id,
                                          occurred_at, payload, document, batch_id, imported_at)
                 SELECT $1, d.id, d.source, d.signal_type, d.user_id, d.occurred_at,
                        -- The payload as sent too (its numbers exact); absent or null is {}.
                        CASE WHEN jsonb_typeof(d.document::jsonb -> 'payload') = 'object'
                             THEN d.document::jsonb -> 'payload' ELSE d.payload END,
                        d.document::jsonb, $2, $3
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                             $9::jsonb[], $10::text[])
                      AS d(id, source, signal_type, user_id, occurred_at, payload, document)
                 ON CONFLICT (tenant_id, firebase_id) DO NOTHING
                 RETURNING firebase_id",
            )
            .bind(tenant_id)
            .bind(batch_id)
            .bind(now)
            .bind(&ids)
            .bind(
                signals
                    .iter()
                    .map(|s| s.source.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                signals
                    .iter()
                    .map(|s| s.signal_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                signals
                    .iter()
                    .map(|s| s.user_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(signals.iter().map(|s| s.occurred_at).collect::<Vec<_>>())
            .bind(signals.iter().map(|s| &s.payload).collect::<Vec<_>>())
            .bind(&originals)
            .fetch_all(&mut *connection)
            .await?
        }
        Collection::Campaigns => {
            let campaigns: Vec<_> = documents
                .iter()
                .filter_map(|p| match &p.document.fields {
                    Fields::Campaign(campaign) => Some(campaign),
                    _ => None,
                })
                .collect();
            sqlx::query_scalar::<_, String>(
                "INSERT INTO campaigns (tenant_id, firebase_id, name, status, budget_minor, currency,
                                        starts_at, ends_at, document, batch_id, imported_at)
                 SELECT $1, d.id, d.name, d.status, d.budget_minor, d.currency, d.starts_at,
                        d.ends_at, d.document::jsonb, $2, $3
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
                             $9::timestamptz[], $10::timestamptz[], $11::text[])
                      AS d(id, name, status, budget_minor, currency, starts_at, ends_at, document)
                 ON CONFLICT (tenant_id, firebase_id) DO NOTHING
                 RETURNING firebase_id",
            )
            .bind(tenant_id)
            .bind(batch_id)
            .bind(now)
            .bind(&ids)
            .bind(campaigns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())
            .bind(campaigns.iter().map(|c| c.status.as_str()).collect::<Vec<_>>())
            .bind(campaigns.iter().map(|c| c.budget_minor).collect::<Vec<_>>())
            .bind(campaigns.iter().map(|c| c.currency.as_str()).collect::<Vec<_>>())
            .bind(campaigns.iter().map(|c| c.starts_at).collect::<Vec<_>>())
            .bind(campaigns.iter().map(|c| c.ends_at).collect::<Vec<_>>())
            .bind(&originals)
            .fetch_all(&mut *connection)
            .await?
        }
        Collection::AuditLogs => {
            let logs: Vec<_> = documents
                .iter()
                .filter_map(|p| match &p.document.fields {
                    Fields::AuditLog(log) => Some(log),
                    _ => None,
                })
                .collect();
            sqlx::query_scalar::<_, String>(
                "INSERT INTO audit_logs (tenant_id, firebase_id, actor, action, target, at,
                                         document, batch_id, imported_at)
                 SELECT $1, d.id, d.actor, d.action, d.target, d.at, d.document::jsonb, $2, $3
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                             $9::text[])
                      AS d(id, actor, action, target, at, document)
                 ON CONFLICT (tenant_id, firebase_id) DO NOTHING
                 RETURNING firebase_id",
            )
            .bind(tenant_id)
            .bind(batch_id)
            .bind(now)
            .bind(&ids)
            .bind(logs.iter().map(|l| l.actor.as_str()).collect::<Vec<_>>())
            .bind(logs.iter().map(|l| l.action.as_str()).collect::<Vec<_>>())
            .bind(logs.iter().map(|l| l.target.as_deref()).collect::<Vec<_>>())
            .bind(logs.iter().map(|l| l.at).collect::<Vec<_>>())
            .bind(&originals)
            .fetch_all(&mut *connection)
            .await?
        }
    };
    Ok(query.into_iter().collect())
}

/// For documents whose id is taken: whether the stored document is the same (jsonb equality,
/// so key order and spacing do not matter) and which batch imported it.
pub async fn compare_existing(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    collection: Collection,
    documents: &[&Planned],
) -> Result<HashMap<String, (bool, Uuid)>, Error> {
    if documents.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = documents.iter().map(|p| p.document.id.as_str()).collect();
    let originals: Vec<&str> = documents
        .iter()
        .map(|p| p.document.original_text.as_str())
        .collect();
    // The table name comes from the closed Collection enum, never from the request. jsonb
    // equality is the canonical comparison of `json_text`: numbers by value, keys unordered.
    let rows: Vec<(String, bool, Uuid)> = sqlx::query_as(&format!(
        "SELECT t.firebase_id, t.document = i.document::jsonb, t.batch_id
         FROM UNNEST($2::text[], $3::text[]) AS i(id, document)
         JOIN {table} t ON t.tenant_id = $1 AND t.firebase_id = i.id",
        table = collection.name()
    ))
    .bind(tenant_id)
    .bind(&ids)
    .bind(&originals)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, same, batch)| (id, (same, batch)))
        .collect())
}

/// Notes the documents this batch read and found in their table.
pub async fn record_read(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    collection: Collection,
    read: &[(&str, &str)],
) -> Result<(), Error> {
    if read.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = read.iter().map(|r| r.0).collect();
    let outcomes: Vec<&str> = read.iter().map(|r| r.1).collect();
    sqlx::query(
        "INSERT INTO import_batch_documents (tenant_id, batch_id, collection, firebase_id, outcome)
         SELECT $1, $2, $3, d.id, d.outcome FROM UNNEST($4::text[], $5::text[]) AS d(id, outcome)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(batch_id)
    .bind(collection.name())
    .bind(&ids)
    .bind(&outcomes)
    .execute(connection)
    .await?;
    Ok(())
}

/// Quarantines what a call turned away, in the order given.
pub async fn insert_quarantine(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    records: &[Quarantined],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    // PostgreSQL text cannot hold NUL; whatever arrived is kept, with NUL made visible.
    let text = |f: fn(&Quarantined) -> &str| {
        records
            .iter()
            .map(|r| import::storable(f(r)))
            .collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO import_quarantine (tenant_id, batch_id, collection, firebase_id, source_file,
                                        line_number, reason, message, raw_text, quarantined_at)
         SELECT $1, $2, q.collection, q.firebase_id, q.source_file, q.line_number, q.reason,
                q.message, q.raw_text, $3
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                     $10::text[]) WITH ORDINALITY
              AS q(collection, firebase_id, source_file, line_number, reason, message, raw_text, n)
         ORDER BY q.n",
    )
    .bind(tenant_id)
    .bind(batch_id)
    .bind(now)
    .bind(text(|r| &r.collection))
    .bind(
        records
            .iter()
            .map(|r| r.firebase_id.as_deref().map(import::storable))
            .collect::<Vec<_>>(),
    )
    .bind(text(|r| &r.origin.source_file))
    .bind(
        records
            .iter()
            .map(|r| r.origin.line_number)
            .collect::<Vec<_>>(),
    )
    .bind(records.iter().map(|r| r.reason.code()).collect::<Vec<_>>())
    .bind(text(|r| &r.message))
    .bind(text(|r| &r.raw_text))
    .execute(connection)
    .await?;
    Ok(())
}

/// Records what the client declared it read, at the finish.
pub async fn insert_sources(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    sources: &[SourceCollection],
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO import_batch_sources (tenant_id, batch_id, collection, document_count, checksum)
         SELECT $1, $2, s.collection, s.document_count, s.checksum
         FROM UNNEST($3::text[], $4::bigint[], $5::text[]) AS s(collection, document_count, checksum)",
    )
    .bind(tenant_id)
    .bind(batch_id)
    .bind(sources.iter().map(|s| s.collection.as_str()).collect::<Vec<_>>())
    .bind(sources.iter().map(|s| s.document_count).collect::<Vec<_>>())
    .bind(sources.iter().map(|s| s.checksum.as_str()).collect::<Vec<_>>())
    .execute(connection)
    .await?;
    Ok(())
}

/// Ends a locked batch as `status` (with `error` when it failed), with its
/// `ImportBatchFinished` event saying whether the source and the database `match`.
pub async fn close(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    status: BatchStatus,
    error: Option<&str>,
    matches: bool,
    now: DateTime<Utc>,
) -> Result<ImportBatch, Error> {
    let row: BatchRow = sqlx::query_as(&format!(
        "UPDATE import_batches
         SET status = $3, finished_at = greatest($4, started_at), error = $5,
             event_version = event_version + 1
         WHERE tenant_id = $1 AND id = $2
         RETURNING {BATCH_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(batch_id)
    .bind(status.as_str())
    .bind(now)
    .bind(error)
    .fetch_one(&mut *connection)
    .await?;
    let (batch, version) = batch(row)?;
    let payload = pb::ImportBatchFinished {
        batch: Some(crate::proto::import_batch(&batch)),
        matches,
    };
    append(
        connection,
        &batch,
        version,
        types::IMPORT_BATCH_FINISHED,
        &payload,
        now,
    )
    .await?;
    Ok(batch)
}

/// A batch's report as the database holds it, read in one snapshot so the counts, the report
/// and the page agree.
#[derive(Debug)]
pub struct ReportParts {
    pub batch: ImportBatch,
    /// What the client declared, once the batch is finished.
    pub sources: Option<Vec<SourceCollection>>,
    pub held: Vec<DatabaseCollection>,
    pub rejected: Vec<RejectedRecord>,
    pub next_after: Option<i64>,
}

/// The parts of a batch's report, with the page of rejected records after `after`; `None`
/// when the tenant has no such batch.
pub async fn report_parts(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    batch_id: Uuid,
    after: i64,
    page_size: i64,
) -> Result<Option<ReportParts>, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let Some(batch) = get(&mut *transaction, tenant_id, batch_id).await? else {
        return Ok(None);
    };
    let sources = if batch.status == BatchStatus::Running {
        None
    } else {
        Some(declared_sources(&mut transaction, tenant_id, batch_id).await?)
    };
    let held = database_side(&mut transaction, tenant_id, batch_id).await?;
    let (rejected, next_after) =
        rejected_records(&mut transaction, tenant_id, batch_id, after, page_size).await?;
    transaction.commit().await?;
    Ok(Some(ReportParts {
        batch,
        sources,
        held,
        rejected,
        next_after,
    }))
}

async fn declared_sources(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
) -> Result<Vec<SourceCollection>, Error> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT collection, document_count, checksum FROM import_batch_sources
         WHERE tenant_id = $1 AND batch_id = $2 ORDER BY collection",
    )
    .bind(tenant_id)
    .bind(batch_id)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(collection, document_count, checksum)| SourceCollection {
            collection,
            document_count,
            checksum,
        })
        .collect())
}

/// SQL of the checksum of a column of ids (see `domain::import::checksum`): byte order, and
/// `convert_to` rather than a `::bytea` cast, which would read backslashes as escapes.
fn checksum_sql(column: &str) -> String {
    format!(
        "encode(sha256(convert_to(coalesce(string_agg({column}, E'\\n' ORDER BY {column} COLLATE \"C\"), ''), 'UTF8')), 'hex')"
    )
}

/// What the database holds of each collection the batch saw: the batch's ids found in the
/// collection's table, its quarantined records, and the ids imported or quarantined.
pub async fn database_side(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
) -> Result<Vec<DatabaseCollection>, Error> {
    let empty = "encode(sha256(''::bytea), 'hex')";
    let rows: Vec<(String, i64, String, i64, i64, String)> = sqlx::query_as(&format!(
        "WITH imported AS (
             SELECT d.collection, d.firebase_id FROM import_batch_documents d
             WHERE d.tenant_id = $1 AND d.batch_id = $2
               AND CASE d.collection
                   WHEN 'raw_signals' THEN EXISTS (SELECT 1 FROM raw_signals t
                       WHERE t.tenant_id = d.tenant_id AND t.firebase_id = d.firebase_id)
                   WHEN 'campaigns' THEN EXISTS (SELECT 1 FROM campaigns t
                       WHERE t.tenant_id = d.tenant_id AND t.firebase_id = d.firebase_id)
                   WHEN 'audit_logs' THEN EXISTS (SELECT 1 FROM audit_logs t
                       WHERE t.tenant_id = d.tenant_id AND t.firebase_id = d.firebase_id)
                   ELSE false END
         ),
         quarantined AS (
             SELECT collection, firebase_id FROM import_quarantine
             WHERE tenant_id = $1 AND batch_id = $2 AND collection <> ''
         ),
         accounted AS (
             SELECT collection, firebase_id FROM imported
             UNION
             SELECT collection, firebase_id FROM quarantined WHERE firebase_id IS NOT NULL
         ),
         imported_sums AS (
             SELECT collection, count(*) AS n, {imported} AS checksum
             FROM imported GROUP BY collection
         ),
         accounted_sums AS (
             SELECT collection, count(*) AS n, {accounted} AS checksum
             FROM accounted GROUP BY collection
         ),
         quarantined_sums AS (
             SELECT collection, count(*) AS n FROM quarantined GROUP BY collection
         ),
         names AS (SELECT collection FROM imported UNION SELECT collection FROM quarantined)
         SELECT n.collection, coalesce(i.n, 0), coalesce(i.checksum, {empty}),
                coalesce(q.n, 0), coalesce(a.n, 0), coalesce(a.checksum, {empty})
         FROM names n
         LEFT JOIN imported_sums i USING (collection)
         LEFT JOIN quarantined_sums q USING (collection)
         LEFT JOIN accounted_sums a USING (collection)
         ORDER BY n.collection",
        imported = checksum_sql("firebase_id"),
        accounted = checksum_sql("firebase_id"),
    ))
    .bind(tenant_id)
    .bind(batch_id)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| DatabaseCollection {
            collection: row.0,
            imported_count: row.1,
            imported_checksum: row.2,
            quarantined_count: row.3,
            accounted_count: row.4,
            accounted_checksum: row.5,
        })
        .collect())
}

type RejectedRow = (
    i64,
    String,
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
);

/// Up to `limit` quarantined records after position `after`, in arrival order, and the
/// position to continue after when there are more.
pub async fn rejected_records(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<(Vec<RejectedRecord>, Option<i64>), Error> {
    let mut rows: Vec<RejectedRow> = sqlx::query_as(&format!(
        "SELECT id, source_file, line_number, collection, firebase_id, reason, message,
                left(raw_text, {excerpt})
         FROM import_quarantine
         WHERE tenant_id = $1 AND batch_id = $2 AND id > $3
         ORDER BY id LIMIT $4",
        excerpt = import::EXCERPT_CHARS
    ))
    .bind(tenant_id)
    .bind(batch_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(connection)
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_after = if more { rows.last().map(|r| r.0) } else { None };
    let rejected = rows
        .into_iter()
        .map(|row| RejectedRecord {
            origin: import::Origin {
                source_file: row.1,
                line_number: row.2,
            },
            collection: row.3,
            document_id: row.4,
            reason: row.5,
            message: row.6,
            raw_excerpt: row.7,
        })
        .collect();
    Ok((rejected, next_after))
}
