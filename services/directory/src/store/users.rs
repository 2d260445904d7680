//! The `users` table, with each user's membership joined in.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{unique_violation, unreadable};
use crate::domain::vip::{Membership, Stored};
use crate::domain::{Profile, User, VipStatus};
use crate::error;

/// The columns every user query reads, `u` being `users` and `m` the user's membership.
const COLUMNS: &str = "u.id, u.email, u.display_name, u.time_zone, u.username, u.telegram_id,
    u.superuser, u.metadata, u.last_login_at, u.archetype_primary, u.archetype_secondary,
    u.archetype_confidence, u.conversion_score, u.churn_risk_score, u.lifetime_value_minor,
    u.last_engagement_at, u.engagement_streak, u.active, u.archetype_updated_at,
    u.vip_trial_used, u.vip_trial_ends_at, u.created_at, u.updated_at, u.deactivated_at,
    u.version, m.status AS m_status, m.period_start AS m_start, m.period_end AS m_end,
    m.version AS m_version";

const FROM: &str = "users u LEFT JOIN vip_memberships m ON m.user_id = u.id";

/// A user row and its membership; `vip_status` is left NONE for the use case to compute.
pub(crate) fn user(row: &PgRow) -> Result<(User, Option<Membership>), Error> {
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let id: Uuid = row.try_get("id")?;
    let membership = match row.try_get::<Option<String>, _>("m_status")? {
        None => None,
        Some(status) => Some(Membership {
            user_id: id,
            stored: Stored::parse(&status)
                .ok_or_else(|| unreadable("vip_memberships.status", &status))?,
            period_start: row.try_get("m_start")?,
            period_end: row.try_get("m_end")?,
            version: row.try_get("m_version")?,
        }),
    };
    let profile = Profile {
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        time_zone: row.try_get("time_zone")?,
        username: row.try_get("username")?,
        telegram_id: row.try_get("telegram_id")?,
        superuser: row.try_get("superuser")?,
        metadata: match metadata {
            serde_json::Value::Object(object) => object,
            other => return Err(unreadable("users.metadata", &other.to_string())),
        },
        last_login_at: row.try_get("last_login_at")?,
        archetype_primary: row.try_get("archetype_primary")?,
        archetype_secondary: row.try_get("archetype_secondary")?,
        archetype_confidence: row.try_get("archetype_confidence")?,
        conversion_score: row.try_get("conversion_score")?,
        churn_risk_score: row.try_get("churn_risk_score")?,
        lifetime_value_minor: row.try_get("lifetime_value_minor")?,
        last_engagement_at: row.try_get("last_engagement_at")?,
        engagement_streak: row.try_get("engagement_streak")?,
    };
    let user = User {
        id,
        profile,
        active: row.try_get("active")?,
        archetype_updated_at: row.try_get("archetype_updated_at")?,
        vip_trial_used: row.try_get("vip_trial_used")?,
        vip_trial_ends_at: row.try_get("vip_trial_ends_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deactivated_at: row.try_get("deactivated_at")?,
        version: row.try_get("version")?,
        vip_status: VipStatus::None,
    };
    Ok((user, membership))
}

/// A taken email, username or Telegram id, as the refusal naming the field.
fn taken(error: sqlx::Error, profile: &Profile) -> Error {
    match unique_violation(&error).as_deref() {
        Some("users_email_key") => {
            error::email_taken(profile.email.as_deref().unwrap_or("")).into()
        }
        Some("users_username_key") => {
            error::username_taken(profile.username.as_deref().unwrap_or("")).into()
        }
        Some("users_telegram_id_key") => {
            error::telegram_id_taken(profile.telegram_id.unwrap_or_default()).into()
        }
        _ => error.into(),
    }
}

/// Inserts a user; a taken email, username or Telegram id is ALREADY_EXISTS naming it.
pub async fn insert(
    connection: &mut PgConnection,
    id: Uuid,
    profile: &Profile,
    legacy_fields: &serde_json::Map<String, serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<(User, Option<Membership>), Error> {
    let archetype_at = (profile.archetype_primary.is_some()
        || profile.archetype_secondary.is_some()
        || profile.archetype_confidence.is_some())
    .then_some(now);
    let sql = format!(
        "WITH u AS (
             INSERT INTO users (id, email, display_name, time_zone, username, telegram_id,
                 superuser, metadata, last_login_at, archetype_primary, archetype_secondary,
                 archetype_confidence, conversion_score, churn_risk_score, lifetime_value_minor,
                 last_engagement_at, engagement_streak, archetype_updated_at, created_at,
                 updated_at, legacy_fields)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $19, $20)
             RETURNING *)
         SELECT {COLUMNS} FROM u LEFT JOIN vip_memberships m ON false"
    );
    let query = bind_profile(sqlx::query(&sql).bind(id), profile)
        .bind(archetype_at)
        .bind(now)
        .bind(serde_json::Value::Object(legacy_fields.clone()));
    let row = query
        .fetch_one(&mut *connection)
        .await
        .map_err(|e| taken(e, profile))?;
    user(&row)
}

/// Binds the profile as parameters $2..=$17.
fn bind_profile<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    p: &'q Profile,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&p.email)
        .bind(&p.display_name)
        .bind(&p.time_zone)
        .bind(&p.username)
        .bind(p.telegram_id)
        .bind(p.superuser)
        .bind(serde_json::Value::Object(p.metadata.clone()))
        .bind(p.last_login_at)
        .bind(&p.archetype_primary)
        .bind(&p.archetype_secondary)
        .bind(p.archetype_confidence)
        .bind(p.conversion_score)
        .bind(p.churn_risk_score)
        .bind(p.lifetime_value_minor)
        .bind(p.last_engagement_at)
        .bind(p.engagement_streak)
}

