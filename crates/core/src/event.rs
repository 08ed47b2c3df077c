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
    /// An internal note was added (staff only; never sent to the customer).
    NoteAdded {
        /// The note.
        note: crate::routing::Note,
    },
    /// An agent's presence, capacity, skills or queues changed.
    AgentChanged {
        /// The agent's routing settings now.
        agent: crate::routing::AgentSettings,
    },
    /// A queue was created, changed or deleted.
    QueueChanged {
        /// The queue (as it was, when deleted).
        queue: crate::routing::QueueRecord,
        /// Whether it was deleted.
        deleted: bool,
    },
    /// A conversation is about to miss (warning) or missed (breach) an SLA target.
    SlaAlert {
        /// The conversation.
        conversation_id: ConversationId,
        /// The queue whose target applies.
        queue_id: crate::QueueId,
        /// `first_response` or `resolution`.
        target: String,
        /// Breach (true) or warning (false).
        breach: bool,
        /// When the target is or was due.
        #[serde(with = "time::serde::rfc3339")]
        due_at: Timestamp,
    },
}

impl EventKind {
    /// The conversation this event concerns (`None` for agent and queue events).
    pub fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            EventKind::MessageCreated { message } => Some(message.conversation_id),
            EventKind::MessageStatus {
                conversation_id, ..
            }
            | EventKind::SlaAlert {
                conversation_id, ..
            } => Some(*conversation_id),
            EventKind::ConversationChanged { conversation } => Some(conversation.conversation.id),
            EventKind::NoteAdded { note } => Some(note.conversation_id),
            EventKind::AgentChanged { .. } | EventKind::QueueChanged { .. } => None,
        }
    }

    /// The stable snake_case name of the event type (the `type` field of its JSON).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::MessageCreated { .. } => "message_created",
            EventKind::MessageStatus { .. } => "message_status",
            EventKind::ConversationChanged { .. } => "conversation_changed",
            EventKind::NoteAdded { .. } => "note_added",
            EventKind::AgentChanged { .. } => "agent_changed",
            EventKind::QueueChanged { .. } => "queue_changed",
            EventKind::SlaAlert { .. } => "sla_alert",
        }
    }
}
