//! `switchboard-bench`: load generators for the budgets in architecture.md.
//!
//! `cargo run --release -p switchboard-bench -- inbound` starts a Switchboard server
//! in-process on a fresh SQLite database (or `--database-url postgres://…`), and a bare axum
//! handler beside it, then drives both with the same HTTP load: first closed-loop (as fast as
//! `--concurrency` clients can go) for throughput, then open-loop at `--rate` messages/s for
//! latency. It prints one table; the ratio column compares Switchboard with the bare handler
//! measured in the same run, so a noisy machine affects both sides alike; the CPU column
//! (process CPU time per acknowledged message) moves even less when other programs compete
//! for the cores. `--without-bot` posts to a channel no flow answers (ingest alone).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::routing::post;
use clap::{Parser, Subcommand};
use serde_json::json;
use switchboard_app::Config;
use switchboard_http::Server;
use tokio_util::sync::CancellationToken;

mod flows;
mod latency;
mod memory;
mod outbound;

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    about = "Load generators for Switchboard's performance budgets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inbound messages (web chat HTTP endpoint → committed → 202): throughput and ack latency.
    Inbound {
        /// Seconds of each phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent clients in the throughput phase.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Messages per second in the latency phase.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// PostgreSQL URL; default a fresh SQLite database in a temp dir.
        #[arg(long, env = "BENCH_DATABASE_URL")]
        database_url: Option<String>,
        /// Ingest only: post to a web chat channel without a default flow, so conversations
        /// go straight to the queue and no bot answers (one routing job per new
        /// conversation, none per message). Default: the demo channel, whose main-menu
        /// flow answers every message on the same two cores.
        #[arg(long)]
        without_bot: bool,
    },
    /// Flow-handled messages end to end: web chat customers talk to the demo main menu; the
    /// time until every message is answered by the bot, against the ingest rate of the same run.
    Flows {
        /// Concurrent customers (conversations).
        #[arg(long, default_value_t = 200)]
        conversations: usize,
        /// Messages each customer sends.
        #[arg(long, default_value_t = 50)]
        messages: u64,
        /// PostgreSQL URL; default a fresh SQLite database in a temp dir.
        #[arg(long, env = "BENCH_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Customer message → agent websocket: web chat messages at --rate into conversations
    /// assigned to an agent whose live feed is open; p50/p95/p99/max from POST to event,
    /// beside a bare axum POST → broadcast → websocket baseline in the same run.
    Latency {
        /// Messages per second offered (open loop).
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Seconds of the measured phase, per target.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Conversations the messages are spread over (1-100, all assigned to the agent).
        #[arg(long, default_value_t = 100)]
        conversations: usize,
        /// PostgreSQL URL; default a fresh SQLite database in a temp dir.
        #[arg(long, env = "BENCH_DATABASE_URL")]
        database_url: Option<String>,
        /// NATS URL (with --database-url): two nodes, customers on A, the agent on B.
        #[arg(long, env = "BENCH_NATS_URL")]
        nats_url: Option<String>,
    },
    /// Outbound: a campaign burst to one mocked WhatsApp number (80 msg/s) and one Telegram
    /// bot (30 msg/s); the mocks answer 429 past the rate. Reports achieved/configured rate.
    Outbound {
        /// Messages per provider.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
    },
    /// Memory: RSS of the `switchboard` binary (built next to this one) idle and with agent
    /// websockets open, beside a bare axum websocket server. Raises the open-files limit.
    Memory {
        /// Agent websockets to open.
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
    },
    /// The memory benchmark's baseline server (started by `memory`; not for direct use).
    #[command(hide = true)]
    BareWs {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Inbound {
            seconds,
            concurrency,
            rate,
            database_url,
            without_bot,
        } => inbound(seconds, concurrency, rate, database_url, without_bot).await,
        Command::Latency {
            rate,
            seconds,
            conversations,
            database_url,
            nats_url,
        } => {
            latency::latency(latency::Options {
                rate,
                seconds,
                conversations,
                database_url,
                nats_url,
            })
            .await
        }
        Command::Outbound { messages } => outbound::outbound(messages).await,
        Command::Memory { sockets } => memory::memory(sockets).await,
        Command::BareWs { port } => memory::bare_ws(port).await,
        Command::Flows {
            conversations,
            messages,
            database_url,
        } => flows::flows(conversations, messages, database_url).await,
    }
}