/// Writes a user's profile back, bumping its version; a taken email, username or Telegram id
/// is ALREADY_EXISTS naming it.
pub async fn update(
    connection: &mut PgConnection,
    id: Uuid,
    profile: &Profile,
    archetype_updated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let query = sqlx::query(
        "UPDATE users SET email = $2, display_name = $3, time_zone = $4, username = $5,
             telegram_id = $6, superuser = $7, metadata = $8, last_login_at = $9,
             archetype_primary = $10, archetype_secondary = $11, archetype_confidence = $12,
             conversion_score = $13, churn_risk_score = $14, lifetime_value_minor = $15,
             last_engagement_at = $16, engagement_streak = $17, archetype_updated_at = $18,
             updated_at = $19, version = version + 1
         WHERE id = $1",
    )
    .bind(id);
    bind_profile(query, profile)
        .bind(archetype_updated_at)
        .bind(now)
        .execute(connection)
        .await
        .map_err(|e| taken(e, profile))?;
    Ok(())
}

/// Marks the user inactive and bumps its version.
pub async fn deactivate(
    connection: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE users SET active = false, deactivated_at = $2, updated_at = $2,
             version = version + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Bumps the user's stream version (a VIP or channel change) and returns the new one.
pub async fn next_version(connection: &mut PgConnection, id: Uuid) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar(
            "UPDATE users SET version = version + 1 WHERE id = $1 RETURNING version",
        )
        .bind(id)
        .fetch_one(connection)
        .await?,
    )
}

/// Sets an imported user's archetype time as the legacy system recorded it.
pub async fn set_archetype_time(
    connection: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query("UPDATE users SET archetype_updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(connection)
        .await?;
    Ok(())
}

/// Marks the trial used, ending at `ends_at`.
pub async fn use_trial(
    connection: &mut PgConnection,
    id: Uuid,
    ends_at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query("UPDATE users SET vip_trial_used = true, vip_trial_ends_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ends_at)
        .execute(connection)
        .await?;
    Ok(())
}

/// The user, locked for the rest of the transaction when `lock`.
pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<(User, Option<Membership>)>, Error> {
    let lock = if lock { "FOR UPDATE OF u" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE u.id = $1 {lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(user).transpose()
}

/// How a user is looked up.
#[derive(Debug, Clone)]
pub enum Key {
    Email(String),
    Username(String),
    Telegram(i64),
}

pub async fn lookup(
    executor: impl sqlx::PgExecutor<'_>,
    key: &Key,
) -> Result<Option<(User, Option<Membership>)>, Error> {
    let (column, sql_type) = match key {
        Key::Email(_) => ("email", "text"),
        Key::Username(_) => ("username", "text"),
        Key::Telegram(_) => ("telegram_id", "bigint"),
    };
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE u.{column} = $1::{sql_type}");
    let query = sqlx::query(&sql);
    let query = match key {
        Key::Email(value) | Key::Username(value) => query.bind(value.to_lowercase()),
        Key::Telegram(value) => query.bind(*value),
    };
    let row = query.fetch_optional(executor).await?;
    row.as_ref().map(user).transpose()
}

pub async fn batch_get(
    executor: impl sqlx::PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(User, Option<Membership>)>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE u.id = ANY($1)");
    let rows = sqlx::query(&sql).bind(ids).fetch_all(executor).await?;
    rows.iter().map(user).collect()
}

/// What ListUsers filters on.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub active: Option<bool>,
    pub archetype_primary: Option<String>,
    pub vip_status: Option<VipStatus>,
}

/// Up to `limit` users after `after` in id order (ids are UUIDv7: registration order),
/// matching `filter` with VIP status read at `now`.
pub async fn list(
    executor: impl sqlx::PgExecutor<'_>,
    filter: &Filter,
    after: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(User, Option<Membership>)>, Error> {
    // The same rule as `Membership::status_at`: the end instant is exclusive.
    let vip = match filter.vip_status {
        None => "true",
        Some(VipStatus::None) => "m.user_id IS NULL",
        Some(VipStatus::Trial) => "m.status = 'trial' AND m.period_end > $5",
        Some(VipStatus::Active) => "m.status = 'active' AND m.period_end > $5",
        Some(VipStatus::Expired) => "m.status IN ('trial', 'active') AND m.period_end <= $5",
        Some(VipStatus::Cancelled) => "m.status = 'cancelled'",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM}
         WHERE ($1::uuid IS NULL OR u.id > $1) AND ($2::boolean IS NULL OR u.active = $2)
           AND ($3::text IS NULL OR u.archetype_primary = $3) AND {vip}
           AND $5::timestamptz IS NOT NULL
         ORDER BY u.id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(filter.active)
        .bind(&filter.archetype_primary)
        .bind(limit)
        .bind(now)
        .fetch_all(executor)
        .await?;
    rows.iter().map(user).collect()
}

/// The user with this Telegram id, for the import.
pub async fn id_by_telegram(
    executor: impl sqlx::PgExecutor<'_>,
    telegram_id: i64,
) -> Result<Option<Uuid>, Error> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE telegram_id = $1")
            .bind(telegram_id)
            .fetch_optional(executor)
            .await?,
    )
}
