//! Access control and accountability: the data and the storage contract behind the audit log,
//! API tokens, login throttling, session activity and role changes.
//!
//! [`SecurityStore`] is part of [`Store`](crate::ports::Store) (a supertrait), so every
//! backend implements it and every caller holding a `Store` can use it. The hash chain itself
//! is computed by `crypto::audit` inside storage, in the transaction that appends, so two
//! concurrent appends can never fork a tenant's chain. Policies (who may do what, how many
//! failures lock an account) live in `app` and `http`; this module only names the data.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ports::{Session, StoreResult};
use crate::{ApiTokenId, Role, TenantId, Timestamp, User, UserId};

/// An audit entry to append. Never put personal data in clear here: ids, field names,
/// counts and role names only.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// When it happened (stored with microsecond precision).
    pub at: Timestamp,
    /// Who did it: `user:<id>`, `api-token:<id>`, `cli`, `system`.
    pub actor: String,
    /// What was done, a dotted name such as `auth.login`, `contact.view`, `config.channel_add`.
    pub action: String,
    /// What it was done to, such as `contact:<id>` or `user:<id>`.
    pub subject: String,
    /// Anything else worth keeping (ids, field names, counts), as a JSON object.
    pub details: serde_json::Value,
}

/// One stored audit entry of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// The tenant whose chain it belongs to.
    pub tenant_id: TenantId,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it happened (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Extra details.
    pub details: serde_json::Value,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry's canonical form.
    pub hash: String,
}

/// What an API token may do. A token acts as the staff member who created it, never with
/// more than that person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Only reads (`GET`/`HEAD`), with at most the supervisor's view.
    Read,
    /// Reads and writes, with at most the supervisor's permissions.
    Write,
    /// Everything its owner may do (admin owners only).
    Admin,
}

impl TokenScope {
    /// The stable lowercase name used in storage, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
            TokenScope::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`, saying what is accepted otherwise.
    pub fn parse(s: &str) -> Result<TokenScope, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(TokenScope::Read),
            "write" => Ok(TokenScope::Write),
            "admin" => Ok(TokenScope::Admin),
            other => Err(format!(
                "unknown token scope `{other}`: use read, write or admin"
            )),
        }
    }

    /// The role a request made with this token has, for an owner with role `owner`.
    pub fn effective_role(self, owner: Role) -> Role {
        match self {
            TokenScope::Admin => owner,
            TokenScope::Read | TokenScope::Write => owner.min(Role::Supervisor),
        }
    }

    /// Whether the scope allows state-changing requests.
    pub fn allows_writes(self) -> bool {
        !matches!(self, TokenScope::Read)
    }

    /// The most a staff member with `role` may hand out: admins any scope, others `write`.
    pub fn allowed_for(self, role: Role) -> bool {
        self != TokenScope::Admin || role == Role::Admin
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored API token (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    /// Its id (shown in lists, used to revoke).
    pub id: ApiTokenId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The staff member it acts as.
    pub user_id: UserId,
    /// A label chosen at creation ("reporting", "CRM sync").
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// When it was last used (to the minute), if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Timestamp>,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The staff member it acts as (must belong to the tenant).
    pub user_id: UserId,
    /// Its label.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// SHA-256 of the secret, hex.
    pub token_hash: String,
}

/// When repeated login failures lock a key (an account or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures within `window` that lock the key.
    pub max_failures: u32,
    /// The window failures are counted in (it starts at the first failure).
    pub window: Duration,
    /// How long the key stays locked.
    pub lock_for: Duration,
}

/// The storage contract for access control and the audit log; see the module docs.
#[async_trait]
pub trait SecurityStore: Send + Sync {
    // ---- audit log ----
    /// Appends an entry to the tenant's chain (seq and hashes are computed in the same
    /// transaction, serialized per tenant) and returns it.
    async fn append_audit(&self, tenant: TenantId, entry: NewAudit) -> StoreResult<AuditRecord>;
    /// Entries of a tenant with `seq > after`, in order, at most `limit`.
    async fn audit_entries(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// The newest entry's seq and hash as recorded by appends (to catch deleted newest
    /// entries), if the tenant has any.
    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<(i64, String)>>;
    /// Every tenant with at least one audit entry.
    async fn audit_tenants(&self) -> StoreResult<Vec<TenantId>>;

    // ---- API tokens ----
    /// Stores a token; `NotFound("user")` when the user is not in the tenant.
    async fn create_api_token(&self, token: NewApiToken, now: Timestamp) -> StoreResult<ApiToken>;
    /// A tenant's tokens, newest first (revoked ones too).
    async fn api_tokens(&self, tenant: TenantId) -> StoreResult<Vec<ApiToken>>;
    /// A live (not revoked) token and its owner by secret hash; records the use when the
    /// stored last-use time is older than `touch_before`.
    async fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(ApiToken, User)>>;
    /// Revokes a token of the tenant (idempotent); `NotFound` for unknown or foreign ids.
    async fn revoke_api_token(
        &self,
        tenant: TenantId,
        id: ApiTokenId,
        now: Timestamp,
    ) -> StoreResult<ApiToken>;

    // ---- login throttling ----
    /// Until when `key` is locked, if it is locked at `now`.
    async fn login_locked_until(&self, key: &str, now: Timestamp)
    -> StoreResult<Option<Timestamp>>;
    /// Counts a failed login for `key`; returns the lock's end when this failure locked it.
    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        policy: ThrottlePolicy,
    ) -> StoreResult<Option<Timestamp>>;
    /// Forgets failures and any lock of `key` (successful login, admin unlock).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    // ---- sessions ----
    /// A session that has neither expired (`expires_at > now`) nor been idle since
    /// `idle_cutoff`, with its user; records the activity when the stored time is older than
    /// `touch_before`.
    async fn active_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        idle_cutoff: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(Session, User)>>;
    /// Records activity on a session (at login).
    async fn touch_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()>;

    // ---- roles ----
    /// Changes a user's role; returns the user as it was before and after.
    async fn set_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> StoreResult<(User, User)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_scopes_cap_the_owners_role() {
        assert_eq!(TokenScope::Admin.effective_role(Role::Admin), Role::Admin);
        assert_eq!(
            TokenScope::Write.effective_role(Role::Admin),
            Role::Supervisor
        );
        assert_eq!(TokenScope::Read.effective_role(Role::Agent), Role::Agent);
        assert!(!TokenScope::Read.allows_writes());
        assert!(TokenScope::Write.allows_writes());
        assert!(!TokenScope::Admin.allowed_for(Role::Supervisor));
        assert!(TokenScope::Write.allowed_for(Role::Agent));
        assert_eq!(TokenScope::parse(" Admin "), Ok(TokenScope::Admin));
        assert!(
            TokenScope::parse("root")
                .unwrap_err()
                .contains("read, write or admin")
        );
    }
}
