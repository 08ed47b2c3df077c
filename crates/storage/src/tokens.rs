//! API tokens: stored by the SHA-256 of their secret, listed, revoked, and looked up on each
//! `Authorization: Bearer` request (recording the last use at most once per touch interval,
//! so a busy integration does not turn every read into a write).

use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::security::{ApiToken, NewApiToken, TokenScope};
use switchboard_core::{ApiTokenId, TenantId, Timestamp, User};

use crate::SqlStore;
use crate::rows::{self, USER_COLS};
use crate::sql::{DbResult, RowExt, Sql, is_fk_violation, ms, new_uuid, trunc};

const TOKEN_COLS: &str = "t.id AS token_id, t.tenant_id AS token_tenant_id, t.user_id AS token_user_id, \
     t.name AS token_name, t.scope, t.created_at AS token_created_at, t.last_used_at, t.revoked_at";

fn token(row: &sqlx::any::AnyRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: row.parse("token_id")?,
        tenant_id: row.parse("token_tenant_id")?,
        user_id: row.parse("token_user_id")?,
        name: row.text("token_name")?,
        scope: TokenScope::parse(&row.text("scope")?)
            .map_err(|e| crate::sql::corrupt("scope", e))?,
        created_at: row.ts("token_created_at")?,
        last_used_at: row.opt_ts("last_used_at")?,
        revoked_at: row.opt_ts("revoked_at")?,
    })
}

impl SqlStore {
    pub(crate) async fn create_api_token_impl(
        &self,
        new: NewApiToken,
        now: Timestamp,
    ) -> StoreResult<ApiToken> {
        let id = ApiTokenId::from_uuid(new_uuid(now));
        let mut conn = self.write_conn().await?;
        // The owner must belong to the tenant: insert from a select on users.
        let mut sql = Sql::new(
            "INSERT INTO api_tokens (id, tenant_id, user_id, name, scope, token_hash, created_at) \
             SELECT ",
        );
        sql.bind(id.to_string())
            .push(", u.tenant_id, u.id, ")
            .bind(new.name.as_str())
            .push(", ")
            .bind(new.scope.as_str())
            .push(", ")
            .bind(new.token_hash.as_str())
            .push(", ")
            .bind(ms(now))
            .push(" FROM users u WHERE u.id = ")
            .bind(new.user_id.to_string())
            .push(" AND u.tenant_id = ")
            .bind(new.tenant_id.to_string());
        match sql.execute(&mut conn).await {
            Ok(0) => Err(StoreError::NotFound("user")),
            Ok(_) => Ok(ApiToken {
                id,
                tenant_id: new.tenant_id,
                user_id: new.user_id,
                name: new.name,
                scope: new.scope,
                created_at: trunc(now),
                last_used_at: None,
                revoked_at: None,
            }),
            Err(e) if is_fk_violation(&e) => Err(StoreError::NotFound("user")),
            Err(e) => Err::<ApiToken, _>(e).unique("token"),
        }
    }

    pub(crate) async fn api_tokens_impl(&self, tenant: TenantId) -> StoreResult<Vec<ApiToken>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t WHERE t.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" ORDER BY t.created_at DESC, t.id DESC");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(token)
            .collect()
    }

    pub(crate) async fn api_token_by_hash_impl(
        &self,
        token_hash: &str,
        now: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(ApiToken, User)>> {
        let found = {
            let mut conn = self.conn().await?;
            let mut sql = Sql::new(&format!(
                "SELECT {TOKEN_COLS}, {USER_COLS} FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id AND u.tenant_id = t.tenant_id \
                 WHERE t.revoked_at IS NULL AND t.token_hash = "
            ));
            sql.bind(token_hash);
            match sql.fetch_optional(&mut conn).await.db()? {
                Some(row) => (token(&row)?, rows::user(&row)?),
                None => return Ok(None),
            }
        };
        let (mut tok, user) = found;
        if tok.last_used_at.is_none_or(|t| t < touch_before) {
            let mut conn = self.write_conn().await?;
            let mut sql = Sql::new("UPDATE api_tokens SET last_used_at = ");
            sql.bind(ms(now))
                .push(" WHERE id = ")
                .bind(tok.id.to_string());
            sql.execute(&mut conn).await.db()?;
            tok.last_used_at = Some(trunc(now));
        }
        Ok(Some((tok, user)))
    }

    pub(crate) async fn revoke_api_token_impl(
        &self,
        tenant: TenantId,
        id: ApiTokenId,
        now: Timestamp,
    ) -> StoreResult<ApiToken> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE api_tokens SET revoked_at = ");
        sql.bind(ms(now))
            .push(" WHERE revoked_at IS NULL AND tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        sql.execute(&mut conn).await.db()?;
        let mut sql = Sql::new(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t WHERE t.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND t.id = ")
            .bind(id.to_string());
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(token)
            .transpose()?
            .ok_or(StoreError::NotFound("api token"))
    }
}
