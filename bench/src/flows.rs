//! `flows`: flow-handled inbound messages per second.
//!
//! An in-process server (fresh SQLite, or `--database-url`) with the demo data: the demo web
//! chat's default flow is the bundled main menu. `--conversations` web chat customers each
//! send `--messages` messages over the HTTP fallback as fast as the server accepts them: the
//! first starts the main menu, every later one is the global `menu` command, so each message
//! takes a full trip: ingest commit → job → `flows::step` → session + two bot messages
//! committed in one transaction. A message counts as handled when the bot's menu for it is
//! committed (one menu per message, counted on the event bus).
//!
//! Two phases, each on a fresh server, printed in one table:
//! 1. End to end: the customers send while the worker answers; the run ends when every
//!    message is answered. Printed beside it: the rate at which the same messages were
//!    acknowledged (ingest alone). The worker cannot answer faster than messages arrive, so
//!    when the two rates are close, ingest is the cap.
//! 2. Worker alone: the same messages are sent while the job worker is held back (its clock
//!    runs an hour behind, so no job is due yet), then released; the time from release until
//!    every message is answered is the flow side's own rate, whatever ingest manages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use switchboard_core::ports::Clock;
use switchboard_core::{Content, EventKind, Sender, Timestamp};

use crate::{BenchServer, start_server_with_clock};

/// The longest a phase waits for the bot's answers.
const ANSWER_DEADLINE: Duration = Duration::from_secs(300);

/// The job worker's clock in phase 2: an hour behind while held, so the jobs that ingest
/// commits (due at their real arrival time) wait; the real time once released.
#[derive(Default)]
struct HeldClock {
    released: AtomicBool,
}

impl Clock for HeldClock {
    fn now(&self) -> Timestamp {
        let now = switchboard_app::now();
        if self.released.load(Ordering::SeqCst) {
            now
        } else {
            now - Duration::from_secs(3600)
        }
    }
}

/// One phase's measurements.
struct Run {
    /// Messages sent.
    total: u64,
    /// Time until the last message was acknowledged.
    acked: Duration,
    /// Menus committed by the bot.
    handled: u64,
    /// Time until the last menu (from the first send, or from the release in phase 2).
    handled_in: Duration,
    /// Requests that did not succeed.
    errors: u64,
}

/// Runs both phases and prints one table.
pub async fn flows(
    conversations: usize,
    messages: u64,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let (end_to_end, backend) = run(conversations, messages, database_url.clone(), false).await?;
    let (drain, _) = run(conversations, messages, database_url, true).await?;

    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!();
    println!(
        "flow-handled web chat messages   (backend: {backend}, {conversations} conversations x {messages} messages)"
    );
    println!("| measure | msgs | seconds | msgs/s | budget |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| acknowledged (ingest committed), baseline | {} | {:.2} | {:.0} | |",
        end_to_end.total,
        end_to_end.acked.as_secs_f64(),
        rate(end_to_end.total, end_to_end.acked)
    );
    println!(
        "| answered by the flow, end to end (reply committed) | {} | {:.2} | {:.0} | ≥ 10,000/s |",
        end_to_end.handled,
        end_to_end.handled_in.as_secs_f64(),
        rate(end_to_end.handled, end_to_end.handled_in)
    );
    println!(
        "| answered by the flow worker alone (queued first, then released) | {} | {:.2} | {:.0} | |",
        drain.handled,
        drain.handled_in.as_secs_f64(),
        rate(drain.handled, drain.handled_in)
    );
    println!(
        "end to end answered/acknowledged rate: {:.2}; HTTP errors: {} (end to end), {} (worker alone)",
        rate(end_to_end.handled, end_to_end.handled_in) / rate(end_to_end.total, end_to_end.acked),
        end_to_end.errors,
        drain.errors
    );
    for (name, r) in [("end to end", &end_to_end), ("worker alone", &drain)] {
        if r.handled < r.total {
            println!(
                "WARNING ({name}): only {} of {} messages were answered within {} s",
                r.handled,
                r.total,
                ANSWER_DEADLINE.as_secs()
            );
        }
    }
    Ok(())
}

/// One phase on a fresh server; `hold` holds the job worker back until every message is in.
async fn run(
    conversations: usize,
    messages: u64,
    database_url: Option<String>,
    hold: bool,
) -> anyhow::Result<(Run, &'static str)> {
    let clock = Arc::new(HeldClock::default());
    clock.released.store(!hold, Ordering::SeqCst);
    let BenchServer {
        addr,
        app,
        demo,
        shutdown,
        handle,
        dir: _dir,
    } = start_server_with_clock(database_url, Some(clock.clone())).await?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conversations * 2)
        .build()?;
    let mut tokens = Vec::new();
    for _ in 0..conversations {
        let r: serde_json::Value = client
            .post(format!(
                "http://{addr}/chat/{}/session",
                demo.webchat_channel_id
            ))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(r["token"].as_str().context("token")?.to_string());
    }

    // Count the bot's menus: one per handled customer message.
    let menus = Arc::new(AtomicU64::new(0));
    let mut rx = app.bus.subscribe();
    let counter = menus.clone();
    tokio::spawn(async move {
        while let Ok(e) = rx.recv().await {
            if let EventKind::MessageCreated { message } = &e.kind
                && message.sender == Sender::Bot
                && matches!(message.content, Content::Choices { .. })
            {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let total = conversations as u64 * messages;
    let url = format!("http://{addr}/chat/{}/messages", demo.webchat_channel_id);
    let start = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (c, token) in tokens.into_iter().enumerate() {
        let (client, url, errors) = (client.clone(), url.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..messages {
                let text = if n == 0 { "hi" } else { "menu" };
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"client_msg_id": format!("c{c}-m{n}"), "text": text}))
                    .send()
                    .await;
                if !r.is_ok_and(|r| r.status().is_success()) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let acked = start.elapsed();
    let from = if hold {
        anyhow::ensure!(
            menus.load(Ordering::Relaxed) == 0,
            "the held job worker answered before it was released"
        );
        clock.released.store(true, Ordering::SeqCst);
        let released = Instant::now();
        app.wake_jobs();
        released
    } else {
        start
    };
    let deadline = Instant::now() + ANSWER_DEADLINE;
    while menus.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let handled_in = from.elapsed();
    let handled = menus.load(Ordering::Relaxed);
    shutdown.cancel();
    let _ = handle.await;
    Ok((
        Run {
            total,
            acked,
            handled,
            handled_in,
            errors: errors.load(Ordering::Relaxed),
        },
        app.backend,
    ))
}
