//! Reversible, per-service schema migrations: what teams get from Alembic, for PostgreSQL.
//!
//! Each service owns one PostgreSQL schema and the files under `migrations/<service>/`:
//! `NNNN_name.up.sql` and `NNNN_name.down.sql`, embedded in the binary at build time. The applied
//! versions are recorded in `<schema>.schema_history`, so each service has its own history and no
//! service touches another's. Every migration runs in its own transaction together with its
//! history row, under an advisory lock, so two pods starting at once apply it once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use include_dir::Dir;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};

/// Errors of the migration tooling, each naming the file or version at fault.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration file {0:?}: expected NNNN_name.up.sql or NNNN_name.down.sql")]
    BadFileName(String),
    #[error("migration {version} of {schema}: the {missing} file is missing")]
    MissingHalf {
        schema: String,
        version: i64,
        missing: &'static str,
    },
    #[error("migration {version} of {schema} is defined twice")]
    Duplicate { schema: String, version: i64 },
    #[error("{schema} has no migration {0}", schema = .1)]
    UnknownVersion(i64, String),
    #[error(
        "{schema} has applied migration {version}, which this build does not know; deploy a build that has it before migrating"
    )]
    AppliedUnknown { schema: String, version: i64 },
    #[error("migration file {0:?} is not UTF-8")]
    NotUtf8(String),
    #[error("migration name {0:?} must be lowercase letters, digits and underscores")]
    BadName(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} ({name}) of {schema} failed: {source}")]
    Failed {
        schema: String,
        version: i64,
        name: String,
        source: sqlx::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One reversible migration.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub up: String,
    pub down: String,
}

impl Migration {
    /// SHA-256 of the up script; a changed checksum of an applied migration is drift.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.up.as_bytes()).iter().fold(
            String::with_capacity(64),
            |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            },
        )
    }
}

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// A step a run applied, or would apply in print-only mode.
#[derive(Debug, Clone)]
pub struct Step {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub sql: String,
}

/// One row of `history`: a known migration and when it was applied, if it was.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: i64,
    pub name: String,
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
    pub execution_ms: Option<i64>,
    /// The applied script differs from the one in this build.
    pub drifted: bool,
}

/// The answer of `status`.
#[derive(Debug, Clone)]
pub struct Status {
    pub schema: String,
    pub current: Option<i64>,
    pub head: Option<i64>,
    pub pending: usize,
    pub drifted: Vec<i64>,
}

/// The migrations of one service, in version order.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    schema: String,
    migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Reads an embedded `migrations/<service>` folder.
    pub fn from_embedded(schema: &str, dir: &Dir<'_>) -> Result<Self, MigrateError> {
        let mut files = Vec::new();
        for file in dir.files() {
            let name = file
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let sql = file
                .contents_utf8()
                .ok_or_else(|| MigrateError::NotUtf8(name.clone()))?;
            files.push((name, sql.to_owned()));
        }
        Self::from_files(schema, files)
    }

    /// Reads a migrations folder on disk.
    pub fn from_path(schema: &str, dir: &Path) -> Result<Self, MigrateError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "sql") {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                files.push((name, std::fs::read_to_string(&path)?));
            }
        }
        Self::from_files(schema, files)
    }

    fn from_files(
        schema: &str,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, MigrateError> {
        let mut halves: std::collections::BTreeMap<i64, (String, Option<String>, Option<String>)> =
            Default::default();
        for (file_name, sql) in files {
            let (stem, direction) = if let Some(stem) = file_name.strip_suffix(".up.sql") {
                (stem, Direction::Up)
            } else if let Some(stem) = file_name.strip_suffix(".down.sql") {
                (stem, Direction::Down)
            } else if file_name.to_ascii_lowercase().ends_with(".sql") {
                // A misnamed script would otherwise be silently skipped.
                return Err(MigrateError::BadFileName(file_name));
            } else {
                continue;
            };
            let (version, name) = stem
                .split_once('_')
                .ok_or_else(|| MigrateError::BadFileName(file_name.clone()))?;
            let version: i64 = version
                .parse()
                .map_err(|_| MigrateError::BadFileName(file_name.clone()))?;
            let entry = halves
                .entry(version)
                .or_insert_with(|| (name.to_owned(), None, None));
            if entry.0 != name {
                return Err(MigrateError::Duplicate {
                    schema: schema.to_owned(),
                    version,
                });
            }
            let slot = if direction == Direction::Up {
                &mut entry.1
            } else {
                &mut entry.2
            };
            if slot.replace(sql).is_some() {
                return Err(MigrateError::Duplicate {
                    schema: schema.to_owned(),
                    version,
                });
            }
        }
        let migrations = halves
            .into_iter()
            .map(|(version, (name, up, down))| {
                let missing = |half| MigrateError::MissingHalf {
                    schema: schema.to_owned(),
                    version,
                    missing: half,
                };
                Ok(Migration {
                    version,
                    name,
                    up: up.ok_or_else(|| missing("up"))?,
                    down: down.ok_or_else(|| missing("down"))?,
                })
            })
            .collect::<Result<_, MigrateError>>()?;
        Ok(Self {
            schema: schema.to_owned(),
            migrations,
        })
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    pub fn head(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }
}

/// Runs a [`MigrationSet`] against a database.
#[derive(Debug)]
pub struct Migrator<'a> {
    set: &'a MigrationSet,
    pool: &'a PgPool,
}

