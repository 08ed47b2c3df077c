//! `flows`: flow-handled inbound messages per second, end to end.
//!
//! An in-process server (fresh SQLite, or `--database-url`) with the demo data: the demo web
//! chat's default flow is the bundled main menu. `--conversations` web chat customers each
//! send `--messages` messages over the HTTP fallback as fast as the server accepts them: the
//! first starts the main menu, every later one is the global `menu` command, so each message
//! takes a full trip: ingest commit → job → `flows::step` → session + two bot messages
//! committed in one transaction. The run ends when the bot has answered every message (one
//! menu per message, counted on the event bus). Printed beside it, from the same run: the rate
//! at which the same messages were acknowledged (ingest alone), as the baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use switchboard_core::{Content, EventKind, Sender};

use crate::{BenchServer, start_server};

/// Runs the benchmark and prints one table.
pub async fn flows(
    conversations: usize,
    messages: u64,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let BenchServer {
        addr,
        app,
        demo,
        shutdown,
        handle,
        dir: _dir,
    } = start_server(database_url).await?;
    let backend = app.backend;

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
    let deadline = Instant::now() + Duration::from_secs(120);
    while menus.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handled_at = start.elapsed();
    let handled = menus.load(Ordering::Relaxed);

    println!();
    println!(
        "flow-handled web chat messages, end to end   (backend: {backend}, {conversations} conversations x {messages} messages)"
    );
    println!("| measure | msgs | seconds | msgs/s | budget |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| acknowledged (ingest committed), baseline | {total} | {:.2} | {:.0} | |",
        acked.as_secs_f64(),
        total as f64 / acked.as_secs_f64()
    );
    println!(
        "| answered by the flow (reply committed) | {handled} | {:.2} | {:.0} | ≥ 10,000/s |",
        handled_at.as_secs_f64(),
        handled as f64 / handled_at.as_secs_f64()
    );
    println!(
        "ratio answered/acknowledged rate: {:.2}; HTTP errors: {}",
        (handled as f64 / handled_at.as_secs_f64()) / (total as f64 / acked.as_secs_f64()),
        errors.load(Ordering::Relaxed)
    );
    if handled < total {
        println!("WARNING: only {handled} of {total} messages were answered within 120 s");
    }
    shutdown.cancel();
    let _ = handle.await;
    Ok(())
}
