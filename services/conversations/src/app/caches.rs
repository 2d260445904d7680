//! The context and chat-info caches, and user states.

use phoenix_runtime::Error;

use super::Conversations;
use crate::domain::{CacheKind, Phone, UserState};
use crate::error;
use crate::store::caches::{self as store, CacheEntry, StatePatch};
use crate::store::contacts;

impl Conversations {
    /// Writes a cache entry live for `ttl`; NOT_FOUND `CONTACT_NOT_FOUND` for an unknown
    /// contact.
    pub async fn set_cache(
        &self,
        phone: &Phone,
        kind: CacheKind,
        value: &str,
        ttl: chrono::Duration,
    ) -> Result<CacheEntry, Error> {
        store::set(&self.pool, phone, kind, value, ttl).await
    }

    /// The live entry, if any (an expired one never is); `refresh` extends it by its TTL.
    pub async fn cache(
        &self,
        phone: &Phone,
        kind: CacheKind,
        refresh: bool,
    ) -> Result<Option<CacheEntry>, Error> {
        store::get(&self.pool, phone, kind, refresh).await
    }

    /// The contact's state, empty when never written; NOT_FOUND for an unknown contact.
    pub async fn user_state(&self, phone: &Phone) -> Result<UserState, Error> {
        if let Some(state) = store::user_state(&self.pool, phone).await? {
            return Ok(state);
        }
        if contacts::get(&self.pool, phone, false).await?.is_none() {
            return Err(error::contact_not_found(phone).into());
        }
        Ok(UserState {
            phone: phone.clone(),
            last_voice_input_at: None,
            preferences: serde_json::Map::new(),
            updated_at: None,
        })
    }

    /// Applies a partial update in one statement: concurrent updates of other fields or keys
    /// are all kept.
    pub async fn update_user_state(
        &self,
        phone: &Phone,
        patch: &StatePatch,
    ) -> Result<UserState, Error> {
        store::update_user_state(&self.pool, phone, patch).await
    }
}
