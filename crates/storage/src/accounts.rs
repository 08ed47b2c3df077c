//! Tenants, staff users and login sessions.

use switchboard_core::ports::{Session, StoreError, StoreResult};
use switchboard_core::tenant::validate_slug;
use switchboard_core::{NewUser, Tenant, TenantId, Timestamp, User, UserId};

use crate::SqlStore;
use crate::rows::{self, TENANT_COLS, USER_COLS};
use crate::sql::{
    DbResult, RowExt, Sql, Val, is_fk_violation, is_unique_violation, ms, new_uuid, trunc,
};

impl SqlStore {
    pub(crate) async fn create_tenant_impl(
        &self,
        slug: &str,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Tenant> {
        validate_slug(slug).map_err(StoreError::Invalid)?;
        let tenant = Tenant {
            id: TenantId::from_uuid(new_uuid(now)),
            slug: slug.to_string(),
            name: name.to_string(),
            created_at: trunc(now),
        };
        // The tenant and its first data key commit together: no tenant ever exists without
        // a key to seal its data.
        let mut tx = self.begin().await?;
        let mut sql =
            Sql::new("INSERT INTO tenants (id, slug, name, event_seq, created_at) VALUES (");
        sql.list::<Val>(vec![
            tenant.id.to_string().into(),
            tenant.slug.as_str().into(),
            tenant.name.as_str().into(),
            0i64.into(),
            ms(now).into(),
        ])
        .push(")");
        sql.execute(&mut tx).await.unique("tenant slug")?;
        let keys = self.keys.create_first(&mut tx, tenant.id, now).await?;
        tx.commit().await.db()?;
        self.keys.remember(tenant.id, keys);
        Ok(tenant)
    }

    pub(crate) async fn tenant_by_slug_impl(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = "));
        sql.bind(slug);
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(rows::tenant)
            .transpose()
    }

    pub(crate) async fn tenant_impl(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!("SELECT {TENANT_COLS} FROM tenants WHERE id = "));
        sql.bind(id.to_string());
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(rows::tenant)
            .transpose()
    }

    pub(crate) async fn create_user_impl(&self, new: NewUser, now: Timestamp) -> StoreResult<User> {
        let user = User {
            id: UserId::from_uuid(new_uuid(now)),
            tenant_id: new.tenant_id,
            email: new.email,
            name: new.name,
            role: new.role,
            created_at: trunc(now),
        };
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "INSERT INTO users (id, tenant_id, email, name, role, password_hash, created_at) VALUES (",
        );
        sql.bind(user.id.to_string())
            .push(", ")
            .bind(user.tenant_id.to_string())
            .push(", ")
            .bind(user.email.as_str())
            .push(", ")
            .bind(user.name.as_str())
            .push(", ")
            .bind(user.role.as_str())
            .push(", ")
            .bind(new.password_hash)
            .push(", ")
            .bind(ms(now))
            .push(")");
        match sql.execute(&mut conn).await {
            Ok(_) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "e-mail {} is already taken",
                user.email
            ))),
            Err(e) if is_fk_violation(&e) => Err(StoreError::NotFound("tenant")),
            Err(e) => Err(crate::sql::db(e)),
        }
    }

    pub(crate) async fn list_users_impl(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = "
        ));
        sql.bind(tenant.to_string()).push(" ORDER BY u.name, u.id");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::user)
            .collect()
    }

    pub(crate) async fn count_users_impl(&self) -> StoreResult<i64> {
        let mut conn = self.conn().await?;
        let row = Sql::new("SELECT COUNT(*) AS n FROM users")
            .fetch_optional(&mut conn)
            .await
            .db()?;
        match row {
            Some(r) => r.int("n"),
            None => Ok(0),
        }
    }

    pub(crate) async fn user_impl(
        &self,
        tenant: TenantId,
        id: UserId,
    ) -> StoreResult<Option<User>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND u.id = ")
            .bind(id.to_string());
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(rows::user)
            .transpose()
    }

    pub(crate) async fn user_for_login_impl(
        &self,
        email: &str,
    ) -> StoreResult<Option<(User, String)>> {
        let email = email.trim().to_ascii_lowercase();
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.email = "
        ));
        sql.bind(email);
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) => Ok(Some((rows::user(&row)?, row.text("password_hash")?))),
            None => Ok(None),
        }
    }

    pub(crate) async fn set_password_impl(
        &self,
        tenant: TenantId,
        id: UserId,
        hash: &str,
    ) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("UPDATE users SET password_hash = ");
        sql.bind(hash)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        match sql.execute(&mut conn).await.db()? {
            0 => Err(StoreError::NotFound("user")),
            _ => Ok(()),
        }
    }

    pub(crate) async fn create_session_impl(&self, s: &Session) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        // The user must belong to the session's tenant.
        let mut sql = Sql::new(
            "INSERT INTO sessions (token_hash, user_id, tenant_id, csrf_token, expires_at) \
             SELECT ",
        );
        sql.bind(s.token_hash.as_str())
            .push(", u.id, u.tenant_id, ")
            .bind(s.csrf_token.as_str())
            .push(", ")
            .bind(ms(s.expires_at))
            .push(" FROM users u WHERE u.id = ")
            .bind(s.user_id.to_string())
            .push(" AND u.tenant_id = ")
            .bind(s.tenant_id.to_string());
        match sql.execute(&mut conn).await.unique("session token")? {
            0 => Err(StoreError::NotFound("user")),
            _ => Ok(()),
        }
    }

    pub(crate) async fn session_impl(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Session, User)>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT s.token_hash, s.csrf_token, s.expires_at, {USER_COLS} \
             FROM sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
             WHERE s.token_hash = "
        ));
        sql.bind(token_hash)
            .push(" AND s.expires_at > ")
            .bind(ms(now));
        let Some(row) = sql.fetch_optional(&mut conn).await.db()? else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        let session = Session {
            token_hash: row.text("token_hash")?,
            user_id: user.id,
            tenant_id: user.tenant_id,
            csrf_token: row.text("csrf_token")?,
            expires_at: row.ts("expires_at")?,
        };
        Ok(Some((session, user)))
    }

    pub(crate) async fn delete_session_impl(&self, token_hash: &str) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("DELETE FROM sessions WHERE token_hash = ");
        sql.bind(token_hash);
        sql.execute(&mut conn).await.db()?;
        Ok(())
    }
}
