//! What people do by hand, checked by the same rules as automatic routing: an agent picking
//! from a queue ([`check_pick`]), a transfer to an agent or a queue ([`transfer`]), a
//! disposition code at wrap-up ([`validate_wrap_up`]), and checking queue settings before
//! they are saved ([`validate_queues`]).
//!
//! Decisions:
//! - A pick or a transfer to an agent needs the same as an automatic assignment: presence
//!   `Available`, room for the channel, and the queue's and the conversation's skills. So a
//!   supervisor cannot overload an agent by hand either. Queue membership is required for a
//!   pick (the agent takes from *their* queue) but not for a transfer to an agent, which is
//!   how a conversation reaches a named specialist.
//! - A transfer to a queue is allowed while that queue is closed (the customer then gets its
//!   out-of-hours answer); `Transfer::ToQueue { target_open, .. }` lets the desktop warn first.
//! - An agent may transfer a conversation they hold back to its own queue (giving it back);
//!   a transfer to where the conversation already is (same queue while waiting, same agent)
//!   is refused as [`TransferError::AlreadyThere`].
//! - Transfer notes are trimmed, empty means none, and at most [`MAX_NOTE_CHARS`] characters.
//! - Wrap-up codes are compared exactly after trimming; a queue with no codes accepts none.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use switchboard_core::{ChannelKind, ConversationId, UserId};
use time::{Duration, OffsetDateTime};

use crate::model::{Agent, Presence, Queue, QueueId, Skills, Waiting};

/// Longest transfer note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Why an agent may not pick a conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// The conversation is not waiting in this queue.
    #[error("the conversation waits in another queue")]
    WrongQueue,
    /// The agent does not serve the queue.
    #[error("you do not serve this queue")]
    NotMember,
    /// The agent is away or offline.
    #[error("set yourself available to take conversations (you are {0:?})")]
    NotAvailable(Presence),
    /// The agent lacks a skill.
    #[error("this conversation needs skills you do not have at the required level")]
    MissingSkills,
    /// The agent is at capacity.
    #[error("you are at your limit of conversations")]
    AtCapacity,
}

/// Whether `agent` may take `waiting` from `queue` (manual pick, or any queue's backlog
/// from the desktop). The conversation need not be first in line, and the queue may be
/// closed (an agent working late may still answer): picking is a person's choice; automatic
/// routing is what keeps FIFO and business hours.
pub fn check_pick(queue: &Queue, agent: &Agent, waiting: &Waiting) -> Result<(), PickError> {
    if waiting.queue != queue.id {
        return Err(PickError::WrongQueue);
    }
    if !agent.queues.contains(&queue.id) {
        return Err(PickError::NotMember);
    }
    can_take(agent, queue, &waiting.required_skills, waiting.channel).map_err(|e| match e {
        TakeError::Presence(p) => PickError::NotAvailable(p),
        TakeError::Skills => PickError::MissingSkills,
        TakeError::Capacity => PickError::AtCapacity,
    })
}

enum TakeError {
    Presence(Presence),
    Skills,
    Capacity,
}

fn can_take(
    agent: &Agent,
    queue: &Queue,
    extra: &Skills,
    channel: ChannelKind,
) -> Result<(), TakeError> {
    if agent.presence != Presence::Available {
        return Err(TakeError::Presence(agent.presence));
    }
    if !agent.has_skills([&queue.required_skills, extra]) {
        return Err(TakeError::Skills);
    }
    if !agent.has_room_for(channel) {
        return Err(TakeError::Capacity);
    }
    Ok(())
}

/// Where a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// A named agent; the conversation stays in its queue.
    Agent(UserId),
    /// Another queue; the conversation waits there.
    Queue(QueueId),
}

