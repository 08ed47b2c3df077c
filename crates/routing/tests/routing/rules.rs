//! One case per policy and rule: the snapshot, the expected decisions (as summary lines, see
//! `common::summary`) and why.

use std::collections::HashMap;

use switchboard_core::ChannelKind;
use switchboard_routing::*;
use time::macros::{datetime, time};
use time::{OffsetDateTime, Weekday};

use crate::common::*;

struct Case {
    why: &'static str,
    queues: Vec<Queue>,
    agents: Vec<Agent>,
    waiting: Vec<Waiting>,
    now: OffsetDateTime,
    expected: Vec<&'static str>,
}

fn case(
    why: &'static str,
    queues: Vec<Queue>,
    agents: Vec<Agent>,
    waiting: Vec<Waiting>,
    expected: Vec<&'static str>,
) -> Case {
    Case {
        why,
        queues,
        agents,
        waiting,
        now: t0(),
        expected,
    }
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let got = decide(&c.queues, &c.agents, &c.waiting, c.now);
        assert_eq!(summary(&got), c.expected, "case: {}", c.why);
        check_invariants(&c.queues, &c.agents, &c.waiting, c.now, &got, c.why);
    }
}

fn idle_since(mut a: Agent, minutes_ago: i64) -> Agent {
    a.last_assigned_at = Some(t0() - mins(minutes_ago));
    a
}

fn loaded(mut a: Agent, kind: ChannelKind, n: u32) -> Agent {
    a.load.insert(kind, n);
    a
}

fn present(mut a: Agent, presence: Presence) -> Agent {
    a.presence = presence;
    a
}

fn with_skills(mut a: Agent, list: &[(&str, u8)]) -> Agent {
    a.skills = skills(list);
    a
}

fn returning(mut w: Waiting, agent: u128) -> Waiting {
    w.last_agent = Some(aid(agent));
    w
}

fn prio(mut w: Waiting, p: i32) -> Waiting {
    w.priority = p;
    w
}

const WEB: ChannelKind = ChannelKind::Webchat;

#[test]
fn assignment_policies() {
    use Policy::*;
    let rr_after_2 = Queue {
        round_robin_after: Some(aid(2)),
        ..queue(1, RoundRobin)
    };
    run(vec![
        case(
            "longest idle: never assigned beats assigned 10 min ago, which beats 5 min ago",
            vec![queue(1, LongestIdle)],
            vec![
                idle_since(agent(1, 5, &[1]), 10),
                idle_since(agent(2, 5, &[1]), 5),
                agent(3, 5, &[1]),
            ],
            vec![waiting(1, 1, 3), waiting(2, 1, 2), waiting(3, 1, 1)],
            vec![
                "assign c1 -> a3 (LongestIdle)",
                "assign c2 -> a1 (LongestIdle)",
                "assign c3 -> a2 (LongestIdle)",
            ],
        ),
        case(
            "longest idle: an agent just assigned in this round goes to the back",
            vec![queue(1, LongestIdle)],
            vec![
                idle_since(agent(1, 5, &[1]), 10),
                idle_since(agent(2, 5, &[1]), 5),
            ],
            vec![waiting(1, 1, 3), waiting(2, 1, 2), waiting(3, 1, 1)],
            vec![
                "assign c1 -> a1 (LongestIdle)",
                "assign c2 -> a2 (LongestIdle)",
                "assign c3 -> a1 (LongestIdle)",
            ],
        ),
        case(
            "least busy: lowest load relative to capacity (1/4 beats 1/2 and 2/4)",
            vec![queue(1, LeastBusy)],
            vec![
                loaded(agent(1, 4, &[1]), WEB, 2),
                loaded(agent(2, 2, &[1]), WEB, 1),
                loaded(agent(3, 4, &[1]), WEB, 1),
            ],
            vec![waiting(1, 1, 3)],
            vec!["assign c1 -> a3 (LeastBusy)"],
        ),
        case(
            "least busy: equal ratios fall back to longest idle",
            vec![queue(1, LeastBusy)],
            vec![
                idle_since(loaded(agent(1, 4, &[1]), WEB, 2), 1),
                idle_since(loaded(agent(2, 2, &[1]), WEB, 1), 9),
            ],
            vec![waiting(1, 1, 3)],
            vec!["assign c1 -> a2 (LeastBusy)"],
        ),
        case(
            "round robin continues after the cursor and wraps around",
            vec![rr_after_2.clone()],
            vec![agent(1, 5, &[1]), agent(2, 5, &[1]), agent(3, 5, &[1])],
            vec![waiting(1, 1, 3), waiting(2, 1, 2), waiting(3, 1, 1)],
            vec![
                "assign c1 -> a3 (RoundRobin)",
                "assign c2 -> a1 (RoundRobin)",
                "assign c3 -> a2 (RoundRobin)",
                "cursor q1 after a2",
            ],
        ),
        case(
            "round robin skips an agent who is full",
            vec![rr_after_2],
            vec![
                agent(1, 5, &[1]),
                agent(2, 5, &[1]),
                loaded(agent(3, 1, &[1]), WEB, 1),
            ],
            vec![waiting(1, 1, 3)],
            vec!["assign c1 -> a1 (RoundRobin)", "cursor q1 after a1"],
        ),
        case(
            "manual pick pushes nothing; agents take conversations themselves",
            vec![queue(1, ManualPick)],
            vec![agent(1, 5, &[1])],
            vec![waiting(1, 1, 3)],
            vec![],
        ),
    ]);
}

