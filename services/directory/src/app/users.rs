//! Registering, reading, updating and deactivating users.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::NewEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Directory, USER_AGGREGATE, publish};
use crate::domain::vip::{Membership, status_of};
use crate::domain::{NewUser, ProfileInput, User};
use crate::store::users::{self as store, Filter, Key};
use crate::{error, proto};

/// A loaded user with its VIP status read at `now`.
fn seen_at((mut user, membership): (User, Option<Membership>), now: DateTime<Utc>) -> User {
    user.vip_status = status_of(membership.as_ref(), now);
    user
}

/// A legacy user ready to import.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub new: NewUser,
    /// The legacy record's fields this schema has no column for, kept verbatim.
    pub legacy_fields: serde_json::Map<String, serde_json::Value>,
    /// Set when the legacy user had their VIP trial.
    pub trial_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub archetype_updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One page of ListUsers.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The last id of this page when there are more.
    pub next_after: Option<Uuid>,
}

impl Directory {
    /// A loaded user with its VIP status read now.
    fn seen(&self, loaded: (User, Option<Membership>)) -> User {
        seen_at(loaded, self.now())
    }

    /// Registers a validated user; a taken email, username or Telegram id is ALREADY_EXISTS
    /// naming the field.
    pub async fn register(&self, new: &NewUser) -> Result<User, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        let loaded = store::insert(
            &mut transaction,
            Uuid::now_v7(),
            &new.profile,
            &serde_json::Map::new(),
            now,
        )
        .await?;
        let user = self.seen(loaded);
        publish(&mut transaction, &[created(&user)]).await?;
        transaction.commit().await?;
        self.events.appended();
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    /// Imports a legacy user once per Telegram id: `None` when a user with that Telegram id is
    /// already registered (nothing is written then).
    pub async fn import_user(&self, imported: &ImportedUser) -> Result<Option<User>, Error> {
        let Some(telegram_id) = imported.new.profile.telegram_id else {
            return Err(phoenix_runtime::Refusal::invalid(
                "telegram_id",
                "REQUIRED",
                "an imported user needs a Telegram id",
            )
            .into());
        };
        if store::id_by_telegram(&self.pool, telegram_id)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        let id = Uuid::now_v7();
        let inserted = store::insert(
            &mut transaction,
            id,
            &imported.new.profile,
            &imported.legacy_fields,
            now,
        )
        .await;
        match inserted {
            Ok(_) => {}
            // A concurrent import of the same Telegram id got there first.
            Err(error) if error.reason() == "TELEGRAM_ID_TAKEN" => return Ok(None),
            Err(error) => return Err(error),
        }
        if let Some(ends_at) = imported.trial_ends_at {
            store::use_trial(&mut transaction, id, ends_at).await?;
        }
        if let Some(at) = imported.archetype_updated_at {
            store::set_archetype_time(&mut transaction, id, at).await?;
        }
        let user = self.seen(locked(&mut transaction, id).await?);
        publish(&mut transaction, &[created(&user)]).await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(Some(user))
    }

    /// The user with `id`; NOT_FOUND when there is none.
    pub async fn user(&self, id: Uuid) -> Result<User, Error> {
        let loaded = store::get(&self.pool, id, false)
            .await?
            .ok_or_else(|| error::user_not_found(id))?;
        Ok(self.seen(loaded))
    }

    /// The user with this email, username or Telegram id; NOT_FOUND when there is none.
    pub async fn lookup(&self, key: &Key) -> Result<User, Error> {
        let loaded = store::lookup(&self.pool, key)
            .await?
            .ok_or_else(|| match key {
                Key::Email(email) => error::no_user_with("email", email),
                Key::Username(name) => error::no_user_with("username", name),
                Key::Telegram(id) => error::no_user_with("telegram_id", &id.to_string()),
            })?;
        Ok(self.seen(loaded))
    }

