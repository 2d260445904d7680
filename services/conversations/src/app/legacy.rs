//! The use cases of the legacy files' import and export (`ops::legacy` reads and writes the
//! files).

use phoenix_runtime::Error;

use super::{Conversations, contact_event, contacts::saved, publish};
use crate::domain::legacy::LegacyContact;
use crate::store::contacts as store;
use crate::store::legacy::{self, ExportRow};
use crate::{error, proto};
use phoenix_proto::conversations::v1 as pb;

/// What importing one contact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Created,
    /// The phone was there already: nothing was written.
    Unchanged,
}

impl Conversations {
    /// Imports a legacy contact whole (its contact row and active thread, with their events)
    /// or not at all, once per phone. With `dry_run`, every statement runs and is rolled back,
    /// so a record the database would refuse is found without writing anything.
    pub async fn import_contact(
        &self,
        legacy: &LegacyContact,
        dry_run: bool,
    ) -> Result<Imported, Error> {
        let mut transaction = self.pool.begin().await?;
        let Some(contact) = legacy::insert(&mut transaction, legacy).await? else {
            return Ok(Imported::Unchanged);
        };
        let mut events = vec![saved(&contact, true)];
        if let Some(thread) = &legacy.thread {
            if let Some(owner) = store::thread_owner(&mut transaction, &thread.thread_id).await?
                && owner != legacy.phone
            {
                return Err(error::thread_of_another_contact(&thread.thread_id).into());
            }
            let (saved_thread, _) = store::activate_thread(
                &mut transaction,
                &legacy.phone,
                &thread.thread_id,
                thread.user_name.as_deref(),
                None,
            )
            .await?;
            let (version, now) = store::next_version(&mut transaction, &legacy.phone).await?;
            events.push(contact_event(
                &legacy.phone,
                version,
                "phoenix.conversations.v1.ThreadSaved",
                &pb::ThreadSaved {
                    thread: Some(proto::thread(&saved_thread)),
                    replaced_thread_id: String::new(),
                },
                now,
            ));
        }
        publish(&mut transaction, &events).await?;
        if dry_run {
            transaction.rollback().await?;
        } else {
            transaction.commit().await?;
            self.events.appended();
        }
        Ok(Imported::Created)
    }

    /// Every contact as the export renders it, in phone order.
    pub async fn export_rows(&self) -> Result<Vec<ExportRow>, Error> {
        legacy::export_rows(&self.pool).await
    }
}