/// One measured phase.
struct Phase {
    sent: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[idx.min(v.len() - 1)] as f64 / 1000.0
    }
}

/// CPU time used by this process so far (all threads, user + system), from
/// `/proc/self/stat` (in clock ticks of 1/100 s); zero where that file does not exist.
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs a phase and also returns the CPU microseconds the whole process (server, its
/// background workers and the load generator) spent per acknowledged message. Unlike
/// msgs/s, this barely moves when other programs compete for the cores, so it compares
/// runs made on a busy machine.
async fn with_cpu(phase: impl std::future::Future<Output = Phase>) -> (Phase, f64) {
    let before = process_cpu();
    let p = phase.await;
    let cpu = process_cpu().saturating_sub(before);
    let per_msg = cpu.as_secs_f64() * 1e6 / p.sent.max(1) as f64;
    (p, per_msg)
}

/// A request factory: given a sequence number, the request to send.
type MakeRequest = Arc<dyn Fn(u64) -> reqwest::RequestBuilder + Send + Sync>;

async fn run_phase(
    make: MakeRequest,
    seconds: u64,
    concurrency: usize,
    rate: Option<u64>,
) -> Phase {
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let make = make.clone();
        let counter = counter.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            // Open loop: each worker sends on its own schedule, whatever the answers take.
            let interval =
                rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r.max(1) as f64));
            let mut next = Instant::now()
                + interval
                    .map(|i| i.mul_f64(w as f64 / concurrency as f64))
                    .unwrap_or_default();
            loop {
                if let Some(i) = interval {
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    }
                    next += i;
                }
                if Instant::now() >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                match make(n).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t0.elapsed().as_micros() as u64);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            latencies_us.extend(l);
        }
    }
    Phase {
        sent: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        latencies_us,
    }
}

