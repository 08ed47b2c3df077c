//! [`SecurityStore`] for [`SqlStore`]: the audit log ([`crate::audit`]), API tokens
//! ([`crate::tokens`]) and staff access state ([`crate::staff`]).

use async_trait::async_trait;
use switchboard_core::ports::{Session, StoreResult};
use switchboard_core::security::{
    ApiToken, AuditRecord, NewApiToken, NewAudit, SecurityStore, ThrottlePolicy,
};
use switchboard_core::{ApiTokenId, Role, TenantId, Timestamp, User, UserId};

use crate::SqlStore;

#[async_trait]
impl SecurityStore for SqlStore {
    async fn append_audit(&self, tenant: TenantId, entry: NewAudit) -> StoreResult<AuditRecord> {
        self.append_audit_impl(tenant, entry).await
    }
    async fn audit_entries(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.audit_entries_impl(tenant, after, limit).await
    }
    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<(i64, String)>> {
        self.audit_head_impl(tenant).await
    }
    async fn audit_tenants(&self) -> StoreResult<Vec<TenantId>> {
        self.audit_tenants_impl().await
    }

    async fn create_api_token(&self, token: NewApiToken, now: Timestamp) -> StoreResult<ApiToken> {
        self.create_api_token_impl(token, now).await
    }
    async fn api_tokens(&self, tenant: TenantId) -> StoreResult<Vec<ApiToken>> {
        self.api_tokens_impl(tenant).await
    }
    async fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(ApiToken, User)>> {
        self.api_token_by_hash_impl(token_hash, now, touch_before)
            .await
    }
    async fn revoke_api_token(
        &self,
        tenant: TenantId,
        id: ApiTokenId,
        now: Timestamp,
    ) -> StoreResult<ApiToken> {
        self.revoke_api_token_impl(tenant, id, now).await
    }

    async fn login_locked_until(
        &self,
        key: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        self.login_locked_until_impl(key, now).await
    }
    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        policy: ThrottlePolicy,
    ) -> StoreResult<Option<Timestamp>> {
        self.record_login_failure_impl(key, now, policy).await
    }
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        self.clear_login_failures_impl(key).await
    }

    async fn active_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        idle_cutoff: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(Session, User)>> {
        self.active_session_impl(token_hash, now, idle_cutoff, touch_before)
            .await
    }
    async fn touch_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()> {
        self.touch_session_impl(token_hash, now).await
    }

    async fn set_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> StoreResult<(User, User)> {
        self.set_role_impl(tenant, user, role).await
    }
}
