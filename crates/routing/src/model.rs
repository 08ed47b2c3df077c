//! The inputs of routing: queues (configuration plus a little measured state), agents (a
//! snapshot of presence, skills and load) and waiting conversations.
//!
//! These are routing's own types, not storage rows: the runtime builds them from whatever it
//! keeps, so this crate stays independent of the database schema. Only the ids come from
//! `switchboard-core` (including [`QueueId`]).
//!
//! Why some state lives here: `decide` is a pure function, so everything it must remember
//! between two calls (the round-robin cursor of a queue, which SLA notices were already sent,
//! when the last position update went out) is passed in and handed back in [`crate::Decisions`]
//! for the runtime to persist.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use switchboard_core::{ChannelKind, ConversationId, UserId};
use time::{Duration, OffsetDateTime};

use crate::hours::BusinessHours;

/// A queue (a team) that conversations wait in: core's id, so storage rows and routing
/// decisions share one type.
pub use switchboard_core::QueueId;

/// A skill name such as `spanish` or `billing`: trimmed, lower-cased, 1 to 64 characters,
/// no whitespace. Comparing normalised names means `Spanish` and `spanish ` are one skill.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Skill(String);

impl Skill {
    /// Parses a skill name.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim().to_lowercase();
        if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_whitespace) {
            return Err(format!(
                "`{}` is not a valid skill name (1 to 64 characters, no spaces)",
                input.chars().take(64).collect::<String>()
            ));
        }
        Ok(Self(s))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Skill {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Skill::parse(&value)
    }
}

impl From<Skill> for String {
    fn from(value: Skill) -> Self {
        value.0
    }
}

impl fmt::Display for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Skills with levels: for an agent, how good they are (0 to 255, higher is better); for a
/// queue or a conversation, the minimum level required.
pub type Skills = BTreeMap<Skill, u8>;

/// How a queue picks among the agents who could take a conversation. Whatever the policy,
/// only eligible agents are considered (see [`crate::decide()`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The agent whose last assignment is oldest (never assigned counts as oldest).
    /// Spreads work evenly over time; the usual default.
    LongestIdle,
    /// The agent with the lowest load relative to their capacity (load balancing).
    LeastBusy,
    /// Agents take turns in a fixed order (by id), continuing after the queue's cursor.
    RoundRobin,
    /// Nothing is pushed: agents take conversations from the queue themselves
    /// (see [`crate::check_pick`]). Positions, SLA and overflow still apply.
    ManualPick,
}

/// Service-level targets of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sla {
    /// The customer should get a first human reply within this time of joining the backlog
    /// ([`Waiting::enqueued_at`]).
    pub first_response: Duration,
    /// The conversation should be resolved within this time of being opened
    /// ([`Waiting::opened_at`]).
    pub resolution: Duration,
    /// A warning is raised this long before a target is missed.
    pub warn_before: Duration,
}

/// Moving conversations that waited too long to another queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    /// How long a conversation may wait in this queue ([`Waiting::in_queue_since`]).
    pub after: Duration,
    /// Where it goes next.
    pub to_queue: QueueId,
}

/// What the customer gets when they wait while the queue is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfHours {
    /// A text message.
    Message(String),
    /// A bot flow (by flow name) takes over.
    Flow(String),
}

/// Disposition codes an agent picks when closing a conversation of this queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WrapUp {
    /// Allowed codes, compared exactly (after trimming the agent's input).
    pub codes: Vec<String>,
    /// Whether closing without a code is refused.
    pub required: bool,
}

/// A queue: who may serve it, how agents are picked, when it is open, and its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// Its id.
    pub id: QueueId,
    /// Display name.
    pub name: String,
    /// Served before queues with a lower number when agents belong to several queues.
    pub priority: i32,
    /// Every agent serving this queue needs these skills at these minimum levels.
    pub required_skills: Skills,
    /// How an agent is chosen.
    pub policy: Policy,
    /// When the queue is open; `None` means always.
    pub business_hours: Option<BusinessHours>,
    /// Targets and warnings.
    pub sla: Sla,
    /// Where conversations go after waiting too long, if anywhere.
    pub overflow: Option<Overflow>,
    /// What to do for customers waiting while the queue is closed.
    pub out_of_hours: OutOfHours,
    /// Disposition codes.
    pub wrap_up: WrapUp,
    /// How often to tell a waiting customer their position and expected wait; `None`: never.
    pub position_updates_every: Option<Duration>,
    /// Measured state: the recent average time an agent spends on one conversation of this
    /// queue (the runtime computes it, e.g. over the last hour). Used for expected waits.
    pub average_handle_time: Option<Duration>,
    /// State for [`Policy::RoundRobin`]: the agent who got the last conversation. The next
    /// turn goes to the first eligible agent with a greater id, wrapping around.
    pub round_robin_after: Option<UserId>,
}

