//! Durable background jobs and worker decisions.
//!
//! A job is claimed with a lease; a crashed worker's lease expires and the job runs again.
//! Jobs of one conversation run one at a time and in order (only the oldest is claimable),
//! so a flow never sees two customer messages processed concurrently. A decision, its
//! outbound messages and the job's completion commit together.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use sqlx::AnyConnection;

use switchboard_core::ports::{
    Decision, DecisionInputs, FlowEffects, Job, StoreError, StoreResult,
};
use switchboard_core::{
    ConversationId, ConversationState, Event, EventKind, JobId, MessageId, TenantId, Timestamp,
    Transition,
};

use crate::conversations::{self, Locked, apply_transition};
use crate::rows::{self, CHANNEL_COLS, MESSAGE_COLS};
use crate::sql::{DbResult, RowExt, Sql, chunks, ms};
use crate::{Backend, SqlStore, events, flows, outbound};

/// The transition that takes `from` to `to`, if the state machine has one.
fn transition_to(from: ConversationState, to: ConversationState) -> Option<Transition> {
    // A decision may move a conversation to the bot only from `queued` (a customer's keyword
    // on a new conversation of a channel without a default flow), never from `assigned`: a
    // conversation an agent took meanwhile stays theirs (the decision fails and is retaken).
    if (from, to) == (ConversationState::Queued, ConversationState::Bot) {
        return Some(Transition::StartBot);
    }
    [
        Transition::Handoff,
        Transition::Assign,
        Transition::ToQueue,
        Transition::Resolve,
        Transition::Reopen,
    ]
    .into_iter()
    .find(|t| from.apply(*t) == Ok(to))
}

