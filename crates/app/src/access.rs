//! Who gets in, and as whom: staff login with throttling and lockout, sessions with an idle
//! timeout and an absolute lifetime, API tokens (scoped, shown once, stored hashed,
//! revocable), role changes and unlocking. Each of these writes an audit entry.
//!
//! Throttling counts failures per account (`account:<user id>`) and per client address
//! (`ip:<hash>`, so addresses are not kept in clear) in storage, so every node of a cluster
//! sees the same counts. A locked key answers [`ServiceError::Throttled`] (HTTP 429 with
//! `Retry-After`) without checking the password at all. Failures for e-mail addresses that
//! match no account count only against the client address, and are not audited: they
//! belong to no tenant's log.

use std::net::IpAddr;

use serde_json::json;
use switchboard_core::ports::Session;
use switchboard_core::security::{ApiToken, NewApiToken, ThrottlePolicy, TokenScope};
use switchboard_core::{ApiTokenId, Role, TenantId, Timestamp, User, UserId};

use crate::audit::{Actor, action};
use crate::services::{LoggedIn, ServiceError, ServiceResult, Staff};
use crate::{App, auth, now};

/// Prefix of API token secrets, so secret scanners and people can recognise them.
pub const TOKEN_PREFIX: &str = "sbt_";

/// A freshly made API token: the secret is in here once and nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The stored token (without its secret).
    pub token: ApiToken,
    /// The secret to give to the integration; only its hash is stored.
    pub secret: String,
}

/// A request authenticated by an API token.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token.
    pub token: ApiToken,
    /// Its owner, with the role capped by the token's scope.
    pub user: User,
}

fn throttle_key_for_ip(ip: IpAddr) -> String {
    format!("ip:{}", &auth::token_hash(&ip.to_string())[..32])
}

fn throttle_key_for_account(id: UserId) -> String {
    format!("account:{id}")
}

fn retry_after_secs(until: Timestamp, now: Timestamp) -> u64 {
    u64::try_from((until - now).whole_seconds())
        .unwrap_or(0)
        .max(1)
}

fn throttled(until: Timestamp, now: Timestamp, what: &str) -> ServiceError {
    let secs = retry_after_secs(until, now);
    ServiceError::Throttled {
        message: format!(
            "too many failed logins for this {what}: try again in {secs} s, or ask an admin to unlock the account"
        ),
        retry_after_secs: secs,
    }
}

impl App {
    fn account_policy(&self) -> ThrottlePolicy {
        let s = &self.config.sessions;
        ThrottlePolicy {
            max_failures: s.max_failures_per_account.max(1),
            window: std::time::Duration::from_secs(s.failure_window_secs.max(1)),
            lock_for: std::time::Duration::from_secs(s.lockout_secs.max(1)),
        }
    }