impl Queue {
    /// A queue with defaults: always open, longest idle, no required skills, no overflow,
    /// optional wrap-up, no position updates, SLA 5 min first response / 24 h resolution
    /// with a 1 min warning.
    pub fn new(id: QueueId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            priority: 0,
            required_skills: Skills::new(),
            policy: Policy::LongestIdle,
            business_hours: None,
            sla: Sla {
                first_response: Duration::minutes(5),
                resolution: Duration::hours(24),
                warn_before: Duration::minutes(1),
            },
            overflow: None,
            out_of_hours: OutOfHours::Message(
                "We are closed right now; we will answer as soon as we open.".into(),
            ),
            wrap_up: WrapUp::default(),
            position_updates_every: None,
            average_handle_time: None,
            round_robin_after: None,
        }
    }

    /// Whether the queue is open at `now` (always, without business hours).
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.business_hours.as_ref().is_none_or(|h| h.is_open(now))
    }
}

/// Whether an agent can take conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new conversations.
    Available,
    /// Signed in but taking nothing new (break, meeting); keeps current ones.
    Away,
    /// Not signed in.
    Offline,
}

/// How many conversations an agent handles at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capacity {
    /// At most this many in total.
    pub total: u32,
    /// And at most this many on a channel kind, where configured (e.g. 1 voice-like
    /// channel but 4 chats). Kinds not listed are limited only by `total`.
    pub per_channel: HashMap<ChannelKind, u32>,
}

impl Capacity {
    /// Room for `total` conversations on any channel.
    pub fn total(total: u32) -> Self {
        Self {
            total,
            per_channel: HashMap::new(),
        }
    }

    /// The limit that applies to one more conversation on `kind`.
    pub fn limit_for(&self, kind: ChannelKind) -> u32 {
        self.per_channel
            .get(&kind)
            .map_or(self.total, |&c| c.min(self.total))
    }
}

/// An agent as routing sees them at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// The staff user.
    pub id: UserId,
    /// Whether they take new conversations.
    pub presence: Presence,
    /// Their limits.
    pub capacity: Capacity,
    /// Their skills and levels.
    pub skills: Skills,
    /// The queues they serve.
    pub queues: Vec<QueueId>,
    /// Conversations they currently own, per channel kind.
    pub load: HashMap<ChannelKind, u32>,
    /// When they last got a conversation (for [`Policy::LongestIdle`]); `None`: never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_assigned_at: Option<OffsetDateTime>,
}

impl Agent {
    /// An available agent with no skills, no queues, no load and the given total capacity.
    pub fn new(id: UserId, capacity: u32) -> Self {
        Self {
            id,
            presence: Presence::Available,
            capacity: Capacity::total(capacity),
            skills: Skills::new(),
            queues: Vec::new(),
            load: HashMap::new(),
            last_assigned_at: None,
        }
    }

    /// Conversations owned in total.
    pub fn total_load(&self) -> u32 {
        self.load.values().fold(0u32, |a, &b| a.saturating_add(b))
    }

    /// Whether the agent meets every requirement in each of `required` (at its level).
    pub fn has_skills<'a>(&self, required: impl IntoIterator<Item = &'a Skills>) -> bool {
        required.into_iter().all(|req| {
            req.iter()
                .all(|(skill, &min)| self.skills.get(skill).is_some_and(|&lvl| lvl >= min))
        })
    }

    /// Whether one more conversation on `kind` fits within the agent's capacity.
    pub fn has_room_for(&self, kind: ChannelKind) -> bool {
        self.total_load() < self.capacity.total
            && self.load.get(&kind).copied().unwrap_or(0) < self.capacity.limit_for(kind)
    }
}

/// Which SLA notices were already sent for a conversation, so each is sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlaSent {
    /// First-response warning sent.
    pub first_response_warning: bool,
    /// First-response breach reported.
    pub first_response_breach: bool,
    /// Resolution warning sent.
    pub resolution_warning: bool,
    /// Resolution breach reported.
    pub resolution_breach: bool,
}

