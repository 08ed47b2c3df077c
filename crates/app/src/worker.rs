//! `app::worker`: runs durable jobs. A job is a row written in the same transaction as the
//! message that caused it, so a crash between "stored" and "processed" only delays the work:
//! the job's lease expires and this or another node runs it.
//!
//! Processing loads the current state, takes the decision with pure code, and commits the
//! decision, its outbound messages and the job's completion together. Decisions of a batch of
//! claimed jobs commit in ONE transaction (`Store::apply_decisions`): the machine manages
//! about 1,000 fsyncs a second, and one transaction per job also competed with the ingest
//! writer for SQLite's single write lock. A failing batch is applied one by one, so one bad
//! decision never loses the others.
//!
//! Reads are batched the same way: the conversations, channels, bot sessions and messages a
//! batch's decisions need come from [`Store::decision_inputs`], a few statements per tenant
//! per batch instead of five or six per job. Channels are read with each batch rather than
//! cached: a changed channel setting (its default flow, its welcome message) applies to the
//! very next batch on every node, with no invalidation to get wrong, for one statement per
//! batch. Tenants' privacy settings stay cached for a few seconds (`crate::privacy`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchboard_core::ports::{
    Clock, Decision, DecisionInputs, FlowEffects, Job, JobKind, Lane, NewOutbound, Store,
    StoreError,
};
use switchboard_core::{Content, ConversationId, MessageId, Sender, TenantId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::EventBus;
use crate::flows_runtime::{FlowRuntime, Trigger};

/// The job worker.
pub struct JobWorker {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Where events go after commit.
    pub bus: Arc<dyn EventBus>,
    /// Lease on claimed jobs.
    pub lease: Duration,
    /// This node's name.
    pub node: String,
    /// Woken when jobs are enqueued.
    pub wake: Arc<Notify>,
    /// Woken when outbound messages are enqueued.
    pub wake_sender: Arc<Notify>,
    /// Runs bot flows.
    pub flows: Arc<FlowRuntime>,
    /// Privacy commands typed in the chat, erasure jobs and retention purges.
    pub privacy: Arc<crate::privacy::Privacy>,
    /// The time jobs are due against (tests move it forward to fire flow timers).
    pub clock: Arc<dyn Clock>,
    /// Downloads inbound media (`JobKind::DownloadMedia`).
    pub media: Arc<crate::media::MediaFetcher>,
}

/// Jobs claimed (and so decided and committed) together. One batch is one transaction, so
/// this bounds the work a failing batch redoes one by one; 64 keeps a batch's commit well
/// under the ingest writer's (up to 512 messages) while amortising the fsync over many jobs.
const CLAIM_BATCH: u32 = 64;

/// Decisions taken at the same time within a batch. Each takes a few reads (and perhaps a
/// flow HTTP call); overlapping them hides that latency, but the SQLite pool has 8
/// connections and the ingest writer must always find one, so only half of them are used.
const DECIDE_CONCURRENCY: usize = 4;

/// A decision waiting for its batch's commit.
type Taken = (Job, Decision, FlowEffects);

impl JobWorker {
    /// Runs until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let jobs = match self
                .store
                .claim_jobs(&self.node, self.clock.now(), self.lease, CLAIM_BATCH)
                .await
            {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "claiming jobs failed");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            self.run_batch(jobs).await;
        }
        tracing::debug!("job worker stopped");
    }

    /// Decides every claimed job (pure code, reads, flow HTTP calls), then commits all the
    /// decisions in one transaction. Claimed jobs belong to distinct conversations (storage
    /// lets only a conversation's oldest job be claimed), except flow timers; a timer and a
    /// message of one conversation in the same batch make the session write of one of them
    /// stale, which fails the batch, and the one-by-one fallback then retries only that job.
    async fn run_batch(&self, jobs: Vec<Job>) {
        // Media downloads are IO, not decisions: they run beside the batch and commit on
        // their own (`crate::media`).
        let (downloads, jobs): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| {
            matches!(
                j.kind,
                JobKind::DownloadMedia { .. }
                    | JobKind::RetentionPurge
                    | JobKind::EraseContact { .. }
            )
        });
        let downloads = futures::stream::iter(downloads)
            .map(|job| async move {
                let result = match &job.kind {
                    JobKind::RetentionPurge => self.privacy.run_purge_job(&job).await.map(|_| ()),
                    JobKind::EraseContact { .. } => self.privacy.run_erase_job(&job).await,
                    _ => self.media.run(&job).await,
                };
                if let Err(e) = result {
                    self.retry(&job, &e).await;
                }
            })
            .buffer_unordered(DECIDE_CONCURRENCY)
            .collect::<Vec<()>>();
        let _ = tokio::join!(downloads, self.decide_batch(jobs));
    }

    /// Decides and commits a batch of decision jobs (see [`JobWorker::run_batch`]). What the
    /// decisions read (conversations, channels, bot sessions, messages) is read for the whole
    /// batch at once, a few statements per tenant ([`Store::decision_inputs`]), not several
    /// per job. A customer's privacy command (STOP, START, "my data", "forget me", yes/no) is
    /// answered first, in every conversation state, and committed on its own.
    async fn decide_batch(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let (inputs, jobs) = self.read_inputs(jobs).await;
        let inputs = &inputs;
        let checked: Vec<(Job, anyhow::Result<Option<Vec<switchboard_core::Event>>>)> =
            futures::stream::iter(jobs)
                .map(|job| async move {
                    let message = job_message(&job)
                        .and_then(|m| inputs.get(&job.tenant_id).and_then(|i| i.messages.get(&m)));
                    let r = self.privacy.handle_command(&job, message).await;
                    (job, r)
                })
                .buffered(DECIDE_CONCURRENCY)
                .collect()
                .await;
        let mut jobs = Vec::with_capacity(checked.len());
        let mut commands = 0;
        for (job, result) in checked {
            match result {
                Ok(None) => jobs.push(job),
                Ok(Some(events)) => {
                    commands += 1;
                    self.bus.publish(&events);
                    self.wake_sender.notify_one();
                    // An approved self-service erasure is a job of its own.
                    self.wake.notify_one();
                }
                Err(e) => self.retry(&job, &e).await,
            }
        }
        if jobs.is_empty() {
            return;
        }
        // A command changed its conversation (STOP ends the bot) after the batch was read;
        // a flow timer of that conversation in the same batch must see the change. Commands
        // are rare, so the batch is simply read again.
        let reread;
        let inputs = if commands > 0 {
            let (again, kept) = self.read_inputs(jobs).await;
            jobs = kept;
            reread = again;
            &reread
        } else {
            inputs
        };
        let decided: Vec<(Job, anyhow::Result<(Decision, FlowEffects)>)> =
            futures::stream::iter(jobs)
                .map(|job| async move {
                    let r = match inputs.get(&job.tenant_id) {
                        Some(read) => self.decide(&job, read).await,
                        None => Err(anyhow::anyhow!("the job's inputs were not read")),
                    };
                    (job, r)
                })
                .buffered(DECIDE_CONCURRENCY)
                .collect()
                .await;
        let mut taken: Vec<Taken> = Vec::with_capacity(decided.len());
        for (job, result) in decided {
            match result {
                Ok((decision, effects)) => taken.push((job, decision, effects)),
                Err(e) => self.retry(&job, &e).await,
            }
        }
        if taken.len() > 1 {
            let batch = taken
                .iter()
                .map(|(_, d, e)| (d.clone(), e.clone()))
                .collect();
            match self.store.apply_decisions(batch, self.clock.now()).await {
                Ok(events) => {
                    let sends = taken.iter().any(|(_, d, _)| !d.outbound.is_empty());
                    for e in &events {
                        self.bus.publish(e);
                    }
                    if sends {
                        self.wake_sender.notify_one();
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, jobs = taken.len(), "batch of decisions failed; applying them one by one");
                }
            }
        }
        for (job, decision, effects) in taken {
            let sends = !decision.outbound.is_empty();
            match self
                .store
                .apply_flow_decision(decision, effects, self.clock.now())
                .await
            {
                Ok(events) => {
                    self.bus.publish(&events);
                    if sends {
                        self.wake_sender.notify_one();
                    }
                }
                Err(StoreError::Conflict(m)) => {
                    self.retry(&job, &anyhow::anyhow!("{m}; the job will run again"))
                        .await
                }
                Err(e) => self.retry(&job, &e.into()).await,
            }
        }
    }

    /// Reads what a batch's decisions need, per tenant ([`Store::decision_inputs`]). The jobs
    /// of a tenant whose read failed are put back to run again; the others are returned.
    async fn read_inputs(&self, jobs: Vec<Job>) -> (HashMap<TenantId, DecisionInputs>, Vec<Job>) {
        let mut wanted: BTreeMap<TenantId, (Vec<ConversationId>, Vec<MessageId>)> = BTreeMap::new();
        for job in &jobs {
            let (conversations, messages) = wanted.entry(job.tenant_id).or_default();
            conversations.extend(job_conversation(job));
            messages.extend(job_message(job));
        }
        let mut inputs = HashMap::with_capacity(wanted.len());
        for (tenant, (conversations, messages)) in wanted {
            match self
                .store
                .decision_inputs(tenant, &conversations, &messages)
                .await
            {
                Ok(read) => {
                    inputs.insert(tenant, read);
                }
                Err(e) => {
                    tracing::error!(%tenant, error = %e, "reading a batch's decision inputs failed");
                }
            }
        }
        let mut kept = Vec::with_capacity(jobs.len());
        for job in jobs {
            if inputs.contains_key(&job.tenant_id) {
                kept.push(job);
            } else {
                self.retry(&job, &anyhow::anyhow!("its inputs could not be read"))
                    .await;
            }
        }
        (inputs, kept)
    }

    /// Puts a failed job back with exponential backoff.
    async fn retry(&self, job: &Job, e: &anyhow::Error) {
        let delay = Duration::from_secs(2u64.saturating_pow(job.attempts.clamp(0, 8) as u32));
        tracing::error!(job_id = %job.id, error = %format!("{e:#}"), ?delay, "job failed; will retry");
        if let Err(e2) = self
            .store
            .retry_job(job.id, self.clock.now() + delay, &format!("{e:#}"))
            .await
        {
            tracing::error!(job_id = %job.id, error = %e2, "could not reschedule job; its lease will expire");
        }
    }

    /// Takes the decision for one job without committing it, from what was read for its
    /// batch (`read`).
    async fn decide(
        &self,
        job: &Job,
        read: &DecisionInputs,
    ) -> anyhow::Result<(Decision, FlowEffects)> {
        let Some(conversation_id) = job_conversation(job) else {
            anyhow::bail!(
                "a {} job is not a decision (run_batch routes it)",
                job.kind.tag()
            )
        };
        let conv = read
            .conversations
            .get(&conversation_id)
            .ok_or_else(|| anyhow::anyhow!("conversation {conversation_id} is gone"))?;
        let channel = read
            .channels
            .get(&conv.conversation.channel_id)
            .ok_or_else(|| anyhow::anyhow!("channel of conversation {conversation_id} is gone"))?;
        let message = job_message(job).and_then(|m| read.messages.get(&m));
        // The bot answers conversations in state `bot`; timers and staff-started flows are
        // the flow runtime's too (it ignores a timer whose conversation left the bot).
        let trigger = match &job.kind {
            JobKind::ProcessInbound { message_id, .. }
                if conv.conversation.state == switchboard_core::ConversationState::Bot =>
            {
                Some(Trigger::Message(*message_id))
            }
            // A brand-new conversation that started `queued` (the channel has no default
            // flow) can still be started by a keyword; otherwise people's conversations stay
            // theirs (an ongoing queued or assigned one never even gets a job).
            JobKind::ProcessInbound {
                new_conversation: true,
                ..
            } if conv.conversation.state == switchboard_core::ConversationState::Queued
                && conv.conversation.assignee.is_none() =>
            {
                self.flows
                    .keyword_flow(job.tenant_id, conversation_id, channel, message)
                    .await?
                    .map(Trigger::Keyword)
            }
            JobKind::ProcessInbound { .. } => None,
            JobKind::FlowTimeout { .. } => Some(Trigger::Timeout),
            JobKind::DownloadMedia { .. }
            | JobKind::RetentionPurge
            | JobKind::EraseContact { .. } => None,
            JobKind::StartFlow { flow_id, .. } => Some(Trigger::Start(flow_id.clone())),
        };
        if let Some(trigger) = trigger {
            let session = read.sessions.get(&conversation_id);
            return self
                .flows
                .decide(job, conv, channel, trigger, session, message)
                .await;
        }
        let outbound = match &job.kind {
            JobKind::ProcessInbound {
                new_conversation, ..
            } => decide_inbound(
                *new_conversation,
                channel.settings.welcome_message.as_deref(),
            ),
            JobKind::FlowTimeout { .. }
            | JobKind::StartFlow { .. }
            | JobKind::DownloadMedia { .. }
            | JobKind::RetentionPurge
            | JobKind::EraseContact { .. } => Vec::new(),
        };
        let decision = Decision {
            job_id: job.id,
            tenant_id: job.tenant_id,
            conversation_id,
            new_state: None,
            outbound,
        };
        Ok((decision, FlowEffects::default()))
    }
}