#[test]
fn ordering_rules() {
    use Policy::*;
    let vip = Queue {
        priority: 10,
        ..queue(2, LongestIdle)
    };
    run(vec![
        case(
            "FIFO: with room for one, the conversation that waited longest goes first",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 1, &[1])],
            vec![waiting(1, 1, 5), waiting(2, 1, 10)],
            vec!["assign c2 -> a1 (LongestIdle)"],
        ),
        case(
            "a higher conversation priority is served before older ones",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 1, &[1])],
            vec![waiting(1, 1, 10), prio(waiting(2, 1, 1), 5)],
            vec!["assign c2 -> a1 (LongestIdle)"],
        ),
        case(
            "an agent in two queues serves the higher-priority queue first",
            vec![queue(1, LongestIdle), vip],
            vec![agent(1, 1, &[1, 2])],
            vec![waiting(1, 1, 10), waiting(2, 2, 1)],
            vec!["assign c2 -> a1 (LongestIdle)"],
        ),
        case(
            "a conversation nobody is skilled for does not block the ones behind it",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 2, &[1])],
            vec![
                Waiting {
                    required_skills: skills(&[("french", 1)]),
                    ..waiting(1, 1, 10)
                },
                waiting(2, 1, 5),
            ],
            vec!["assign c2 -> a1 (LongestIdle)"],
        ),
        case(
            "ties in enqueue time are broken by conversation id (deterministic)",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 1, &[1])],
            vec![waiting(9, 1, 5), waiting(4, 1, 5)],
            vec!["assign c4 -> a1 (LongestIdle)"],
        ),
    ]);
}

