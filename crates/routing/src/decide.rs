//! [`decide`]: one routing round over a snapshot of queues, agents and waiting conversations.
//!
//! A round, in order:
//! 1. **Order the backlog.** Waiting conversations are served by queue priority (higher
//!    first), then conversation priority (higher first), then [`Waiting::enqueued_at`]
//!    (older first), then conversation id, which makes the order total and the result
//!    deterministic. Within one queue and one priority this is FIFO.
//! 2. **Assign greedily in that order.** Each conversation of an open queue whose policy is
//!    not [`Policy::ManualPick`] goes to an *eligible* agent: presence `Available`, a member
//!    of the queue, every skill of the queue and of the conversation at the minimum level,
//!    and room left both in total and for the conversation's channel kind (counting what was
//!    assigned earlier in this round). A returning customer goes to their last agent when
//!    that agent is eligible; otherwise the queue's policy picks. A conversation nobody
//!    eligible can take stays waiting and does **not** block later ones that others can
//!    take (skills-based routing), so FIFO holds among conversations that could be served.
//! 3. **Overflow** the ones still waiting in an open queue past the queue's wait limit. A
//!    closed queue keeps its customers (they get the out-of-hours answer instead); a flow
//!    given as the out-of-hours answer can move them elsewhere.
//! 4. **Tell customers**: out-of-hours answers for closed queues (once per closure), and
//!    position / expected-wait updates at the queue's cadence for those still waiting.
//! 5. **SLA** warnings and breaches for every waiting conversation, assigned or not.
//!
//! Bad input never panics: unknown queues, duplicate ids and broken overflow targets are
//! reported in [`Decisions::problems`], and the affected conversations simply stay waiting.

use std::cmp::{Ordering, Reverse};
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use switchboard_core::{ChannelKind, ConversationId, UserId};
use time::{Duration, OffsetDateTime};

use crate::model::{Agent, OutOfHours, Policy, Presence, Queue, QueueId, Waiting};
use crate::sla::{SlaClocks, SlaNotice, check_sla};
use crate::wait::expected_wait;

/// Why an agent got a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignReason {
    /// The customer's last agent was eligible.
    ReturningCustomer,
    /// The queue's policy chose the agent.
    Policy(Policy),
}

/// Give `conversation` to `agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The conversation.
    pub conversation: ConversationId,
    /// The queue it waited in.
    pub queue: QueueId,
    /// The agent.
    pub agent: UserId,
    /// Why this agent.
    pub reason: AssignReason,
}

/// Move `conversation` to another queue; it keeps its `enqueued_at` (its place in line) and
/// the runtime sets `in_queue_since` to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowMove {
    /// The conversation.
    pub conversation: ConversationId,
    /// Queue it leaves.
    pub from: QueueId,
    /// Queue it joins.
    pub to: QueueId,
}

/// Tell the customer where they are in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionUpdate {
    /// The conversation.
    pub conversation: ConversationId,
    /// The queue.
    pub queue: QueueId,
    /// 1 for next in line, after this round's assignments.
    pub position: u32,
    /// Estimate (see [`expected_wait`]); `None` when it cannot be estimated.
    pub expected_wait: Option<Duration>,
}

/// Answer a customer waiting while their queue is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfHoursNotice {
    /// The conversation.
    pub conversation: ConversationId,
    /// The closed queue.
    pub queue: QueueId,
    /// The message to send or the flow to start.
    pub action: OutOfHours,
}

/// Something wrong with the input; the round went on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum Problem {
    /// Two queues share an id; the first was used.
    DuplicateQueue {
        /// The id.
        queue: QueueId,
    },
    /// Two agents share an id; the first was used.
    DuplicateAgent {
        /// The id.
        agent: UserId,
    },
    /// A conversation was listed twice; the first (in serving order) was used.
    DuplicateConversation {
        /// The id.
        conversation: ConversationId,
    },
    /// A conversation waits in a queue that is not in the snapshot; it stays waiting.
    UnknownQueue {
        /// The conversation.
        conversation: ConversationId,
        /// The missing queue.
        queue: QueueId,
    },
    /// A queue overflows to itself or to a queue not in the snapshot; no overflow happens.
    BadOverflowTarget {
        /// The queue.
        queue: QueueId,
        /// Its target.
        to: QueueId,
    },
}

