//! `switchboard-bench latency`: customer message → agent websocket.
//!
//! Web chat customers post (`POST /chat/{channel}/messages`) at a fixed rate into
//! conversations assigned to one agent whose live feed (`/api/v1/events`) is open; a message's
//! latency is the time from sending its POST to its `message_created` event arriving on the
//! agent's socket. The load is open loop (every message leaves at its own time, whatever the
//! answers take), so a slow server shows as latency and as a lower achieved rate, not as a
//! politely slower client. Beside it, in the same run and with the same load generator and
//! client, a bare axum baseline: POST → tokio broadcast → websocket (with the same 4 KiB
//! socket buffers Switchboard uses).
//!
//! With `--database-url postgres://…` the run uses PostgreSQL; adding `--nats-url nats://…`
//! starts two nodes on that database and NATS JetStream: customers post to node A and the
//! agent's socket is on node B, so every event crosses NATS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{BenchServer, MakeRequest, Phase};

/// The demo staff's password in a database a benchmark seeded.
pub(crate) const PASSWORD: &str = "bench-password-1";
/// Requests in flight at most; past it the generator waits (and the achieved rate drops).
const MAX_IN_FLIGHT: usize = 4096;
/// How long to wait, after the last POST, for events still on their way.
const DRAIN: Duration = Duration::from_secs(10);

/// What to run.
pub struct Options {
    /// Messages per second offered.
    pub rate: u64,
    /// Seconds of the measured phase (per target).
    pub seconds: u64,
    /// Conversations the messages are spread over (all assigned to the agent; 1 to 100).
    pub conversations: usize,
    /// PostgreSQL URL; default a fresh SQLite database in a temp dir.
    pub database_url: Option<String>,
    /// NATS URL: two nodes, the customers on A and the agent on B.
    pub nats_url: Option<String>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// When each message id arrived on the agent's socket.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Reads `ws` until it closes, recording when each `message_created` event arrives.
fn watch(mut ws: Socket, arrivals: Arrivals) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            let at = Instant::now();
            let tokio_tungstenite::tungstenite::Message::Text(text) = frame else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if v["type"] == "message_created"
                && let Some(id) = v["data"]["message"]["id"].as_str()
            {
                arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_string(), at);
            }
        }
    })
}

/// What one measured run gave: each acknowledged message's id with the moment its POST left,
/// the failed requests and how long sending took.
struct Sent {
    acked: Vec<(String, Instant)>,
    errors: u64,
    elapsed: Duration,
}

/// Offers `rate` requests a second for `seconds`, open loop: each request is sent at its
/// scheduled time in its own task, at most [`MAX_IN_FLIGHT`] at once.
async fn offer(make: &MakeRequest, rate: u64, seconds: u64) -> Sent {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let total = rate.saturating_mul(seconds);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while n < total {
        // Every message due by now leaves now; then wait a millisecond for the next ones.
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while n < due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let req = make(n);
            let (acked, errors) = (acked.clone(), errors.clone());
            tasks.spawn(async move {
                let t0 = Instant::now();
                let id = match req.send().await {
                    Ok(r) if r.status().is_success() => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["message_id"].as_str().map(str::to_string)),
                    _ => None,
                };
                match id {
                    Some(id) => acked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id, t0)),
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(slot);
            });
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
    Sent {
        acked,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
    }
}

/// One target's result: latencies of the messages whose event arrived, and the ones that
/// never did.
struct Measured {
    phase: Phase,
    lost: usize,
}