/// A conversation waiting for an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The conversation.
    pub conversation: ConversationId,
    /// The queue it waits in.
    pub queue: QueueId,
    /// Higher is served first within the queue (escalations, VIPs).
    pub priority: i32,
    /// When it joined the backlog. Kept across overflows, so an overflowed customer keeps
    /// their place in line; orders the queue (FIFO) and starts the first-response clock.
    #[serde(with = "time::serde::rfc3339")]
    pub enqueued_at: OffsetDateTime,
    /// When it joined its current queue: starts the overflow clock. Equal to `enqueued_at`
    /// unless it overflowed or was transferred.
    #[serde(with = "time::serde::rfc3339")]
    pub in_queue_since: OffsetDateTime,
    /// When the conversation was opened (or reopened): starts the resolution clock.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// The channel kind (capacity may be per kind).
    pub channel: ChannelKind,
    /// Skills needed on top of the queue's (e.g. a detected language).
    pub required_skills: Skills,
    /// The agent who last served this customer, if any: they get it back when they can.
    pub last_agent: Option<UserId>,
    /// When an agent first replied, if one did (then only the resolution target applies).
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_response_at: Option<OffsetDateTime>,
    /// SLA notices already sent.
    pub sla_sent: SlaSent,
    /// When the last position update went out.
    #[serde(with = "time::serde::rfc3339::option")]
    pub position_sent_at: Option<OffsetDateTime>,
    /// When the customer was last told the queue is closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub out_of_hours_sent_at: Option<OffsetDateTime>,
}

impl Waiting {
    /// A conversation that joined `queue` at `at` on `channel`, with no history.
    pub fn new(
        conversation: ConversationId,
        queue: QueueId,
        channel: ChannelKind,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            conversation,
            queue,
            priority: 0,
            enqueued_at: at,
            in_queue_since: at,
            opened_at: at,
            channel,
            required_skills: Skills::new(),
            last_agent: None,
            first_response_at: None,
            sla_sent: SlaSent::default(),
            position_sent_at: None,
            out_of_hours_sent_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hours::{TimeZone, Window};
    use time::macros::{datetime, time};
    use uuid::Uuid;

    #[test]
    fn skill_names_table() {
        let cases = [
            ("Spanish", Some("spanish"), "lower-cased"),
            ("  tech ", Some("tech"), "trimmed"),
            ("", None, "empty"),
            ("two words", None, "no spaces"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(
                Skill::parse(input).ok().as_ref().map(Skill::as_str),
                expected,
                "{input:?}: {why}"
            );
        }
    }

    #[test]
    fn queues_and_waiting_conversations_survive_a_json_round_trip() {
        let mut q = Queue::new(QueueId::from_uuid(Uuid::from_u128(1)), "billing");
        q.business_hours = Some(BusinessHours {
            time_zone: TimeZone::parse("Europe/Berlin").expect("zone"),
            weekly: vec![Window {
                day: time::Weekday::Monday,
                open: time!(9:00),
                close: time!(17:00),
            }],
            closed_dates: vec![],
        });
        let json = serde_json::to_string(&q).expect("serialise");
        assert!(
            json.contains("\"Europe/Berlin\""),
            "zones are stored by name: {json}"
        );
        assert_eq!(serde_json::from_str::<Queue>(&json).expect("parse"), q);

        let w = Waiting::new(
            ConversationId::from_uuid(Uuid::from_u128(2)),
            q.id,
            ChannelKind::Whatsapp,
            datetime!(2026-01-05 10:00 UTC),
        );
        let json = serde_json::to_string(&w).expect("serialise");
        assert!(
            json.contains("2026-01-05T10:00:00Z"),
            "RFC 3339 times: {json}"
        );
        assert_eq!(serde_json::from_str::<Waiting>(&json).expect("parse"), w);

        let bad = json.replace("whatsapp", "pigeon");
        assert!(serde_json::from_str::<Waiting>(&bad).is_err());
        let bad_zone = serde_json::to_string(&q)
            .expect("serialise")
            .replace("Europe/Berlin", "Europe/Atlantis");
        assert!(
            serde_json::from_str::<Queue>(&bad_zone).is_err(),
            "unknown zones are refused"
        );
    }
}