/// Everything one round decided. Each list is in serving order, so replaying it is
/// deterministic; the runtime applies it in one transaction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decisions {
    /// Conversations to give to agents.
    pub assignments: Vec<Assignment>,
    /// Conversations to move to another queue.
    pub overflows: Vec<OverflowMove>,
    /// SLA targets about to be missed (record them in `Waiting::sla_sent`).
    pub sla_warnings: Vec<SlaNotice>,
    /// SLA targets missed (record them in `Waiting::sla_sent`).
    pub sla_breaches: Vec<SlaNotice>,
    /// Position and expected-wait messages to send (record `Waiting::position_sent_at`).
    pub position_updates: Vec<PositionUpdate>,
    /// Out-of-hours answers to send (record `Waiting::out_of_hours_sent_at`).
    pub out_of_hours: Vec<OutOfHoursNotice>,
    /// New round-robin cursors to store in `Queue::round_robin_after`.
    pub round_robin_cursors: Vec<(QueueId, UserId)>,
    /// Input problems found on the way.
    pub problems: Vec<Problem>,
}

/// One agent during a round: their load grows as conversations are assigned.
struct Live<'a> {
    agent: &'a Agent,
    load: HashMap<ChannelKind, u32>,
    total: u32,
    last_assigned_at: Option<OffsetDateTime>,
    /// Indexes of the queues they serve (and are skilled for).
    serves: Vec<usize>,
}

impl Live<'_> {
    fn has_room_for(&self, kind: ChannelKind) -> bool {
        self.total < self.agent.capacity.total
            && self.load.get(&kind).copied().unwrap_or(0) < self.agent.capacity.limit_for(kind)
    }
}

/// One queue during a round.
struct QueueState<'a> {
    queue: &'a Queue,
    open: bool,
    /// Eligible-by-presence-and-skill members, sorted by agent id.
    members: Vec<usize>,
    /// How many members still have room in total; 0 lets the round skip the queue fast.
    members_with_room: usize,
    /// Total capacity of the members, for expected waits.
    slots: u32,
    overflow_to: Option<QueueId>,
    cursor: Option<UserId>,
    cursor_moved: bool,
    /// Conversations still waiting after assignment and overflow, counted in order.
    still_waiting: u32,
}