/// Runs the load against one target and pairs each acknowledged message with its event.
async fn measure(make: &MakeRequest, arrivals: &Arrivals, rate: u64, seconds: u64) -> Measured {
    let sent = offer(make, rate, seconds).await;
    // Events may still be on their way: wait until each acknowledged message's has arrived.
    let deadline = Instant::now() + DRAIN;
    loop {
        let done = {
            let seen = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            sent.acked.iter().all(|(id, _)| seen.contains_key(id))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = arrivals.lock().unwrap_or_else(|e| e.into_inner());
    let latencies_us: Vec<u64> = sent
        .acked
        .iter()
        .filter_map(|(id, t0)| seen.get(id).map(|at| at.saturating_duration_since(*t0)))
        .map(|d| d.as_micros() as u64)
        .collect();
    Measured {
        lost: sent.acked.len() - latencies_us.len(),
        phase: Phase {
            // Achieved rate: messages acknowledged per second of sending.
            sent: sent.acked.len() as u64,
            errors: sent.errors,
            elapsed: sent.elapsed,
            latencies_us,
        },
    }
}

// ------------------------------------------------------------------ the baseline

/// The baseline's state: the broadcast every socket listens to, and the next message number.
#[derive(Clone)]
struct Bare {
    tx: broadcast::Sender<Arc<str>>,
    next: Arc<AtomicU64>,
}

/// `POST /messages`: parses the body, broadcasts a `message_created` event and answers 202
/// with the message id.
async fn bare_post(State(bare): State<Bare>, body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let id = format!("bare-{}", bare.next.fetch_add(1, Ordering::Relaxed));
    let event = json!({
        "type": "message_created",
        "data": {"message": {"id": id, "content": {"type": "text", "body": v["text"]}}},
    });
    // No socket listening is not an error for the handler.
    let _ = bare.tx.send(event.to_string().into());
    (
        axum::http::StatusCode::ACCEPTED,
        axum::Json(json!({"message_id": id})),
    )
        .into_response()
}

/// `GET /ws`: streams every broadcast event to the socket.
async fn bare_ws(State(bare): State<Bare>, ws: WebSocketUpgrade) -> axum::response::Response {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |mut socket| async move {
            let mut rx = bare.tx.subscribe();
            loop {
                match rx.recv().await {
                    Ok(text) => {
                        if socket
                            .send(WsMessage::Text(text.as_ref().into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
}

/// Starts the baseline in this process.
async fn start_bare() -> anyhow::Result<SocketAddr> {
    let (tx, _) = broadcast::channel(65_536);
    let state = Bare {
        tx,
        next: Arc::new(AtomicU64::new(0)),
    };
    let router = axum::Router::new()
        .route("/messages", axum::routing::post(bare_post))
        .route("/ws", axum::routing::get(bare_ws))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

// ------------------------------------------------------------------ Switchboard

/// A logged-in staff session.
pub(crate) struct Agent {
    /// The session cookie (`name=value`).
    pub cookie: String,
    /// The CSRF token for writes.
    pub csrf: String,
}

/// Logs the demo agent (ann@demo.example) in on `base`, in a database a benchmark seeded.
pub(crate) async fn log_in(http: &reqwest::Client, base: &str) -> anyhow::Result<Agent> {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "ann@demo.example", "password": PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "the demo agent could not log in ({}): use a database this benchmark seeded \
             (a fresh one), where her password is {PASSWORD}",
            r.status()
        );
    }
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_string();
    let body: Value = r.json().await?;
    Ok(Agent {
        cookie,
        csrf: body["csrf_token"]
            .as_str()
            .context("no CSRF token")?
            .to_string(),
    })
}

/// Logs the demo agent in on `base` and makes her available.
async fn agent_login(http: &reqwest::Client, base: &str) -> anyhow::Result<Agent> {
    let agent = log_in(http, base).await?;
    let r = http
        .put(format!("{base}/api/v1/me/presence"))
        .header("cookie", &agent.cookie)
        .header("x-csrf-token", &agent.csrf)
        .json(&json!({"presence": "available"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("the agent could not go available: {}", r.status());
    }
    Ok(agent)
}

/// `n` web chat customers on `base`, each with a conversation assigned to `agent`; returns
/// their visitor tokens.
async fn assigned_customers(
    http: &reqwest::Client,
    base: &str,
    webchat: &str,
    agent: &Agent,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    for i in 0..n {
        let v: Value = http
            .post(format!("{base}/chat/{webchat}/session"))
            .send()
            .await?
            .json()
            .await?;
        let token = v["token"].as_str().context("no visitor token")?.to_string();
        let v: Value = http
            .post(format!("{base}/chat/{webchat}/messages"))
            .bearer_auth(&token)
            .json(&json!({"client_msg_id": format!("setup-{i}"), "text": "hello"}))
            .send()
            .await?
            .json()
            .await?;
        let conv = v["conversation_id"]
            .as_str()
            .context("no conversation id")?;
        let r = http
            .post(format!("{base}/api/v1/conversations/{conv}/assign"))
            .header("cookie", &agent.cookie)
            .header("x-csrf-token", &agent.csrf)
            .json(&json!({}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "assigning conversation {conv} to the agent: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// Opens a websocket to `url`, with a session cookie when given.
async fn connect(url: &str, cookie: Option<&str>) -> anyhow::Result<Socket> {
    let mut req = url.into_client_request()?;
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("opening {url}"))?;
    Ok(ws)
}

/// The servers of one run: where customers post, where the agent's socket is, and what
/// stops them.
struct Nodes {
    post_base: String,
    agent_base: String,
    webchat: String,
    backend: String,
    stops: Vec<tokio_util::sync::CancellationToken>,
    _dirs: Vec<tempfile::TempDir>,
}

/// A node on `database_url` sharing live events through `nats_url`.
async fn start_nats_node(
    database_url: &str,
    nats_url: &str,
) -> anyhow::Result<(
    SocketAddr,
    switchboard_app::App,
    tokio_util::sync::CancellationToken,
    tempfile::TempDir,
)> {
    let dir = tempfile::tempdir()?;
    let mut config = switchboard_app::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url.to_string()),
        nats_url: Some(nats_url.to_string()),
        ..switchboard_app::Config::default()
    };
    // The same throwaway master key as `start_server`: both nodes read the same data keys.
    config.keys.master_key = Some(switchboard_app::config::KeyText::new("42".repeat(32)));
    let server = switchboard_http::Server::build(config)
        .await
        .context("starting a NATS node")?;
    let addr = server.addr();
    let app = server.app().clone();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    Ok((addr, app, stop, dir))
}

/// One node (SQLite, or PostgreSQL without NATS), or two on PostgreSQL and NATS.
async fn start_nodes(o: &Options) -> anyhow::Result<Nodes> {
    match (&o.database_url, &o.nats_url) {
        (Some(db), Some(nats)) => {
            let (a, app, stop_a, dir_a) = start_nats_node(db, nats).await?;
            let (b, _, stop_b, dir_b) = start_nats_node(db, nats).await?;
            let demo = app.seed_demo(Some(PASSWORD)).await?;
            Ok(Nodes {
                post_base: format!("http://{a}"),
                agent_base: format!("http://{b}"),
                webchat: demo.webchat_channel_id,
                backend: format!(
                    "{} + NATS, customers on node A, agent on node B",
                    app.backend
                ),
                stops: vec![stop_a, stop_b],
                _dirs: vec![dir_a, dir_b],
            })
        }
        (_, None) => {
            let node: BenchServer = crate::start_server(o.database_url.clone()).await?;
            let base = format!("http://{}", node.addr);
            Ok(Nodes {
                post_base: base.clone(),
                agent_base: base,
                webchat: node.demo.webchat_channel_id,
                backend: node.app.backend.to_string(),
                stops: vec![node.shutdown],
                _dirs: vec![node.dir],
            })
        }
        (None, Some(_)) => {
            bail!("--nats-url needs --database-url postgres://… (both nodes share it)")
        }
    }
}

/// The benchmark.
pub async fn latency(o: Options) -> anyhow::Result<()> {
    if o.conversations == 0 || o.conversations > 100 {
        bail!("--conversations must be 1 to 100, not {}", o.conversations);
    }
    if o.rate == 0 || o.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    let nodes = start_nodes(&o).await?;
    let (post_base, agent_base, webchat) = (&nodes.post_base, &nodes.agent_base, &nodes.webchat);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()?;
    let agent = agent_login(&http, agent_base).await?;
    let tokens = assigned_customers(&http, post_base, webchat, &agent, o.conversations).await?;
    // Let the bot's answers to the set-up messages settle before the socket opens.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let sb_arrivals: Arrivals = Arc::default();
    let ws_url = format!("{}/api/v1/events", agent_base.replacen("http", "ws", 1));
    let sb_watch = watch(
        connect(&ws_url, Some(&agent.cookie)).await?,
        sb_arrivals.clone(),
    );
    let bare = start_bare().await?;
    let bare_arrivals: Arrivals = Arc::default();
    let bare_watch = watch(
        connect(&format!("ws://{bare}/ws"), None).await?,
        bare_arrivals.clone(),
    );

    let run = format!(
        "lat{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let tokens = Arc::new(tokens);
    let make_sb: MakeRequest = {
        let (http, tokens, run) = (http.clone(), tokens.clone(), run.clone());
        let url = format!("{post_base}/chat/{webchat}/messages");
        Arc::new(move |n| {
            http.post(&url)
                .bearer_auth(&tokens[(n as usize) % tokens.len()])
                .json(&json!({"client_msg_id": format!("{run}-{n}"), "text": format!("latency message {n}")}))
        })
    };
    let make_bare: MakeRequest = {
        let (http, run) = (http.clone(), run.clone());
        let url = format!("http://{bare}/messages");
        Arc::new(move |n| {
            http.post(&url)
                .json(&json!({"client_msg_id": format!("{run}-{n}"), "text": format!("latency message {n}")}))
        })
    };

    eprintln!("warming up…");
    measure(&make_bare, &bare_arrivals, o.rate, 1).await;
    measure(&make_sb, &sb_arrivals, o.rate, 1).await;
    eprintln!("{} s at {} msg/s, each target in turn", o.seconds, o.rate);
    let base = measure(&make_bare, &bare_arrivals, o.rate, o.seconds).await;
    let sb = measure(&make_sb, &sb_arrivals, o.rate, o.seconds).await;

    println!();
    println!(
        "customer message (web chat POST) → agent websocket event   (backend: {}, {} \
         conversations assigned to one agent, {} msg/s offered for {} s)",
        nodes.backend, o.conversations, o.rate, o.seconds
    );
    println!(
        "| target | achieved msgs/s | p50 ms | p95 ms | p99 ms | max ms | errors | no event | p99 ratio to baseline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, m: &Measured| {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} |",
            m.phase.rate(),
            m.phase.pct(0.5),
            m.phase.pct(0.95),
            m.phase.pct(0.99),
            m.phase.pct(1.0),
            m.phase.errors,
            m.lost,
            m.phase.pct(0.99) / base.phase.pct(0.99)
        );
    };
    row("bare axum POST → broadcast → websocket", &base);
    row("switchboard", &sb);
    let verdict = if o.rate < 5000 {
        "not judged (offer --rate 5000 or more)"
    } else if sb.phase.pct(0.99) <= 25.0 && sb.phase.rate() >= 0.95 * o.rate as f64 {
        "met"
    } else {
        "NOT met"
    };
    println!("budget: p99 ≤ 25 ms at 5,000 msg/s (achieving at least 95% of it): {verdict}");

    sb_watch.abort();
    bare_watch.abort();
    for stop in &nodes.stops {
        stop.cancel();
    }
    // Let the servers' workers see the stop before the runtime (and the data dirs) go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}
