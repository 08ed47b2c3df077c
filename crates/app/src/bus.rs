//! The event bus: how committed events reach live pages.
//!
//! Events are written to the database in the same transaction as the change they describe;
//! the bus only carries notifications of them. A subscriber that falls behind (a lagged
//! broadcast receiver) or reconnects reads the gap back from storage with
//! `Store::events_after`, so the bus may drop notifications without losing events. This is
//! what lets a NATS JetStream implementation (several nodes) slot in behind the same trait.

use std::sync::Arc;

use switchboard_core::Event;
use tokio::sync::broadcast;

/// Publishes committed events and hands out subscriptions.
pub trait EventBus: Send + Sync + 'static {
    /// Announces events that are already committed.
    fn publish(&self, events: &[Event]);
    /// A receiver of every event published from now on (all tenants; filter by tenant).
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
}

/// The single-process bus: a tokio broadcast channel.
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl InProcessBus {
    /// A bus that buffers up to `capacity` events per slow subscriber before it lags.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, events: &[Event]) {
        for e in events {
            // No receivers is fine: nobody is watching.
            let _ = self.tx.send(Arc::new(e.clone()));
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
