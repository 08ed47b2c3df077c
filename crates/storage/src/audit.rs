//! The audit log: appends to a tenant's hash chain and reads it back.
//!
//! An append runs in one transaction: make sure the tenant has an `audit_heads` row, lock it
//! (PostgreSQL `FOR UPDATE`; SQLite holds the single write lock from `BEGIN IMMEDIATE`),
//! compute the next entry with `crypto::audit` from the locked head, insert it and move the
//! head. Two nodes appending at once therefore queue on the head row; the second sees the
//! first's hash, and `PRIMARY KEY (tenant_id, seq)` backs this up. Verification lives in `app`.

use switchboard_core::TenantId;
use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::security::{AuditRecord, NewAudit};
use switchboard_crypto::audit::{self as chain, AuditEntry, GENESIS_HASH};
use time::OffsetDateTime;

use crate::sql::{DbResult, RowExt, Sql, corrupt};
use crate::{Backend, SqlStore};

const AUDIT_COLS: &str = "tenant_id, seq, at_us, actor, action, subject, details, prev_hash, hash";

fn micros(at: OffsetDateTime) -> i64 {
    // i64 microseconds reach year 294 247: no overflow for any real clock.
    (at.unix_timestamp_nanos() / 1000) as i64
}

fn from_micros(us: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| corrupt("at_us", e))
}

fn record(row: &sqlx::any::AnyRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        tenant_id: row.parse("tenant_id")?,
        seq: row.int("seq")?,
        at: from_micros(row.int("at_us")?)?,
        actor: row.text("actor")?,
        action: row.text("action")?,
        subject: row.text("subject")?,
        details: row.json("details")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

impl SqlStore {
    pub(crate) async fn append_audit_impl(
        &self,
        tenant: TenantId,
        new: NewAudit,
    ) -> StoreResult<AuditRecord> {
        if !new.details.is_object() {
            return Err(StoreError::Invalid(
                "audit details must be a JSON object".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let mut sql = Sql::new("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (");
        sql.bind(tenant.to_string())
            .push(", 0, ")
            .bind(GENESIS_HASH)
            .push(") ON CONFLICT (tenant_id) DO NOTHING");
        match sql.execute(&mut tx).await {
            Ok(_) => {}
            Err(e) if crate::sql::is_fk_violation(&e) => {
                return Err(StoreError::NotFound("tenant"));
            }
            Err(e) => return Err(crate::sql::db(e)),
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut sql = Sql::new("SELECT seq, hash FROM audit_heads WHERE tenant_id = ");
        sql.bind(tenant.to_string()).push(lock);
        let head = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("tenant"))?;
        let prev = AuditEntry {
            seq: u64::try_from(head.int("seq")?).map_err(|e| corrupt("audit_heads.seq", e))?,
            at: OffsetDateTime::UNIX_EPOCH,
            actor: String::new(),
            action: String::new(),
            subject: String::new(),
            details: serde_json::Value::Null,
            prev_hash: String::new(),
            hash: head.text("hash")?,
        };
        let entry = chain::chain_next(
            (prev.seq > 0).then_some(&prev),
            chain::NewAuditEntry {
                at: new.at,
                actor: new.actor,
                action: new.action,
                subject: new.subject,
                details: new.details,
            },
        );
        let seq = i64::try_from(entry.seq).map_err(|e| corrupt("audit seq", e))?;
        let mut sql = Sql::new(&format!("INSERT INTO audit_log ({AUDIT_COLS}) VALUES ("));
        sql.bind(tenant.to_string())
            .push(", ")
            .bind(seq)
            .push(", ")
            .bind(micros(entry.at))
            .push(", ")
            .bind(entry.actor.as_str())
            .push(", ")
            .bind(entry.action.as_str())
            .push(", ")
            .bind(entry.subject.as_str())
            .push(", ")
            .bind(chain::canonical_json(&entry.details))
            .push(", ")
            .bind(entry.prev_hash.as_str())
            .push(", ")
            .bind(entry.hash.as_str())
            .push(")");
        sql.execute(&mut tx).await.unique("audit seq")?;
        let mut sql = Sql::new("UPDATE audit_heads SET seq = ");
        sql.bind(seq)
            .push(", hash = ")
            .bind(entry.hash.as_str())
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string());
        sql.execute(&mut tx).await.db()?;
        tx.commit().await.db()?;
        Ok(AuditRecord {
            tenant_id: tenant,
            seq,
            at: entry.at,
            actor: entry.actor,
            action: entry.action,
            subject: entry.subject,
            details: entry.details,
            prev_hash: entry.prev_hash,
            hash: entry.hash,
        })
    }

    pub(crate) async fn audit_entries_impl(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND seq > ")
            .bind(after)
            .push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit.clamp(1, 10_000)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(record)
            .collect()
    }

    pub(crate) async fn audit_head_impl(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<(i64, String)>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT seq, hash FROM audit_heads WHERE tenant_id = ");
        sql.bind(tenant.to_string());
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) if row.int("seq")? > 0 => Ok(Some((row.int("seq")?, row.text("hash")?))),
            _ => Ok(None),
        }
    }

    pub(crate) async fn audit_tenants_impl(&self) -> StoreResult<Vec<TenantId>> {
        let mut conn = self.conn().await?;
        Sql::new(
            "SELECT tenant_id FROM audit_heads UNION SELECT DISTINCT tenant_id FROM audit_log \
             ORDER BY tenant_id",
        )
        .fetch_all(&mut conn)
        .await
        .db()?
        .iter()
        .map(|r| r.parse("tenant_id"))
        .collect()
    }
}
