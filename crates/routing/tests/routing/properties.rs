//! Invariants over random snapshots (see `common::check_invariants`): never over capacity,
//! never to an away, offline, non-member or unskilled agent, never from a closed or
//! manual-pick queue, every conversation decided at most once, FIFO within priority, and
//! nothing left waiting that an eligible agent could take. Plus determinism.

use std::collections::HashMap;

use proptest::prelude::*;
use switchboard_core::ChannelKind;
use switchboard_routing::*;
use time::Weekday;
use time::macros::time;

use crate::common::*;

const KINDS: [ChannelKind; 4] = [
    ChannelKind::Webchat,
    ChannelKind::Whatsapp,
    ChannelKind::Telegram,
    ChannelKind::Signal,
];
const SKILLS: [&str; 3] = ["billing", "spanish", "tech"];

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        4 => Just(Policy::LongestIdle),
        4 => Just(Policy::LeastBusy),
        4 => Just(Policy::RoundRobin),
        1 => Just(Policy::ManualPick),
    ]
}

fn skill_set(max_level: u8) -> impl Strategy<Value = Skills> {
    proptest::collection::vec((0..SKILLS.len(), 0..=max_level), 0..=2).prop_map(|v| {
        v.into_iter()
            .map(|(i, l)| (Skill::parse(SKILLS[i]).expect("skill"), l))
            .collect()
    })
}

/// Up to 4 queues; some closed at t0 (open only on Sundays), some overflowing into the next.
fn queues() -> impl Strategy<Value = Vec<Queue>> {
    proptest::collection::vec(
        (
            policy(),
            -1i32..=1,
            skill_set(2),
            any::<bool>(),
            proptest::option::of(0i64..30),
            0u32..4,
        ),
        1..=4,
    )
    .prop_map(|specs| {
        let n = specs.len() as u128;
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (policy, priority, required_skills, closed, overflow, cursor))| {
                    let i = i as u128 + 1;
                    let mut q = queue(i, policy);
                    q.priority = priority;
                    q.required_skills = required_skills;
                    q.position_updates_every = Some(mins(1));
                    q.average_handle_time = Some(mins(5));
                    q.round_robin_after = (cursor > 0).then(|| aid(u128::from(cursor)));
                    if closed {
                        q.business_hours = Some(BusinessHours {
                            time_zone: TimeZone::parse("Europe/Lisbon").expect("zone"),
                            weekly: vec![Window {
                                day: Weekday::Sunday,
                                open: time!(0:00),
                                close: time!(0:00),
                            }],
                            closed_dates: vec![],
                        });
                    }
                    q.overflow = overflow.filter(|_| n > 1).map(|after| Overflow {
                        after: mins(after),
                        to_queue: qid(i % n + 1),
                    });
                    q
                },
            )
            .collect()
    })
}

fn agents(n_queues: u128) -> impl Strategy<Value = Vec<Agent>> {
    proptest::collection::vec(
        (
            prop_oneof![3 => Just(Presence::Available), 1 => Just(Presence::Away), 1 => Just(Presence::Offline)],
            0u32..4,
            proptest::option::of((0..KINDS.len(), 0u32..3)),
            skill_set(3),
            proptest::collection::vec(1..=n_queues, 0..=3),
            proptest::collection::vec((0..KINDS.len(), 0u32..3), 0..=2),
            proptest::option::of(0i64..60),
        ),
        0..12,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (presence, cap, per_channel, skills, queues, load, idle))| {
                let mut a = agent(i as u128 + 1, cap, &queues);
                a.presence = presence;
                a.skills = skills;
                a.capacity.per_channel = per_channel.map(|(k, c)| (KINDS[k], c)).into_iter().collect();
                a.load = load.into_iter().map(|(k, c)| (KINDS[k], c)).collect::<HashMap<_, _>>();
                a.last_assigned_at = idle.map(|m| t0() - mins(m));
                a
            })
            .collect()
    })
}