/// The step that applies `migration`.
fn up_step(migration: &Migration) -> Step {
    Step {
        version: migration.version,
        name: migration.name.clone(),
        direction: Direction::Up,
        sql: migration.up.clone(),
    }
}

impl<'a> Migrator<'a> {
    pub fn new(set: &'a MigrationSet, pool: &'a PgPool) -> Self {
        Self { set, pool }
    }

    /// Applies pending migrations up to `target` (inclusive), or to head. With `dry_run`, only
    /// returns the steps.
    pub async fn up(&self, target: Option<i64>, dry_run: bool) -> Result<Vec<Step>, MigrateError> {
        if let Some(target) = target {
            self.find(target)?;
        }
        self.run(dry_run, |applied| {
            Ok(self
                .set
                .migrations
                .iter()
                .filter(|m| !applied.iter().any(|(version, _)| *version == m.version))
                .filter(|m| target.is_none_or(|t| m.version <= t))
                .map(up_step)
                .collect())
        })
        .await
    }

    /// Reverts the last `count` applied migrations, newest first.
    pub async fn down(&self, count: usize, dry_run: bool) -> Result<Vec<Step>, MigrateError> {
        self.run(dry_run, |applied| {
            applied
                .iter()
                .rev()
                .take(count)
                .map(|(version, _)| self.down_step(*version))
                .collect()
        })
        .await
    }

    /// Moves the schema to `target` in whichever direction it lies (Alembic's `upgrade <rev>` /
    /// `downgrade <rev>`): applies the pending migrations up to it, or reverts, newest first,
    /// every applied one after it. `0` reverts everything. An unknown version is refused.
    pub async fn to(&self, target: i64, dry_run: bool) -> Result<Vec<Step>, MigrateError> {
        if target != 0 {
            self.find(target)?;
        }
        self.run(dry_run, |applied| {
            let reverted: Vec<Step> = applied
                .iter()
                .rev()
                .filter(|(version, _)| *version > target)
                .map(|(version, _)| self.down_step(*version))
                .collect::<Result<_, MigrateError>>()?;
            if !reverted.is_empty() {
                return Ok(reverted);
            }
            Ok(self
                .set
                .migrations
                .iter()
                .filter(|m| m.version <= target)
                .filter(|m| !applied.iter().any(|(version, _)| *version == m.version))
                .map(up_step)
                .collect())
        })
        .await
    }

    /// The step that reverts applied migration `version`.
    fn down_step(&self, version: i64) -> Result<Step, MigrateError> {
        let migration = self.find(version)?;
        Ok(Step {
            version,
            name: migration.name.clone(),
            direction: Direction::Down,
            sql: migration.down.clone(),
        })
    }

    /// Under the schema's lock: reads what is applied, plans the steps, applies them unless
    /// `dry_run`, and releases the lock whatever happened.
    async fn run(
        &self,
        dry_run: bool,
        plan: impl FnOnce(&[(i64, String)]) -> Result<Vec<Step>, MigrateError>,
    ) -> Result<Vec<Step>, MigrateError> {
        let mut conn = self.lock().await?;
        let result = async {
            let applied = applied(&mut conn, &self.set.schema).await?;
            self.check_known(&applied)?;
            let steps = plan(&applied)?;
            if !dry_run {
                for step in &steps {
                    self.apply(&mut conn, step).await?;
                }
            }
            Ok(steps)
        }
        .await;
        unlock(&mut conn, &self.set.schema).await;
        result
    }

