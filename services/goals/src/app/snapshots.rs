//! Code snapshots: record one, list a task's, the latest of each file.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::stream::NewEvent;
use uuid::Uuid;

use super::{Goals, SNAPSHOT_AGGREGATE, now, publish};
use crate::domain::{CodeSnapshot, NewSnapshot};
use crate::store::snapshots::{self as store, SnapshotCursor};
use crate::store::tasks;
use crate::{error, proto};

impl Goals {
    /// Records a snapshot of a file for a task; it belongs to the task's user.
    pub async fn create_snapshot(
        &self,
        task_id: Uuid,
        snapshot: NewSnapshot,
        key: Option<&RequestKey>,
    ) -> Result<CodeSnapshot, Error> {
        self.write(key, move |connection| {
            Box::pin(async move {
                let task = tasks::get(&mut *connection, task_id, false)
                    .await?
                    .ok_or_else(|| error::task_not_found(task_id))?;
                let now = now();
                let stored = store::insert(
                    connection,
                    Uuid::now_v7(),
                    task_id,
                    task.user_id,
                    &snapshot,
                    now,
                )
                .await?;
                let event = NewEvent::new(
                    SNAPSHOT_AGGREGATE,
                    stored.id,
                    1,
                    "phoenix.goals.v1.CodeSnapshotCreated",
                    &pb::CodeSnapshotCreated {
                        snapshot: Some(proto::snapshot(&stored, false)),
                    },
                    now,
                );
                publish(connection, &[event]).await?;
                Ok(stored)
            })
        })
        .await
    }

    /// A page of the task's snapshots, newest first (of one file when given), and where the
    /// next page starts. NOT_FOUND for an unknown task.
    pub async fn snapshots(
        &self,
        task_id: Uuid,
        file_path: Option<&str>,
        after: Option<SnapshotCursor>,
        limit: i64,
    ) -> Result<(Vec<CodeSnapshot>, Option<SnapshotCursor>), Error> {
        self.task(task_id).await?;
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut found = store::of_task(&self.pool, task_id, file_path, after, limit + 1).await?;
        let more = found.len() > size;
        found.truncate(size);
        let next = found.last().filter(|_| more).map(|s| (s.created_at, s.id));
        Ok((found, next))
    }

    /// The newest snapshot of each of the task's files, by path.
    pub async fn latest_snapshots(&self, task_id: Uuid) -> Result<Vec<CodeSnapshot>, Error> {
        self.task(task_id).await?;
        store::latest_per_file(&self.pool, task_id).await
    }
}
