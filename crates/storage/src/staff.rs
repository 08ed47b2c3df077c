//! Staff access state: login throttling counters and locks, session activity (idle
//! timeout), and role changes.

use switchboard_core::ports::{Session, StoreError, StoreResult};
use switchboard_core::security::ThrottlePolicy;
use switchboard_core::{Role, TenantId, Timestamp, User, UserId};

use crate::SqlStore;
use crate::rows::{self, USER_COLS};
use crate::sql::{DbResult, RowExt, Sql, from_ms, ms};

fn dur_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl SqlStore {
    pub(crate) async fn login_locked_until_impl(
        &self,
        key: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT locked_until FROM login_throttle WHERE key = ");
        sql.bind(key).push(" AND locked_until > ").bind(ms(now));
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) => row.opt_ts("locked_until"),
            None => Ok(None),
        }
    }

    pub(crate) async fn record_login_failure_impl(
        &self,
        key: &str,
        now: Timestamp,
        policy: ThrottlePolicy,
    ) -> StoreResult<Option<Timestamp>> {
        let now_ms = ms(now);
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES (",
        );
        sql.bind(key)
            .push(", 0, ")
            .bind(now_ms)
            .push(", NULL) ON CONFLICT (key) DO NOTHING");
        sql.execute(&mut tx).await.db()?;
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let mut sql = Sql::new(
            "SELECT failures, window_start, locked_until FROM login_throttle WHERE key = ",
        );
        sql.bind(key).push(lock);
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("login throttle row"))?;
        let mut failures = row.int("failures")?;
        let mut window_start = row.int("window_start")?;
        let locked_until = row.opt_int("locked_until")?;
        if locked_until.is_some_and(|l| l > now_ms) {
            // Already locked: attempts while locked do not extend the lock.
            tx.rollback().await.db()?;
            return Ok(None);
        }
        if now_ms - window_start >= dur_ms(policy.window) || locked_until.is_some() {
            // A new window (the old one ran out, or a lock just ended).
            failures = 0;
            window_start = now_ms;
        }
        failures += 1;
        let new_lock = (failures >= i64::from(policy.max_failures.max(1)))
            .then(|| now_ms.saturating_add(dur_ms(policy.lock_for)));
        let mut sql = Sql::new("UPDATE login_throttle SET failures = ");
        sql.bind(failures)
            .push(", window_start = ")
            .bind(window_start)
            .push(", locked_until = ")
            .bind(new_lock)
            .push(" WHERE key = ")
            .bind(key);
        sql.execute(&mut tx).await.db()?;
        tx.commit().await.db()?;
        new_lock.map(from_ms).transpose()
    }

    pub(crate) async fn clear_login_failures_impl(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("DELETE FROM login_throttle WHERE key = ");
        sql.bind(key);
        sql.execute(&mut conn).await.db()?;
        Ok(())
    }

    pub(crate) async fn active_session_impl(
        &self,
        token_hash: &str,
        now: Timestamp,
        idle_cutoff: Timestamp,
        touch_before: Timestamp,
    ) -> StoreResult<Option<(Session, User)>> {
        let row = {
            let mut conn = self.conn().await?;
            let mut sql = Sql::new(&format!(
                "SELECT s.token_hash, s.csrf_token, s.expires_at, s.last_seen_at, {USER_COLS} \
                 FROM sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
                 WHERE s.token_hash = "
            ));
            sql.bind(token_hash)
                .push(" AND s.expires_at > ")
                .bind(ms(now))
                .push(" AND s.last_seen_at > ")
                .bind(ms(idle_cutoff));
            match sql.fetch_optional(&mut conn).await.db()? {
                Some(row) => row,
                None => return Ok(None),
            }
        };
        let user = rows::user(&row)?;
        let session = Session {
            token_hash: row.text("token_hash")?,
            user_id: user.id,
            tenant_id: user.tenant_id,
            csrf_token: row.text("csrf_token")?,
            expires_at: row.ts("expires_at")?,
        };
        if row.int("last_seen_at")? < ms(touch_before) {
            self.touch_session_impl(token_hash, now).await?;
        }
        Ok(Some((session, user)))
    }

    pub(crate) async fn touch_session_impl(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE sessions SET last_seen_at = ");
        sql.bind(ms(now))
            .push(" WHERE token_hash = ")
            .bind(token_hash);
        sql.execute(&mut conn).await.db()?;
        Ok(())
    }

    pub(crate) async fn set_role_impl(
        &self,
        tenant: TenantId,
        id: UserId,
        role: Role,
    ) -> StoreResult<(User, User)> {
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND u.id = ")
            .bind(id.to_string());
        let before = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .as_ref()
            .map(rows::user)
            .transpose()?
            .ok_or(StoreError::NotFound("user"))?;
        let mut sql = Sql::new("UPDATE users SET role = ");
        sql.bind(role.as_str())
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        sql.execute(&mut tx).await.db()?;
        tx.commit().await.db()?;
        let after = User {
            role,
            ..before.clone()
        };
        Ok((before, after))
    }
}
