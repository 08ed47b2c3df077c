//! `app::sender`: the one way out. Claims outbox rows and hands each to the transport of
//! its channel kind, then records the outcome; the outcomes of sends that finish together
//! are recorded in one transaction (`Store::outbox_sent_many`), and the next rows are
//! claimed while a batch is still waiting on a rate-held channel.
//!
//! Ordering and exclusivity come from storage: `claim_outbox` returns at most one row per
//! conversation (the oldest unsent) and leases it, so replies leave in the order they were
//! written and two nodes never send the same row while both are healthy. A node that dies
//! mid-send lets its lease expire and another node sends the row again (at-least-once toward
//! the provider, with the outbox row's idempotency key for the provider to spot it).
//!
//! Guards every row, whatever wrote it (agent reply, flow message, template, campaign): a
//! recipient known to be unreachable (they blocked the bot) fails at once without a provider
//! call. Parts of a split message accepted before a failure are recorded on the row, so the
//! retry sends only the rest. A transport that reports the channel account itself refused
//! (revoked token) pauses the channel: its rows stay queued until it is resumed. A wait
//! imposed by this node's own rate limiter is not an attempt: the row is put back for when
//! the limiter allows, with its attempt count unchanged (only provider refusals count).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use switchboard_core::ports::{OutboxItem, Store};
use switchboard_core::retry::{RetryDecision, RetryPolicy};
use switchboard_core::{ChannelKind, ErrorClass, OutboxId, SendFailure};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::EventBus;
use crate::webchat::WebchatHub;
use crate::{auth, now};

/// Why one attempt to send failed.
#[derive(Debug, Clone)]
pub struct AttemptError {
    /// Classified failure (decides retry or not).
    pub failure: SendFailure,
    /// Provider-imposed wait before the next attempt (HTTP 429 `retry_after`).
    pub retry_after: Option<Duration>,
    /// Provider ids of the parts of a split message accepted in this attempt before it
    /// failed; the next attempt skips them.
    pub sent_parts: Vec<String>,
    /// The provider refused the channel account itself (token revoked or expired): pause
    /// the channel with `failure.reason` and keep the row queued instead of failing it.
    pub pause_channel: bool,
    /// Nothing was sent: this node's own rate limiter said the row's turn is `retry_after`
    /// from now. Not an attempt: the row is put back for then without counting toward
    /// `max_attempts` (only the provider's refusals, e.g. a 429 or a 5xx, count).
    pub deferred: bool,
}

impl AttemptError {
    /// A failure of this message alone.
    pub fn new(failure: SendFailure, retry_after: Option<Duration>) -> Self {
        AttemptError {
            failure,
            retry_after,
            sent_parts: Vec::new(),
            pause_channel: false,
            deferred: false,
        }
    }

    /// The local rate limiter's answer: try again after `wait`, no attempt counted.
    pub fn deferred(failure: SendFailure, wait: Duration) -> Self {
        AttemptError {
            deferred: true,
            ..AttemptError::new(failure, Some(wait))
        }
    }
}

/// Sends one outbox item over one kind of channel.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends; returns the provider's id for the message when it assigns one.
    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, AttemptError>;
}

/// Web chat transport: pushes the message to the customer's open pages.
pub struct WebchatTransport {
    hub: WebchatHub,
}

impl WebchatTransport {
    /// A transport delivering through `hub`.
    pub fn new(hub: WebchatHub) -> Self {
        Self { hub }
    }
}

#[async_trait]
impl Transport for WebchatTransport {
    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, AttemptError> {
        // This node's pages and, through the relay, the other nodes' ones.
        self.hub.deliver_message(&item.message);
        Ok(None)
    }
}

/// Transports by channel kind.
pub type Transports = HashMap<ChannelKind, Arc<dyn Transport>>;

/// The sender worker.
pub struct Sender {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Where events go after commit.
    pub bus: Arc<dyn EventBus>,
    /// How to reach each channel kind.
    pub transports: Transports,
    /// Retry policy.
    pub policy: RetryPolicy,
    /// Lease on claimed rows.
    pub lease: Duration,
    /// This node's name (lease owner).
    pub node: String,
    /// Woken when new rows are enqueued.
    pub wake: Arc<Notify>,
}

/// Outbox rows claimed at once. The claim itself is a write, so larger claims mean fewer of
/// them; 64 rows keep one batch's sends and its recording transaction short.
const CLAIM_BATCH: u32 = 64;

/// Claimed batches whose sends may be in flight at once. A batch waiting on a rate-held
/// channel (WhatsApp's 80/s drains 64 rows in 0.8 s) must not stop the sender from claiming
/// the next rows, for that channel's limiter queue or for other channels; four batches keep
/// the limiters fed without claiming (and leasing) far more than can be sent in a lease.
const BATCHES_IN_FLIGHT: usize = 4;

