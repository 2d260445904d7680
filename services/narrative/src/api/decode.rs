//! Requests' messages → domain values, validating every field into one `Violations`: the
//! shapes here, the rules of amounts and lists in `domain::rules`.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use uuid::Uuid;

use crate::domain::experience::{MAX_COMPONENTS, MAX_DESCRIPTION_CHARS};
use crate::domain::reaction::{MAX_CONTENT_ID_CHARS, MAX_REACTION_CHARS};
use crate::domain::rules::{MAX_LIST, external_id};
use crate::domain::story::{MAX_CONTENT_CHARS, MAX_LEVEL, MAX_PREVIEW_CHARS, MAX_TITLE_CHARS};
use crate::domain::{
    ContentKind, ContentRef, Decision, Experience, FragmentInput, ItemAmount, Requirements,
    Rewards, Target,
};

/// A list of ids, each named `field[i]`.
pub fn uuids(v: &mut Violations, field: &str, list: &[String]) -> Vec<Uuid> {
    list.iter()
        .enumerate()
        .map(|(i, id)| v.uuid(&format!("{field}[{i}]"), id))
        .collect()
}

/// 1 to `max` ids.
pub fn id_batch(v: &mut Violations, field: &str, list: &[String], max: usize) -> Vec<Uuid> {
    if list.is_empty() {
        v.add(field, "REQUIRED", format!("is required: 1 to {max} ids"));
    } else if list.len() > max {
        v.add(
            field,
            "TOO_MANY_IDS",
            format!("must hold at most {max} ids, got {}", list.len()),
        );
        return Vec::new();
    }
    let ids = uuids(v, field, list);
    let mut seen = std::collections::HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !id.is_nil() && !seen.insert(*id) {
            v.add(
                format!("{field}[{i}]"),
                "DUPLICATE_ENTRY",
                "is listed twice",
            );
        }
    }
    ids
}

/// The ids of a requirement or reward list: more than [`MAX_LIST`] is `TOO_MANY_ENTRIES`
/// before any entry is looked at (a huge list costs no parsing, and the reason is the one that
/// matters); the domain's rules check the rest.
fn listed_uuids(v: &mut Violations, field: &str, list: &[String]) -> Vec<Uuid> {
    if list.len() > MAX_LIST {
        v.add(
            field,
            "TOO_MANY_ENTRIES",
            format!("must hold at most {MAX_LIST} entries, got {}", list.len()),
        );
        return Vec::new();
    }
    uuids(v, field, list)
}

fn items(list: &[pb::ItemAmount]) -> Vec<ItemAmount> {
    list.iter()
        .map(|i| ItemAmount {
            item_id: i.item_id.clone(),
            quantity: i.quantity,
        })
        .collect()
}

pub fn requirements(v: &mut Violations, field: &str, r: Option<&pb::Requirements>) -> Requirements {
    let Some(r) = r else {
        return Requirements::default();
    };
    let requirements = Requirements {
        vip_required: r.vip_required,
        min_level: r.min_level,
        required_items: items(&r.required_items),
        required_achievements: r.required_achievement_ids.clone(),
        required_experiences: listed_uuids(
            v,
            &format!("{field}.required_experience_ids"),
            &r.required_experience_ids,
        ),
        required_fragments: listed_uuids(
            v,
            &format!("{field}.required_fragment_ids"),
            &r.required_fragment_ids,
        ),
    };
    requirements.check(v, field);
    requirements
}

pub fn rewards(v: &mut Violations, field: &str, r: Option<&pb::Rewards>) -> Rewards {
    let Some(r) = r else {
        return Rewards::default();
    };
    let rewards = Rewards {
        besitos: r.besitos,
        items: items(&r.items),
        unlock_fragments: listed_uuids(
            v,
            &format!("{field}.unlock_fragment_ids"),
            &r.unlock_fragment_ids,
        ),
        unlock_experiences: listed_uuids(
            v,
            &format!("{field}.unlock_experience_ids"),
            &r.unlock_experience_ids,
        ),
        achievements: r.achievement_ids.clone(),
    };
    rewards.check(v, field);
    rewards
}

fn required<'m, T>(v: &mut Violations, field: &str, message: Option<&'m T>) -> Option<&'m T> {
    if message.is_none() {
        v.add(field, "REQUIRED", "is required");
    }
    message
}

fn level(v: &mut Violations, field: &str, value: i32) -> i32 {
    v.range(field, value, 0..=MAX_LEVEL, None)
}

pub fn fragment(v: &mut Violations, f: Option<&pb::Fragment>) -> FragmentInput {
    let f = required(v, "fragment", f).cloned().unwrap_or_default();
    let experience = v.optional_uuid("fragment.experience_id", &f.experience_id);
    let sequence = level(v, "fragment.experience_sequence", f.experience_sequence);
    match (experience, sequence) {
        (Some(_), 0) => v.add(
            "fragment.experience_sequence",
            "REQUIRED",
            "is required with an experience_id: 1 or more",
        ),
        (None, s) if s > 0 && f.experience_id.is_empty() => v.add(
            "fragment.experience_id",
            "REQUIRED",
            "is required with an experience_sequence",
        ),
        _ => {}
    }
    FragmentInput {
        id: v.uuid("fragment.id", &f.id),
        title: v.text("fragment.title", &f.title, MAX_TITLE_CHARS),
        content: v.free_text("fragment.content", &f.content, MAX_CONTENT_CHARS, false),
        preview: v.free_text("fragment.preview", &f.preview, MAX_PREVIEW_CHARS, false),
        vip_exclusive: f.vip_exclusive,
        experience: experience.map(|id| (id, sequence)),
        requirements: requirements(v, "fragment.requirements", f.requirements.as_ref()),
        rewards: rewards(v, "fragment.rewards", f.rewards.as_ref()),
        completes_level: level(v, "fragment.completes_level", f.completes_level),
    }
}