async fn bare_axum() -> anyhow::Result<SocketAddr> {
    let router = Router::new().route(
        "/ingest",
        post(|body: axum::body::Bytes| async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            (
                axum::http::StatusCode::ACCEPTED,
                axum::Json(json!({"ok": true, "len": v.to_string().len()})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// A Switchboard server started in-process for a benchmark over a fresh database (SQLite in a
/// temp dir unless `database_url` is given), with the demo data seeded.
pub(crate) struct BenchServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// The runtime (for the event bus and the store).
    pub app: switchboard_app::App,
    /// The seeded demo data.
    pub demo: switchboard_app::demo::DemoInfo,
    /// Stops the server.
    pub shutdown: CancellationToken,
    /// The serving task.
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Keeps the data directory alive as long as the server.
    pub dir: tempfile::TempDir,
}

/// Starts a [`BenchServer`].
pub(crate) async fn start_server(database_url: Option<String>) -> anyhow::Result<BenchServer> {
    start_server_with_clock(database_url, None).await
}

/// [`start_server`] whose job worker and flows read `clock` (the flows benchmark holds jobs
/// back with it to time the worker's drain alone).
pub(crate) async fn start_server_with_clock(
    database_url: Option<String>,
    clock: Option<Arc<dyn switchboard_core::ports::Clock>>,
) -> anyhow::Result<BenchServer> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        database_url,
        ..Config::default()
    };
    // A fixed throwaway master key: benchmarks make no key file in the home directory.
    config.keys.master_key = Some(switchboard_app::config::KeyText::new("42".repeat(32)));
    let listen = config.listen;
    let mut app = switchboard_app::App::open(config)
        .await
        .context("starting Switchboard")?;
    if let Some(clock) = clock {
        app = app.with_clock(clock);
    }
    let server = Server::with_app(app, listen)
        .await
        .context("starting Switchboard")?;
    let addr = server.addr();
    let app = server.app().clone();
    let demo = app.seed_demo(Some("bench-password-1")).await?;
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(server.run_until_stopped(shutdown.clone()));
    Ok(BenchServer {
        addr,
        app,
        demo,
        shutdown,
        handle,
        dir,
    })
}

async fn inbound(
    seconds: u64,
    concurrency: usize,
    rate: u64,
    database_url: Option<String>,
    without_bot: bool,
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
    let bare = bare_axum().await?;
    let channel_id = if without_bot {
        quiet_webchat_channel(&app, &demo).await?
    } else {
        demo.webchat_channel_id.clone()
    };
    let load = if without_bot {
        "ingest only: no bot"
    } else {
        "the demo bot answers each message"
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    // One visitor per client slot, so messages spread over many conversations like real traffic.
    let mut tokens = Vec::new();
    for _ in 0..concurrency {
        let r: serde_json::Value = client
            .post(format!("http://{addr}/chat/{channel_id}/session"))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(r["token"].as_str().context("token")?.to_string());
    }
    let tokens = Arc::new(tokens);
    let sb_url = format!("http://{addr}/chat/{channel_id}/messages");
    let bare_url = format!("http://{bare}/ingest");
    let run = uuid_like();
    let make_sb: MakeRequest = {
        let client = client.clone();
        let tokens = tokens.clone();
        let run = run.clone();
        Arc::new(move |n| {
            client
                .post(&sb_url)
                .bearer_auth(&tokens[(n as usize) % tokens.len()])
                .json(&json!({"client_msg_id": format!("{run}-{n}"), "text": format!("benchmark message number {n}")}))
        })
    };
    let make_bare: MakeRequest = {
        let client = client.clone();
        let run = run.clone();
        Arc::new(move |n| {
            client
                .post(&bare_url)
                .json(&json!({"client_msg_id": format!("{run}-{n}"), "text": format!("benchmark message number {n}")}))
        })
    };

    eprintln!("warming up…");
    run_phase(make_bare.clone(), 1, concurrency, None).await;
    run_phase(make_sb.clone(), 1, concurrency, None).await;
    eprintln!("throughput phase: {seconds}s, {concurrency} clients, each target in turn");
    let bare_max = with_cpu(run_phase(make_bare.clone(), seconds, concurrency, None)).await;
    let sb_max = with_cpu(run_phase(make_sb.clone(), seconds, concurrency, None)).await;
    eprintln!("latency phase: {seconds}s at {rate} msg/s");
    let bare_rate = with_cpu(run_phase(make_bare, seconds, concurrency, Some(rate))).await;
    let sb_rate = with_cpu(run_phase(make_sb, seconds, concurrency, Some(rate))).await;

    println!();
    println!(
        "inbound web chat message → committed → 202   (backend: {backend}, {load}, {concurrency} clients, {seconds}s phases)"
    );
    println!(
        "| target | mode | msgs/s | p50 ms | p99 ms | errors | ratio to bare axum | CPU µs/msg | bare CPU / this CPU |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, mode: &str, (p, cpu): &(Phase, f64), (base, base_cpu): &(Phase, f64)| {
        println!(
            "| {name} | {mode} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {cpu:.1} | {:.2} |",
            p.rate(),
            p.pct(0.5),
            p.pct(0.99),
            p.errors,
            p.rate() / base.rate(),
            base_cpu / cpu.max(f64::MIN_POSITIVE),
        );
    };
    row("bare axum", "max", &bare_max, &bare_max);
    row("switchboard", "max", &sb_max, &bare_max);
    row("bare axum", &format!("{rate}/s"), &bare_rate, &bare_rate);
    row("switchboard", &format!("{rate}/s"), &sb_rate, &bare_rate);

    shutdown.cancel();
    let _ = handle.await;
    Ok(())
}

/// A second web chat channel of the demo tenant with no default flow: its conversations start
/// queued, so the inbound benchmark measures ingest without the bot's work.
async fn quiet_webchat_channel(
    app: &switchboard_app::App,
    demo: &switchboard_app::demo::DemoInfo,
) -> anyhow::Result<String> {
    let channel = app
        .store
        .create_channel(
            switchboard_core::NewChannel {
                tenant_id: demo.tenant_id.parse().context("demo tenant id")?,
                kind: switchboard_core::ChannelKind::Webchat,
                name: "Benchmark chat (no bot)".into(),
                credentials: json!({}),
                settings: switchboard_core::ChannelSettings::default(),
            },
            switchboard_app::now(),
        )
        .await?;
    Ok(channel.id.to_string())
}

/// A short unique run id so repeated runs against one database never collide on dedupe keys.
fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("run{}", t.as_nanos())
}