impl SqlStore {
    pub(crate) async fn claim_jobs_impl(
        &self,
        node: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let now_ms = ms(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE jobs SET attempts = attempts + 1, lease_until = ");
        sql.bind(until)
            .push(", leased_by = ")
            .bind(node)
            .push(" WHERE id IN (SELECT j.id FROM jobs j WHERE j.run_at <= ")
            .bind(now_ms)
            .push(" AND (j.lease_until IS NULL OR j.lease_until <= ")
            .bind(now_ms)
            .push(
                ") AND NOT EXISTS (SELECT 1 FROM jobs p \
                 WHERE p.conversation_id = j.conversation_id AND p.id < j.id) \
                 ORDER BY j.run_at, j.id LIMIT ",
            )
            .bind(i64::from(limit.max(1)));
        if self.backend == Backend::Postgres {
            sql.push(" FOR UPDATE SKIP LOCKED");
        }
        sql.push(") RETURNING id, tenant_id, payload, attempts");
        let mut jobs = sql
            .fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(Job {
                    id: row.parse("id")?,
                    tenant_id: row.parse("tenant_id")?,
                    kind: row.json("payload")?,
                    // Stored: claims including this one. Reported: claims before it.
                    attempts: i32::try_from(row.int("attempts")? - 1).unwrap_or(i32::MAX),
                })
            })
            .collect::<StoreResult<Vec<Job>>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// See `Store::decision_inputs`: one query per kind of row (per 500 ids), on one
    /// connection, instead of the several per job that reading job by job costs (on SQLite
    /// each statement is a hand-off to the connection's thread).
    pub(crate) async fn decision_inputs_impl(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
        messages: &[MessageId],
    ) -> StoreResult<DecisionInputs> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut ids = conversations.to_vec();
        ids.sort();
        ids.dedup();
        let conversations = conversations::summaries(&mut conn, tenant, &ids).await?;
        let mut channel_ids: Vec<String> = conversations
            .values()
            .map(|c| c.conversation.channel_id.to_string())
            .collect();
        channel_ids.sort();
        channel_ids.dedup();
        let mut channels = HashMap::with_capacity(channel_ids.len());
        for chunk in chunks(&channel_ids) {
            let mut sql = Sql::new(&format!(
                "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = "
            ));
            sql.bind(tenant.to_string())
                .push(" AND id IN (")
                .list(chunk)
                .push(")");
            for row in sql.fetch_all(&mut conn).await.db()? {
                let channel = rows::channel(&row)?;
                channels.insert(channel.id, channel);
            }
        }
        let sessions = flows::sessions(&mut conn, tenant, &ids).await?;
        let mut message_ids: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
        message_ids.sort();
        message_ids.dedup();
        let mut messages = HashMap::with_capacity(message_ids.len());
        for chunk in chunks(&message_ids) {
            let mut sql = Sql::new(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
            ));
            sql.bind(tenant.to_string())
                .push(" AND m.id IN (")
                .list(chunk)
                .push(")");
            for row in sql.fetch_all(&mut conn).await.db()? {
                let message = rows::message(&row)?;
                messages.insert(message.id, message);
            }
        }
        Ok(DecisionInputs {
            conversations,
            channels,
            sessions,
            messages,
        })
    }

    pub(crate) async fn apply_decision_impl(
        &self,
        decision: Decision,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.apply_decision_with(decision, None, now).await
    }

    /// A decision with optional flow effects, in one transaction (see `flows::apply_effects`).
    pub(crate) async fn apply_decision_with(
        &self,
        decision: Decision,
        effects: Option<FlowEffects>,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        let tenant = decision.tenant_id;
        let mut tx = self.begin().await?;
        let kinds = apply_in(&mut tx, self.backend, decision, effects, now).await?;
        let events = events::append(&mut tx, tenant, now, kinds).await?;
        tx.commit().await.db()?;
        Ok(events)
    }

    /// Several decisions in ONE transaction (group commit for the job worker): all of them
    /// commit or none does. Statements are per batch, not per decision, wherever the rows
    /// allow it (jobs deleted, conversations locked, replies inserted, conversations saved
    /// and re-read, events numbered): on SQLite every statement is a round trip to the
    /// connection's thread, and those round trips, not the disk, bounded the worker.
    /// Conversations are locked in id order and each tenant's event counter is bumped once,
    /// after every conversation lock, so PostgreSQL nodes take locks in the same order.
    /// Events come back per decision, in input order.
    pub(crate) async fn apply_decisions_impl(
        &self,
        batch: Vec<(Decision, FlowEffects)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<Event>>> {
        let n = batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.ensure_keys(batch.iter().map(|(d, _)| d.tenant_id))
            .await?;
        // Two decisions about one conversation (a timer beside a message) were both taken
        // from the same session; the caller applies them one by one, where the session
        // version check refuses the stale one.
        let mut seen = HashSet::new();
        if !batch.iter().all(|(d, _)| seen.insert(d.conversation_id)) {
            return Err(StoreError::Conflict(
                "two decisions about one conversation in one batch".into(),
            ));
        }
        let mut by_tenant: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
        for (i, (d, _)) in batch.iter().enumerate() {
            by_tenant.entry(d.tenant_id).or_default().push(i);
        }
        let mut tx = self.begin().await?;
        let mut locked: HashMap<ConversationId, Locked> = HashMap::with_capacity(n);
        for (tenant, members) in &by_tenant {
            let job_ids: Vec<String> = members
                .iter()
                .map(|&i| batch[i].0.job_id.to_string())
                .collect();
            let mut deleted = 0;
            for chunk in chunks(&job_ids) {
                let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
                sql.bind(tenant.to_string())
                    .push(" AND id IN (")
                    .list(chunk)
                    .push(")");
                deleted += sql.execute(&mut tx).await.db()?;
            }
            if deleted != job_ids.len() as u64 {
                return Err(StoreError::NotFound("job"));
            }
            let mut ids: Vec<ConversationId> = members
                .iter()
                .map(|&i| batch[i].0.conversation_id)
                .collect();
            ids.sort();
            locked.extend(conversations::lock_many(&mut tx, self.backend, *tenant, &ids).await?);
        }

        let mut order: Vec<(usize, (Decision, FlowEffects))> =
            batch.into_iter().enumerate().collect();
        order.sort_by_key(|(_, (d, _))| d.conversation_id);
        // Session writes (the bulk of a flow decision's effects) go per tenant, set-based.
        let mut sessions: BTreeMap<TenantId, Vec<_>> = BTreeMap::new();
        for (_, (d, e)) in order.iter_mut() {
            if let Some(write) = e.session.take() {
                sessions
                    .entry(d.tenant_id)
                    .or_default()
                    .push((d.conversation_id, d.job_id, write));
            }
        }
        for (tenant, writes) in sessions {
            flows::apply_session_writes(&mut tx, self.backend, tenant, writes, now).await?;
        }
        let mut replies = outbound::OutboundRows::default();
        let mut kinds: Vec<Vec<EventKind>> = vec![Vec::new(); n];
        let mut changed: Vec<(usize, TenantId, ConversationId)> = Vec::new();
        for (i, (decision, effects)) in order {
            let conv = decision.conversation_id;
            let l = locked
                .get_mut(&conv)
                .ok_or(StoreError::NotFound("conversation"))?;
            if effects != FlowEffects::default() {
                flows::apply_effects(&mut tx, self.backend, l, decision.job_id, effects, now)
                    .await?;
            }
            let mut touched = false;
            if let Some(to) = decision.new_state
                && to != l.conversation.state
            {
                let from = l.conversation.state;
                let t = transition_to(from, to).ok_or_else(|| {
                    StoreError::Invalid(format!("a {from} conversation cannot become {to}"))
                })?;
                apply_transition(&mut l.conversation, t, None)?;
                touched = true;
            }
            for out in decision.outbound {
                let message = outbound::prepare(l, out, now, &mut replies)?;
                if let Some(list) = kinds.get_mut(i) {
                    list.push(EventKind::MessageCreated { message });
                }
                touched = true;
            }
            if touched {
                changed.push((i, decision.tenant_id, conv));
            }
        }
        replies.insert(&mut tx).await?;
        let to_save: Vec<&Locked> = changed
            .iter()
            .filter_map(|(_, _, c)| locked.get(c))
            .collect();
        conversations::save_many(&mut tx, &to_save).await?;
        for tenant in by_tenant.keys() {
            let ids: Vec<ConversationId> = changed
                .iter()
                .filter(|(_, t, _)| t == tenant)
                .map(|(_, _, c)| *c)
                .collect();
            let mut summaries = conversations::summaries(&mut tx, *tenant, &ids).await?;
            for (i, t, c) in &changed {
                if t != tenant {
                    continue;
                }
                let conversation = summaries
                    .remove(c)
                    .ok_or(StoreError::NotFound("conversation"))?;
                if let Some(list) = kinds.get_mut(*i) {
                    list.push(EventKind::ConversationChanged { conversation });
                }
            }
        }

        let mut out: Vec<Vec<Event>> = vec![Vec::new(); n];
        for (tenant, members) in by_tenant {
            let mut owners = Vec::new();
            let mut all = Vec::new();
            for i in members {
                for kind in kinds.get_mut(i).map(std::mem::take).unwrap_or_default() {
                    owners.push(i);
                    all.push(kind);
                }
            }
            let numbered = events::append(&mut tx, tenant, now, all).await?;
            for (i, event) in owners.into_iter().zip(numbered) {
                if let Some(list) = out.get_mut(i) {
                    list.push(event);
                }
            }
        }
        tx.commit().await.db()?;
        Ok(out)
    }

    pub(crate) async fn retry_job_impl(
        &self,
        id: JobId,
        at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE jobs SET lease_until = NULL, leased_by = NULL, run_at = ");
        sql.bind(ms(at))
            .push(", last_error = ")
            .bind(error)
            .push(" WHERE id = ")
            .bind(id.to_string());
        match sql.execute(&mut conn).await.db()? {
            0 => Err(StoreError::NotFound("job")),
            _ => Ok(()),
        }
    }

    pub(crate) async fn cancel_job_impl(&self, tenant: TenantId, id: JobId) -> StoreResult<bool> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        Ok(sql.execute(&mut conn).await.db()? > 0)
    }

    pub(crate) async fn cancel_media_downloads_impl(
        &self,
        tenant: TenantId,
        message: switchboard_core::MessageId,
    ) -> StoreResult<u64> {
        let mut conn = self.write_conn().await?;
        // The payload is the JSON `JobKind`; a message id (a UUID) appears in it only as
        // that job's `message_id`.
        let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND kind = 'download_media' AND payload LIKE ")
            .bind(format!("%\"{message}\"%"));
        sql.execute(&mut conn).await.db()
    }
}