/// A transfer someone asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its current queue.
    pub queue: QueueId,
    /// The agent holding it now, if any.
    pub from_agent: Option<UserId>,
    /// Its channel kind.
    pub channel: ChannelKind,
    /// Skills it needs on top of its queue's.
    pub required_skills: Skills,
    /// Where to.
    pub target: TransferTarget,
    /// A note for whoever receives it.
    pub note: Option<String>,
}

/// A checked transfer, for the runtime to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Transfer {
    /// Assign to this agent now.
    ToAgent {
        /// The conversation.
        conversation: ConversationId,
        /// The queue it stays in.
        queue: QueueId,
        /// The new agent.
        agent: UserId,
        /// The trimmed note.
        note: Option<String>,
    },
    /// Put in this queue's backlog (`in_queue_since` = now; `enqueued_at` unchanged).
    ToQueue {
        /// The conversation.
        conversation: ConversationId,
        /// The queue it leaves.
        from: QueueId,
        /// The queue it joins.
        to: QueueId,
        /// The trimmed note.
        note: Option<String>,
        /// Whether that queue is open now (warn the agent if not).
        target_open: bool,
    },
}

/// Why a transfer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// No such queue (the current one or the target).
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    /// No such agent.
    #[error("unknown agent {0}")]
    UnknownAgent(UserId),
    /// The target is where the conversation already is.
    #[error("the conversation is already there")]
    AlreadyThere,
    /// The agent is away or offline.
    #[error("the agent is {0:?}, not available")]
    AgentNotAvailable(Presence),
    /// The agent lacks a skill the conversation needs.
    #[error("the agent lacks a skill this conversation needs")]
    AgentMissingSkills,
    /// The agent is at capacity.
    #[error("the agent is at their limit of conversations")]
    AgentAtCapacity,
    /// The note is too long.
    #[error("the note is longer than {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
}

/// Checks a transfer against the current snapshot and returns what to apply.
pub fn transfer(
    queues: &[Queue],
    agents: &[Agent],
    request: &TransferRequest,
    now: OffsetDateTime,
) -> Result<Transfer, TransferError> {
    let note = match request.note.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => return Err(TransferError::NoteTooLong),
        Some("") | None => None,
        Some(n) => Some(n.to_owned()),
    };
    let find_queue = |id: QueueId| {
        queues
            .iter()
            .find(|q| q.id == id)
            .ok_or(TransferError::UnknownQueue(id))
    };
    let current = find_queue(request.queue)?;
    match request.target {
        TransferTarget::Agent(id) => {
            if request.from_agent == Some(id) {
                return Err(TransferError::AlreadyThere);
            }
            let agent = agents
                .iter()
                .find(|a| a.id == id)
                .ok_or(TransferError::UnknownAgent(id))?;
            can_take(agent, current, &request.required_skills, request.channel).map_err(
                |e| match e {
                    TakeError::Presence(p) => TransferError::AgentNotAvailable(p),
                    TakeError::Skills => TransferError::AgentMissingSkills,
                    TakeError::Capacity => TransferError::AgentAtCapacity,
                },
            )?;
            Ok(Transfer::ToAgent {
                conversation: request.conversation,
                queue: current.id,
                agent: id,
                note,
            })
        }
        TransferTarget::Queue(id) => {
            if id == current.id && request.from_agent.is_none() {
                return Err(TransferError::AlreadyThere);
            }
            let target = find_queue(id)?;
            Ok(Transfer::ToQueue {
                conversation: request.conversation,
                from: current.id,
                to: target.id,
                note,
                target_open: target.is_open(now),
            })
        }
    }
}

/// Why a wrap-up code is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapUpError {
    /// The queue requires a code and none was given.
    #[error("choose a wrap-up code: {}", .allowed.join(", "))]
    Required {
        /// The codes to choose from.
        allowed: Vec<String>,
    },
    /// The code is not one of the queue's.
    #[error("`{code}` is not a wrap-up code of this queue (allowed: {})", .allowed.join(", "))]
    Unknown {
        /// What was given (trimmed, at most 64 characters).
        code: String,
        /// The codes to choose from.
        allowed: Vec<String>,
    },
}