#[test]
fn eligibility_rules() {
    use Policy::*;
    let billing = Queue {
        required_skills: skills(&[("billing", 2)]),
        ..queue(1, LongestIdle)
    };
    let per_channel = {
        let mut a = loaded(agent(1, 3, &[1]), ChannelKind::Whatsapp, 1);
        a.capacity.per_channel = HashMap::from([(ChannelKind::Whatsapp, 1)]);
        a
    };
    let on_whatsapp = Waiting {
        channel: ChannelKind::Whatsapp,
        ..waiting(1, 1, 10)
    };
    run(vec![
        case(
            "away and offline agents get nothing; the available one does",
            vec![queue(1, LongestIdle)],
            vec![
                present(agent(1, 5, &[1]), Presence::Away),
                present(agent(2, 5, &[1]), Presence::Offline),
                idle_since(agent(3, 5, &[1]), 1),
            ],
            vec![waiting(1, 1, 3)],
            vec!["assign c1 -> a3 (LongestIdle)"],
        ),
        case(
            "nobody available: everyone keeps waiting",
            vec![queue(1, LongestIdle)],
            vec![present(agent(1, 5, &[1]), Presence::Away)],
            vec![waiting(1, 1, 3)],
            vec![],
        ),
        case(
            "queue skills at a minimum level: billing 1 is not enough for billing 2",
            vec![billing.clone()],
            vec![
                with_skills(agent(1, 5, &[1]), &[("billing", 1)]),
                idle_since(with_skills(agent(2, 5, &[1]), &[("billing", 3)]), 1),
            ],
            vec![waiting(1, 1, 3)],
            vec!["assign c1 -> a2 (LongestIdle)"],
        ),
        case(
            "conversation skills add to the queue's",
            vec![billing],
            vec![
                with_skills(agent(1, 5, &[1]), &[("billing", 2)]),
                idle_since(
                    with_skills(agent(2, 5, &[1]), &[("billing", 2), ("spanish", 1)]),
                    1,
                ),
            ],
            vec![Waiting {
                required_skills: skills(&[("Spanish", 1)]),
                ..waiting(1, 1, 3)
            }],
            vec!["assign c1 -> a2 (LongestIdle)"],
        ),
        case(
            "only members of the queue are considered",
            vec![queue(1, LongestIdle), queue(2, LongestIdle)],
            vec![agent(1, 5, &[2])],
            vec![waiting(1, 1, 3)],
            vec![],
        ),
        case(
            "capacity counts this round's assignments: room for 1 more means 1",
            vec![queue(1, LongestIdle)],
            vec![loaded(agent(1, 2, &[1]), ChannelKind::Telegram, 1)],
            vec![waiting(1, 1, 3), waiting(2, 1, 2), waiting(3, 1, 1)],
            vec!["assign c1 -> a1 (LongestIdle)"],
        ),
        case(
            "per-channel capacity: full on WhatsApp, still room for web chat",
            vec![queue(1, LongestIdle)],
            vec![per_channel],
            vec![on_whatsapp, waiting(2, 1, 5)],
            vec!["assign c2 -> a1 (LongestIdle)"],
        ),
        case(
            "an agent already over capacity (e.g. after a manual transfer) gets nothing",
            vec![queue(1, LongestIdle)],
            vec![loaded(agent(1, 2, &[1]), WEB, 3)],
            vec![waiting(1, 1, 3)],
            vec![],
        ),
    ]);
}

#[test]
fn returning_customer_rules() {
    use Policy::*;
    run(vec![
        case(
            "a returning customer goes back to their last agent, whatever the policy says",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 5, &[1]), idle_since(agent(2, 5, &[1]), 1)],
            vec![returning(waiting(1, 1, 3), 2)],
            vec!["assign c1 -> a2 (returning)"],
        ),
        case(
            "last agent away: the queue's policy decides",
            vec![queue(1, LongestIdle)],
            vec![
                agent(1, 5, &[1]),
                present(agent(2, 5, &[1]), Presence::Away),
            ],
            vec![returning(waiting(1, 1, 3), 2)],
            vec!["assign c1 -> a1 (LongestIdle)"],
        ),
        case(
            "last agent full: the queue's policy decides",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 5, &[1]), loaded(agent(2, 1, &[1]), WEB, 1)],
            vec![returning(waiting(1, 1, 3), 2)],
            vec!["assign c1 -> a1 (LongestIdle)"],
        ),
        case(
            "last agent does not serve this queue: the queue's policy decides",
            vec![queue(1, LongestIdle), queue(2, LongestIdle)],
            vec![agent(1, 5, &[1]), agent(2, 5, &[2])],
            vec![returning(waiting(1, 1, 3), 2)],
            vec!["assign c1 -> a1 (LongestIdle)"],
        ),
        case(
            "returning customers keep their place in line (FIFO is not bypassed)",
            vec![queue(1, LongestIdle)],
            vec![agent(2, 1, &[1])],
            vec![waiting(1, 1, 10), returning(waiting(2, 1, 3), 2)],
            vec!["assign c1 -> a2 (LongestIdle)"],
        ),
        case(
            "manual pick never pushes, not even to the last agent",
            vec![queue(1, ManualPick)],
            vec![agent(2, 5, &[1])],
            vec![returning(waiting(1, 1, 3), 2)],
            vec![],
        ),
    ]);
}

