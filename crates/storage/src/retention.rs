//! Retention (issue 6): bounded purge steps that delete what a tenant's retention periods no
//! longer allow, the purge reports, and the per-tenant purge timer (a `jobs` row of kind
//! `retention_purge`, at most one per tenant by a unique index).
//!
//! Each [`SqlStore::purge_step_impl`] call is one short transaction touching at most `batch`
//! rows per kind, so a purge never holds SQLite's single write lock for long: the app calls
//! it again while `more` is set, letting ingest and the sender write in between.

use std::collections::BTreeMap;

use switchboard_core::ports::{JobKind, StoreResult};
use switchboard_core::privacy::{PurgeStep, RetentionPolicy, RetentionRun};
use switchboard_core::{Content, JobId, TenantId, Timestamp};

use crate::privacy::{delete_conversations, unreferenced_media};
use crate::rows::{self, MESSAGE_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, chunks, ms, new_uuid, to_json};
use crate::{SqlStore, flows};

const DAY_MS: i64 = 86_400_000;

fn cutoff(now: Timestamp, days: Option<u32>) -> Option<i64> {
    days.map(|d| ms(now) - i64::from(d) * DAY_MS)
}

const RUN_COLS: &str = "id, tenant_id, started_at, finished_at, policy, messages_deleted, \
     media_deleted, conversations_deleted, batches";

fn run(row: &sqlx::any::AnyRow) -> StoreResult<RetentionRun> {
    let n = |c: &str| row.int(c).map(|v| u64::try_from(v).unwrap_or(0));
    Ok(RetentionRun {
        id: row.text("id")?,
        tenant_id: row.parse("tenant_id")?,
        started_at: row.ts("started_at")?,
        finished_at: row.ts("finished_at")?,
        policy: row.json("policy")?,
        messages_deleted: n("messages_deleted")?,
        media_deleted: n("media_deleted")?,
        conversations_deleted: n("conversations_deleted")?,
        batches: n("batches")?,
    })
}

impl SqlStore {
    pub(crate) async fn purge_step_impl(
        &self,
        tenant: TenantId,
        policy: &RetentionPolicy,
        now: Timestamp,
        batch: u32,
    ) -> StoreResult<PurgeStep> {
        self.ensure_keys([tenant]).await?;
        let limit = i64::from(batch.clamp(1, 5_000));
        let mut step = PurgeStep::default();
        let mut keys = Vec::new();
        let mut tx = self.begin().await?;

        // 1. Resolved conversations past their period, with everything inside them.
        if let Some(cut) = cutoff(now, policy.closed_conversations_days) {
            let mut sql =
                Sql::new("SELECT id FROM conversations WHERE state = 'resolved' AND tenant_id = ");
            sql.bind(tenant.to_string())
                .push(" AND last_message_at < ")
                .bind(cut)
                .push(" ORDER BY last_message_at LIMIT ")
                .bind(limit);
            let convs: Vec<String> = sql
                .fetch_all(&mut tx)
                .await
                .db()?
                .iter()
                .map(|r| r.text("id"))
                .collect::<StoreResult<_>>()?;
            if !convs.is_empty() {
                let mut counts = BTreeMap::new();
                keys.extend(
                    delete_conversations(&mut tx, self.backend, tenant, &convs, &[], &mut counts)
                        .await?,
                );
                step.conversations_deleted += counts.get("conversations").copied().unwrap_or(0);
                step.messages_deleted += counts.get("messages").copied().unwrap_or(0);
                step.more |= convs.len() as i64 == limit;
            }
        }

        // 2. Messages past their period (an outbound message still waiting in the outbox
        //    stays until it is sent or failed), their timelines and the events copying them.
        if let Some(cut) = cutoff(now, policy.messages_days) {
            let mut sql = Sql::new(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
            ));
            sql.bind(tenant.to_string())
                .push(" AND m.created_at < ")
                .bind(cut)
                .push(
                    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id \
                     AND o.state = 'pending') ORDER BY m.created_at LIMIT ",
                )
                .bind(limit);
            let mut ids = Vec::new();
            for row in sql.fetch_all(&mut tx).await.db()? {
                let m = rows::message(&row)?;
                if let Content::Media { media, .. } = &m.content
                    && let Some(k) = &media.stored_key
                {
                    keys.push(k.clone());
                }
                ids.push(m.id.to_string());
            }
            if !ids.is_empty() {
                let mut sql = Sql::new(
                    "SELECT id, payload FROM jobs WHERE kind = 'download_media' AND tenant_id = ",
                );
                sql.bind(tenant.to_string());
                let mut jobs = Vec::new();
                for row in sql.fetch_all(&mut tx).await.db()? {
                    let payload = row.text("payload")?;
                    if ids.iter().any(|id| payload.contains(id.as_str())) {
                        jobs.push(row.text("id")?);
                    }
                }
                for (table, column, list) in [
                    ("jobs", "id", &jobs),
                    ("message_status", "message_id", &ids),
                    ("outbox", "message_id", &ids),
                    ("messages", "id", &ids),
                ] {
                    for chunk in chunks(list) {
                        let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE {column} IN ("));
                        sql.list(chunk).push(")");
                        let n = sql.execute(&mut tx).await.db()?;
                        if table == "messages" {
                            step.messages_deleted += n;
                        }
                    }
                }
                step.more |= ids.len() as i64 == limit;
            }
            // Previews copy the last message; events copy messages for live-page replay.
            let mut sql =
                Sql::new("UPDATE conversations SET last_message_preview = NULL WHERE tenant_id = ");
            sql.bind(tenant.to_string())
                .push(" AND last_message_at < ")
                .bind(cut)
                .push(" AND last_message_preview IS NOT NULL");
            sql.execute(&mut tx).await.db()?;
            let mut sql = Sql::new("DELETE FROM events WHERE tenant_id = ");
            sql.bind(tenant.to_string())
                .push(" AND seq IN (SELECT seq FROM events WHERE tenant_id = ")
                .bind(tenant.to_string())
                .push(" AND at < ")
                .bind(cut)
                .push(" ORDER BY seq LIMIT ")
                .bind(limit)
                .push(")");
            if sql.execute(&mut tx).await.db()? as i64 == limit {
                step.more = true;
            }
        }
        let mut media_keys = unreferenced_media(&mut tx, tenant, keys).await?;
        tx.commit().await.db()?;

