//! Self-service flows: versioned flow definitions, bot sessions with their timers, the
//! business records flows collect, and consent.
//!
//! A flow step's effects are written by [`apply_effects`] inside the transaction of
//! `apply_flow_decision`, next to the conversation change and the outbound messages, so a
//! crash never leaves a session that moved on without its replies (or the reverse).
//! Timers are `jobs` rows of kind `flow_timeout` with a due time and no conversation key,
//! so a timer waiting for its time never holds back the conversation's other jobs; the
//! session row names its current timer, and arming a new one deletes the old one.

use std::collections::HashMap;

use sqlx::AnyConnection;
use switchboard_core::ports::{
    CampaignStart, Consent, FlowEffects, FlowRecord, FlowSessionWrite, JobKind, OpenedConversation,
    SavedFlow, StoreError, StoreResult, StoredFlow, StoredFlowSession, TimerChange,
};
use switchboard_core::{
    Channel, ChannelId, ChannelSettings, ContactId, ConversationId, JobId, RecordId, TenantId,
    Timestamp,
};

use crate::conversations::Locked;
use crate::rows::{self, CHANNEL_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, insert_rows, ms, new_uuid, to_json, trunc};
use crate::{Backend, SqlStore};

/// Inserts a job row (the same columns `ingest` writes).
pub(crate) async fn insert_job(
    conn: &mut AnyConnection,
    tenant: TenantId,
    kind: &JobKind,
    run_at: Timestamp,
    now: Timestamp,
) -> StoreResult<JobId> {
    let id = JobId::from_uuid(new_uuid(now));
    insert_rows(
        conn,
        "INSERT INTO jobs (id, tenant_id, kind, payload, conversation_id, run_at, attempts, \
         created_at) VALUES ",
        vec![vec![
            Val::from(id.to_string()),
            tenant.to_string().into(),
            kind.tag().into(),
            to_json(kind)?.into(),
            kind.ordering_key().map(|c| c.to_string()).into(),
            ms(run_at).into(),
            0i64.into(),
            ms(now).into(),
        ]],
    )
    .await
    .db()?;
    Ok(id)
}