    fn ip_policy(&self) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: self.config.sessions.max_failures_per_ip.max(1),
            ..self.account_policy()
        }
    }

    /// Checks e-mail and password and opens a session (no client address: CLI and tests).
    pub async fn login(&self, email: &str, password: &str) -> ServiceResult<LoggedIn> {
        self.login_from(email, password, None).await
    }

    /// Checks e-mail and password from a client address and opens a session.
    /// - A locked account or address answers [`ServiceError::Throttled`] before the
    ///   password is looked at.
    /// - Wrong e-mail and wrong password answer the same `Unauthorized`, in the same time.
    /// - The failure that reaches the limit locks the key and answers `Throttled`.
    pub async fn login_from(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> ServiceResult<LoggedIn> {
        let started = now();
        let ip_key = ip.map(throttle_key_for_ip);
        if let Some(key) = &ip_key
            && let Some(until) = self.store.login_locked_until(key, started).await?
        {
            tracing::warn!("login refused: client address locked");
            return Err(throttled(until, started, "address"));
        }
        let found = self
            .store
            .user_for_login(&email.trim().to_ascii_lowercase())
            .await?;
        if let Some((user, _)) = &found {
            let key = throttle_key_for_account(user.id);
            if let Some(until) = self.store.login_locked_until(&key, started).await? {
                self.audit_after(
                    user.tenant_id,
                    &Actor::User(user.id),
                    action::LOGIN_FAILED,
                    format!("user:{}", user.id),
                    json!({"reason": "locked"}),
                )
                .await;
                return Err(throttled(until, started, "account"));
            }
        }
        let (hash, user) = match found {
            Some((user, hash)) => (hash, Some(user)),
            None => (crate::services::DUMMY_HASH.to_string(), None),
        };
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
            .await
            .map_err(|e| anyhow::anyhow!("password check task: {e}"))?;
        let user = match (ok, user) {
            (true, Some(u)) => u,
            (_, user) => return Err(self.login_failed(user.as_ref(), ip_key.as_deref()).await?),
        };
        self.store
            .clear_login_failures(&throttle_key_for_account(user.id))
            .await?;
        let tenant = self
            .store
            .tenant(user.tenant_id)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))?;
        let token = auth::random_token();
        let at = now();
        let session = Session {
            token_hash: auth::token_hash(&token),
            user_id: user.id,
            tenant_id: user.tenant_id,
            csrf_token: auth::random_token(),
            expires_at: at
                + time::Duration::hours(i64::from(self.config.sessions.ttl_hours.max(1))),
        };
        self.store.create_session(&session).await?;
        self.store.touch_session(&session.token_hash, at).await?;
        self.audit(
            user.tenant_id,
            &Actor::User(user.id),
            action::LOGIN,
            format!("user:{}", user.id),
            json!({}),
        )
        .await?;
        tracing::info!(user_id = %user.id, tenant_id = %user.tenant_id, "staff login");
        Ok(LoggedIn {
            user,
            tenant,
            token,
            csrf_token: session.csrf_token,
        })
    }

    /// Counts a failed login and builds the answer: `Unauthorized`, or `Throttled` when this
    /// failure locked the account or the address.
    async fn login_failed(
        &self,
        user: Option<&User>,
        ip_key: Option<&str>,
    ) -> ServiceResult<ServiceError> {
        let at = now();
        let mut locked: Option<(Timestamp, &str)> = None;
        if let Some(key) = ip_key
            && let Some(until) = self
                .store
                .record_login_failure(key, at, self.ip_policy())
                .await?
        {
            tracing::warn!("client address locked after repeated failed logins");
            locked = Some((until, "address"));
        }
        if let Some(user) = user {
            let actor = Actor::User(user.id);
            let subject = format!("user:{}", user.id);
            self.audit_after(
                user.tenant_id,
                &actor,
                action::LOGIN_FAILED,
                subject.clone(),
                json!({"reason": "wrong_password"}),
            )
            .await;
            if let Some(until) = self
                .store
                .record_login_failure(
                    &throttle_key_for_account(user.id),
                    at,
                    self.account_policy(),
                )
                .await?
            {
                tracing::warn!(user_id = %user.id, "account locked after repeated failed logins");
                self.audit_after(
                    user.tenant_id,
                    &Actor::System,
                    action::LOCKOUT,
                    subject,
                    json!({"lock_seconds": retry_after_secs(until, at)}),
                )
                .await;
                locked = Some((until, "account"));
            }
        }
        Ok(match locked {
            Some((until, what)) => throttled(until, at, what),
            None => ServiceError::Unauthorized("wrong e-mail or password".to_string()),
        })
    }

    /// The staff member behind a session cookie, if the session is live: younger than
    /// `sessions.ttl_hours` and used within `sessions.idle_minutes`.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Option<Staff>> {
        let at = now();
        let idle = time::Duration::minutes(i64::from(self.config.sessions.idle_minutes.max(1)));
        // Record activity at most once a minute (or every quarter of a short idle timeout),
        // so reads stay reads.
        let touch_every = std::cmp::min(time::Duration::minutes(1), idle / 4);
        Ok(self
            .store
            .active_session(&auth::token_hash(token), at, at - idle, at - touch_every)
            .await?
            .map(|(session, user)| Staff { user, session }))
    }

    /// Ends a session and records the logout.
    pub async fn logout(&self, user: &User, token: &str) -> ServiceResult<()> {
        self.store.delete_session(&auth::token_hash(token)).await?;
        self.audit_after(
            user.tenant_id,
            &Actor::User(user.id),
            action::LOGOUT,
            format!("user:{}", user.id),
            json!({}),
        )
        .await;
        Ok(())
    }

    /// Lifts the lock of an account of `tenant` (admin API or CLI) and records who did.
    pub async fn unlock_account(
        &self,
        actor: &Actor,
        tenant: TenantId,
        user: UserId,
    ) -> ServiceResult<User> {
        let target = self
            .store
            .user(tenant, user)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        self.store
            .clear_login_failures(&throttle_key_for_account(user))
            .await?;
        self.audit(
            tenant,
            actor,
            action::UNLOCK,
            format!("user:{user}"),
            json!({}),
        )
        .await?;
        Ok(target)
    }

    /// Changes a staff member's role. Nobody changes their own role (so an admin cannot
    /// lock the tenant out by accident); the change applies to their next request.
    pub async fn change_role(
        &self,
        actor: &Actor,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> ServiceResult<User> {
        if actor.user() == Some(user) {
            return Err(ServiceError::Forbidden(
                "you cannot change your own role; ask another admin".into(),
            ));
        }
        let (before, after) = self.store.set_role(tenant, user, role).await?;
        self.audit(
            tenant,
            actor,
            action::ROLE_CHANGE,
            format!("user:{user}"),
            json!({"from": before.role.as_str(), "to": after.role.as_str()}),
        )
        .await?;
        Ok(after)
    }

    /// Creates a staff user (demo seeding and other system callers).
    pub async fn create_user(
        &self,
        tenant: TenantId,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> ServiceResult<User> {
        self.create_user_as(&Actor::System, tenant, email, name, role, password)
            .await
    }

    /// Creates an API token acting as `owner`. The scope may not exceed the owner's role
    /// (only admins get `admin` tokens). The secret is returned once.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        owner: &User,
        name: &str,
        scope: TokenScope,
    ) -> ServiceResult<CreatedToken> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ServiceError::Invalid(
                "token name must be 1-100 characters, e.g. \"CRM sync\"".into(),
            ));
        }
        if !scope.allowed_for(owner.role) {
            return Err(ServiceError::Forbidden(format!(
                "a {} cannot hold an {scope} token; use read or write",
                owner.role
            )));
        }
        let secret = format!("{TOKEN_PREFIX}{}", auth::random_token());
        let token = self
            .store
            .create_api_token(
                NewApiToken {
                    tenant_id: owner.tenant_id,
                    user_id: owner.id,
                    name: name.to_string(),
                    scope,
                    token_hash: auth::token_hash(&secret),
                },
                now(),
            )
            .await?;
        self.audit(
            owner.tenant_id,
            actor,
            action::TOKEN_CREATE,
            format!("api-token:{}", token.id),
            json!({"scope": scope.as_str(), "owner": format!("user:{}", owner.id)}),
        )
        .await?;
        Ok(CreatedToken { token, secret })
    }

    /// A tenant's API tokens (never their secrets), newest first.
    pub async fn api_tokens(&self, tenant: TenantId) -> ServiceResult<Vec<ApiToken>> {
        Ok(self.store.api_tokens(tenant).await?)
    }

    /// Revokes a token of `tenant`; it stops working on the next request.
    pub async fn revoke_api_token(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: ApiTokenId,
    ) -> ServiceResult<ApiToken> {
        let token = self.store.revoke_api_token(tenant, id, now()).await?;
        self.audit(
            tenant,
            actor,
            action::TOKEN_REVOKE,
            format!("api-token:{id}"),
            json!({}),
        )
        .await?;
        Ok(token)
    }

    /// The token and its owner behind an `Authorization: Bearer` secret, if the token is
    /// live; the owner's role is capped by the token's scope.
    pub async fn authenticate_bearer(&self, secret: &str) -> ServiceResult<Option<TokenAuth>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let at = now();
        Ok(self
            .store
            .api_token_by_hash(
                &auth::token_hash(secret),
                at,
                at - time::Duration::minutes(1),
            )
            .await?
            .map(|(token, mut user)| {
                user.role = token.scope.effective_role(user.role);
                TokenAuth { token, user }
            }))
    }
}
