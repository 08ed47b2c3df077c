//! The audit service: one call, [`App::audit`], that every use case which logs someone in,
//! shows contact data, exports, erases, or changes users and configuration makes; and
//! [`verify_tenant`], which `switchboard audit verify` runs over a tenant's whole chain.
//!
//! Entries hold ids, action names, role names and counts only: never e-mail addresses, names,
//! phone numbers, message text or secrets. Storage computes the hash chain in the transaction
//! that appends (see `storage::audit`); this module decides what is recorded.

use serde_json::{Value, json};
use switchboard_core::ports::Store;
use switchboard_core::security::{AuditRecord, NewAudit};
use switchboard_core::{ApiTokenId, TenantId, UserId};
use switchboard_crypto::audit::{AuditEntry, ChainError, ChainHead, ChainVerifier};

use crate::services::ServiceResult;
use crate::{App, now};

/// Who did something, as recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A staff member in a browser session.
    User(UserId),
    /// An integration using an API token (which acts for its owner).
    Token {
        /// The token.
        token: ApiTokenId,
        /// Its owner.
        owner: UserId,
    },
    /// Someone at the server's command line.
    Cli,
    /// The server itself (demo seeding, retention jobs).
    System,
}

impl Actor {
    /// The `actor` column: `user:<id>`, `api-token:<id>`, `cli` or `system`.
    pub fn label(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Token { token, .. } => format!("api-token:{token}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
        }
    }

    /// The staff member behind the action, if any.
    pub fn user(&self) -> Option<UserId> {
        match self {
            Actor::User(id) | Actor::Token { owner: id, .. } => Some(*id),
            Actor::Cli | Actor::System => None,
        }
    }
}

/// The action names the log uses, so callers and readers agree on the spelling.
pub mod action {
    /// A staff login succeeded.
    pub const LOGIN: &str = "auth.login";
    /// A staff login for a known account failed (wrong password, or the account is locked).
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    /// Repeated failures locked an account.
    pub const LOCKOUT: &str = "auth.lockout";
    /// An admin lifted an account's lock.
    pub const UNLOCK: &str = "auth.unlock";
    /// A staff member logged out.
    pub const LOGOUT: &str = "auth.logout";
    /// Someone looked at a contact (profile, identities, conversations).
    pub const CONTACT_VIEW: &str = "contact.view";
    /// Someone read a conversation's messages.
    pub const CONVERSATION_VIEW: &str = "conversation.view";
    /// Someone sent a failed message to the customer again.
    pub const MESSAGE_RETRY: &str = "message.retry";
    /// A contact's data was exported.
    pub const CONTACT_EXPORT: &str = "contact.export";
    /// A contact was erased.
    pub const CONTACT_ERASE: &str = "contact.erase";
    /// Two contacts were merged.
    pub const CONTACT_MERGE: &str = "contact.merge";
    /// A staff user was created.
    pub const USER_CREATE: &str = "user.create";
    /// A staff user's role changed.
    pub const ROLE_CHANGE: &str = "user.role_change";
    /// An API token was created.
    pub const TOKEN_CREATE: &str = "token.create";
    /// An API token was revoked.
    pub const TOKEN_REVOKE: &str = "token.revoke";
    /// A channel was added.
    pub const CHANNEL_ADD: &str = "config.channel_add";
    /// A channel's settings or credentials changed.
    pub const CHANNEL_UPDATE: &str = "config.channel_update";
    /// A flow definition was loaded.
    pub const FLOW_LOAD: &str = "config.flow_load";
    /// A routing queue was created, changed or deleted.
    pub const QUEUE_CHANGE: &str = "config.queue_change";
}

impl App {
    /// Appends an entry to `tenant`'s audit chain. `details` must be a JSON object of ids,
    /// names of fields and counts (no personal data). Fails when storage does; callers that
    /// show data record the view before answering, so an unrecorded view is never served.
    pub async fn audit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        action: &str,
        subject: impl Into<String>,
        details: Value,
    ) -> ServiceResult<AuditRecord> {
        let details = match details {
            Value::Null => json!({}),
            v => v,
        };
        Ok(self
            .store
            .append_audit(
                tenant,
                NewAudit {
                    at: now(),
                    actor: actor.label(),
                    action: action.to_string(),
                    subject: subject.into(),
                    details,
                },
            )
            .await?)
    }

    /// Like [`App::audit`] for actions already committed (a logout, a login failure): a
    /// storage failure is logged as an error instead of failing the caller.
    pub async fn audit_after(
        &self,
        tenant: TenantId,
        actor: &Actor,
        action: &str,
        subject: impl Into<String>,
        details: Value,
    ) {
        if let Err(e) = self.audit(tenant, actor, action, subject, details).await {
            tracing::error!(%tenant, action, error = %e, "could not write the audit entry");
        }
    }
}

/// The result of checking one tenant's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The tenant.
    pub tenant: TenantId,
    /// Entries checked (up to and including the first broken one).
    pub checked: u64,
    /// The last good entry.
    pub head: Option<ChainHead>,
    /// The first break, if any.
    pub broken: Option<ChainError>,
    /// Set when the chain ends before the head that appends recorded (newest entries
    /// deleted) or the recorded head's hash differs.
    pub head_mismatch: Option<String>,
}

impl Verification {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.broken.is_none() && self.head_mismatch.is_none()
    }
}

/// The crypto crate's view of a stored record.
pub fn to_entry(r: &AuditRecord) -> AuditEntry {
    AuditEntry {
        seq: u64::try_from(r.seq).unwrap_or(0),
        at: r.at,
        actor: r.actor.clone(),
        action: r.action.clone(),
        subject: r.subject.clone(),
        details: r.details.clone(),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// Streams a tenant's whole chain through [`ChainVerifier`] (pages of 1,000) and compares
/// its end with the head appends recorded.
pub async fn verify_tenant(store: &dyn Store, tenant: TenantId) -> ServiceResult<Verification> {
    let mut verifier = ChainVerifier::new();
    let mut checked = 0u64;
    let mut after = 0i64;
    loop {
        let page = store.audit_entries(tenant, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            checked += 1;
            if let Err(broken) = verifier.push(&to_entry(record)) {
                return Ok(Verification {
                    tenant,
                    checked,
                    head: verifier.head(),
                    broken: Some(broken),
                    head_mismatch: None,
                });
            }
        }
    }
    let head = verifier.head();
    let recorded = store.audit_head(tenant).await?;
    let head_mismatch = match (&head, recorded) {
        (None, None) => None,
        (Some(h), Some((seq, hash)))
            if i64::try_from(h.seq).ok() == Some(seq) && h.hash == hash =>
        {
            None
        }
        (h, Some((seq, _))) => Some(format!(
            "the log ends at seq {} but appends recorded seq {seq}: newest entries were deleted or the head edited",
            h.as_ref().map_or(0, |h| h.seq)
        )),
        (Some(h), None) => Some(format!(
            "the log has entries up to seq {} but no recorded head",
            h.seq
        )),
    };
    Ok(Verification {
        tenant,
        checked,
        head,
        broken: None,
        head_mismatch,
    })
}