/// Writes a step's effects for the locked conversation. `job` is the job being completed
/// (already deleted by the caller), so a timer firing now is not deleted twice.
pub(crate) async fn apply_effects(
    conn: &mut AnyConnection,
    backend: Backend,
    locked: &Locked,
    job: JobId,
    effects: FlowEffects,
    now: Timestamp,
) -> StoreResult<()> {
    let c = &locked.conversation;
    let tenant = c.tenant_id;
    let keys = crate::keys::tenant(tenant)?;
    if let Some(write) = effects.session {
        let mut sql =
            Sql::new("SELECT version, timer_job_id FROM flow_sessions WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND conversation_id = ")
            .bind(c.id.to_string())
            .push(backend.for_update());
        let current = sql.fetch_optional(&mut *conn).await.db()?;
        let (version, old_timer) = match &current {
            Some(row) => (
                Some(row.int("version")?),
                row.opt_parse::<JobId>("timer_job_id")?,
            ),
            None => (None, None),
        };
        if version != write.expected_version {
            return Err(StoreError::Conflict(format!(
                "the flow session of conversation {} changed meanwhile (version {:?}, expected {:?})",
                c.id, version, write.expected_version
            )));
        }
        let timer = match write.timer {
            TimerChange::Keep => old_timer,
            TimerChange::Cancel | TimerChange::Set(_) => {
                if let Some(old) = old_timer.filter(|t| *t != job) {
                    let mut sql = Sql::new("DELETE FROM jobs WHERE id = ");
                    sql.bind(old.to_string());
                    sql.execute(&mut *conn).await.db()?;
                }
                match write.timer {
                    TimerChange::Set(at) => Some(
                        insert_job(
                            conn,
                            tenant,
                            &JobKind::FlowTimeout {
                                conversation_id: c.id,
                            },
                            at,
                            now,
                        )
                        .await?,
                    ),
                    _ => None,
                }
            }
        };
        let session = keys.seal_json(
            "flow_sessions",
            "session",
            &c.id.to_string(),
            &write.session,
        )?;
        let timer = timer.map(|t| t.to_string());
        let sql = match version {
            Some(v) => {
                let mut sql = Sql::new("UPDATE flow_sessions SET session = ");
                sql.bind(session)
                    .push(", version = ")
                    .bind(v + 1)
                    .push(", timer_job_id = ")
                    .bind(timer)
                    .push(", updated_at = ")
                    .bind(ms(now))
                    .push(" WHERE conversation_id = ")
                    .bind(c.id.to_string())
                    .push(" AND version = ")
                    .bind(v);
                sql
            }
            None => {
                let mut sql = Sql::new(
                    "INSERT INTO flow_sessions (conversation_id, tenant_id, session, version, \
                     timer_job_id, updated_at) VALUES (",
                );
                sql.list::<Val>(vec![
                    c.id.to_string().into(),
                    tenant.to_string().into(),
                    session.into(),
                    1i64.into(),
                    timer.into(),
                    ms(now).into(),
                ])
                .push(")");
                sql
            }
        };
        if sql.execute(&mut *conn).await.unique("flow session")? != 1 {
            return Err(StoreError::Conflict(format!(
                "the flow session of conversation {} changed meanwhile",
                c.id
            )));
        }
    }
    if !effects.records.is_empty() {
        let rows = effects
            .records
            .iter()
            .map(|r| {
                let id = RecordId::from_uuid(new_uuid(now)).to_string();
                Ok(vec![
                    Val::from(id.as_str()),
                    tenant.to_string().into(),
                    c.id.to_string().into(),
                    c.contact_id.to_string().into(),
                    r.kind.as_str().into(),
                    keys.seal_json("flow_records", "data", &id, &r.data)?.into(),
                    ms(now).into(),
                ])
            })
            .collect::<StoreResult<Vec<_>>>()?;
        insert_rows(
            conn,
            "INSERT INTO flow_records (id, tenant_id, conversation_id, contact_id, kind, data, \
             created_at) VALUES ",
            rows,
        )
        .await
        .db()?;
    }
    if !effects.consents.is_empty() {
        let rows = effects
            .consents
            .iter()
            .map(|k| {
                let id = new_uuid(now).to_string();
                Ok(vec![
                    Val::from(id.as_str()),
                    tenant.to_string().into(),
                    c.contact_id.to_string().into(),
                    c.channel_id.to_string().into(),
                    k.status.as_str().into(),
                    k.source.as_str().into(),
                    keys.seal_opt("consents", "wording", &id, k.wording.as_deref())?
                        .into(),
                    ms(now).into(),
                ])
            })
            .collect::<StoreResult<Vec<_>>>()?;
        insert_rows(
            conn,
            "INSERT INTO consents (id, tenant_id, contact_id, channel_id, status, source, \
             wording, at) VALUES ",
            rows,
        )
        .await
        .db()?;
    }
    if !effects.contact_attributes.is_empty() {
        let mut sql = Sql::new("SELECT attributes FROM contacts WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(c.contact_id.to_string())
            .push(backend.for_update());
        let row = sql
            .fetch_optional(&mut *conn)
            .await
            .db()?
            .ok_or(StoreError::NotFound("contact"))?;
        let contact_row = c.contact_id.to_string();
        let mut attributes: serde_json::Value = keys.open_json(
            "contacts",
            "attributes",
            &contact_row,
            &row.text("attributes")?,
        )?;
        if !attributes.is_object() {
            attributes = serde_json::json!({});
        }
        if let Some(map) = attributes.as_object_mut() {
            for (k, v) in effects.contact_attributes {
                map.insert(k, v);
            }
        }
        let mut sql = Sql::new("UPDATE contacts SET attributes = ");
        sql.bind(keys.seal_json("contacts", "attributes", &contact_row, &attributes)?)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(c.contact_id.to_string());
        sql.execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// The session writes of a batch of decisions for one tenant's conversations (one write per
/// conversation), with a handful of statements for the whole batch: the same checks and
/// timer handling as [`apply_effects`] (a stale `expected_version` is `Conflict`), for the
/// job worker's group commit. `writes` holds (conversation, job being completed, write).
pub(crate) async fn apply_session_writes(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    writes: Vec<(ConversationId, JobId, FlowSessionWrite)>,
    now: Timestamp,
) -> StoreResult<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> = writes.iter().map(|(c, _, _)| c.to_string()).collect();
    ids.sort();
    let mut current: HashMap<ConversationId, (i64, Option<JobId>)> = HashMap::new();
    for chunk in crate::sql::chunks(&ids) {
        let mut sql = Sql::new(
            "SELECT conversation_id, version, timer_job_id FROM flow_sessions WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND conversation_id IN (")
            .list(chunk)
            .push(") ORDER BY conversation_id")
            .push(backend.for_update());
        for row in sql.fetch_all(&mut *conn).await.db()? {
            current.insert(
                row.parse("conversation_id")?,
                (row.int("version")?, row.opt_parse::<JobId>("timer_job_id")?),
            );
        }
    }
    let keys = crate::keys::tenant(tenant)?;
    let mut old_timers = Vec::new();
    let mut new_timers = Vec::new();
    let mut updates = Vec::new();
    let mut inserts = Vec::new();
    for (conv, job, write) in writes {
        let (version, old_timer) = match current.get(&conv) {
            Some((v, t)) => (Some(*v), *t),
            None => (None, None),
        };
        if version != write.expected_version {
            return Err(StoreError::Conflict(format!(
                "the flow session of conversation {conv} changed meanwhile (version {version:?}, expected {:?})",
                write.expected_version
            )));
        }
        let timer = match write.timer {
            TimerChange::Keep => old_timer,
            TimerChange::Cancel | TimerChange::Set(_) => {
                if let Some(old) = old_timer.filter(|t| *t != job) {
                    old_timers.push(old.to_string());
                }
                match write.timer {
                    TimerChange::Set(at) => {
                        let kind = JobKind::FlowTimeout {
                            conversation_id: conv,
                        };
                        let id = JobId::from_uuid(new_uuid(now));
                        new_timers.push(vec![
                            Val::from(id.to_string()),
                            tenant.to_string().into(),
                            kind.tag().into(),
                            to_json(&kind)?.into(),
                            kind.ordering_key().map(|c| c.to_string()).into(),
                            ms(at).into(),
                            0i64.into(),
                            ms(now).into(),
                        ]);
                        Some(id)
                    }
                    _ => None,
                }
            }
        };
        let session = keys.seal_json(
            "flow_sessions",
            "session",
            &conv.to_string(),
            &write.session,
        )?;
        let timer = timer.map(|t| t.to_string());
        match version {
            Some(v) => updates.push(vec![
                Val::from(conv.to_string()),
                session.into(),
                (v + 1).into(),
                timer.into(),
                ms(now).into(),
                v.into(),
            ]),
            None => inserts.push(vec![
                Val::from(conv.to_string()),
                tenant.to_string().into(),
                session.into(),
                1i64.into(),
                timer.into(),
                ms(now).into(),
            ]),
        }
    }
    for chunk in crate::sql::chunks(&old_timers) {
        let mut sql = Sql::new("DELETE FROM jobs WHERE id IN (");
        sql.list(chunk).push(")");
        sql.execute(&mut *conn).await.db()?;
    }
    insert_rows(
        &mut *conn,
        "INSERT INTO jobs (id, tenant_id, kind, payload, conversation_id, run_at, attempts, \
         created_at) VALUES ",
        new_timers,
    )
    .await
    .db()?;
    for chunk in updates.chunks(500) {
        let mut sql = Sql::new(
            "UPDATE flow_sessions SET session = v.column2, version = v.column3, \
             timer_job_id = v.column4, updated_at = v.column5 FROM (VALUES ",
        );
        sql.rows(chunk.to_vec()).push(
            ") AS v WHERE flow_sessions.conversation_id = v.column1 \
             AND flow_sessions.version = v.column6",
        );
        if sql.execute(&mut *conn).await.db()? != chunk.len() as u64 {
            return Err(StoreError::Conflict(
                "a flow session changed meanwhile".into(),
            ));
        }
    }
    let mut sql_rows = inserts.into_iter().peekable();
    while sql_rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = sql_rows.by_ref().take(500).collect();
        let mut sql = Sql::new(
            "INSERT INTO flow_sessions (conversation_id, tenant_id, session, version, \
             timer_job_id, updated_at) VALUES ",
        );
        sql.rows(chunk);
        sql.execute(&mut *conn).await.unique("flow session")?;
    }
    Ok(())
}

/// The stored bot sessions of a tenant's `conversations` (those that have one), opened, in
/// one query per 500 ids. The tenant's keys must be loaded (`SqlStore::ensure_keys`).
pub(crate) async fn sessions(
    conn: &mut AnyConnection,
    tenant: TenantId,
    conversations: &[ConversationId],
) -> StoreResult<HashMap<ConversationId, StoredFlowSession>> {
    let mut found = HashMap::with_capacity(conversations.len());
    if conversations.is_empty() {
        return Ok(found);
    }
    let keys = crate::keys::tenant(tenant)?;
    for chunk in crate::sql::chunks(conversations) {
        let mut sql = Sql::new(
            "SELECT conversation_id, session, version, timer_job_id FROM flow_sessions \
             WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND conversation_id IN (")
            .list(chunk.iter().map(|c| c.to_string()))
            .push(")");
        for row in sql.fetch_all(&mut *conn).await.db()? {
            let id = row.text("conversation_id")?;
            let session = StoredFlowSession {
                conversation_id: row.parse("conversation_id")?,
                session: keys.open_json("flow_sessions", "session", &id, &row.text("session")?)?,
                version: row.int("version")?,
                timer_job: row.opt_parse("timer_job_id")?,
            };
            found.insert(session.conversation_id, session);
        }
    }
    Ok(found)
}

fn stored_flow(row: &sqlx::any::AnyRow) -> StoreResult<StoredFlow> {
    Ok(StoredFlow {
        tenant_id: row.parse("tenant_id")?,
        flow_id: row.text("flow_id")?,
        version: row.int("version")?,
        source: row.text("source")?,
        loaded_at: row.ts("loaded_at")?,
    })
}

impl SqlStore {
    pub(crate) async fn save_flow_impl(
        &self,
        tenant: TenantId,
        flow_id: &str,
        source: &str,
        now: Timestamp,
    ) -> StoreResult<SavedFlow> {
        let flow_id = flow_id.trim();
        if flow_id.is_empty() {
            return Err(StoreError::Invalid("a flow needs an id".into()));
        }
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(
            "SELECT tenant_id, flow_id, version, source, loaded_at FROM flow_definitions \
             WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND flow_id = ")
            .bind(flow_id)
            .push(" ORDER BY version DESC LIMIT 1")
            .push(self.backend.for_update());
        let latest = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .as_ref()
            .map(stored_flow)
            .transpose()?;
        if let Some(latest) = &latest
            && latest.source == source
        {
            return Ok(SavedFlow {
                flow: latest.clone(),
                created: false,
            });
        }
        let flow = StoredFlow {
            tenant_id: tenant,
            flow_id: flow_id.to_string(),
            version: latest.map_or(1, |l| l.version + 1),
            source: source.to_string(),
            loaded_at: trunc(now),
        };
        let mut sql = Sql::new(
            "INSERT INTO flow_definitions (tenant_id, flow_id, version, source, loaded_at) VALUES (",
        );
        sql.list::<Val>(vec![
            tenant.to_string().into(),
            flow.flow_id.as_str().into(),
            flow.version.into(),
            source.into(),
            ms(now).into(),
        ])
        .push(")");
        match sql.execute(&mut tx).await {
            Ok(_) => {}
            Err(e) if crate::sql::is_fk_violation(&e) => {
                return Err(StoreError::NotFound("tenant"));
            }
            Err(e) if crate::sql::is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "flow `{flow_id}` was loaded concurrently; load it again"
                )));
            }
            Err(e) => return Err(crate::sql::db(e)),
        }
        tx.commit().await.db()?;
        Ok(SavedFlow {
            flow,
            created: true,
        })
    }

    pub(crate) async fn flows_impl(&self, tenant: TenantId) -> StoreResult<Vec<StoredFlow>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT f.tenant_id, f.flow_id, f.version, f.source, f.loaded_at \
             FROM flow_definitions f WHERE f.tenant_id = ",
        );
        sql.bind(tenant.to_string()).push(
            " AND f.version = (SELECT MAX(l.version) FROM flow_definitions l \
             WHERE l.tenant_id = f.tenant_id AND l.flow_id = f.flow_id) ORDER BY f.flow_id",
        );
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(stored_flow)
            .collect()
    }

    pub(crate) async fn flow_version_impl(
        &self,
        tenant: TenantId,
        flow_id: &str,
        version: i64,
    ) -> StoreResult<Option<StoredFlow>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT tenant_id, flow_id, version, source, loaded_at FROM flow_definitions \
             WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND flow_id = ")
            .bind(flow_id)
            .push(" AND version = ")
            .bind(version);
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(stored_flow)
            .transpose()
    }

    pub(crate) async fn open_conversation_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        flow_id: &str,
        campaign: CampaignStart,
        now: Timestamp,
    ) -> StoreResult<OpenedConversation> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        // The contact must be reachable there: an identity of this tenant on this channel.
        let mut sql = Sql::new("SELECT contact_id FROM identities WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND channel_id = ")
            .bind(channel.to_string())
            .push(" AND contact_id = ")
            .bind(contact.to_string())
            .push(" LIMIT 1");
        if sql.fetch_optional(&mut tx).await.db()?.is_none() {
            return Err(StoreError::NotFound("contact address on this channel"));
        }
        let mut sql =
            Sql::new("SELECT id, state, last_inbound_at FROM conversations WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND channel_id = ")
            .bind(channel.to_string())
            .push(" AND contact_id = ")
            .bind(contact.to_string())
            .push(" ORDER BY created_at DESC")
            .push(self.backend.for_update());
        let rows = sql.fetch_all(&mut tx).await.db()?;
        let mut last_inbound: Option<i64> = None;
        for row in &rows {
            if row.text("state")? != "resolved" {
                let id: ConversationId = row.parse("id")?;
                let conversation = crate::conversations::summary(&mut tx, tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("conversation"))?;
                return Ok(OpenedConversation {
                    conversation,
                    created: false,
                    events: Vec::new(),
                });
            }
            if let Some(t) = row.opt_int("last_inbound_at")? {
                last_inbound = Some(last_inbound.map_or(t, |l| l.max(t)));
            }
        }
        let id = ConversationId::from_uuid(new_uuid(now));
        let mut sql = Sql::new(
            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, state, \
             last_inbound_at, last_message_at, created_at) VALUES (",
        );
        sql.list::<Val>(vec![
            id.to_string().into(),
            tenant.to_string().into(),
            channel.to_string().into(),
            contact.to_string().into(),
            "bot".into(),
            last_inbound.into(),
            ms(now).into(),
            ms(now).into(),
        ])
        .push(")");
        sql.execute(&mut tx).await.unique("open conversation")?;
        let kind = JobKind::StartFlow {
            conversation_id: id,
            flow_id: flow_id.to_string(),
            campaign: Some(campaign),
        };
        insert_job(&mut tx, tenant, &kind, now, now).await?;
        let changed = crate::conversations::changed(&mut tx, tenant, id).await?;
        let events = crate::events::append(&mut tx, tenant, now, vec![changed]).await?;
        let conversation = crate::conversations::summary(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        tx.commit().await.db()?;
        Ok(OpenedConversation {
            conversation,
            created: true,
            events,
        })
    }

    pub(crate) async fn set_channel_settings_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        settings: &ChannelSettings,
    ) -> StoreResult<Channel> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let mut sql = Sql::new("UPDATE channels SET settings = ");
        sql.bind(to_json(settings)?)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(channel.to_string());
        if sql.execute(&mut tx).await.db()? == 0 {
            return Err(StoreError::NotFound("channel"));
        }
        let mut sql = Sql::new(&format!("SELECT {CHANNEL_COLS} FROM channels WHERE id = "));
        sql.bind(channel.to_string());
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("channel"))?;
        let channel = rows::channel(&row)?;
        tx.commit().await.db()?;
        Ok(channel)
    }

    pub(crate) async fn flow_session_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<StoredFlowSession>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        Ok(sessions(&mut conn, tenant, &[conversation])
            .await?
            .remove(&conversation))
    }

    pub(crate) async fn enqueue_job_impl(
        &self,
        tenant: TenantId,
        kind: JobKind,
        run_at: Timestamp,
    ) -> StoreResult<JobId> {
        let mut conn = self.write_conn().await?;
        insert_job(&mut conn, tenant, &kind, run_at, run_at).await
    }

    pub(crate) async fn records_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<FlowRecord>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT id, tenant_id, conversation_id, contact_id, kind, data, created_at \
             FROM flow_records WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND conversation_id = ")
            .bind(conversation.to_string())
            .push(" ORDER BY id");
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(FlowRecord {
                    id: row.parse("id")?,
                    tenant_id: row.parse("tenant_id")?,
                    conversation_id: row.parse("conversation_id")?,
                    contact_id: row.parse("contact_id")?,
                    kind: row.text("kind")?,
                    data: keys.open_json(
                        "flow_records",
                        "data",
                        &row.text("id")?,
                        &row.text("data")?,
                    )?,
                    created_at: row.ts("created_at")?,
                })
            })
            .collect()
    }

    /// See `Store::latest_records`: `IN` lists of at most 500 ids, rows in id (time)
    /// order so the last one per conversation wins.
    pub(crate) async fn latest_records_impl(
        &self,
        tenant: TenantId,
        kind: &str,
        conversations: &[ConversationId],
    ) -> StoreResult<HashMap<ConversationId, FlowRecord>> {
        let mut found = HashMap::with_capacity(conversations.len());
        if conversations.is_empty() {
            return Ok(found);
        }
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        let mut conn = self.conn().await?;
        for chunk in crate::sql::chunks(conversations) {
            let mut sql = Sql::new(
                "SELECT id, tenant_id, conversation_id, contact_id, kind, data, created_at \
                 FROM flow_records WHERE tenant_id = ",
            );
            sql.bind(tenant.to_string())
                .push(" AND kind = ")
                .bind(kind.to_string())
                .push(" AND conversation_id IN (")
                .list(chunk.iter().map(|c| c.to_string()))
                .push(") ORDER BY id");
            for row in sql.fetch_all(&mut conn).await.db()? {
                let record = FlowRecord {
                    id: row.parse("id")?,
                    tenant_id: row.parse("tenant_id")?,
                    conversation_id: row.parse("conversation_id")?,
                    contact_id: row.parse("contact_id")?,
                    kind: row.text("kind")?,
                    data: keys.open_json(
                        "flow_records",
                        "data",
                        &row.text("id")?,
                        &row.text("data")?,
                    )?,
                    created_at: row.ts("created_at")?,
                };
                found.insert(record.conversation_id, record);
            }
        }
        Ok(found)
    }

    pub(crate) async fn consents_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Vec<Consent>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT id, tenant_id, contact_id, channel_id, status, source, wording, at \
             FROM consents WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND contact_id = ")
            .bind(contact.to_string())
            .push(" ORDER BY id");
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(Consent {
                    tenant_id: row.parse("tenant_id")?,
                    contact_id: row.parse("contact_id")?,
                    channel_id: row.parse("channel_id")?,
                    status: row.parse("status")?,
                    source: row.text("source")?,
                    wording: keys.open_opt(
                        "consents",
                        "wording",
                        &row.text("id")?,
                        row.opt_text("wording")?.as_deref(),
                    )?,
                    at: row.ts("at")?,
                })
            })
            .collect()
    }
}
