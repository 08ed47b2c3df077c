//! `app::sender`: the one way out. Claims outbox rows and hands each to the transport of
//! its channel kind, then records the outcome.
//!
//! Ordering and exclusivity come from storage: `claim_outbox` returns at most one row per
//! conversation (the oldest unsent) and leases it, so replies leave in the order they were
//! written and two nodes never send the same row while both are healthy. A node that dies
//! mid-send lets its lease expire and another node sends the row again (at-least-once toward
//! the provider, with the outbox row's idempotency key for the provider to spot it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_channels::webchat::{ChatMessage, ServerFrame};
use switchboard_core::ports::{OutboxItem, Store};
use switchboard_core::retry::{RetryDecision, RetryPolicy};
use switchboard_core::{ChannelKind, ErrorClass, SendFailure};
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
        let frame = ServerFrame::Message {
            message: ChatMessage::from(&item.message),
        };
        self.hub.deliver(item.message.conversation_id, &frame);
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

impl Sender {
    /// Runs until `shutdown`, finishing the batch in hand first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let claimed = match self
                .store
                .claim_outbox(&self.node, now(), self.lease, 64)
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
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let sends = claimed.iter().map(|item| self.send_one(item));
            futures::future::join_all(sends).await;
        }
        tracing::debug!("sender stopped");
    }

    async fn send_one(&self, item: &OutboxItem) {
        let result = match self.transports.get(&item.channel.kind) {
            Some(t) => t.send(item).await,
            None => Err(AttemptError {
                failure: SendFailure {
                    class: ErrorClass::Permanent,
                    code: None,
                    reason: format!(
                        "this server cannot send on {} channels yet",
                        item.channel.kind
                    ),
                },
                retry_after: None,
            }),
        };
        let outcome = match result {
            Ok(provider_id) => self
                .store
                .outbox_sent(item.id, provider_id.as_deref(), now())
                .await
                .map(|e| vec![e]),
            Err(err) => self.record_failure(item, err).await,
        };
        match outcome {
            Ok(events) => self.bus.publish(&events),
            Err(e) => {
                tracing::error!(error = %e, outbox_id = %item.id, "recording a send outcome failed; the lease will expire and the row will be retried")
            }
        }
        // The next row of this conversation may be sendable now.
        self.wake.notify_one();
    }

    async fn record_failure(
        &self,
        item: &OutboxItem,
        err: AttemptError,
    ) -> Result<Vec<switchboard_core::Event>, switchboard_core::ports::StoreError> {
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
