//! SetContext, GetContext, SetChatInfo, GetChatInfo, GetUserState, UpdateUserState.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::{Response, Status};

use super::{Access, Answer, phone, positive_or};
use crate::app::Conversations;
use crate::domain::{self, CacheKind};
use crate::proto;
use crate::store::caches::StatePatch;

/// Most preference keys one update names (set and removed together).
const MAX_PREFERENCE_KEYS: usize = 100;
/// Largest preferences object one update sets, serialized.
const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

pub async fn set(
    c: &Conversations,
    raw_phone: &str,
    value: &str,
    ttl: Option<&prost_types::Duration>,
    field: &str,
    kind: CacheKind,
    access: &Access,
) -> Result<pb::CacheEntry, Status> {
    let mut v = Violations::new();
    let phone = phone(&mut v, raw_phone);
    let value = v.free_text(field, value, domain::MAX_CACHE_CHARS, true);
    let ttl = positive_or(
        &mut v,
        "ttl",
        ttl,
        domain::default_ttl(kind),
        domain::MAX_TTL,
    );
    v.finish()?;
    access.bot()?;
    let entry = c.set_cache(&phone, kind, &value, ttl).await?;
    Ok(proto::cache_entry(&entry))
}

pub async fn get(
    c: &Conversations,
    raw_phone: &str,
    refresh: bool,
    kind: CacheKind,
    access: &Access,
) -> Result<Option<pb::CacheEntry>, Status> {
    let mut v = Violations::new();
    let phone = phone(&mut v, raw_phone);
    v.finish()?;
    access.bot()?;
    let entry = c.cache(&phone, kind, refresh).await?;
    Ok(entry.as_ref().map(proto::cache_entry))
}

pub async fn get_state(
    c: &Conversations,
    body: &pb::GetUserStateRequest,
    access: &Access,
) -> Answer<pb::GetUserStateResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    v.finish()?;
    access.bot()?;
    let state = c.user_state(&phone).await?;
    Ok(Response::new(pb::GetUserStateResponse {
        state: Some(proto::user_state(&state)),
    }))
}

pub async fn update_state(
    c: &Conversations,
    body: &pb::UpdateUserStateRequest,
    access: &Access,
) -> Answer<pb::UpdateUserStateResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let voice = match (&body.last_voice_input_time, body.clear_last_voice_input) {
        (Some(_), true) => {
            v.add(
                "clear_last_voice_input",
                "CONFLICTING_FIELDS",
                "cannot clear last_voice_input_time while setting it",
            );
            None
        }
        (Some(t), false) => v.timestamp("last_voice_input_time", Some(t)).map(Some),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let set = json_from_struct(body.set_preferences.as_ref());
    let keys = set.len() + body.remove_preferences.len();
    if keys > MAX_PREFERENCE_KEYS {
        v.add(
            "set_preferences",
            "TOO_MANY_KEYS",
            format!("at most {MAX_PREFERENCE_KEYS} preference keys per update, got {keys}"),
        );
    }
    let bytes = serde_json::to_string(&set).map_or(0, |s| s.len());
    if bytes > MAX_PREFERENCES_BYTES {
        v.add(
            "set_preferences",
            "TOO_LARGE",
            format!("must be at most {MAX_PREFERENCES_BYTES} bytes as JSON, got {bytes}"),
        );
    }
    for (i, key) in body.remove_preferences.iter().enumerate() {
        v.text(&format!("remove_preferences[{i}]"), key, 200);
        if set.contains_key(key) {
            v.add(
                format!("remove_preferences[{i}]"),
                "CONFLICTING_FIELDS",
                "a key cannot be set and removed in one update",
            );
        }
    }
    for key in set.keys() {
        v.text(&format!("set_preferences.{key}"), key, 200);
    }
    // PostgreSQL's jsonb cannot hold a NUL: refused here, with its path, not by the database.
    if let Some(nul) = phoenix_runtime::error::json_nul(&serde_json::Value::Object(set.clone()))
        && (!nul.in_key || nul.path.contains(['.', '[']))
    {
        v.add(
            format!("set_preferences.{}", nul.path),
            "NUL_CHARACTER",
            "must not contain a NUL character",
        );
    }
    v.finish()?;
    access.bot()?;
    let patch = StatePatch {
        last_voice_input_at: voice,
        set_preferences: set,
        remove_preferences: body.remove_preferences.clone(),
    };
    let state = c.update_user_state(&phone, &patch).await?;
    Ok(Response::new(pb::UpdateUserStateResponse {
        state: Some(proto::user_state(&state)),
    }))
}
