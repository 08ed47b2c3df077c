//! Conversations and their state machine.
//!
//! ```text
//!   bot ──handoff──► queued ──assign──► assigned ──resolve──► resolved
//!    │                 ▲  └───resolve───────────────────────────▲ │
//!    └────resolve──────┼──────────────────────────────────────────┘ │
//!                      └──────── transfer_to_queue ◄── assigned     │
//!   resolved ──reopen──► queued ◄──────────────────────────────────┘
//!   queued / assigned ──start_bot──► bot      (staff start a flow)
//! ```
//! The function [`ConversationState::apply`] is the only place transitions are decided.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ChannelKind, ContactId, ConversationId, TenantId, Timestamp, UserId};

/// Where a conversation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    /// A bot flow is answering.
    Bot,
    /// Waiting for an agent.
    Queued,
    /// An agent owns it.
    Assigned,
    /// Closed.
    Resolved,
}

impl ConversationState {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Resolved => "resolved",
        }
    }

    /// The state after `t`, or an error naming why the transition is not allowed.
    pub fn apply(self, t: Transition) -> Result<ConversationState, InvalidTransition> {
        use ConversationState::*;
        let next = match (self, t) {
            (Bot, Transition::Handoff) => Queued,
            (Bot | Queued | Assigned, Transition::Assign) => Assigned,
            (Assigned, Transition::ToQueue) => Queued,
            (Bot | Queued | Assigned, Transition::Resolve) => Resolved,
            (Resolved, Transition::Reopen) => Queued,
            (Queued | Assigned, Transition::StartBot) => Bot,
            (from, t) => {
                return Err(InvalidTransition {
                    from,
                    transition: t,
                });
            }
        };
        Ok(next)
    }
}

impl fmt::Display for ConversationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversationState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bot" => Ok(Self::Bot),
            "queued" => Ok(Self::Queued),
            "assigned" => Ok(Self::Assigned),
            "resolved" => Ok(Self::Resolved),
            other => Err(format!(
                "unknown conversation state `{other}`: use bot, queued, assigned or resolved"
            )),
        }
    }
}

/// Something that moves a conversation between states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The bot hands the customer to people.
    Handoff,
    /// An agent takes it (or is given it).
    Assign,
    /// An agent gives it back to the queue.
    ToQueue,
    /// Closed by an agent, a flow or the customer.
    Resolve,
    /// Opened again after being resolved.
    Reopen,
    /// Staff send the customer into a bot flow (`POST /api/v1/conversations/{id}/flow`);
    /// the assignee is cleared and the bot answers until it hands back.
    StartBot,
}

/// A transition that the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} conversation cannot be {transition:?}")]
pub struct InvalidTransition {
    /// State it was in.
    pub from: ConversationState,
    /// What was attempted.
    pub transition: Transition,
}

/// A conversation between one contact and the business on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel instance it runs on.
    pub channel_id: ChannelId,
    /// The customer.
    pub contact_id: ContactId,
    /// Life-cycle state.
    pub state: ConversationState,
    /// The agent who owns it, when assigned.
    pub assignee: Option<UserId>,
    /// The customer's last message (provider time): drives the WhatsApp 24 h window.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_inbound_at: Option<Timestamp>,
    /// Last message in either direction.
    #[serde(with = "time::serde::rfc3339")]
    pub last_message_at: Timestamp,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// A row of an inbox: the conversation and what an agent needs to pick it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Channel kind, for the icon.
    pub channel_kind: ChannelKind,
    /// Customer name, if known.
    pub contact_name: Option<String>,
    /// Short plain-text preview of the last message.
    pub last_message_preview: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::ConversationState::*;
    use super::*;

    #[test]
    fn transition_table() {
        let cases = [
            (
                Bot,
                Transition::Handoff,
                Some(Queued),
                "bot hands off to the queue",
            ),
            (
                Queued,
                Transition::Assign,
                Some(Assigned),
                "an agent takes a queued conversation",
            ),
            (
                Assigned,
                Transition::Assign,
                Some(Assigned),
                "transfer to another agent",
            ),
            (
                Assigned,
                Transition::ToQueue,
                Some(Queued),
                "agent returns it to the queue",
            ),
            (
                Assigned,
                Transition::Resolve,
                Some(Resolved),
                "agent resolves",
            ),
            (
                Resolved,
                Transition::Reopen,
                Some(Queued),
                "customer writes again",
            ),
            (
                Resolved,
                Transition::Assign,
                None,
                "closed conversations must be reopened first",
            ),
            (Queued, Transition::Handoff, None, "already with people"),
            (Queued, Transition::ToQueue, None, "already queued"),
            (Resolved, Transition::Resolve, None, "already resolved"),
            (
                Assigned,
                Transition::StartBot,
                Some(Bot),
                "an agent sends the customer into a flow",
            ),
            (
                Queued,
                Transition::StartBot,
                Some(Bot),
                "staff start a flow",
            ),
            (Bot, Transition::StartBot, None, "a flow already answers"),
            (
                Resolved,
                Transition::StartBot,
                None,
                "closed conversations stay closed",
            ),
        ];
        for (from, t, expected, why) in cases {
            assert_eq!(from.apply(t).ok(), expected, "{from} + {t:?}: {why}");
        }
    }
}