    /// The users with these ids, in the order asked (each once), and the ids that name none.
    pub async fn users(&self, ids: &[Uuid]) -> Result<(Vec<User>, Vec<Uuid>), Error> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        // One instant for the whole answer: every user's status is read at it.
        let now = self.now();
        let mut found: HashMap<Uuid, User> = store::batch_get(&self.pool, &unique)
            .await?
            .into_iter()
            .map(|loaded| {
                let user = seen_at(loaded, now);
                (user.id, user)
            })
            .collect();
        let mut users = Vec::with_capacity(found.len());
        let mut missing = Vec::new();
        for id in ids {
            match found.remove(id) {
                Some(user) => users.push(user),
                None if !users.iter().any(|u: &User| u.id == *id) && !missing.contains(id) => {
                    missing.push(*id);
                }
                None => {}
            }
        }
        Ok((users, missing))
    }

    /// A page of at most `limit` users after `after`, matching `filter`.
    pub async fn list_users(
        &self,
        filter: &Filter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<UserPage, Error> {
        // The VIP status filter and the statuses answered are read at one instant, so a page
        // filtered on ACTIVE never shows a user as EXPIRED.
        let now = self.now();
        let mut rows = store::list(&self.pool, filter, after, limit + 1, now).await?;
        let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let users: Vec<User> = rows
            .into_iter()
            .map(|loaded| seen_at(loaded, now))
            .collect();
        let next_after = if more {
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok(UserPage { users, next_after })
    }

    /// Changes the fields named by `paths` (already checked against the mask rules) to
    /// `input`'s; violations are named `user.<path>`. An update that changes nothing writes
    /// nothing.
    pub async fn update_user(
        &self,
        id: Uuid,
        input: &ProfileInput,
        paths: &[String],
    ) -> Result<User, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        let (current, _) = locked(&mut transaction, id).await?;
        let next = current.profile.with(input, paths, "user.")?;
        if next == current.profile {
            return self.user(id).await;
        }
        let archetype_at = if next.archetype_changed(&current.profile) {
            Some(now)
        } else {
            current.archetype_updated_at
        };
        store::update(&mut transaction, id, &next, archetype_at, now).await?;
        let user = self.seen(locked(&mut transaction, id).await?);
        publish(
            &mut transaction,
            &[user_event(
                &user,
                "phoenix.directory.v1.UserUpdated",
                &pb::UserUpdated {
                    user: Some(proto::user(&user)),
                    paths: paths.to_vec(),
                },
            )],
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(user)
    }

    /// Marks the user inactive; a user already inactive is answered as is.
    pub async fn deactivate(&self, id: Uuid) -> Result<User, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        let (current, _) = locked(&mut transaction, id).await?;
        if !current.active {
            return self.user(id).await;
        }
        store::deactivate(&mut transaction, id, now).await?;
        let user = self.seen(locked(&mut transaction, id).await?);
        publish(
            &mut transaction,
            &[user_event(
                &user,
                "phoenix.directory.v1.UserDeactivated",
                &pb::UserDeactivated {
                    user_id: id.to_string(),
                    deactivate_time: Some(phoenix_runtime::convert::timestamp(now)),
                },
            )],
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        tracing::info!(user_id = %id, "user deactivated");
        Ok(user)
    }
}

/// The user, locked for the transaction; NOT_FOUND when there is none.
pub(super) async fn locked(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<(User, Option<Membership>), Error> {
    Ok(store::get(&mut *connection, id, true)
        .await?
        .ok_or_else(|| error::user_not_found(id))?)
}

/// The event of a user's registration (or import).
fn created(user: &User) -> NewEvent {
    user_event(
        user,
        "phoenix.directory.v1.UserCreated",
        &pb::UserCreated {
            user: Some(proto::user(user)),
        },
    )
}

/// An event of the user's stream at the user's current version.
pub(super) fn user_event(
    user: &User,
    event_type: &'static str,
    payload: &impl prost::Message,
) -> NewEvent {
    NewEvent::new(
        USER_AGGREGATE,
        user.id,
        user.version,
        event_type,
        payload,
        user.updated_at,
    )
}