/// Decides one routing round at `now`. Pure: the same input gives the same output, and
/// nothing is read from the clock, the disk or the network. See the module docs for the
/// rules.
pub fn decide(
    queues: &[Queue],
    agents: &[Agent],
    waiting: &[Waiting],
    now: OffsetDateTime,
) -> Decisions {
    let mut out = Decisions::default();

    // Queues by id; the first of duplicates wins.
    let mut queue_index: HashMap<QueueId, usize> = HashMap::with_capacity(queues.len());
    let mut qs: Vec<QueueState> = Vec::with_capacity(queues.len());
    for queue in queues {
        if queue_index.contains_key(&queue.id) {
            out.problems
                .push(Problem::DuplicateQueue { queue: queue.id });
            continue;
        }
        queue_index.insert(queue.id, qs.len());
        qs.push(QueueState {
            queue,
            open: queue.is_open(now),
            members: Vec::new(),
            members_with_room: 0,
            slots: 0,
            overflow_to: None,
            cursor: queue.round_robin_after,
            cursor_moved: false,
            still_waiting: 0,
        });
    }
    for q in &mut qs {
        if let Some(of) = q.queue.overflow {
            if of.to_queue != q.queue.id && queue_index.contains_key(&of.to_queue) {
                q.overflow_to = Some(of.to_queue);
            } else {
                out.problems.push(Problem::BadOverflowTarget {
                    queue: q.queue.id,
                    to: of.to_queue,
                });
            }
        }
    }

    // Agents, sorted by id so ties and round robin do not depend on input order.
    let mut sorted_agents: Vec<&Agent> = agents.iter().collect();
    sorted_agents.sort_by_key(|a| a.id);
    let mut live: Vec<Live> = Vec::with_capacity(agents.len());
    let mut agent_index: HashMap<UserId, usize> = HashMap::with_capacity(agents.len());
    for agent in sorted_agents {
        if agent_index.contains_key(&agent.id) {
            out.problems
                .push(Problem::DuplicateAgent { agent: agent.id });
            continue;
        }
        let index = live.len();
        agent_index.insert(agent.id, index);
        let mut serves = Vec::new();
        if agent.presence == Presence::Available {
            for qid in &agent.queues {
                if let Some(&qi) = queue_index.get(qid) {
                    let q = &mut qs[qi];
                    if !serves.contains(&qi) && agent.has_skills([&q.queue.required_skills]) {
                        serves.push(qi);
                        q.members.push(index);
                        q.slots = q.slots.saturating_add(agent.capacity.total);
                    }
                }
            }
        }
        let total = agent.total_load();
        if total < agent.capacity.total {
            for &qi in &serves {
                qs[qi].members_with_room += 1;
            }
        }
        live.push(Live {
            agent,
            load: agent.load.clone(),
            total,
            last_assigned_at: agent.last_assigned_at,
            serves,
        });
    }

    // The backlog in serving order; unknown queues and duplicates are set aside.
    let mut order: Vec<(usize, &Waiting)> = Vec::with_capacity(waiting.len());
    for w in waiting {
        match queue_index.get(&w.queue) {
            Some(&qi) => order.push((qi, w)),
            None => out.problems.push(Problem::UnknownQueue {
                conversation: w.conversation,
                queue: w.queue,
            }),
        }
    }
    order.sort_by_key(|&(qi, w)| {
        (
            Reverse(qs[qi].queue.priority),
            Reverse(w.priority),
            w.enqueued_at,
            w.conversation,
        )
    });
    let mut seen: HashSet<ConversationId> = HashSet::with_capacity(order.len());
    order.retain(|(_, w)| {
        let first = seen.insert(w.conversation);
        if !first {
            out.problems.push(Problem::DuplicateConversation {
                conversation: w.conversation,
            });
        }
        first
    });

    // Assignment, then what happens to those still waiting.
    for &(qi, w) in &order {
        if let Some((agent, reason)) = choose_agent(&qs[qi], &live, &agent_index, w) {
            let a = &mut live[agent];
            let had_room = a.total < a.agent.capacity.total;
            *a.load.entry(w.channel).or_insert(0) += 1;
            a.total += 1;
            a.last_assigned_at = Some(now);
            if had_room && a.total >= a.agent.capacity.total {
                for &sq in &a.serves {
                    qs[sq].members_with_room = qs[sq].members_with_room.saturating_sub(1);
                }
            }
            if reason == AssignReason::Policy(Policy::RoundRobin) {
                qs[qi].cursor = Some(a.agent.id);
                qs[qi].cursor_moved = true;
            }
            out.assignments.push(Assignment {
                conversation: w.conversation,
                queue: w.queue,
                agent: a.agent.id,
                reason,
            });
        } else {
            let q = &mut qs[qi];
            let overdue = q
                .queue
                .overflow
                .is_some_and(|of| now >= w.in_queue_since.saturating_add(of.after));
            match q.overflow_to {
                Some(to) if q.open && overdue => out.overflows.push(OverflowMove {
                    conversation: w.conversation,
                    from: w.queue,
                    to,
                }),
                _ => {
                    q.still_waiting += 1;
                    notify_waiting(q, w, now, &mut out);
                }
            }
        }
        let check = check_sla(
            &qs[qi].queue.sla,
            SlaClocks {
                enqueued_at: w.enqueued_at,
                opened_at: w.opened_at,
                first_response_at: w.first_response_at,
            },
            w.sla_sent,
            now,
        );
        for (target, due) in check.warnings.iter().zip(check.due) {
            if let (Some(target), Some(due_at)) = (target, due) {
                out.sla_warnings.push(SlaNotice {
                    conversation: w.conversation,
                    queue: w.queue,
                    target: *target,
                    due_at,
                });
            }
        }
        for (target, due) in check.breaches.iter().zip(check.due) {
            if let (Some(target), Some(due_at)) = (target, due) {
                out.sla_breaches.push(SlaNotice {
                    conversation: w.conversation,
                    queue: w.queue,
                    target: *target,
                    due_at,
                });
            }
        }
    }

    for q in &qs {
        if let (true, Some(cursor)) = (q.cursor_moved, q.cursor) {
            out.round_robin_cursors.push((q.queue.id, cursor));
        }
    }
    out
}