fn waiting_list(n_queues: u128) -> impl Strategy<Value = Vec<Waiting>> {
    proptest::collection::vec(
        (
            1..=n_queues,
            0i32..=1,
            0i64..40,
            0..KINDS.len(),
            skill_set(3),
            proptest::option::of(1u128..12),
        ),
        0..40,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (q, priority, ago, kind, required_skills, last_agent))| {
                    let mut w = waiting(i as u128 + 1, q, ago);
                    w.priority = priority;
                    w.channel = KINDS[kind];
                    // Sometimes only the SLA clock started earlier; the queue clock is later.
                    w.in_queue_since = w.enqueued_at + mins(ago / 3);
                    w.required_skills = required_skills;
                    w.last_agent = last_agent.map(aid);
                    w
                },
            )
            .collect()
    })
}

fn snapshot() -> impl Strategy<Value = (Vec<Queue>, Vec<Agent>, Vec<Waiting>)> {
    queues().prop_flat_map(|qs| {
        let n = qs.len() as u128;
        (Just(qs), agents(n), waiting_list(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_round_keeps_the_invariants((queues, agents, waiting) in snapshot()) {
        let d = decide(&queues, &agents, &waiting, t0());
        check_invariants(&queues, &agents, &waiting, t0(), &d, "random snapshot");
        prop_assert!(d.problems.is_empty(), "valid input reports no problems: {:?}", d.problems);
    }

    #[test]
    fn a_conversation_listed_twice_is_still_decided_once((queues, agents, waiting) in snapshot()) {
        let doubled: Vec<Waiting> = waiting.iter().chain(waiting.iter()).cloned().collect();
        let d = decide(&queues, &agents, &doubled, t0());
        check_invariants(&queues, &agents, &waiting, t0(), &d, "doubled input");
        prop_assert_eq!(&d.problems.len(), &waiting.len(), "one problem per duplicate");
        prop_assert_eq!(d.assignments, decide(&queues, &agents, &waiting, t0()).assignments);
    }

    #[test]
    fn input_order_does_not_change_the_decisions(
        (queues, agents, waiting) in snapshot(),
        seed in any::<u64>(),
    ) {
        let d = decide(&queues, &agents, &waiting, t0());
        let mut shuffled_agents = agents.clone();
        let mut shuffled_waiting = waiting.clone();
        // A cheap deterministic shuffle: rotate and reverse by the seed.
        if !shuffled_agents.is_empty() {
            let by = seed as usize % shuffled_agents.len();
            shuffled_agents.rotate_left(by);
        }
        if seed % 2 == 0 {
            shuffled_waiting.reverse();
        }
        if !shuffled_waiting.is_empty() {
            let by = (seed >> 8) as usize % shuffled_waiting.len();
            shuffled_waiting.rotate_left(by);
        }
        let again = decide(&queues, &shuffled_agents, &shuffled_waiting, t0());
        prop_assert_eq!(d, again);
    }

    #[test]
    fn applying_a_round_then_deciding_again_assigns_nothing_new_to_full_agents(
        (queues, agents, waiting) in snapshot(),
    ) {
        // Apply the first round's assignments as the runtime would, then run again: the
        // conversations left must stay unassigned (nobody gained room), and the invariants
        // hold on the new snapshot too. This catches capacity drift across rounds.
        let d = decide(&queues, &agents, &waiting, t0());
        let mut next_agents = agents.clone();
        for a in &d.assignments {
            let w = waiting.iter().find(|w| w.conversation == a.conversation).expect("waiting");
            let agent = next_agents.iter_mut().find(|x| x.id == a.agent).expect("agent");
            *agent.load.entry(w.channel).or_insert(0) += 1;
            agent.last_assigned_at = Some(t0());
        }
        let gone: Vec<_> = d.assignments.iter().map(|a| a.conversation)
            .chain(d.overflows.iter().map(|o| o.conversation)).collect();
        let next_waiting: Vec<Waiting> =
            waiting.iter().filter(|w| !gone.contains(&w.conversation)).cloned().collect();
        let mut next_queues = queues.clone();
        for (q, after) in &d.round_robin_cursors {
            if let Some(queue) = next_queues.iter_mut().find(|x| x.id == *q) {
                queue.round_robin_after = Some(*after);
            }
        }
        let again = decide(&next_queues, &next_agents, &next_waiting, t0());
        check_invariants(&next_queues, &next_agents, &next_waiting, t0(), &again, "second round");
        prop_assert!(again.assignments.is_empty(), "second round assigned {:?}", again.assignments);
    }
}