fn office_hours() -> BusinessHours {
    BusinessHours {
        time_zone: TimeZone::parse("America/Sao_Paulo").expect("zone"),
        weekly: [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ]
        .into_iter()
        .map(|day| Window {
            day,
            open: time!(8:00),
            close: time!(18:00),
        })
        .collect(),
        closed_dates: vec![],
    }
}

#[test]
fn hours_overflow_and_notices() {
    use Policy::*;
    let closed_now = Queue {
        business_hours: Some(office_hours()),
        out_of_hours: OutOfHours::Flow("after-hours".into()),
        ..queue(1, LongestIdle)
    };
    let overflowing = Queue {
        overflow: Some(Overflow {
            after: mins(10),
            to_queue: qid(2),
        }),
        ..queue(1, LongestIdle)
    };
    let closed_overflowing = Queue {
        business_hours: Some(office_hours()),
        ..overflowing.clone()
    };
    let positions = Queue {
        position_updates_every: Some(mins(2)),
        average_handle_time: Some(mins(6)),
        ..queue(1, LongestIdle)
    };
    let manual_positions = Queue {
        policy: ManualPick,
        ..positions.clone()
    };
    let told_ooh_at = |mut w: Waiting, at: OffsetDateTime| {
        w.out_of_hours_sent_at = Some(at);
        w
    };
    let told_position = |mut w: Waiting, ago: i64| {
        w.position_sent_at = Some(t0() - mins(ago));
        w
    };
    // Monday 10:00 UTC is 07:00 in São Paulo (UTC-3): closed.
    let mut cases = vec![
        case(
            "closed queue: no assignment, the out-of-hours flow instead",
            vec![closed_now.clone()],
            vec![agent(1, 5, &[1])],
            vec![waiting(1, 1, 3)],
            vec!["out-of-hours c1 Flow(\"after-hours\")"],
        ),
        case(
            "closed queue: told once per closure, not every round",
            vec![closed_now.clone()],
            vec![agent(1, 5, &[1])],
            vec![told_ooh_at(waiting(1, 1, 3), t0() - mins(2))],
            vec![],
        ),
        case(
            "closed again after being open since the last notice: told again",
            vec![closed_now.clone()],
            vec![agent(1, 5, &[1])],
            // Thursday 22:00 in São Paulo; open all Friday since.
            vec![told_ooh_at(
                waiting(1, 1, 3),
                datetime!(2026-01-02 01:00 UTC),
            )],
            vec!["out-of-hours c1 Flow(\"after-hours\")"],
        ),
        case(
            "waited past the limit with nobody to take it: overflow",
            vec![overflowing.clone(), queue(2, LongestIdle)],
            vec![],
            vec![waiting(1, 1, 10), waiting(2, 1, 9)],
            vec!["overflow c1 q1 -> q2"],
        ),
        case(
            "overflow never takes a conversation an agent can have now",
            vec![overflowing.clone(), queue(2, LongestIdle)],
            vec![agent(1, 1, &[1])],
            vec![waiting(1, 1, 30), waiting(2, 1, 20)],
            vec!["assign c1 -> a1 (LongestIdle)", "overflow c2 q1 -> q2"],
        ),
        case(
            "the overflow clock is time in this queue, not time since first queued",
            vec![overflowing.clone(), queue(2, LongestIdle)],
            vec![],
            vec![Waiting {
                in_queue_since: t0() - mins(3),
                ..waiting(1, 1, 30)
            }],
            vec![],
        ),
        case(
            "a closed queue keeps its customers rather than overflowing them",
            vec![closed_overflowing, queue(2, LongestIdle)],
            vec![],
            vec![waiting(1, 1, 4 * 60)],
            vec![
                "out-of-hours c1 Message(\"We are closed right now; we will answer as soon as we open.\")",
                "sla breach c1 FirstResponse",
            ],
        ),
        case(
            "overflow to a queue not in the snapshot is reported, not followed",
            vec![overflowing],
            vec![],
            vec![waiting(1, 1, 2)],
            vec![
                "problem BadOverflowTarget { queue: QueueId(00000000-0000-0000-0000-000000000001), to: QueueId(00000000-0000-0000-0000-000000000002) }",
            ],
        ),
        case(
            "positions after this round's assignments, with 6 min x position / 2 slots",
            vec![positions.clone()],
            vec![agent(1, 2, &[1])],
            vec![
                waiting(1, 1, 4),
                waiting(2, 1, 3),
                waiting(3, 1, 2),
                waiting(4, 1, 1),
            ],
            vec![
                "assign c1 -> a1 (LongestIdle)",
                "assign c2 -> a1 (LongestIdle)",
                "position c3 #1 wait 180s",
                "position c4 #2 wait 360s",
            ],
        ),
        case(
            "position updates follow the cadence: sent 1 min ago is not due, 2 min ago is",
            vec![manual_positions.clone()],
            vec![agent(1, 2, &[1])],
            vec![
                told_position(waiting(1, 1, 4), 1),
                told_position(waiting(2, 1, 3), 2),
            ],
            vec!["position c2 #2 wait 360s"],
        ),
        case(
            "nobody available: position without a promised wait",
            vec![manual_positions],
            vec![present(agent(1, 2, &[1]), Presence::Away)],
            vec![waiting(1, 1, 1)],
            vec!["position c1 #1 wait ?"],
        ),
        case(
            "SLA: warning a minute before the first-response target, breach after",
            vec![strict_queue(1, ManualPick)],
            vec![],
            vec![waiting(1, 1, 4), waiting(2, 1, 6)],
            vec!["sla warn c1 FirstResponse", "sla breach c2 FirstResponse"],
        ),
        case(
            "SLA notices are reported for conversations assigned in the same round too",
            vec![strict_queue(1, LongestIdle)],
            vec![agent(1, 1, &[1])],
            vec![waiting(1, 1, 4)],
            vec!["assign c1 -> a1 (LongestIdle)", "sla warn c1 FirstResponse"],
        ),
        case(
            "bad input: unknown queue and duplicate conversation are reported, nothing lost",
            vec![queue(1, LongestIdle)],
            vec![agent(1, 5, &[1])],
            vec![waiting(1, 9, 3), waiting(2, 1, 2), waiting(2, 1, 2)],
            vec![
                "assign c2 -> a1 (LongestIdle)",
                "problem UnknownQueue { conversation: ConversationId(00000000-0000-0000-0000-000000000001), queue: QueueId(00000000-0000-0000-0000-000000000009) }",
                "problem DuplicateConversation { conversation: ConversationId(00000000-0000-0000-0000-000000000002) }",
            ],
        ),
    ];
    // Open at 11:00 São Paulo: the same queue assigns.
    cases.push(Case {
        now: datetime!(2026-01-05 14:00 UTC),
        ..case(
            "open at 11:00 local time: assigned as usual",
            vec![closed_now],
            vec![agent(1, 5, &[1])],
            vec![waiting(1, 1, 3)],
            // Enqueued at 06:57 local, four hours ago: the first response is late.
            vec![
                "assign c1 -> a1 (LongestIdle)",
                "sla breach c1 FirstResponse",
            ],
        )
    });
    run(cases);
}
