//! Delivery to connected web chat pages, on this node and on the others.
//!
//! Each open customer page registers here under its conversation. The sender worker hands
//! outbound web chat messages to [`WebchatHub::deliver_message`], which pushes them to every
//! tab of that conversation on this node and, when several nodes run, hands them to the
//! [`WebchatRelay`] (NATS, `bus_nats::WebchatNatsRelay`) for the tabs connected to other nodes:
//! the sender that claims an agent's reply may run on any node, while the customer's socket
//! is on one. A page that is not connected (or misses a relayed frame during a NATS outage)
//! gets the message from history when it comes back, so delivery to the hub counts as "sent".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_channels::webchat::{ChatMessage, ServerFrame};
use switchboard_core::{ConversationId, Message};
use tokio::sync::mpsc;

type Tabs = Vec<(u64, mpsc::Sender<ServerFrame>)>;

/// Carries messages to the web chat pages connected to the other nodes.
pub trait WebchatRelay: Send + Sync + 'static {
    /// Announces `message` to the other nodes (fire and forget; must not block).
    fn publish(&self, message: &Message);
}

/// Registry of open web chat sockets by conversation.
#[derive(Clone, Default)]
pub struct WebchatHub {
    // A std Mutex: it is held only to clone or edit the map, never across an `.await`.
    inner: Arc<Mutex<(u64, HashMap<ConversationId, Tabs>)>>,
    relay: Arc<std::sync::OnceLock<Arc<dyn WebchatRelay>>>,
}

/// Removes the registration when the socket handler ends.
pub struct Registration {
    hub: WebchatHub,
    conversation: ConversationId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut guard = self.hub.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tabs) = guard.1.get_mut(&self.conversation) {
            tabs.retain(|(id, _)| *id != self.id);
            if tabs.is_empty() {
                guard.1.remove(&self.conversation);
            }
        }
    }
}

impl WebchatHub {
    /// Registers a page of `conversation`; frames for it arrive on `tx`.
    pub fn register(
        &self,
        conversation: ConversationId,
        tx: mpsc::Sender<ServerFrame>,
    ) -> Registration {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0 += 1;
        let id = guard.0;
        guard.1.entry(conversation).or_default().push((id, tx));
        Registration {
            hub: self.clone(),
            conversation,
            id,
        }
    }

    /// Sends messages to the other nodes' pages through `relay` from now on (set once, at
    /// start-up, when several nodes share NATS).
    pub fn set_relay(&self, relay: Arc<dyn WebchatRelay>) {
        let _ = self.relay.set(relay);
    }

    /// Shows `message` on every open page of its conversation, on this node and (through the
    /// relay) on the others; returns how many pages of this node received it.
    pub fn deliver_message(&self, message: &Message) -> usize {
        let local = self.deliver(
            message.conversation_id,
            &ServerFrame::Message {
                message: ChatMessage::from(message),
            },
        );
        if let Some(relay) = self.relay.get() {
            relay.publish(message);
        }
        local
    }

    /// Pushes a frame to every open page of `conversation` on this node; returns how many
    /// received it.
    pub fn deliver(&self, conversation: ConversationId, frame: &ServerFrame) -> usize {
        let tabs: Tabs = {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.1.get(&conversation).cloned().unwrap_or_default()
        };
        tabs.iter()
            .filter(|(_, tx)| tx.try_send(frame.clone()).is_ok())
            .count()
    }

    /// Number of open pages (for metrics and tests).
    pub fn connected(&self) -> usize {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.values().map(Vec::len).sum()
    }
}
