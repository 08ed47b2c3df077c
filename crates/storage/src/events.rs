//! Per-tenant numbered events.
//!
//! Numbers come from `tenants.event_seq`, bumped by `UPDATE .. RETURNING` in the same
//! transaction that inserts the events. A block of numbers is reserved in one statement, so
//! a batch of N events costs one update. The row lock held until commit (PostgreSQL) or the
//! single writer (SQLite) makes numbers gap-free and visible in order.

use sqlx::AnyConnection;
use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::{Event, EventKind, TenantId, Timestamp};

use crate::SqlStore;
use crate::sql::{DbResult, RowExt, Sql, Val, insert_rows, ms, trunc};

/// The stable name stored in `events.kind`.
fn kind_name(kind: &EventKind) -> &'static str {
    kind.name()
}

/// Numbers and stores events of one tenant, in the given order, inside the caller's
/// transaction.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    tenant: TenantId,
    at: Timestamp,
    kinds: Vec<EventKind>,
) -> StoreResult<Vec<Event>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let count = kinds.len() as i64;
    let mut sql = Sql::new("UPDATE tenants SET event_seq = event_seq + ");
    sql.bind(count)
        .push(" WHERE id = ")
        .bind(tenant.to_string())
        .push(" RETURNING event_seq");
    let row = sql
        .fetch_optional(conn)
        .await
        .db()?
        .ok_or(StoreError::NotFound("tenant"))?;
    let last = row.int("event_seq")?;
    let first = last - count + 1;
    let at = trunc(at);
    // Payloads copy message content and contact names (live pages replay them), so they
    // are sealed like the rows they copy.
    let keys = crate::keys::tenant(tenant)?;
    let mut rows = Vec::with_capacity(kinds.len());
    let mut events = Vec::with_capacity(kinds.len());
    for (i, kind) in kinds.into_iter().enumerate() {
        let seq = first + i as i64;
        rows.push(vec![
            Val::from(tenant.to_string()),
            seq.into(),
            ms(at).into(),
            kind_name(&kind).into(),
            kind.conversation_id().map(|c| c.to_string()).into(),
            keys.seal_json("events", "payload", &seq.to_string(), &kind)?
                .into(),
        ]);
        events.push(Event {
            tenant_id: tenant,
            seq,
            at,
            kind,
        });
    }
    insert_rows(
        conn,
        "INSERT INTO events (tenant_id, seq, at, kind, conversation_id, payload) VALUES ",
        rows,
    )
    .await
    .db()?;
    Ok(events)
}

impl SqlStore {
    pub(crate) async fn events_after_impl(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT seq, at, payload FROM events WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND seq > ")
            .bind(after)
            .push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit.max(1)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| {
                let seq = row.int("seq")?;
                Ok(Event {
                    tenant_id: tenant,
                    seq,
                    at: row.ts("at")?,
                    kind: keys.open_json(
                        "events",
                        "payload",
                        &seq.to_string(),
                        &row.text("payload")?,
                    )?,
                })
            })
            .collect()
    }

    pub(crate) async fn last_event_seq_impl(&self, tenant: TenantId) -> StoreResult<i64> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT event_seq FROM tenants WHERE id = ");
        sql.bind(tenant.to_string());
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) => row.int("event_seq"),
            None => Ok(0),
        }
    }
}
