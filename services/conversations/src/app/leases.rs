//! Processing leases, pending images and typing stamps.

use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};

use super::Conversations;
use crate::domain::Phone;
use crate::domain::lease::{ProcessingLease, check_acquire, check_release, check_renew};
use crate::error;
use crate::store::contacts;
use crate::store::leases::{self as store, PendingImage};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Conversations {
    /// Takes the contact's processing lease for `owner` (renewing its own);
    /// FAILED_PRECONDITION `LEASE_HELD` while another owner's lease is live.
    pub async fn acquire_lease(
        &self,
        phone: &Phone,
        owner: &str,
        ttl: chrono::Duration,
    ) -> Result<ProcessingLease, Error> {
        let mut transaction = self.pool.begin().await?;
        if let Some(lease) = store::acquire(&mut transaction, phone, owner, ttl).await? {
            transaction.commit().await?;
            return Ok(lease);
        }
        let (current, now) = store::locked(&mut transaction, phone).await?;
        check_acquire(current.as_ref(), owner, now)?;
        Err(Error::invariant(
            "LEASE_ACQUIRE_REFUSED_FREE_LEASE",
            format!("the acquire statement refused {owner:?} a lease the rule grants"),
        ))
    }

    /// Extends the owner's live lease by `ttl` from now.
    pub async fn renew_lease(
        &self,
        phone: &Phone,
        owner: &str,
        ttl: chrono::Duration,
    ) -> Result<ProcessingLease, Error> {
        let (mut transaction, current, now) = self.locked_lease(phone).await?;
        check_renew(current.as_ref(), owner, now)?;
        let lease = store::renew(&mut transaction, phone, ttl).await?;
        transaction.commit().await?;
        Ok(lease)
    }

    /// Gives the owner's live lease up; `false` when there was none to give up.
    pub async fn release_lease(&self, phone: &Phone, owner: &str) -> Result<bool, Error> {
        let (mut transaction, current, now) = self.locked_lease(phone).await?;
        let release = check_release(current.as_ref(), owner, now)?;
        if release {
            store::release(&mut transaction, phone).await?;
        }
        transaction.commit().await?;
        Ok(release)
    }

    /// Queues an image; with an idempotency key, once per key (a retry answers the first
    /// call's image).
    pub async fn add_pending_image(
        &self,
        phone: &Phone,
        image_ref: &str,
        caption: &str,
        key: Option<&RequestKey>,
    ) -> Result<PendingImage, Error> {
        let Some(key) = key else {
            let mut connection = self.pool.acquire().await?;
            return store::add_image(&mut connection, phone, image_ref, caption).await;
        };
        let (phone, image_ref, caption) = (phone.clone(), image_ref.to_owned(), caption.to_owned());
        idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(
                async move { store::add_image(connection, &phone, &image_ref, &caption).await },
            )
        })
        .await
    }

    pub async fn pending_images(&self, phone: &Phone) -> Result<Vec<PendingImage>, Error> {
        let images = store::images(&self.pool, phone).await?;
        if images.is_empty() {
            let mut connection = self.pool.acquire().await?;
            self.known(&mut connection, phone).await?;
        }
        Ok(images)
    }

    pub async fn remove_pending_images(&self, phone: &Phone, up_to_id: i64) -> Result<u64, Error> {
        store::remove_images(&self.pool, phone, up_to_id).await
    }

    /// Stamps typing unless the last stamp is younger than `min_interval`.
    pub async fn record_typing(
        &self,
        phone: &Phone,
        min_interval: chrono::Duration,
    ) -> Result<(bool, chrono::DateTime<chrono::Utc>), Error> {
        let mut connection = self.pool.acquire().await?;
        store::record_typing(&mut connection, phone, min_interval).await
    }

    /// A transaction holding the contact's lease row (if any) locked, with the database's
    /// time; NOT_FOUND `CONTACT_NOT_FOUND` for an unknown contact.
    async fn locked_lease(
        &self,
        phone: &Phone,
    ) -> Result<
        (
            sqlx::Transaction<'static, sqlx::Postgres>,
            Option<ProcessingLease>,
            chrono::DateTime<chrono::Utc>,
        ),
        Error,
    > {
        let mut transaction = self.pool.begin().await?;
        let (current, now) = store::locked(&mut transaction, phone).await?;
        if current.is_none() {
            self.known(&mut transaction, phone).await?;
        }
        Ok((transaction, current, now))
    }

    /// NOT_FOUND `CONTACT_NOT_FOUND` unless the contact exists.
    async fn known(&self, connection: &mut sqlx::PgConnection, phone: &Phone) -> Result<(), Error> {
        match contacts::get(connection, phone, false).await? {
            Some(_) => Ok(()),
            None => Err(error::contact_not_found(phone).into()),
        }
    }
}
