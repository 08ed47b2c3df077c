//! The agent desk's view counts: how many conversations each inbox view holds, in one
//! query instead of one list request per view.

use switchboard_core::ports::{DeskCounts, StoreError, StoreResult};
use switchboard_core::{QueueId, TenantId, UserId};

use crate::SqlStore;
use crate::sql::{DbResult, RowExt, Sql};

impl SqlStore {
    pub(crate) async fn desk_counts_impl(
        &self,
        tenant: TenantId,
        me: UserId,
        my_queues: &[QueueId],
    ) -> StoreResult<DeskCounts> {
        let mut conn = self.conn().await?;
        // The same filters as the desk lists (`desk_conversations`): mine = assigned to me;
        // my queues = waiting in a queue I serve; unassigned = bot or queued with nobody;
        // all = everything not resolved.
        let mut sql = Sql::new("SELECT COALESCE(SUM(CASE WHEN state = 'assigned' AND assignee = ");
        sql.bind(me.to_string())
            .push(" THEN 1 ELSE 0 END), 0) AS mine, COALESCE(SUM(CASE WHEN state = 'queued' AND ");
        if my_queues.is_empty() {
            sql.push("1 = 0");
        } else {
            sql.push("queue_id IN (")
                .list(my_queues.iter().map(|q| q.to_string()))
                .push(")");
        }
        sql.push(
            " THEN 1 ELSE 0 END), 0) AS my_queues, \
             COALESCE(SUM(CASE WHEN state IN ('bot', 'queued') AND assignee IS NULL \
             THEN 1 ELSE 0 END), 0) AS unassigned, COUNT(*) AS total \
             FROM conversations WHERE state <> 'resolved' AND tenant_id = ",
        )
        .bind(tenant.to_string());
        let row = sql
            .fetch_optional(&mut conn)
            .await
            .db()?
            .ok_or(StoreError::Backend("a count query returned no row".into()))?;
        Ok(DeskCounts {
            mine: row.int("mine")?,
            my_queues: row.int("my_queues")?,
            unassigned: row.int("unassigned")?,
            all: row.int("total")?,
        })
    }
}
