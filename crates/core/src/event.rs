//! Events: facts about what changed, numbered per tenant.
//!
//! Every event an agent's page receives carries the tenant's sequence number. A page that
//! reconnects sends the last number it saw and receives everything after it from storage,
//! so a flaky connection never hides a message (Zulip's event-queue model).

use serde::{Deserialize, Serialize};

use crate::{
    ConversationId, ConversationSummary, DeliveryStatus, Message, MessageId, SendFailure, TenantId,
    Timestamp,
};

/// A numbered fact about one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Owner.
    pub tenant_id: TenantId,
    /// Per-tenant sequence number, gap-free and increasing in commit order.
    pub seq: i64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
// The message variant is large, but events are built once and shared behind an `Arc` on the
// bus; boxing would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventKind {
    /// A message was stored (inbound from a customer, or outbound entering the outbox).
    MessageCreated {
        /// The message.
        message: Message,
    },
    /// A message's delivery status changed.
    MessageStatus {
        /// Which message.
        message_id: MessageId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// New status.
        status: DeliveryStatus,
        /// Failure details, when failed.
        failure: Option<SendFailure>,
        /// Provider id assigned on send.
        provider_id: Option<String>,
    },
    /// A conversation was created or changed state, assignee or last message.
    ConversationChanged {
        /// The conversation as an inbox row.
        conversation: ConversationSummary,
    },
}

impl EventKind {
    /// The conversation this event concerns.
    pub fn conversation_id(&self) -> ConversationId {
        match self {
            EventKind::MessageCreated { message } => message.conversation_id,
            EventKind::MessageStatus {
                conversation_id, ..
            } => *conversation_id,
            EventKind::ConversationChanged { conversation } => conversation.conversation.id,
        }
    }
}
