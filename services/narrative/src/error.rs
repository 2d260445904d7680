//! The narrative's own refusals, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `narrative.phoenix`.

use phoenix_runtime::{FieldViolation, Refusal};
use uuid::Uuid;

use crate::domain::RequirementCheck;

pub fn fragment_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("FRAGMENT_NOT_FOUND", format!("no fragment has id {id}"))
        .with("fragment_id", id)
        .at("fragment_id")
}

pub fn decision_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("DECISION_NOT_FOUND", format!("no decision has id {id}"))
        .with("decision_id", id)
        .at("decision_id")
}

pub fn experience_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("EXPERIENCE_NOT_FOUND", format!("no experience has id {id}"))
        .with("experience_id", id)
        .at("experience_id")
}

/// A catalog entry names a fragment or experience (`what`) that does not exist, at `field`.
pub fn unknown_reference(field: &str, what: &str, id: Uuid) -> Refusal {
    let reason = match what {
        "experience" => "UNKNOWN_EXPERIENCE",
        _ => "UNKNOWN_FRAGMENT",
    };
    Refusal::precondition(reason, format!("{field} names {id}, which is no {what}"))
        .with("id", id)
        .at(field)
}

pub fn decision_of_another_fragment(decision: Uuid, fragment: Uuid, owner: Uuid) -> Refusal {
    Refusal::precondition(
        "DECISION_NOT_OF_FRAGMENT",
        format!("decision {decision} belongs to fragment {owner}, not to {fragment}"),
    )
    .with("decision_id", decision)
    .with("fragment_id", fragment)
    .with("owner_fragment_id", owner)
    .at("decision_id")
}

pub fn decision_already_taken(fragment: Uuid, taken: Option<Uuid>) -> Refusal {
    let mut refusal = Refusal::already_exists(
        "DECISION_ALREADY_TAKEN",
        format!("the user already took a decision on fragment {fragment}"),
    )
    .with("fragment_id", fragment);
    if let Some(taken) = taken {
        refusal = refusal.with("taken_decision_id", taken);
    }
    refusal
}

pub fn requirements_not_met(check: &RequirementCheck) -> Refusal {
    let list = |ids: &[Uuid]| {
        ids.iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    Refusal::precondition(
        "REQUIREMENTS_NOT_MET",
        "the user does not meet the fragment's requirements (unlocked fragments, completed experiences)",
    )
    .with("missing_fragment_ids", list(&check.missing_fragments))
    .with("missing_experience_ids", list(&check.missing_experiences))
}

pub fn next_fragment_cycle(cycle: &[Uuid]) -> Refusal {
    let path = cycle
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(" -> ");
    let mut refusal = Refusal::precondition(
        "NEXT_FRAGMENT_CYCLE",
        format!("this next fragment would close a loop of next fragments: {path}"),
    )
    .with("cycle", path);
    refusal.violations.push(FieldViolation::new(
        "decision.next_fragment_id",
        "NEXT_FRAGMENT_CYCLE",
        "would close a loop of next fragments",
    ));
    refusal
}

pub fn component_not_found(experience: Uuid) -> Refusal {
    Refusal::not_found(
        "COMPONENT_NOT_FOUND",
        format!("experience {experience} has no such component"),
    )
    .with("experience_id", experience)
    .at("component")
}

pub fn experience_started(experience: Uuid) -> Refusal {
    Refusal::precondition(
        "EXPERIENCE_STARTED",
        "a started experience cannot be locked again",
    )
    .with("experience_id", experience)
}

pub fn experience_components_in_use(experience: Uuid) -> Refusal {
    Refusal::precondition(
        "EXPERIENCE_IN_PROGRESS",
        "users completed components of this experience: its components cannot change (its \
         title, description and rewards can)",
    )
    .with("experience_id", experience)
    .at("experience.components")
}
