//! The `processing_leases`, `pending_images` and `typing_stamps` tables.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{for_contact, micros};
use crate::domain::Phone;
use crate::domain::lease::ProcessingLease;

const LEASE_COLUMNS: &str = "phone, owner, acquired_at, expires_at";

fn lease(row: &PgRow) -> Result<ProcessingLease, Error> {
    Ok(ProcessingLease {
        phone: Phone::stored(row.try_get("phone")?),
        owner: row.try_get("owner")?,
        acquired_at: row.try_get("acquired_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Takes the lease for `owner` when it is free, expired or already `owner`'s (then renewed),
/// in one statement; `None` when another owner holds it live.
pub async fn acquire(
    connection: &mut PgConnection,
    phone: &Phone,
    owner: &str,
    ttl: chrono::Duration,
) -> Result<Option<ProcessingLease>, Error> {
    let sql = format!(
        "INSERT INTO processing_leases AS l (phone, owner, acquired_at, expires_at)
         VALUES ($1, $2, now(), now() + $3 * interval '1 microsecond')
         ON CONFLICT (phone) DO UPDATE
             SET owner = EXCLUDED.owner,
                 acquired_at = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at > now()
                                    THEN l.acquired_at ELSE EXCLUDED.acquired_at END,
                 expires_at = EXCLUDED.expires_at
             WHERE l.expires_at <= now() OR l.owner = EXCLUDED.owner
         RETURNING {LEASE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(owner)
        .bind(micros(ttl))
        .fetch_optional(connection)
        .await
        .map_err(for_contact(phone))?;
    row.as_ref().map(lease).transpose()
}

/// The contact's lease, locked for the transaction, with the database's time.
pub async fn locked(
    connection: &mut PgConnection,
    phone: &Phone,
) -> Result<(Option<ProcessingLease>, DateTime<Utc>), Error> {
    let now = super::contacts::now(connection).await?;
    let sql = format!("SELECT {LEASE_COLUMNS} FROM processing_leases WHERE phone = $1 FOR UPDATE");
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .fetch_optional(connection)
        .await?;
    Ok((row.as_ref().map(lease).transpose()?, now))
}

/// Moves a (locked) lease's expiry to now + `ttl`.
pub async fn renew(
    connection: &mut PgConnection,
    phone: &Phone,
    ttl: chrono::Duration,
) -> Result<ProcessingLease, Error> {
    let sql = format!(
        "UPDATE processing_leases SET expires_at = now() + $2 * interval '1 microsecond'
         WHERE phone = $1 RETURNING {LEASE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(micros(ttl))
        .fetch_one(connection)
        .await?;
    lease(&row)
}

pub async fn release(connection: &mut PgConnection, phone: &Phone) -> Result<(), Error> {
    sqlx::query("DELETE FROM processing_leases WHERE phone = $1")
        .bind(phone.as_str())
        .execute(connection)
        .await?;
    Ok(())
}

/// A queued image (serializable: an idempotent AddPendingImage records it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingImage {
    pub id: i64,
    pub phone: Phone,
    pub image_ref: String,
    pub caption: String,
    pub added_at: DateTime<Utc>,
}

const IMAGE_COLUMNS: &str = "id, phone, image_ref, caption, added_at";

fn image(row: &PgRow) -> Result<PendingImage, Error> {
    Ok(PendingImage {
        id: row.try_get("id")?,
        phone: Phone::stored(row.try_get("phone")?),
        image_ref: row.try_get("image_ref")?,
        caption: row.try_get("caption")?,
        added_at: row.try_get("added_at")?,
    })
}

pub async fn add_image(
    executor: &mut PgConnection,
    phone: &Phone,
    image_ref: &str,
    caption: &str,
) -> Result<PendingImage, Error> {
    let sql = format!(
        "INSERT INTO pending_images (phone, image_ref, caption, added_at)
         VALUES ($1, $2, $3, now()) RETURNING {IMAGE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(image_ref)
        .bind(caption)
        .fetch_one(executor)
        .await
        .map_err(for_contact(phone))?;
    image(&row)
}

pub async fn images(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
) -> Result<Vec<PendingImage>, Error> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM pending_images WHERE phone = $1 ORDER BY id");
    let rows = sqlx::query(&sql)
        .bind(phone.as_str())
        .fetch_all(executor)
        .await?;
    rows.iter().map(image).collect()
}

pub async fn remove_images(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    up_to_id: i64,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM pending_images WHERE phone = $1 AND id <= $2")
            .bind(phone.as_str())
            .bind(up_to_id)
            .execute(executor)
            .await?
            .rows_affected(),
    )
}

/// Stamps the contact's typing time unless the stamp is younger than `min_interval`, in one
/// statement; answers whether it stamped and the stamp now stored.
pub async fn record_typing(
    connection: &mut PgConnection,
    phone: &Phone,
    min_interval: chrono::Duration,
) -> Result<(bool, DateTime<Utc>), Error> {
    let stamped: Option<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO typing_stamps AS t (phone, last_logged_at) VALUES ($1, now())
         ON CONFLICT (phone) DO UPDATE SET last_logged_at = EXCLUDED.last_logged_at
             WHERE t.last_logged_at + $2 * interval '1 microsecond' <= EXCLUDED.last_logged_at
         RETURNING last_logged_at",
    )
    .bind(phone.as_str())
    .bind(micros(min_interval))
    .fetch_optional(&mut *connection)
    .await
    .map_err(for_contact(phone))?;
    if let Some(at) = stamped {
        return Ok((true, at));
    }
    let at = sqlx::query_scalar("SELECT last_logged_at FROM typing_stamps WHERE phone = $1")
        .bind(phone.as_str())
        .fetch_one(connection)
        .await?;
    Ok((false, at))
}