/// Applies one decision inside `conn`'s transaction: completes the job, writes the flow
/// effects, the state change and the outbound messages. Returns the event kinds to append
/// (the caller numbers them, so a batch bumps each tenant's counter once).
pub(crate) async fn apply_in(
    conn: &mut AnyConnection,
    backend: Backend,
    decision: Decision,
    effects: Option<FlowEffects>,
    now: Timestamp,
) -> StoreResult<Vec<EventKind>> {
    let tenant = decision.tenant_id;
    let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
    sql.bind(tenant.to_string())
        .push(" AND id = ")
        .bind(decision.job_id.to_string());
    if sql.execute(&mut *conn).await.db()? == 0 {
        return Err(StoreError::NotFound("job"));
    }
    let mut locked = conversations::lock(conn, backend, tenant, decision.conversation_id).await?;
    if let Some(effects) = effects {
        flows::apply_effects(conn, backend, &locked, decision.job_id, effects, now).await?;
    }
    let mut changed = false;
    if let Some(to) = decision.new_state
        && to != locked.conversation.state
    {
        let from = locked.conversation.state;
        let t = transition_to(from, to).ok_or_else(|| {
            StoreError::Invalid(format!("a {from} conversation cannot become {to}"))
        })?;
        apply_transition(&mut locked.conversation, t, None)?;
        changed = true;
    }
    let mut kinds = Vec::new();
    for out in decision.outbound {
        let message = outbound::create(conn, &mut locked, out, now).await?;
        kinds.push(EventKind::MessageCreated { message });
        changed = true;
    }
    if changed {
        conversations::save(conn, &locked).await?;
        kinds.push(conversations::changed(conn, tenant, decision.conversation_id).await?);
    }
    Ok(kinds)
}
