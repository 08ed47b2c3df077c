//! `app::worker`: runs durable jobs. A job is a row written in the same transaction as the
//! message that caused it, so a crash between "stored" and "processed" only delays the work:
//! the job's lease expires and this or another node runs it.
//!
//! Processing loads the current state, takes the decision with pure code, and commits the
//! decision, its outbound messages and the job's completion together (`Store::apply_decision`).

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::ports::{Decision, Job, JobKind, Lane, NewOutbound, Store};
use switchboard_core::{Content, Sender};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::EventBus;
use crate::flows_runtime::{FlowRuntime, Trigger};
use crate::now;

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
}

impl JobWorker {
    /// Runs until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let jobs = match self
                .store
                .claim_jobs(&self.node, now(), self.lease, 64)
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
            for job in jobs {
                self.run_job(job).await;
            }
        }
        tracing::debug!("job worker stopped");
    }

    async fn run_job(&self, job: Job) {
        let result = self.process(&job).await;
        match result {
            Ok(()) => {}
            Err(e) => {
                let delay =
                    Duration::from_secs(2u64.saturating_pow(job.attempts.clamp(0, 8) as u32));
                tracing::error!(job_id = %job.id, error = %format!("{e:#}"), ?delay, "job failed; will retry");
                if let Err(e2) = self
                    .store
                    .retry_job(job.id, now() + delay, &format!("{e:#}"))
                    .await
                {
                    tracing::error!(job_id = %job.id, error = %e2, "could not reschedule job; its lease will expire");
                }
            }
        }
    }

    async fn process(&self, job: &Job) -> anyhow::Result<()> {
        let conversation_id = match &job.kind {
            JobKind::ProcessInbound {
                conversation_id, ..
            }
            | JobKind::FlowTimeout { conversation_id }
            | JobKind::StartFlow {
                conversation_id, ..
            } => *conversation_id,
        };
        let conv = self
            .store
            .conversation(job.tenant_id, conversation_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("conversation {conversation_id} is gone"))?;
        let channel = self
            .store
            .channel(conv.conversation.channel_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("channel of conversation {conversation_id} is gone"))?;
        // The bot answers conversations in state `bot`; timers and staff-started flows are
        // the flow runtime's too (it ignores a timer whose conversation left the bot).
        let trigger = match &job.kind {
            JobKind::ProcessInbound { message_id, .. }
                if conv.conversation.state == switchboard_core::ConversationState::Bot =>
            {
                Some(Trigger::Message(*message_id))
            }
            JobKind::ProcessInbound { .. } => None,
            JobKind::FlowTimeout { .. } => Some(Trigger::Timeout),
            JobKind::StartFlow { flow_id, .. } => Some(Trigger::Start(flow_id.clone())),
        };
        if let Some(trigger) = trigger {
            let events = self.flows.run(job, &conv, &channel, trigger).await?;
            self.bus.publish(&events);
            self.wake_sender.notify_one();
            return Ok(());
        }
        match &job.kind {
            JobKind::ProcessInbound {
                new_conversation, ..
            } => {
                let outbound = decide_inbound(
                    *new_conversation,
                    channel.settings.welcome_message.as_deref(),
                );
                let has_outbound = !outbound.is_empty();
                let events = self
                    .store
                    .apply_decision(
                        Decision {
                            job_id: job.id,
                            tenant_id: job.tenant_id,
                            conversation_id,
                            new_state: None,
                            outbound,
                        },
                        now(),
                    )
                    .await?;
                self.bus.publish(&events);
                if has_outbound {
                    self.wake_sender.notify_one();
                }
                Ok(())
            }
            JobKind::FlowTimeout { .. } | JobKind::StartFlow { .. } => Ok(()),
        }
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