/// Whether closing a conversation of `queue` with `code` is allowed. An empty or blank code
/// counts as none.
pub fn validate_wrap_up(queue: &Queue, code: Option<&str>) -> Result<(), WrapUpError> {
    let allowed = || queue.wrap_up.codes.clone();
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        None if queue.wrap_up.required => Err(WrapUpError::Required { allowed: allowed() }),
        None => Ok(()),
        Some(c) if queue.wrap_up.codes.iter().any(|known| known == c) => Ok(()),
        Some(c) => Err(WrapUpError::Unknown {
            code: c.chars().take(64).collect(),
            allowed: allowed(),
        }),
    }
}

/// A queue setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueProblem {
    /// Two queues share an id.
    #[error("queue id {0} is used twice")]
    DuplicateId(QueueId),
    /// A queue has no name.
    #[error("queue {0} has no name")]
    EmptyName(QueueId),
    /// Overflow to itself or to a queue that does not exist.
    #[error("queue {queue} overflows to {to}, which is itself or does not exist")]
    BadOverflowTarget {
        /// The queue.
        queue: QueueId,
        /// Its target.
        to: QueueId,
    },
    /// A duration that must be positive is not.
    #[error("queue {queue}: {what} must be longer than zero")]
    NotPositive {
        /// The queue.
        queue: QueueId,
        /// Which setting.
        what: &'static str,
    },
    /// The SLA warning comes before the conversation even starts.
    #[error("queue {0}: the SLA warning must come after the start (warn_before < first_response)")]
    WarningTooEarly(QueueId),
    /// Wrap-up is required but there is nothing to choose.
    #[error("queue {0} requires a wrap-up code but lists none")]
    WrapUpWithoutCodes(QueueId),
    /// A wrap-up code is blank or listed twice.
    #[error("queue {0} has a blank or repeated wrap-up code")]
    BadWrapUpCode(QueueId),
}

/// Every problem in a set of queues (empty: fine). Run before saving settings; [`crate::decide()`]
/// copes with bad settings anyway, but a person should hear about them.
pub fn validate_queues(queues: &[Queue]) -> Vec<QueueProblem> {
    let mut problems = Vec::new();
    let ids: HashSet<QueueId> = queues.iter().map(|q| q.id).collect();
    let mut seen = HashSet::new();
    for q in queues {
        if !seen.insert(q.id) {
            problems.push(QueueProblem::DuplicateId(q.id));
        }
        if q.name.trim().is_empty() {
            problems.push(QueueProblem::EmptyName(q.id));
        }
        let mut positive = vec![
            ("sla.first_response", q.sla.first_response),
            ("sla.resolution", q.sla.resolution),
        ];
        if let Some(of) = q.overflow {
            if of.to_queue == q.id || !ids.contains(&of.to_queue) {
                problems.push(QueueProblem::BadOverflowTarget {
                    queue: q.id,
                    to: of.to_queue,
                });
            }
            positive.push(("overflow.after", of.after));
        }
        if let Some(every) = q.position_updates_every {
            positive.push(("position_updates_every", every));
        }
        for (what, d) in positive {
            if d <= Duration::ZERO {
                problems.push(QueueProblem::NotPositive { queue: q.id, what });
            }
        }
        if q.sla.warn_before.is_negative() || q.sla.warn_before >= q.sla.first_response {
            problems.push(QueueProblem::WarningTooEarly(q.id));
        }
        if q.wrap_up.required && q.wrap_up.codes.is_empty() {
            problems.push(QueueProblem::WrapUpWithoutCodes(q.id));
        }
        let mut codes = HashSet::new();
        if q.wrap_up
            .codes
            .iter()
            .any(|c| c.trim().is_empty() || c.trim() != c || !codes.insert(c))
        {
            problems.push(QueueProblem::BadWrapUpCode(q.id));
        }
    }
    problems
}
