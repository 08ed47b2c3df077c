//! `cargo bench -p switchboard-routing`: how fast one routing round is.
//!
//! Plain timing loop (no harness), on a snapshot like the load test's: 5,000 waiting
//! conversations, 300 agents, 20 queues of all policies. Prints rounds per second,
//! conversations decided per second, and the ratio to a baseline that only sorts references
//! to the waiting list by serving order, the least any router must do. Ratios, not absolute
//! numbers, are what to compare across machines (architecture.md, performance budgets).

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};

use switchboard_core::{ChannelKind, ConversationId, UserId};
use switchboard_routing::{
    Agent, Overflow, Policy, Presence, Queue, QueueId, Skill, Skills, Waiting, decide,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

struct Gen(u64);

impl Gen {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn skills(list: &[(&str, u8)]) -> Skills {
    list.iter()
        .map(|&(n, l)| (Skill::parse(n).expect("bench skill"), l))
        .collect()
}

fn snapshot(
    conversations: u128,
    agent_count: u128,
    now: OffsetDateTime,
) -> (Vec<Queue>, Vec<Agent>, Vec<Waiting>) {
    let qid = |n: u128| QueueId::from_uuid(Uuid::from_u128(n));
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
    let queues = (1..=20u128)
        .map(|i| {
            let mut q = Queue::new(qid(i), format!("q{i}"));
            q.policy = policies[(i % 4) as usize];
            q.priority = (i % 3) as i32;
            if i % 5 == 0 {
                q.required_skills = skills(&[("tech", 2)]);
            }
            q.position_updates_every = Some(Duration::minutes(1));
            q.average_handle_time = Some(Duration::minutes(7));
            q.overflow = (i % 4 == 1).then(|| Overflow {
                after: Duration::minutes(20),
                to_queue: qid(i % 20 + 1),
            });
            q
        })
        .collect();
    let agents = (1..=agent_count)
        .map(|i| {
            let mut a = Agent::new(UserId::from_uuid(Uuid::from_u128(i)), 1 + g.next(4) as u32);
            a.queues = (0..3).map(|_| qid(u128::from(g.next(20)) + 1)).collect();
            a.presence = match g.next(10) {
                0 => Presence::Offline,
                1 => Presence::Away,
                _ => Presence::Available,
            };
            if g.next(3) == 0 {
                a.skills = skills(&[("tech", 1 + g.next(3) as u8), ("spanish", 1)]);
            }
            a.load.insert(kinds[g.next(4) as usize], g.next(2) as u32);
            a.last_assigned_at = Some(now - Duration::minutes(g.next(120) as i64));
            a
        })
        .collect();
    let waiting = (1..=conversations)
        .map(|i| {
            let mut w = Waiting::new(
                ConversationId::from_uuid(Uuid::from_u128(i)),
                qid(u128::from(g.next(20)) + 1),
                kinds[g.next(4) as usize],
                now - Duration::minutes(g.next(60) as i64),
            );
            w.priority = (g.next(10) == 0) as i32;
            if g.next(8) == 0 {
                w.required_skills = skills(&[("spanish", 1)]);
            }
            if g.next(5) == 0 {
                w.last_agent = Some(UserId::from_uuid(Uuid::from_u128(
                    u128::from(g.next(agent_count as u64)) + 1,
                )));
            }
            w
        })
        .collect();
    (queues, agents, waiting)
}

/// Runs `f` repeatedly for about `budget` and returns the mean time per run.
fn time_per_run(budget: StdDuration, mut f: impl FnMut()) -> StdDuration {
    f(); // warm-up
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget {
        f();
        runs += 1;
    }
    start.elapsed() / runs.max(1)
}

fn main() {
    let now = datetime!(2026-01-05 10:00 UTC);
    for (conversations, agents) in [(5_000u128, 300u128), (1_000, 100), (20_000, 1_000)] {
        let (queues, agent_list, waiting) = snapshot(conversations, agents, now);
        let sample = decide(&queues, &agent_list, &waiting, now);
        let per_round = time_per_run(StdDuration::from_secs(2), || {
            black_box(decide(
                black_box(&queues),
                black_box(&agent_list),
                black_box(&waiting),
                now,
            ));
        });
        let per_sort = time_per_run(StdDuration::from_secs(1), || {
            let mut list: Vec<&Waiting> = black_box(&waiting).iter().collect();
            list.sort_by_key(|w| (std::cmp::Reverse(w.priority), w.enqueued_at, w.conversation));
            black_box(list);
        });
        let rounds_per_s = 1.0 / per_round.as_secs_f64();
        println!(
            "decide {conversations:>6} waiting x {agents:>5} agents: {:>9.3} ms/round, \
             {rounds_per_s:>8.1} rounds/s, {:>11.0} conversations decided/s \
             ({} assigned, {} overflowed); {:.1}x the sort baseline ({:.3} ms)",
            per_round.as_secs_f64() * 1e3,
            rounds_per_s * conversations as f64,
            sample.assignments.len(),
            sample.overflows.len(),
            per_round.as_secs_f64() / per_sort.as_secs_f64(),
            per_sort.as_secs_f64() * 1e3,
        );
    }
}
