//! Builders with small numeric ids, and a one-line-per-decision summary so expectations read
//! like a log: `assign c1 -> a2 (policy longest_idle)`.

use std::collections::{HashMap, HashSet};

use switchboard_core::{ChannelKind, ConversationId, UserId};
use switchboard_routing::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Monday 2026-01-05 10:00 UTC.
pub fn t0() -> OffsetDateTime {
    datetime!(2026-01-05 10:00 UTC)
}

pub fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

pub fn qid(n: u128) -> QueueId {
    QueueId::from_uuid(Uuid::from_u128(n))
}

pub fn aid(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

pub fn cid(n: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(n))
}

pub fn skills(list: &[(&str, u8)]) -> Skills {
    list.iter()
        .map(|&(name, level)| (Skill::parse(name).expect("test skill"), level))
        .collect()
}

/// Queue `n` with the given policy, a first-response target of one hour (so SLA notices
/// stay out of cases about other rules) and defaults otherwise.
pub fn queue(n: u128, policy: Policy) -> Queue {
    let mut q = Queue::new(qid(n), format!("q{n}"));
    q.policy = policy;
    q.sla.first_response = mins(60);
    q
}

/// Queue `n` with a 5-minute first-response target and a 1-minute warning.
pub fn strict_queue(n: u128, policy: Policy) -> Queue {
    let mut q = queue(n, policy);
    q.sla.first_response = mins(5);
    q
}

/// Available agent `n` with total capacity `cap`, serving the queues numbered in `queues`.
pub fn agent(n: u128, cap: u32, queues: &[u128]) -> Agent {
    Agent {
        queues: queues.iter().map(|&q| qid(q)).collect(),
        ..Agent::new(aid(n), cap)
    }
}

/// Conversation `n` on web chat, waiting in queue `q` since `ago` minutes before [`t0`].
pub fn waiting(n: u128, q: u128, ago: i64) -> Waiting {
    Waiting::new(cid(n), qid(q), ChannelKind::Webchat, t0() - mins(ago))
}

fn short(u: Uuid) -> u128 {
    u.as_u128()
}

/// One line per decision, in the order `decide` produced them.
pub fn summary(d: &Decisions) -> Vec<String> {
    let mut out = Vec::new();
    for a in &d.assignments {
        let why = match a.reason {
            AssignReason::ReturningCustomer => "returning".to_owned(),
            AssignReason::Policy(p) => format!("{p:?}"),
        };
        out.push(format!(
            "assign c{} -> a{} ({why})",
            short(a.conversation.as_uuid()),
            short(a.agent.as_uuid())
        ));
    }
    for o in &d.overflows {
        out.push(format!(
            "overflow c{} q{} -> q{}",
            short(o.conversation.as_uuid()),
            short(o.from.as_uuid()),
            short(o.to.as_uuid())
        ));
    }
    for p in &d.position_updates {
        out.push(format!(
            "position c{} #{} wait {}",
            short(p.conversation.as_uuid()),
            p.position,
            p.expected_wait
                .map_or("?".to_owned(), |w| format!("{}s", w.whole_seconds()))
        ));
    }
    for n in &d.out_of_hours {
        out.push(format!(
            "out-of-hours c{} {:?}",
            short(n.conversation.as_uuid()),
            n.action
        ));
    }
    for (kind, list) in [("warn", &d.sla_warnings), ("breach", &d.sla_breaches)] {
        for n in list {
            out.push(format!(
                "sla {kind} c{} {:?}",
                short(n.conversation.as_uuid()),
                n.target
            ));
        }
    }
    for (q, a) in &d.round_robin_cursors {
        out.push(format!(
            "cursor q{} after a{}",
            short(q.as_uuid()),
            short(a.as_uuid())
        ));
    }
    for p in &d.problems {
        out.push(format!("problem {p:?}"));
    }
    out
}