pub fn decision(v: &mut Violations, d: Option<&pb::Decision>) -> Decision {
    let d = required(v, "decision", d).cloned().unwrap_or_default();
    Decision {
        id: v.uuid("decision.id", &d.id),
        fragment_id: v.uuid("decision.fragment_id", &d.fragment_id),
        label: v.text("decision.label", &d.label, MAX_TITLE_CHARS),
        next_fragment: v.optional_uuid("decision.next_fragment_id", &d.next_fragment_id),
        rewards: rewards(v, "decision.rewards", d.rewards.as_ref()),
        position: v.range("decision.position", d.position, 0..=i32::MAX, None),
    }
}

pub fn experience(v: &mut Violations, e: Option<&pb::Experience>) -> Experience {
    use pb::experience_component::Target as T;
    let e = required(v, "experience", e).cloned().unwrap_or_default();
    if e.components.is_empty() || e.components.len() > MAX_COMPONENTS {
        v.add(
            "experience.components",
            "INVALID_COMPONENTS",
            format!(
                "must hold 1 to {MAX_COMPONENTS} components, got {}",
                e.components.len()
            ),
        );
    }
    let mut components: Vec<Target> = Vec::new();
    for (i, component) in e.components.iter().enumerate().take(MAX_COMPONENTS) {
        let field = format!("experience.components[{i}]");
        let target = match &component.target {
            Some(T::FragmentId(id)) => {
                Target::Fragment(v.uuid(&format!("{field}.fragment_id"), id))
            }
            Some(T::MissionId(id)) => {
                external_id(v, &format!("{field}.mission_id"), id);
                Target::Mission(id.clone())
            }
            None => {
                v.add(&field, "REQUIRED", "needs a fragment_id or a mission_id");
                continue;
            }
        };
        if components.contains(&target) {
            v.add(&field, "DUPLICATE_ENTRY", "names a target already listed");
        }
        components.push(target);
    }
    Experience {
        id: v.uuid("experience.id", &e.id),
        title: v.text("experience.title", &e.title, MAX_TITLE_CHARS),
        description: v.free_text(
            "experience.description",
            &e.description,
            MAX_DESCRIPTION_CHARS,
            false,
        ),
        components,
        rewards: rewards(v, "experience.rewards", e.rewards.as_ref()),
    }
}

/// A component reference: a fragment UUID or a mission id.
pub fn component(v: &mut Violations, c: Option<&pb::ComponentRef>) -> Option<Target> {
    use pb::component_ref::Target as T;
    match c.and_then(|c| c.target.as_ref()) {
        Some(T::FragmentId(id)) => Some(Target::Fragment(v.uuid("component.fragment_id", id))),
        Some(T::MissionId(id)) => {
            external_id(v, "component.mission_id", id);
            Some(Target::Mission(id.clone()))
        }
        None => {
            v.add(
                "component",
                "REQUIRED",
                "is required: a fragment_id or a mission_id",
            );
            None
        }
    }
}

/// A content reference named `field`: a known kind, and an id of that kind's shape.
pub fn content(v: &mut Violations, field: &str, c: Option<&pb::ContentRef>) -> Option<ContentRef> {
    let c = required(v, field, c)?;
    let kind = v.enumeration::<pb::ContentKind>(
        &format!("{field}.kind"),
        c.kind,
        "CONTENT_KIND_REQUIRED",
        "FRAGMENT, EXPERIENCE or CHANNEL_POST",
    )?;
    let id_field = format!("{field}.content_id");
    let kind = match kind {
        pb::ContentKind::Unspecified => return None,
        pb::ContentKind::Fragment => ContentKind::Fragment,
        pb::ContentKind::Experience => ContentKind::Experience,
        pb::ContentKind::ChannelPost => ContentKind::ChannelPost,
    };
    let id = match kind {
        ContentKind::ChannelPost => v.text(&id_field, &c.content_id, MAX_CONTENT_ID_CHARS),
        ContentKind::Fragment | ContentKind::Experience => {
            v.uuid(&id_field, &c.content_id).to_string()
        }
    };
    Some(ContentRef { kind, id })
}

pub fn reaction_text(v: &mut Violations, field: &str, value: &str) -> String {
    v.text(field, value, MAX_REACTION_CHARS)
}

/// A visit's time: 0 to 24 hours, in milliseconds.
pub fn time_spent(v: &mut Violations, value: Option<&prost_types::Duration>) -> i64 {
    let Some(value) = value else {
        return 0;
    };
    // A well-formed Duration's nanos lie within a second, with the sign of its seconds.
    let ms = Some(value)
        .filter(|d| d.seconds >= 0 && (0..1_000_000_000).contains(&d.nanos))
        .and_then(phoenix_runtime::convert::duration_from_proto)
        .map(|d| d.num_milliseconds())
        .filter(|ms| (0..=24 * 3600 * 1000).contains(ms));
    if ms.is_none() {
        v.add(
            "time_spent",
            "INVALID_DURATION",
            "must be between 0 and 24 hours",
        );
    }
    ms.unwrap_or(0)
}
