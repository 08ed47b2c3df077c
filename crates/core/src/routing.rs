//! Routing data as storage keeps it: queues, agents' settings, the routing fields of a
//! conversation, internal notes and canned responses, and the changes one routing round
//! writes ([`RoutingChange`]).
//!
//! The routing *policy* lives in the `switchboard-routing` crate, which depends on this one;
//! the runtime (`app::routing`) turns these rows into the policy's inputs and its decisions
//! back into [`RoutingChange`]s. Queue settings are kept as JSON ([`QueueRecord::settings`])
//! whose shape the runtime owns, so storage never has to follow the policy's evolution.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    ChannelKind, ContactId, ConversationId, ConversationState, NoteId, QueueId, TenantId,
    Timestamp, UserId,
};

/// A queue as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// Its id.
    pub id: QueueId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Unique per tenant; flows hand off to a queue by this name.
    pub name: String,
    /// The queue's routing settings (JSON whose shape `app::routing::QueueSettings` owns).
    pub settings: serde_json::Value,
    /// Round-robin cursor: the agent who got the queue's last conversation.
    pub round_robin_after: Option<UserId>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

/// Whether an agent takes new conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentPresence {
    /// Takes new conversations.
    Available,
    /// Signed in, takes nothing new, keeps current ones.
    Away,
    /// Not working.
    Offline,
}

impl AgentPresence {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
}

impl fmt::Display for AgentPresence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentPresence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "available" => Ok(Self::Available),
            "away" => Ok(Self::Away),
            "offline" => Ok(Self::Offline),
            other => Err(format!(
                "unknown presence `{}`: use available, away or offline",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// An agent's routing settings. A staff user without a stored row is offline with a
/// capacity of 3 and no skills or queues ([`AgentSettings::default_for`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSettings {
    /// The staff user.
    pub user_id: UserId,
    /// Presence.
    pub presence: AgentPresence,
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub presence_since: Timestamp,
    /// At most this many conversations at once.
    pub capacity: u32,
    /// And at most this many on a channel kind, where listed.
    #[serde(default)]
    pub capacity_per_channel: HashMap<ChannelKind, u32>,
    /// Skills (normalised names) and levels 0–255.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Queues the agent serves.
    #[serde(default)]
    pub queues: Vec<QueueId>,
    /// When they last got a conversation.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_assigned_at: Option<Timestamp>,
}

impl AgentSettings {
    /// The settings of a user with no stored row.
    pub fn default_for(user_id: UserId, now: Timestamp) -> Self {
        Self {
            user_id,
            presence: AgentPresence::Offline,
            presence_since: now,
            capacity: 3,
            capacity_per_channel: HashMap::new(),
            skills: BTreeMap::new(),
            queues: Vec::new(),
            last_assigned_at: None,
        }
    }
}

/// Which routing notices a conversation already got (each is sent once), and when the
/// customer was last told their place or that the queue is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoutingMarks {
    /// First-response warning raised.
    #[serde(default)]
    pub first_response_warning: bool,
    /// First-response breach raised.
    #[serde(default)]
    pub first_response_breach: bool,
    /// Resolution warning raised.
    #[serde(default)]
    pub resolution_warning: bool,
    /// Resolution breach raised.
    #[serde(default)]
    pub resolution_breach: bool,
    /// Last position / expected-wait message.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub position_sent_at: Option<Timestamp>,
    /// Last out-of-hours answer.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub out_of_hours_sent_at: Option<Timestamp>,
}

