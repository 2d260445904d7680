//! The directory's use cases: each loads through the store, asks the domain, writes through the
//! store. The API, tools and tests call these, never the API's internals.

use phoenix_runtime::Error;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{NewUser, User};
use crate::{error, store};

#[derive(Debug, Clone)]
pub struct Directory {
    pool: PgPool,
}

impl Directory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Registers a validated user; an email already registered is ALREADY_EXISTS.
    pub async fn register(&self, new: &NewUser) -> Result<User, Error> {
        let user = store::insert_user(&self.pool, Uuid::now_v7(), new)
            .await?
            .ok_or_else(|| error::email_taken(&new.email))?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    /// The user with `id`; NOT_FOUND when there is none.
    pub async fn user(&self, id: Uuid) -> Result<User, Error> {
        Ok(store::get_user(&self.pool, id)
            .await?
            .ok_or_else(|| error::user_not_found(id))?)
    }
}
