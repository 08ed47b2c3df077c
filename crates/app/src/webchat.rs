//! Delivery to connected web chat pages.
//!
//! Each open customer page registers here under its conversation. The sender worker hands
//! outbound web chat messages to [`WebchatHub::deliver`], which pushes them to every tab of
//! that conversation; a page that is not connected gets the message from history when it
//! comes back, so delivery to the hub counts as "sent".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_channels::webchat::ServerFrame;
use switchboard_core::ConversationId;
use tokio::sync::mpsc;

type Tabs = Vec<(u64, mpsc::Sender<ServerFrame>)>;

/// Registry of open web chat sockets by conversation.
#[derive(Clone, Default)]
pub struct WebchatHub {
    // A std Mutex: it is held only to clone or edit the map, never across an `.await`.
    inner: Arc<Mutex<(u64, HashMap<ConversationId, Tabs>)>>,
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

    /// Pushes a frame to every open page of `conversation`; returns how many received it.
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