/// The conversation a decision job is about (`None` for jobs that are no decision).
fn job_conversation(job: &Job) -> Option<ConversationId> {
    match &job.kind {
        JobKind::ProcessInbound {
            conversation_id, ..
        }
        | JobKind::FlowTimeout { conversation_id }
        | JobKind::StartFlow {
            conversation_id, ..
        } => Some(*conversation_id),
        JobKind::DownloadMedia { .. } | JobKind::RetentionPurge | JobKind::EraseContact { .. } => {
            None
        }
    }
}

/// The customer message a job is about, if it is about one.
fn job_message(job: &Job) -> Option<MessageId> {
    match &job.kind {
        JobKind::ProcessInbound { message_id, .. } => Some(*message_id),
        _ => None,
    }
}

/// What to send after a customer message. Until flows take over (the self-service issue),
/// a new conversation gets the channel's welcome message, which tells the customer which
/// business answers and that an automated assistant speaks first.
fn decide_inbound(new_conversation: bool, welcome: Option<&str>) -> Vec<NewOutbound> {
    match welcome {
        Some(text) if new_conversation && !text.trim().is_empty() => vec![NewOutbound {
            sender: Sender::Bot,
            content: Content::text(text),
            lane: Lane::Live,
        }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_conversations_get_the_welcome_message() {
        let cases = [
            (
                true,
                Some("Hi, ACME's assistant here"),
                1,
                "new conversation",
            ),
            (false, Some("Hi"), 0, "ongoing conversation"),
            (true, None, 0, "no welcome configured"),
            (true, Some("  "), 0, "blank welcome"),
        ];
        for (new, welcome, n, why) in cases {
            assert_eq!(decide_inbound(new, welcome).len(), n, "{why}");
        }
    }
}