impl Sender {
    /// Runs until `shutdown`, finishing the batches in hand first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            if in_flight.len() >= BATCHES_IN_FLIGHT {
                tokio::select! {
                    _ = in_flight.join_next() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let claimed = match this
                .store
                .claim_outbox(&this.node, now(), this.lease, CLAIM_BATCH)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "claiming outbox rows failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                // Poll now and then too: retries become due without anyone waking us.
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let me = this.clone();
            in_flight.spawn(async move { me.send_batch(claimed).await });
        }
        while in_flight.join_next().await.is_some() {}
        tracing::debug!("sender stopped");
    }

    /// Sends a claimed batch concurrently (each row goes through its channel's limiter) and
    /// records the outcomes as they arrive: every send that has finished by the time the
    /// previous record committed is recorded in one transaction, so a fast channel's rows
    /// are recorded together while a rate-held row never delays the others' records (the
    /// window between "sent" and "recorded", where a crash means a resend, stays short).
    async fn send_batch(&self, claimed: Vec<OutboxItem>) {
        let refused = self.opted_out(&claimed).await;
        let refused = &refused;
        let mut pending: futures::stream::FuturesUnordered<_> = claimed
            .iter()
            .map(|item| async move {
                match refused.get(&item.message.conversation_id) {
                    Some(failure) => (item, Err(AttemptError::new(failure.clone(), None))),
                    None => (item, self.attempt(item).await),
                }
            })
            .collect();
        while let Some(first) = pending.next().await {
            let mut done = vec![first];
            while let Some(Some(more)) = pending.next().now_or_never() {
                done.push(more);
            }
            let mut sent = Vec::with_capacity(done.len());
            for (item, result) in done {
                match result {
                    Ok(provider_id) => sent.push((item.id, provider_id)),
                    Err(err) => {
                        let outcome = self.record_failure(item, err).await;
                        self.publish(item, outcome);
                    }
                }
            }
            self.record_sent(&sent).await;
            // The next row of these conversations may be sendable now.
            self.wake.notify_one();
        }
    }

    /// The consent check every proactive message passes (bulk lane, templates:
    /// `privacy::is_proactive`), whoever queued it: conversations of the batch whose contact
    /// opted out on that channel, with the failure their proactive rows get. Checked at send
    /// time, so a campaign queued before the customer's STOP still never goes. When the check
    /// itself fails, proactive rows are put back for later rather than sent unchecked.
    async fn opted_out(
        &self,
        claimed: &[OutboxItem],
    ) -> std::collections::HashMap<switchboard_core::ConversationId, SendFailure> {
        let proactive: Vec<switchboard_core::ConversationId> = claimed
            .iter()
            .filter(|i| switchboard_core::privacy::is_proactive(i.lane, &i.message.content))
            .map(|i| i.message.conversation_id)
            .collect();
        if proactive.is_empty() {
            return Default::default();
        }
        match self.store.opted_out_conversations(&proactive).await {
            Ok(ids) => ids
                .into_iter()
                .map(|c| {
                    (
                        c,
                        SendFailure {
                            class: ErrorClass::Permanent,
                            code: Some("opted_out".into()),
                            reason: "the customer opted out of proactive messages on this channel (they typed STOP); only replies to their own messages go out until they type START".into(),
                        },
                    )
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "consent check failed; proactive messages wait");
                proactive
                    .into_iter()
                    .map(|c| {
                        (
                            c,
                            SendFailure {
                                class: ErrorClass::RetryLater,
                                code: Some("consent_check_failed".into()),
                                reason: "the consent check could not run; retrying later".into(),
                            },
                        )
                    })
                    .collect()
            }
        }
    }

    /// Records successful sends: in one transaction, or one by one when that fails (a row
    /// whose lease expired and that another node completed must not lose the others).
    async fn record_sent(&self, sent: &[(OutboxId, Option<String>)]) {
        if sent.len() > 1 {
            match self.store.outbox_sent_many(sent, now()).await {
                Ok(events) => {
                    self.bus.publish(&events);
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, rows = sent.len(), "recording a batch of sends failed; recording them one by one")
                }
            }
        }
        for (id, provider_id) in sent {
            match self
                .store
                .outbox_sent(*id, provider_id.as_deref(), now())
                .await
            {
                Ok(event) => self.bus.publish(std::slice::from_ref(&event)),
                Err(e) => {
                    tracing::error!(error = %e, outbox_id = %id, "recording a send failed; the lease will expire and the row will be retried")
                }
            }
        }
    }

    fn publish(
        &self,
        item: &OutboxItem,
        outcome: Result<Vec<switchboard_core::Event>, switchboard_core::ports::StoreError>,
    ) {
        match outcome {
            Ok(events) => self.bus.publish(&events),
            Err(e) => {
                tracing::error!(error = %e, outbox_id = %item.id, "recording a send outcome failed; the lease will expire and the row will be retried")
            }
        }
    }

    /// One attempt through the row's channel transport, unless the recipient is known to be
    /// unreachable on this channel.
    async fn attempt(&self, item: &OutboxItem) -> Result<Option<String>, AttemptError> {
        if let Some(reason) = &item.recipient_unreachable {
            return Err(AttemptError::new(
                SendFailure {
                    class: ErrorClass::Unreachable,
                    code: Some("recipient_unreachable".into()),
                    reason: reason.clone(),
                },
                None,
            ));
        }
        match self.transports.get(&item.channel.kind) {
            Some(t) => t.send(item).await,
            None => Err(AttemptError::new(
                SendFailure {
                    class: ErrorClass::Permanent,
                    code: None,
                    reason: format!(
                        "this server cannot send on {} channels yet",
                        item.channel.kind
                    ),
                },
                None,
            )),
        }
    }

    /// Pauses the row's channel (the provider refused the account) and puts the row back in
    /// the queue: it is not claimed again until the channel is resumed.
    async fn pause_channel(
        &self,
        item: &OutboxItem,
        failure: &SendFailure,
    ) -> Result<(), switchboard_core::ports::StoreError> {
        let ch = &item.channel;
        if ch.paused.is_none() {
            tracing::error!(channel_id = %ch.id, kind = %ch.kind, code = ?failure.code, reason = %failure.reason, "the provider refused this channel account; sending on it is paused until its credentials are updated or re-tested (switchboard channels resume)");
        }
        self.store
            .set_channel_pause(ch.tenant_id, ch.id, Some(&failure.reason), now())
            .await?;
        self.store.outbox_retry(item.id, now(), failure).await
    }

    async fn record_failure(
        &self,
        item: &OutboxItem,
        err: AttemptError,
    ) -> Result<Vec<switchboard_core::Event>, switchboard_core::ports::StoreError> {
        if !err.sent_parts.is_empty() {
            // Recorded before anything else: whatever happens next, these parts are not
            // sent again.
            self.store
                .outbox_parts_sent(item.id, &err.sent_parts)
                .await?;
        }
        if err.pause_channel {
            self.pause_channel(item, &err.failure).await?;
            return Ok(Vec::new());
        }
        if err.deferred {
            // The limiter's wait, not a failure: same attempts, no backoff, no error shown.
            let wait = err.retry_after.unwrap_or(Duration::from_millis(50));
            tracing::debug!(outbox_id = %item.id, ?wait, "waiting for the channel's send rate");
            self.store.outbox_defer(item.id, now() + wait).await?;
            return Ok(Vec::new());
        }
        let attempt = u32::try_from(item.attempts).unwrap_or(0) + 1;
        if err.failure.class.is_retryable() {
            match self.policy.next(attempt, auth::jitter(), err.retry_after) {
                RetryDecision::After(delay) => {
                    tracing::warn!(outbox_id = %item.id, attempt, ?delay, reason = %err.failure.reason, "send failed; will retry");
                    self.store
                        .outbox_retry(item.id, now() + delay, &err.failure)
                        .await?;
                    return Ok(Vec::new());
                }
                RetryDecision::GiveUp => {
                    let failure = SendFailure {
                        reason: format!("gave up after {attempt} attempts: {}", err.failure.reason),
                        ..err.failure
                    };
                    return Ok(vec![
                        self.store.outbox_failed(item.id, &failure, now()).await?,
                    ]);
                }
            }
        }
        Ok(vec![
            self.store
                .outbox_failed(item.id, &err.failure, now())
                .await?,
        ])
    }
}

