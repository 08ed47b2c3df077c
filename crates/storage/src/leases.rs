//! Named leases: one node at a time does a job that is not a row of a work queue (a Signal
//! account's receiver). The table `leases` holds the current holder and when its lease
//! expires; taking is one atomic upsert, so two nodes racing for a free lease cannot both
//! win on either backend (PostgreSQL's `ON CONFLICT` locks the row; SQLite has one writer).

use std::time::Duration;

use switchboard_core::Timestamp;
use switchboard_core::ports::StoreResult;

use crate::SqlStore;
use crate::sql::{DbResult, RowExt, Sql, ms};

impl SqlStore {
    pub(crate) async fn take_lease_impl(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now_ms = ms(now);
        let until = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let mut conn = self.write_conn().await?;
        // Insert a free lease, renew our own, or take over an expired one; a lease another
        // holder still has is left alone (the conditional update changes no row).
        let mut sql = Sql::new("INSERT INTO leases (name, holder, expires_at) VALUES (");
        sql.bind(name)
            .push(", ")
            .bind(holder)
            .push(", ")
            .bind(until)
            .push(
                ") ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ",
            )
            .bind(now_ms);
        let changed = sql.execute(&mut conn).await.db()?;
        Ok(changed == 1)
    }

    pub(crate) async fn release_lease_impl(&self, name: &str, holder: &str) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("DELETE FROM leases WHERE name = ");
        sql.bind(name).push(" AND holder = ").bind(holder);
        sql.execute(&mut conn).await.db()?;
        Ok(())
    }

    pub(crate) async fn lease_holder_impl(
        &self,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT holder FROM leases WHERE name = ");
        sql.bind(name).push(" AND expires_at > ").bind(ms(now));
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) => Ok(Some(row.text("holder")?)),
            None => Ok(None),
        }
    }
}
