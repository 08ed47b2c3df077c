//! Durable background jobs and worker decisions.
//!
//! A job is claimed with a lease; a crashed worker's lease expires and the job runs again.
//! Jobs of one conversation run one at a time and in order (only the oldest is claimable),
//! so a flow never sees two customer messages processed concurrently. A decision, its
//! outbound messages and the job's completion commit together.

use std::time::Duration;

use switchboard_core::ports::{Decision, FlowEffects, Job, StoreError, StoreResult};
use switchboard_core::{ConversationState, Event, EventKind, JobId, Timestamp, Transition};

use crate::conversations::{self, apply_transition};
use crate::sql::{DbResult, RowExt, Sql, ms};
use crate::{Backend, SqlStore, events, flows, outbound};

/// The transition that takes `from` to `to`, if the state machine has one.
fn transition_to(from: ConversationState, to: ConversationState) -> Option<Transition> {
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
        let mut conn = self.conn().await?;
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
        let mut sql = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(decision.job_id.to_string());
        if sql.execute(&mut tx).await.db()? == 0 {
            return Err(StoreError::NotFound("job"));
        }
        let mut locked =
            conversations::lock(&mut tx, self.backend, tenant, decision.conversation_id).await?;
        if let Some(effects) = effects {
            flows::apply_effects(
                &mut tx,
                self.backend,
                &locked,
                decision.job_id,
                effects,
                now,
            )
            .await?;
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
            let message = outbound::create(&mut tx, &mut locked, out, now).await?;
            kinds.push(EventKind::MessageCreated { message });
            changed = true;
        }
        if changed {
            conversations::save(&mut tx, &locked).await?;
            kinds.push(conversations::changed(&mut tx, tenant, decision.conversation_id).await?);
        }
        let events = events::append(&mut tx, tenant, now, kinds).await?;
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn retry_job_impl(
        &self,
        id: JobId,
        at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        let mut conn = self.conn().await?;
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
}