        // 3. Stored files past the media period: the message stays, without its file.
        //    `media_key` (in the clear) finds them; only those messages are opened.
        if let Some(cut) = cutoff(now, policy.media_days) {
            let mut conn = self.conn().await?;
            let mut sql = Sql::new(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
            ));
            sql.bind(tenant.to_string())
                .push(" AND m.media_key IS NOT NULL AND m.created_at < ")
                .bind(cut)
                .push(" ORDER BY m.created_at LIMIT ")
                .bind(limit);
            let rows_found = sql.fetch_all(&mut conn).await.db()?;
            drop(conn);
            let full = rows_found.len() as i64 == limit;
            let mut expired = Vec::new();
            for row in &rows_found {
                let m = rows::message(row)?;
                if let Content::Media { media, .. } = &m.content
                    && let Some(k) = media.stored_key.clone()
                {
                    let mut kept = media.clone();
                    kept.stored_key = None;
                    self.record_media_impl(tenant, m.id, kept, m.failure.clone(), None, now)
                        .await?;
                    step.media_expired += 1;
                    expired.push(k);
                }
            }
            let mut conn = self.conn().await?;
            media_keys.extend(unreferenced_media(&mut conn, tenant, expired).await?);
            step.more |= full;
        }
        media_keys.sort();
        media_keys.dedup();
        step.media_keys = media_keys;
        Ok(step)
    }

    pub(crate) async fn finish_retention_run_impl(
        &self,
        r: &RetentionRun,
        job: Option<JobId>,
        next_at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(&format!("INSERT INTO retention_runs ({RUN_COLS}) VALUES ("));
        sql.list::<Val>(vec![
            r.id.as_str().into(),
            r.tenant_id.to_string().into(),
            ms(r.started_at).into(),
            ms(r.finished_at).into(),
            to_json(&r.policy)?.into(),
            (r.messages_deleted as i64).into(),
            (r.media_deleted as i64).into(),
            (r.conversations_deleted as i64).into(),
            (r.batches as i64).into(),
        ])
        .push(")");
        sql.execute(&mut tx).await.db()?;
        if let Some(job) = job {
            let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
            sql.bind(r.tenant_id.to_string())
                .push(" AND id = ")
                .bind(job.to_string());
            sql.execute(&mut tx).await.db()?;
        }
        let mut sql =
            Sql::new("SELECT id FROM jobs WHERE kind = 'retention_purge' AND tenant_id = ");
        sql.bind(r.tenant_id.to_string());
        if sql.fetch_optional(&mut tx).await.db()?.is_none() {
            flows::insert_job(
                &mut tx,
                r.tenant_id,
                &JobKind::RetentionPurge,
                next_at,
                r.finished_at,
            )
            .await?;
        }
        tx.commit().await.db()?;
        Ok(())
    }

    pub(crate) async fn arm_retention_timers_impl(&self, at: Timestamp) -> StoreResult<u64> {
        let mut conn = self.write_conn().await?;
        let payload = to_json(&JobKind::RetentionPurge)?;
        let mut sql = Sql::new(
            "SELECT id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id AND j.kind = 'retention_purge')",
        );
        let tenants: Vec<String> = sql_rows(&mut conn, &mut sql).await?;
        let mut n = 0;
        for t in tenants {
            let mut ins = Sql::new(
                "INSERT INTO jobs (id, tenant_id, kind, payload, conversation_id, run_at, \
                 attempts, created_at) VALUES (",
            );
            ins.list::<Val>(vec![
                new_uuid(at).to_string().into(),
                t.into(),
                "retention_purge".into(),
                payload.as_str().into(),
                Option::<String>::None.into(),
                ms(at).into(),
                0i64.into(),
                ms(at).into(),
            ])
            .push(") ON CONFLICT DO NOTHING");
            n += ins.execute(&mut conn).await.db()?;
        }
        Ok(n)
    }

    pub(crate) async fn retention_runs_impl(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<RetentionRun>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {RUN_COLS} FROM retention_runs WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .bind(i64::from(limit.clamp(1, 1000)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(run)
            .collect()
    }
}

async fn sql_rows(conn: &mut sqlx::AnyConnection, sql: &mut Sql) -> StoreResult<Vec<String>> {
    let taken = std::mem::replace(sql, Sql::new(""));
    taken
        .fetch_all(conn)
        .await
        .db()?
        .iter()
        .map(|r| r.text("id"))
        .collect()
}
