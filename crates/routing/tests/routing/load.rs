//! 5,000 waiting conversations, 300 agents, 20 queues: checks the invariants only (no timing
//! assertions; `cargo bench -p switchboard-routing` measures speed).

use switchboard_core::ChannelKind;
use switchboard_routing::*;

use crate::common::*;

/// A small deterministic generator (xorshift), so the test needs no random seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

pub fn snapshot(conversations: u128, agent_count: u128) -> (Vec<Queue>, Vec<Agent>, Vec<Waiting>) {
    let mut g = Gen(0x5eed_cafe_f00d_0001);
    let kinds = [
        ChannelKind::Webchat,
        ChannelKind::Whatsapp,
        ChannelKind::Telegram,
        ChannelKind::Signal,
    ];
    let policies = [
        Policy::LongestIdle,
        Policy::LeastBusy,
        Policy::RoundRobin,
        Policy::ManualPick,
    ];
    let queues: Vec<Queue> = (1..=20u128)
        .map(|i| {
            let mut q = queue(i, policies[(i % 4) as usize]);
            q.priority = (i % 3) as i32;
            if i % 5 == 0 {
                q.required_skills = skills(&[("tech", 2)]);
            }
            q.position_updates_every = Some(mins(1));
            q.average_handle_time = Some(mins(7));
            q.overflow = (i % 4 == 1).then(|| Overflow {
                after: mins(20),
                to_queue: qid(i % 20 + 1),
            });
            q
        })
        .collect();
    let agents: Vec<Agent> = (1..=agent_count)
        .map(|i| {
            let serves: Vec<u128> = (0..3).map(|_| u128::from(g.next(20)) + 1).collect();
            let mut a = agent(i, 1 + g.next(4) as u32, &serves);
            a.presence = match g.next(10) {
                0 => Presence::Offline,
                1 => Presence::Away,
                _ => Presence::Available,
            };
            if g.next(3) == 0 {
                a.skills = skills(&[("tech", 1 + g.next(3) as u8), ("spanish", 1)]);
            }
            if g.next(4) == 0 {
                a.capacity.per_channel.insert(ChannelKind::Whatsapp, 1);
            }
            a.load.insert(kinds[g.next(4) as usize], g.next(2) as u32);
            a.last_assigned_at = Some(t0() - mins(g.next(120) as i64));
            a
        })
        .collect();
    let waiting: Vec<Waiting> = (1..=conversations)
        .map(|i| {
            let mut w = waiting(i, u128::from(g.next(20)) + 1, g.next(60) as i64);
            w.priority = (g.next(10) == 0) as i32;
            w.channel = kinds[g.next(4) as usize];
            if g.next(8) == 0 {
                w.required_skills = skills(&[("spanish", 1)]);
            }
            if g.next(5) == 0 {
                w.last_agent = Some(aid(u128::from(g.next(agent_count as u64)) + 1));
            }
            w
        })
        .collect();
    (queues, agents, waiting)
}

#[test]
fn five_thousand_conversations_and_three_hundred_agents_keep_the_invariants() {
    let (queues, agents, waiting) = snapshot(5_000, 300);
    let d = decide(&queues, &agents, &waiting, t0());
    check_invariants(&queues, &agents, &waiting, t0(), &d, "load");
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert!(
        !d.assignments.is_empty(),
        "a busy contact centre assigns something"
    );
    assert!(
        !d.overflows.is_empty(),
        "and some conversations waited past their limit"
    );
    let decided = d.assignments.len() + d.overflows.len();
    let still_waiting = d.position_updates.len();
    assert_eq!(
        decided + still_waiting,
        waiting.len(),
        "every conversation accounted for once"
    );
}
