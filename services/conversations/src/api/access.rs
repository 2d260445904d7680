//! Who may call what, with authentication on (with it off, every caller is trusted). The
//! context's records are WhatsApp contacts, not Phoenix users, so access is by role: the bot's
//! workers hold `conversations-bot` and may call every RPC on every contact; operators hold
//! `conversations-admin`, which may do the same and also run the cleanup and subscribe.

use phoenix_runtime::Refusal;
use phoenix_runtime::auth::{self, Caller};

pub const BOT_ROLE: &str = "conversations-bot";
pub const ADMIN_ROLE: &str = "conversations-admin";

/// The caller of one request (`None`: authentication is off).
pub struct Access(Option<Caller>);

impl Access {
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self(auth::caller(request).cloned())
    }

    /// PERMISSION_DENIED `ROLE_REQUIRED` unless the caller is the bot or an admin.
    pub fn bot(&self) -> Result<(), Refusal> {
        match &self.0 {
            Some(caller) if !caller.has_role(ADMIN_ROLE) => caller.require_role(BOT_ROLE),
            _ => Ok(()),
        }
    }

    /// PERMISSION_DENIED `ROLE_REQUIRED` unless the caller is an admin.
    pub fn admin(&self) -> Result<(), Refusal> {
        self.0
            .as_ref()
            .map_or(Ok(()), |c| c.require_role(ADMIN_ROLE))
    }
}