/// Checks every invariant of a round and panics with `context` on the first violation.
/// Shared by the property tests and the load test.
pub fn check_invariants(
    queues: &[Queue],
    agents: &[Agent],
    waiting: &[Waiting],
    now: OffsetDateTime,
    d: &Decisions,
    context: &str,
) {
    let queue_by_id: HashMap<QueueId, &Queue> = queues.iter().map(|q| (q.id, q)).collect();
    let agent_by_id: HashMap<UserId, &Agent> = agents.iter().map(|a| (a.id, a)).collect();
    let waiting_by_id: HashMap<ConversationId, &Waiting> =
        waiting.iter().map(|w| (w.conversation, w)).collect();

    // Every conversation ends up in exactly one place: assigned, overflowed or waiting.
    let mut outcome: HashMap<ConversationId, &str> = HashMap::new();
    for a in &d.assignments {
        assert!(
            outcome.insert(a.conversation, "assigned").is_none(),
            "{context}: {} assigned twice",
            a.conversation
        );
    }
    for o in &d.overflows {
        assert!(
            outcome.insert(o.conversation, "overflowed").is_none(),
            "{context}: {} both assigned and overflowed, or overflowed twice",
            o.conversation
        );
    }
    for id in outcome.keys() {
        assert!(
            waiting_by_id.contains_key(id),
            "{context}: decided about {id}, which was not waiting"
        );
    }
    for p in &d.position_updates {
        assert!(
            !outcome.contains_key(&p.conversation),
            "{context}: position update for {}, which left the queue",
            p.conversation
        );
    }

    // Assignments: eligible agent, never over capacity. Loads are replayed in assignment
    // order, which also checks FIFO within (queue, priority): when a conversation is given
    // to an agent, no conversation earlier in the same line that is left waiting could have
    // had that agent at that moment (else it should have been served first).
    let assigned: HashSet<ConversationId> = d.assignments.iter().map(|a| a.conversation).collect();
    let mut left_waiting: HashMap<(QueueId, i32), Vec<&Waiting>> = HashMap::new();
    for w in waiting
        .iter()
        .filter(|w| !assigned.contains(&w.conversation))
    {
        left_waiting
            .entry((w.queue, w.priority))
            .or_default()
            .push(w);
    }
    let mut load: HashMap<UserId, (u32, HashMap<ChannelKind, u32>)> = agents
        .iter()
        .map(|a| (a.id, (a.total_load(), a.load.clone())))
        .collect();
    let has_room =
        |load: &HashMap<UserId, (u32, HashMap<ChannelKind, u32>)>, agent: &Agent, kind| {
            let (total, per) = &load[&agent.id];
            *total < agent.capacity.total
                && per.get(&kind).copied().unwrap_or(0) < agent.capacity.limit_for(kind)
        };
    for a in &d.assignments {
        let w = waiting_by_id[&a.conversation];
        let q = queue_by_id[&w.queue];
        let agent = agent_by_id[&a.agent];
        for earlier in left_waiting
            .get(&(w.queue, w.priority))
            .into_iter()
            .flatten()
        {
            if (earlier.enqueued_at, earlier.conversation) < (w.enqueued_at, w.conversation) {
                assert!(
                    !(agent.has_skills([&q.required_skills, &earlier.required_skills])
                        && has_room(&load, agent, earlier.channel)),
                    "{context}: FIFO broken: {} went to {} while the earlier {} could have had them",
                    w.conversation,
                    agent.id,
                    earlier.conversation
                );
            }
        }
        assert_eq!(
            a.queue, w.queue,
            "{context}: assignment names the wrong queue"
        );
        assert_eq!(
            agent.presence,
            Presence::Available,
            "{context}: {} assigned to a {:?} agent",
            a.conversation,
            agent.presence
        );
        assert!(
            agent.queues.contains(&q.id),
            "{context}: agent does not serve the queue"
        );
        assert!(
            agent.has_skills([&q.required_skills, &w.required_skills]),
            "{context}: {} assigned to an unskilled agent",
            a.conversation
        );
        assert!(q.is_open(now), "{context}: assigned from a closed queue");
        assert_ne!(
            q.policy,
            Policy::ManualPick,
            "{context}: pushed from a manual-pick queue"
        );
        let (total, per) = load.get_mut(&a.agent).expect("known agent");
        *total += 1;
        *per.entry(w.channel).or_insert(0) += 1;
        assert!(
            *total <= agent.capacity.total
                && per[&w.channel] <= agent.capacity.limit_for(w.channel),
            "{context}: agent {} over capacity",
            a.agent
        );
    }

    // Work-conserving: nothing is left waiting in an open, pushing queue that an eligible
    // agent with room (after this round) could take.
    for w in waiting
        .iter()
        .filter(|w| !assigned.contains(&w.conversation))
    {
        let Some(q) = queue_by_id.get(&w.queue) else {
            continue;
        };
        if !q.is_open(now) || q.policy == Policy::ManualPick {
            continue;
        }
        let someone = agents.iter().any(|a| {
            a.presence == Presence::Available
                && a.queues.contains(&q.id)
                && a.has_skills([&q.required_skills, &w.required_skills])
                && has_room(&load, a, w.channel)
        });
        assert!(
            !someone,
            "{context}: {} left waiting though an eligible agent has room",
            w.conversation
        );
    }
}