    /// Where the schema stands.
    pub async fn status(&self) -> Result<Status, MigrateError> {
        let history = self.history().await?;
        Ok(Status {
            schema: self.set.schema.clone(),
            current: history
                .iter()
                .filter(|h| h.applied_at.is_some())
                .map(|h| h.version)
                .max(),
            head: self.set.head(),
            pending: history.iter().filter(|h| h.applied_at.is_none()).count(),
            drifted: history
                .iter()
                .filter(|h| h.drifted)
                .map(|h| h.version)
                .collect(),
        })
    }

    /// Every known migration, with when it was applied.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, MigrateError> {
        let mut conn = self.pool.acquire().await?;
        ensure_history_table(&mut conn, &self.set.schema).await?;
        let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>, i64)> = sqlx::query_as(&format!(
            "SELECT version, checksum, applied_at, execution_ms FROM {}.schema_history ORDER BY version",
            self.set.schema
        ))
        .fetch_all(&mut *conn)
        .await?;
        Ok(self
            .set
            .migrations
            .iter()
            .map(|m| {
                let row = rows.iter().find(|r| r.0 == m.version);
                HistoryEntry {
                    version: m.version,
                    name: m.name.clone(),
                    applied_at: row.map(|r| r.2),
                    execution_ms: row.map(|r| r.3),
                    drifted: row.is_some_and(|r| r.1 != m.checksum()),
                }
            })
            .collect())
    }

    /// Drops the whole schema, every row of the service with it, and migrates to head again.
    pub async fn reset(&self) -> Result<Vec<Step>, MigrateError> {
        let mut conn = self.lock().await?;
        let dropped = sqlx::raw_sql(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.set.schema
        ))
        .execute(&mut *conn)
        .await;
        unlock(&mut conn, &self.set.schema).await;
        dropped?;
        self.up(None, false).await
    }

    fn find(&self, version: i64) -> Result<&Migration, MigrateError> {
        self.set
            .migrations
            .iter()
            .find(|m| m.version == version)
            .ok_or_else(|| MigrateError::UnknownVersion(version, self.set.schema.clone()))
    }

    fn check_known(&self, applied: &[(i64, String)]) -> Result<(), MigrateError> {
        match applied
            .iter()
            .find(|(version, _)| self.find(*version).is_err())
        {
            Some((version, _)) => Err(MigrateError::AppliedUnknown {
                schema: self.set.schema.clone(),
                version: *version,
            }),
            None => Ok(()),
        }
    }

    async fn apply(&self, conn: &mut PgConnection, step: &Step) -> Result<(), MigrateError> {
        let schema = &self.set.schema;
        let started = std::time::Instant::now();
        let failed = |source| MigrateError::Failed {
            schema: schema.clone(),
            version: step.version,
            name: step.name.clone(),
            source,
        };
        let mut tx = conn.begin().await?;
        // Migrations may rewrite big tables: the request-sized statement timeout does not apply.
        sqlx::raw_sql(&format!("SET LOCAL search_path TO {schema}, public; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0"))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(&step.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        match step.direction {
            Direction::Up => {
                let checksum = self.find(step.version)?.checksum();
                sqlx::query(&format!(
                    "INSERT INTO {schema}.schema_history (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)"
                ))
                .bind(step.version)
                .bind(&step.name)
                .bind(checksum)
                .bind(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            }
            Direction::Down => {
                sqlx::query(&format!(
                    "DELETE FROM {schema}.schema_history WHERE version = $1"
                ))
                .bind(step.version)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(schema, version = step.version, name = step.name, direction = ?step.direction, "migration applied");
        Ok(())
    }

    /// A connection holding the schema's migration lock.
    async fn lock(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, MigrateError> {
        let mut conn = self.pool.acquire().await?;
        // The lock is session-level: if this run is cancelled or cannot unlock, the session
        // (and the lock with it) must end rather than go back to the pool still locked.
        conn.close_on_drop();
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(lock_key(&self.set.schema))
            .execute(&mut *conn)
            .await?;
        if let Err(error) = ensure_history_table(&mut conn, &self.set.schema).await {
            unlock(&mut conn, &self.set.schema).await;
            return Err(error);
        }
        Ok(conn)
    }
}

fn lock_key(schema: &str) -> String {
    format!("phoenix.migrate.{schema}")
}

async fn unlock(conn: &mut PgConnection, schema: &str) {
    if let Err(error) = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(lock_key(schema))
        .execute(conn)
        .await
    {
        tracing::warn!(%error, schema, "releasing the migration lock failed; it goes with the connection");
    }
}

async fn ensure_history_table(conn: &mut PgConnection, schema: &str) -> Result<(), MigrateError> {
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_history (
             version      bigint PRIMARY KEY,
             name         text NOT NULL,
             checksum     text NOT NULL,
             applied_at   timestamptz NOT NULL DEFAULT now(),
             execution_ms bigint NOT NULL
         );"
    ))
    .execute(conn)
    .await?;
    Ok(())
}

async fn applied(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Vec<(i64, String)>, MigrateError> {
    Ok(sqlx::query_as(&format!(
        "SELECT version, name FROM {schema}.schema_history ORDER BY version"
    ))
    .fetch_all(conn)
    .await?)
}

/// Creates the up/down pair of a new migration in `dir`, numbered after the last one.
pub fn new_migration(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), MigrateError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(MigrateError::BadName(name.to_owned()));
    }
    std::fs::create_dir_all(dir)?;
    let next = MigrationSet::from_path("new", dir)?.head().unwrap_or(0) + 1;
    let up = dir.join(format!("{next:04}_{name}.up.sql"));
    let down = dir.join(format!("{next:04}_{name}.down.sql"));
    std::fs::write(
        &up,
        format!(
            "-- {name}: apply. Runs in one transaction with search_path set to the service's schema.\n"
        ),
    )?;
    std::fs::write(
        &down,
        format!("-- {name}: revert exactly what the up script did.\n"),
    )?;
    Ok((up, down))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect()
    }

    #[test]
    fn pairs_are_ordered_by_version() {
        let set = MigrationSet::from_files(
            "s",
            files(&[
                ("0002_b.up.sql", "B"),
                ("0001_a.down.sql", "a"),
                ("0001_a.up.sql", "A"),
                ("0002_b.down.sql", "b"),
            ]),
        )
        .expect("valid set");
        let versions: Vec<_> = set
            .migrations()
            .iter()
            .map(|m| (m.version, m.name.as_str(), m.up.as_str()))
            .collect();
        assert_eq!(versions, [(1, "a", "A"), (2, "b", "B")]);
        assert_eq!(set.head(), Some(2));
    }

    #[test]
    fn a_missing_down_is_refused() {
        let error =
            MigrationSet::from_files("s", files(&[("0001_a.up.sql", "A")])).expect_err("no down");
        assert!(
            matches!(
                error,
                MigrateError::MissingHalf {
                    version: 1,
                    missing: "down",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_misnamed_script_is_refused_not_skipped() {
        let error =
            MigrationSet::from_files("s", files(&[("0001_a.UP.sql", "A")])).expect_err("misnamed");
        assert!(matches!(error, MigrateError::BadFileName(_)), "{error}");
    }

    #[test]
    fn two_names_for_one_version_are_refused() {
        let error = MigrationSet::from_files(
            "s",
            files(&[("0001_a.up.sql", "A"), ("0001_b.down.sql", "b")]),
        )
        .expect_err("clash");
        assert!(
            matches!(error, MigrateError::Duplicate { version: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn new_numbers_after_the_last_and_checks_the_name() {
        let dir =
            std::env::temp_dir().join(format!("phoenix-new-migration-{}", uuid::Uuid::new_v4()));
        let (up, down) = new_migration(&dir, "add_users").expect("first");
        assert!(up.ends_with("0001_add_users.up.sql") && down.ends_with("0001_add_users.down.sql"));
        let (up, _) = new_migration(&dir, "more").expect("second");
        assert!(up.ends_with("0002_more.up.sql"));
        assert!(matches!(
            new_migration(&dir, "Bad Name"),
            Err(MigrateError::BadName(_))
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