/// The out-of-hours answer or the position update due for a conversation still waiting.
fn notify_waiting(q: &QueueState, w: &Waiting, now: OffsetDateTime, out: &mut Decisions) {
    if !q.open {
        let due = match (w.out_of_hours_sent_at, &q.queue.business_hours) {
            (None, _) => true,
            (Some(sent), Some(hours)) => hours.was_open_between(sent, now),
            (Some(_), None) => false,
        };
        if due {
            out.out_of_hours.push(OutOfHoursNotice {
                conversation: w.conversation,
                queue: w.queue,
                action: q.queue.out_of_hours.clone(),
            });
        }
        return;
    }
    let Some(every) = q.queue.position_updates_every else {
        return;
    };
    if w.position_sent_at
        .is_none_or(|sent| now >= sent.saturating_add(every))
    {
        out.position_updates.push(PositionUpdate {
            conversation: w.conversation,
            queue: w.queue,
            position: q.still_waiting,
            expected_wait: expected_wait(q.queue.average_handle_time, q.still_waiting, q.slots),
        });
    }
}

/// The agent for `w`, if the queue pushes and someone eligible has room.
fn choose_agent(
    q: &QueueState,
    live: &[Live],
    agent_index: &HashMap<UserId, usize>,
    w: &Waiting,
) -> Option<(usize, AssignReason)> {
    if !q.open || q.queue.policy == Policy::ManualPick || q.members_with_room == 0 {
        return None;
    }
    let eligible = |i: usize| {
        let a = &live[i];
        a.has_room_for(w.channel) && a.agent.has_skills([&w.required_skills])
    };
    // Members are sorted by agent id, so membership is a binary search.
    let is_member = |i: usize| q.members.binary_search(&i).is_ok();

    if let Some(last) = w.last_agent
        && let Some(&i) = agent_index.get(&last)
        && is_member(i)
        && eligible(i)
    {
        return Some((i, AssignReason::ReturningCustomer));
    }

    let candidates = q.members.iter().copied().filter(|&i| eligible(i));
    let chosen = match q.queue.policy {
        Policy::LongestIdle => candidates.min_by(|&a, &b| by_longest_idle(&live[a], &live[b])),
        Policy::LeastBusy => candidates.min_by(|&a, &b| by_least_busy(&live[a], &live[b])),
        Policy::RoundRobin => {
            let mut first = None;
            let mut after_cursor = None;
            for i in candidates {
                first.get_or_insert(i);
                if q.cursor.is_none_or(|c| live[i].agent.id > c) {
                    after_cursor = Some(i);
                    break;
                }
            }
            after_cursor.or(first)
        }
        Policy::ManualPick => None,
    };
    chosen.map(|i| (i, AssignReason::Policy(q.queue.policy)))
}

/// Oldest last assignment first (never assigned first of all), then lighter load, then id.
fn by_longest_idle(a: &Live, b: &Live) -> Ordering {
    a.last_assigned_at
        .cmp(&b.last_assigned_at)
        .then(a.total.cmp(&b.total))
        .then(a.agent.id.cmp(&b.agent.id))
}

/// Lowest load / capacity first (compared without division), then longest idle.
fn by_least_busy(a: &Live, b: &Live) -> Ordering {
    let left = u64::from(a.total) * u64::from(b.agent.capacity.total);
    let right = u64::from(b.total) * u64::from(a.agent.capacity.total);
    left.cmp(&right).then_with(|| by_longest_idle(a, b))
}