/// A conversation as routing sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedConversation {
    /// The conversation.
    pub id: ConversationId,
    /// The customer.
    pub contact_id: ContactId,
    /// Its channel kind.
    pub channel_kind: ChannelKind,
    /// Life-cycle state.
    pub state: ConversationState,
    /// Current agent.
    pub assignee: Option<UserId>,
    /// The queue it waits in (or was served from); `None` until placed.
    pub queue: Option<QueueId>,
    /// Higher is served first within a queue.
    pub priority: i32,
    /// Skills (normalised names) needed on top of the queue's.
    pub required_skills: BTreeMap<String, u8>,
    /// Joined the backlog (first-response clock; FIFO order).
    #[serde(with = "time::serde::rfc3339::option")]
    pub enqueued_at: Option<Timestamp>,
    /// Joined its current queue (overflow clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub in_queue_since: Option<Timestamp>,
    /// Opened or reopened (resolution clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub opened_at: Option<Timestamp>,
    /// The agent who last served this customer. For a conversation not yet placed in a
    /// queue, the round's snapshot fills it from the contact's other conversations (any
    /// channel), so a returning customer can go back to their agent.
    pub last_agent: Option<UserId>,
    /// First agent reply since it was enqueued.
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_response_at: Option<Timestamp>,
    /// Assigned to its current agent at.
    #[serde(with = "time::serde::rfc3339::option")]
    pub assigned_at: Option<Timestamp>,
    /// Notices already sent.
    pub marks: RoutingMarks,
    /// Its routing timer (next time a round should look at it).
    #[serde(with = "time::serde::rfc3339::option")]
    pub timer_due: Option<Timestamp>,
    /// Wrap-up code given at resolution.
    pub wrap_up_code: Option<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// Everything a routing round decides on, read under the tenant's routing lock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoutingSnapshot {
    /// The tenant's queues.
    pub queues: Vec<QueueRecord>,
    /// Every staff user's settings (defaults for users without a row), agents and others.
    pub agents: Vec<AgentSettings>,
    /// Conversations each agent owns now, per channel kind.
    pub loads: HashMap<UserId, HashMap<ChannelKind, u32>>,
    /// Conversations in state `queued`.
    pub waiting: Vec<RoutedConversation>,
    /// Assigned conversations whose routing timer is due: their SLA targets (first
    /// response until the agent replies, resolution) still run while an agent holds them.
    pub due_assigned: Vec<RoutedConversation>,
    /// The conversation a manual action is about (any state), when one was named.
    pub focus: Option<RoutedConversation>,
}

/// What kind of note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Written by staff.
    Note,
    /// Recorded with a transfer (from, to, the note).
    Transfer,
    /// Written by the system (SLA breach, overflow).
    System,
}

impl NoteKind {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Transfer => "transfer",
            Self::System => "system",
        }
    }
}

impl FromStr for NoteKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "note" => Ok(Self::Note),
            "transfer" => Ok(Self::Transfer),
            "system" => Ok(Self::System),
            other => Err(format!("unknown note kind `{other}`")),
        }
    }
}

/// An internal note: staff only, never sent to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Its id.
    pub id: NoteId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it (`None`: the system).
    pub author: Option<UserId>,
    /// What kind.
    pub kind: NoteKind,
    /// The text.
    pub body: String,
    /// Structured details (a transfer's from/to).
    pub data: serde_json::Value,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// A reusable reply. `{{name}}`-style variables are filled in by the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CannedResponse {
    /// Its id.
    pub id: crate::CannedId,
    /// Typed after `/` in the composer; unique per tenant.
    pub shortcut: String,
    /// Shown in the picker.
    pub title: String,
    /// The text with variables.
    pub body: String,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

