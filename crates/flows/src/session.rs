//! What `step` reads and writes: the persisted [`FlowSession`], the [`Input`] that woke it
//! and the [`Action`]s the runtime must carry out.
//!
//! The session is plain serde data (JSON-safe: no floats that are not finite, times as
//! RFC 3339). The runtime stores it with the conversation and passes it back on the next
//! event; it never needs to look inside except for [`FlowSession::state`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::Content;
use time::OffsetDateTime;

use crate::value::{Value, Vars};

/// Where a session is in a flow: the node it is at, in the flow it is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Flow id.
    pub flow: String,
    /// Node id (for callers: the `subflow` node they are waiting on).
    pub node: String,
}

/// What a session is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    /// Created, not started: the next input (any) starts the root flow.
    #[default]
    New,
    /// Waiting for the customer (a menu, ask or wait node).
    AwaitingInput,
    /// Waiting for the runtime to answer an [`Action::HttpRequest`].
    AwaitingHttp {
        /// The request's id, echoed in [`Input::HttpResult`].
        request_id: String,
    },
    /// Handed off to people; the bot is done.
    HandedOff,
    /// Finished.
    Ended {
        /// The outcome tag.
        outcome: String,
    },
}

/// A customer's conversation with the bot, as persisted between events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSession {
    /// The runtime's key for the session (the conversation id); seeds reference numbers and
    /// request ids.
    pub id: String,
    /// The flow started first (where the `menu` command returns to).
    pub root: String,
    /// Call stack: callers first, the current position last. Empty until started.
    #[serde(default)]
    pub stack: Vec<Frame>,
    /// What the session waits for.
    #[serde(default)]
    pub state: SessionState,
    /// Re-prompts used at the current node.
    #[serde(default)]
    pub retries: u32,
    /// When a `wait` node gives up.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub wait_until: Option<OffsetDateTime>,
    /// Last customer message (or start), for inactivity expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
    /// Contact language code (`en`, `af`); picks the command words.
    #[serde(default)]
    pub language: Option<String>,
    /// Contact fields readable as `contact.x` (`name`, `phone`, attributes).
    #[serde(default)]
    pub contact: Vars,
    /// Flow variables (`vars.x`); shared by a flow and its subflows.
    #[serde(default)]
    pub vars: Vars,
    /// Steps taken (request ids, reference numbers).
    #[serde(default)]
    pub seq: u64,
    /// Where the `menu` command goes when it is not `root`: the channel's main flow, for a
    /// session a keyword started (a keyword flow's own start is not the main menu). The
    /// command makes it the root and starts it; `None` restarts `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_flow: Option<String>,
    /// The runtime's pins: flow id → the stored version this session runs, so a flow loaded
    /// after the session started applies to new sessions only. The engine never reads it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, i64>,
}

impl FlowSession {
    /// A new session of flow `root` for the runtime's key `id`.
    pub fn new(id: impl Into<String>, root: impl Into<String>) -> FlowSession {
        FlowSession {
            id: id.into(),
            root: root.into(),
            stack: Vec::new(),
            state: SessionState::New,
            retries: 0,
            wait_until: None,
            last_activity: None,
            language: None,
            contact: Vars::new(),
            vars: Vars::new(),
            seq: 0,
            menu_flow: None,
            versions: BTreeMap::new(),
        }
    }

    /// Sets a contact field (`name`, `phone`, ...), builder style.
    pub fn with_contact(mut self, key: impl Into<String>, value: impl Into<String>) -> FlowSession {
        self.contact.insert(key.into(), Value::Text(value.into()));
        self
    }

    /// Sets where the `menu` command goes ([`FlowSession::menu_flow`]), builder style.
    pub fn with_menu_flow(mut self, flow: Option<String>) -> FlowSession {
        self.menu_flow = flow.filter(|f| *f != self.root);
        self
    }

    /// Whether the bot is done with this conversation (ended or handed off).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            SessionState::Ended { .. } | SessionState::HandedOff
        )
    }

    /// The current position.
    pub fn current(&self) -> Option<&Frame> {
        self.stack.last()
    }
}

/// What woke the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Start (or restart) the root flow.
    Start,
    /// The customer typed text.
    Text {
        /// What they typed.
        text: String,
    },
    /// The customer tapped a button or list row.
    Choice {
        /// The choice id.
        id: String,
    },
    /// The customer sent something that is not text (a photo, a location).
    Other {
        /// A short description for logs.
        kind: String,
    },
    /// The answer to an [`Action::HttpRequest`].
    HttpResult {
        /// The request id it answers.
        request_id: String,
        /// Whether a response arrived at all (false: timeout, refused by the SSRF guard, network).
        ok: bool,
        /// HTTP status (0 when `ok` is false).
        status: u16,
        /// Parsed JSON body (null when not JSON).
        #[serde(default)]
        body: serde_json::Value,
    },
    /// A timer the session asked for ([`Action::ScheduleTimeout`]) fired.
    Timeout,
}

impl Input {
    /// Shorthand for [`Input::Text`].
    pub fn text(s: impl Into<String>) -> Input {
        Input::Text { text: s.into() }
    }
}

/// HTTP request headers as ordered pairs.
pub type Headers = Vec<(String, String)>;

/// Something the runtime must do. Actions are in order; apply them all, in one transaction
/// with the new session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Send a message to the customer (through the outbox).
    Send {
        /// What to send; menus are `Content::Choices`, rendered per channel.
        content: Content,
    },
    /// Call an endpoint (after the SSRF guard), then call `step` with [`Input::HttpResult`].
    HttpRequest {
        /// Echo this in the result.
        request_id: String,
        /// `GET`, `POST`, ...
        method: String,
        /// Full URL.
        url: String,
        /// Headers.
        headers: Headers,
        /// JSON body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        /// Give up after this long.
        timeout_ms: u64,
    },
    /// Queue the conversation for people.
    Handoff {
        /// Queue name.
        queue: String,
        /// Required skill.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skill: Option<String>,
        /// Priority.
        priority: i32,
        /// What the agent reads first.
        summary: String,
        /// Whether the [`Action::Send`] just before this one is the flow's default hand-off
        /// wording (`settings.handoff.message`) rather than a node's own `message`: a runtime
        /// may replace it with a channel's own wording.
        #[serde(default)]
        default_wording: bool,
    },
    /// Store an attribute on the contact.
    SetContactAttribute {
        /// Attribute name.
        key: String,
        /// Its value (JSON; money as a decimal string).
        value: serde_json::Value,
    },
    /// The customer opted out: stop all non-essential messages to them.
    OptOut,
    /// Persist a business record (loan application, promise to pay, order).
    RecordData {
        /// Record type.
        kind: String,
        /// Fields (money as decimal strings).
        data: serde_json::Value,
    },
    /// (Re)arm the session's timer: call `step` with [`Input::Timeout`] at this time.
    /// One timer per session; a new one replaces the old.
    ScheduleTimeout {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The bot is done; record the outcome for reports.
    End {
        /// Outcome tag.
        outcome: String,
    },
    /// The step failed; the session is unchanged. The runtime should log this and, if the
    /// customer is waiting, hand the conversation to a person.
    Error {
        /// What went wrong (for logs and the agent, not the customer).
        message: String,
    },
}

/// What `step` returns: actions to carry out and the session to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// In order.
    pub actions: Vec<Action>,
    /// Store this.
    pub session: FlowSession,
}