impl crate::App {
    /// An agent's retry of a failed outbound message: the SAME message and outbox row go
    /// back to the queue (status `queued`, attempts reset, failure cleared) and the sender
    /// delivers it as if new, so the customer gets it once and the history keeps one
    /// message. The checks of a reply apply first (conversation open, WhatsApp's 24 h
    /// window for free-form text, customer reachable and not opted out of templates), so a
    /// retry that would fail again is refused before anything changes: `NotFound` for a
    /// message not in this conversation, `Conflict` unless it is an outbound failed one.
    pub async fn retry_message(
        &self,
        staff: &switchboard_core::User,
        conversation: switchboard_core::ConversationId,
        message: switchboard_core::MessageId,
    ) -> crate::services::ServiceResult<switchboard_core::Message> {
        use crate::services::ServiceError;
        let found = self
            .store
            .message(staff.tenant_id, message)
            .await?
            .filter(|m| m.conversation_id == conversation)
            .ok_or(ServiceError::NotFound("message"))?;
        if found.direction != switchboard_core::Direction::Outbound
            || found.status != switchboard_core::DeliveryStatus::Failed
        {
            return Err(ServiceError::Conflict(format!(
                "only a failed message sent to the customer can be sent again; this one is {} {}",
                found.direction.as_str(),
                found.status.as_str()
            )));
        }
        let conv = self
            .check_reply(staff, conversation, &found.content)
            .await?;
        if conv.conversation.assignee.is_none() {
            // As for a reply: sending takes the conversation, under routing's rules.
            self.assign_to(staff, conversation, None, false).await?;
        }
        let event = self
            .store
            .outbox_requeue(staff.tenant_id, message, now())
            .await?;
        tracing::info!(tenant_id = %staff.tenant_id, user_id = %staff.id, message_id = %message, previous = ?found.failure, "failed message queued again by staff");
        self.bus.publish(std::slice::from_ref(&event));
        self.wake_sender();
        Ok(switchboard_core::Message {
            status: switchboard_core::DeliveryStatus::Queued,
            failure: None,
            provider_id: None,
            ..found
        })
    }
}