/// One change a routing round (or a manual routing action) writes. Applied in order, in
/// ONE transaction, under the tenant's routing lock.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutingChange {
    /// Put a not-yet-placed `queued` conversation in a queue: sets the queue fields,
    /// `enqueued_at` = `in_queue_since` = now, `opened_at` when unset.
    Place {
        /// The conversation.
        conversation: ConversationId,
        /// Its queue.
        queue: QueueId,
        /// Priority within the queue.
        priority: i32,
        /// Extra skills needed.
        required_skills: BTreeMap<String, u8>,
        /// The customer's last agent.
        last_agent: Option<UserId>,
    },
    /// Give a conversation to an agent (state `assigned`); records `last_agent`,
    /// `assigned_at` and the agent's `last_assigned_at`, and clears its timer.
    Assign {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: UserId,
    },
    /// Move a conversation to a queue's backlog (overflow, transfer to a queue, giving it
    /// back): state `queued`, no assignee, `in_queue_since` = now; `enqueued_at` is kept.
    ToQueue {
        /// The conversation.
        conversation: ConversationId,
        /// The queue.
        queue: QueueId,
    },
    /// Record notices sent.
    Marks {
        /// The conversation.
        conversation: ConversationId,
        /// The new marks.
        marks: RoutingMarks,
    },
    /// Store a queue's round-robin cursor.
    RoundRobin {
        /// The queue.
        queue: QueueId,
        /// The agent who got the last conversation.
        after: UserId,
    },
    /// Send the customer a system message (position, expected wait, out of hours).
    Notice {
        /// The conversation.
        conversation: ConversationId,
        /// The text.
        text: String,
    },
    /// Add an internal note.
    Note {
        /// The conversation.
        conversation: ConversationId,
        /// Who (`None`: the system).
        author: Option<UserId>,
        /// What kind.
        kind: NoteKind,
        /// The text.
        body: String,
        /// Details.
        data: serde_json::Value,
    },
    /// An SLA warning or breach, announced to supervisors as an event.
    SlaAlert {
        /// The conversation.
        conversation: ConversationId,
        /// The queue.
        queue: QueueId,
        /// `first_response` or `resolution`.
        target: String,
        /// Breach (true) or warning.
        breach: bool,
        /// When the target is or was due.
        due_at: Timestamp,
    },
    /// Resolve with an optional wrap-up code (frees the agent's slot).
    Resolve {
        /// The conversation.
        conversation: ConversationId,
        /// The code.
        wrap_up_code: Option<String>,
        /// Until then, the customer's next message on the channel reopens this
        /// conversation instead of starting a new one (`None`: it starts a new one).
        reopen_until: Option<Timestamp>,
    },
    /// Hand a waiting conversation to a bot flow (a closed queue's out-of-hours flow):
    /// state `bot`, its routing timer cleared, a `StartFlow` job enqueued. The flow may
    /// hand it back to a queue like any other.
    StartFlow {
        /// The conversation.
        conversation: ConversationId,
        /// The flow's id.
        flow_id: String,
    },
    /// Reopen a resolved conversation into a queue (state `queued`; the resolution clock
    /// restarts, `last_agent` stays).
    Reopen {
        /// The conversation.
        conversation: ConversationId,
        /// The queue it waits in.
        queue: Option<QueueId>,
    },
    /// Set (or clear) the conversation's routing timer.
    Timer {
        /// The conversation.
        conversation: ConversationId,
        /// When a round should look at it again.
        due_at: Option<Timestamp>,
    },
}

/// A routing round's plan: the pure function the store calls with the snapshot it read
/// under the lock. An error aborts the round and nothing is written.
pub type RoutingPlan<'a> = &'a (
        dyn Fn(&RoutingSnapshot) -> Result<Vec<RoutingChange>, crate::ports::StoreError>
            + Send
            + Sync
    );

/// What a round wrote.
#[derive(Debug, Clone, Default)]
pub struct RoutingOutcome {
    /// The changes applied.
    pub changes: Vec<RoutingChange>,
    /// The events recorded (publish after commit).
    pub events: Vec<crate::Event>,
}

/// Which conversations a desk list shows.
#[derive(Debug, Clone, Default)]
pub struct DeskFilter {
    /// Only these states (empty: all but resolved).
    pub states: Vec<ConversationState>,
    /// Only assigned to this agent.
    pub assignee: Option<UserId>,
    /// Only in these queues (empty: any).
    pub queues: Vec<QueueId>,
    /// Only those with no assignee.
    pub unassigned: bool,
    /// Case-insensitive text in the contact's name or the last message preview.
    pub search: Option<String>,
    /// At most this many (newest activity first).
    pub limit: u32,
    /// Only `queued` conversations not yet placed in a queue, oldest first (by id) and
    /// after `after`: the router pages through them with this, so none is starved.
    pub unplaced: bool,
    /// With `unplaced`: only ids after this one.
    pub after: Option<ConversationId>,
}

/// One conversation's passage through a queue, for the supervisor's chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueVisit {
    /// The queue.
    pub queue: QueueId,
    /// Joined the backlog.
    #[serde(with = "time::serde::rfc3339")]
    pub enqueued_at: Timestamp,
    /// Got an agent (`None`: still waiting or never served).
    #[serde(with = "time::serde::rfc3339::option")]
    pub assigned_at: Option<Timestamp>,
    /// Resolved (`None`: still open).
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<Timestamp>,
}
