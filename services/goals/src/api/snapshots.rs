//! CreateCodeSnapshot, ListCodeSnapshots, ListLatestCodeSnapshots.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{
    Access, Answer, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, micros, optional_key, time_of, token,
};
use crate::app::Goals;
use crate::domain::NewSnapshot;
use crate::domain::snapshot::{MAX_PATH_CHARS, SnapshotInput};
use crate::proto;
use crate::store::snapshots::SnapshotCursor;

pub async fn create(
    g: &Goals,
    body: &pb::CreateCodeSnapshotRequest,
    access: &Access,
) -> Answer<pb::CreateCodeSnapshotResponse> {
    let mut v = Violations::new();
    let task_id = v.uuid("task_id", &body.task_id);
    let input = SnapshotInput {
        file_path: body.file_path.clone(),
        language: body.language.clone(),
        content: body.content.clone(),
        validation_passed: body.validation_passed,
        validation_score: body.validation_score,
        validation_feedback: body.validation_feedback.clone(),
        issues_found: body
            .issues_found
            .iter()
            .map(|issue| json_from_struct(Some(issue)))
            .collect(),
        metadata: json_from_struct(body.metadata.as_ref()),
    };
    let snapshot = v.take(NewSnapshot::new(&input));
    let key = optional_key(&mut v, &body.idempotency_key, "CreateCodeSnapshot", body);
    let snapshot = v.finish_with(snapshot)?;
    if access.is_on() {
        access.owner(g.task(task_id).await?.user_id)?;
    }
    let stored = g.create_snapshot(task_id, snapshot, key.as_ref()).await?;
    Ok(Response::new(pb::CreateCodeSnapshotResponse {
        snapshot: Some(proto::snapshot(&stored, true)),
    }))
}

/// `<micros>/<id>`.
fn cursor(text: &str) -> Option<SnapshotCursor> {
    let (time, id) = text.split_once('/')?;
    Some((time_of(time)?, id.parse().ok()?))
}

pub async fn list(
    g: &Goals,
    body: &pb::ListCodeSnapshotsRequest,
    access: &Access,
) -> Answer<pb::ListCodeSnapshotsResponse> {
    let mut v = Violations::new();
    let task_id = v.uuid("task_id", &body.task_id);
    let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = v.page_token(&body.page_token, cursor);
    // Checked and trimmed as a snapshot's own path is, so the filter names what was stored.
    let file = v.optional_text("file_path", &body.file_path, MAX_PATH_CHARS);
    v.finish()?;
    if access.is_on() {
        access.owner(g.task(task_id).await?.user_id)?;
    }
    let file = Some(file.as_str()).filter(|f| !f.is_empty());
    let (found, next) = g.snapshots(task_id, file, after, limit).await?;
    Ok(Response::new(pb::ListCodeSnapshotsResponse {
        snapshots: found.iter().map(|s| proto::snapshot(s, true)).collect(),
        next_page_token: next
            .map(|(t, id)| token(&[micros(t), id.to_string()]))
            .unwrap_or_default(),
    }))
}

pub async fn latest(
    g: &Goals,
    body: &pb::ListLatestCodeSnapshotsRequest,
    access: &Access,
) -> Answer<pb::ListLatestCodeSnapshotsResponse> {
    let mut v = Violations::new();
    let task_id = v.uuid("task_id", &body.task_id);
    v.finish()?;
    if access.is_on() {
        access.owner(g.task(task_id).await?.user_id)?;
    }
    let found = g.latest_snapshots(task_id).await?;
    Ok(Response::new(pb::ListLatestCodeSnapshotsResponse {
        snapshots: found.iter().map(|s| proto::snapshot(s, true)).collect(),
    }))
}
