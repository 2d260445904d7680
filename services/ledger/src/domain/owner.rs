//! Owners: the external id (a user id, `system`…) an account or a holding belongs to. The
//! ledger does not check it against another service; it keeps it short and storable.

use super::Refusal;

/// Longest owner reference, in characters.
pub const MAX_OWNER_REF_CHARS: usize = 200;

/// An owner's external id, already trimmed: 1-200 characters without control characters.
pub fn check_owner_ref(owner_ref: &str) -> Result<(), Refusal> {
    let ok = !owner_ref.is_empty()
        && owner_ref.chars().count() <= MAX_OWNER_REF_CHARS
        && !owner_ref.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "owner_ref",
            "INVALID_OWNER_REF",
            "is required: 1-200 characters without control characters",
        ))
    }
}
