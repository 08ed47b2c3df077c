//! `switchboard-bench memory`: resident memory (RSS) of the real `switchboard` binary, idle and
//! with `--sockets` agent websockets open (`/api/v1/events`, one logged-in agent), beside a
//! bare axum websocket server measured the same way in the same run (this benchmark started
//! again as `switchboard-bench bare-ws`, a separate process), twice: with axum's default
//! websocket buffers, and with the 4 KiB buffers Switchboard uses, so one ratio compares
//! like with like.
//!
//! RSS is read from `/proc/<pid>/status` (`VmRSS`) of the server process only; the client
//! sockets live in this process. Holding 10,000 sockets needs more file descriptors than the
//! usual soft limit of 1,024: the benchmark raises its soft `RLIMIT_NOFILE` to the hard limit
//! (children inherit it) and prints what it did.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;

use crate::latency::PASSWORD;

/// Raises the soft open-files limit to the hard limit; returns (before, after, hard).
fn raise_fd_limit() -> anyhow::Result<(u64, u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!("getrlimit(RLIMIT_NOFILE) failed");
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        bail!(
            "setrlimit(RLIMIT_NOFILE) to the hard limit {} failed",
            lim.rlim_max
        );
    }
    Ok((before, lim.rlim_cur, lim.rlim_max))
}

/// Resident memory of `pid` in MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc (this benchmark needs Linux)")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kb / 1024.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `switchboard` binary next to this one (both in target/release), or BENCH_SWITCHBOARD_BIN.
fn switchboard_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("BENCH_SWITCHBOARD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("switchboard");
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p switchboard-cli` \
             (or set BENCH_SWITCHBOARD_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Kills the child when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not answer within 30 s")
}

/// Opens `n` websockets (64 connecting at a time) and returns them.
async fn open_sockets(
    url: &str,
    cookie: Option<&str>,
    n: usize,
) -> anyhow::Result<
    Vec<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let results: Vec<_> = futures::stream::iter(0..n)
        .map(|_| async move {
            let mut req = url.into_client_request()?;
            if let Some(c) = cookie {
                req.headers_mut().insert("cookie", c.parse()?);
            }
            let (ws, _) = tokio_tungstenite::connect_async(req).await?;
            anyhow::Ok(ws)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Measures one server: RSS idle, then with `n` sockets open. Returns (idle, with sockets).
async fn measure(
    pid: u32,
    url: &str,
    cookie: Option<&str>,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    // Let start-up work (migrations, caches, first checkpoints) settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_mib(pid)?;
    let sockets = open_sockets(url, cookie, n)
        .await
        .with_context(|| format!("opening {n} websockets to {url}"))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = rss_mib(pid)?;
    drop(sockets);
    Ok((idle, loaded))
}

/// The benchmark.
pub async fn memory(sockets: usize) -> anyhow::Result<()> {
    let (before, after, hard) = raise_fd_limit()?;
    println!(
        "open-files limit: raised the soft RLIMIT_NOFILE from {before} to {after} (hard {hard}); servers inherit it"
    );
    if (after as usize) < sockets + 256 {
        bail!(
            "{sockets} sockets need about {} file descriptors but the hard limit is {hard}: \
             raise it (e.g. `ulimit -Hn 65536` as root) or pass --sockets {}",
            sockets + 256,
            after.saturating_sub(256)
        );
    }

    // Switchboard: a seeded SQLite database, then `switchboard serve`.
    let bin = switchboard_bin()?;
    let dir = tempfile::tempdir()?;
    let key = "42".repeat(32);
    let seeded = Command::new(&bin)
        .args([
            "demo",
            "--seed-only",
            "--admin-password",
            PASSWORD,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("SWITCHBOARD_MASTER_KEY", &key)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::null())
        .status()?;
    if !seeded.success() {
        bail!("`switchboard demo --seed-only` failed");
    }
    let port = free_port()?;
    let server = Proc(
        Command::new(&bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env("SWITCHBOARD_MASTER_KEY", &key)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting switchboard serve")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/readyz")).await?;
    let cookie = crate::latency::log_in(&reqwest::Client::new(), &base)
        .await?
        .cookie;
    let ws = format!("ws://127.0.0.1:{port}/api/v1/events");
    let (sb_idle, sb_loaded) = measure(server.0.id(), &ws, Some(&cookie), sockets).await?;
    drop(server);

    // Baselines: a bare axum websocket server in its own process, once with axum's default
    // buffers and once with the 4 KiB ones Switchboard uses (like with like).
    let (bare_idle, bare_loaded) = measure_bare("/ws", sockets).await?;
    let (lean_idle, lean_loaded) = measure_bare("/ws-lean", sockets).await?;

    let per_socket = |idle: f64, loaded: f64| (loaded - idle) * 1024.0 / sockets.max(1) as f64;
    let row = |what: &str, sb: f64, bare: f64, lean: f64, budget: &str| {
        println!(
            "| {what} | {sb:.1} | {bare:.1} | {:.2}x | {lean:.1} | {:.2}x | {budget} |",
            sb / bare,
            sb / lean
        );
    };
    println!();
    println!(
        "| RSS (MiB) | switchboard | bare axum, default buffers | ratio | bare axum, 4 KiB buffers | ratio | budget |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    row("idle", sb_idle, bare_idle, lean_idle, "≤ 30 MB");
    row(
        &format!("{sockets} agent websockets open"),
        sb_loaded,
        bare_loaded,
        lean_loaded,
        "≤ 300 MB",
    );
    row(
        "per socket (KiB)",
        per_socket(sb_idle, sb_loaded),
        per_socket(bare_idle, bare_loaded),
        per_socket(lean_idle, lean_loaded),
        "–",
    );
    Ok(())
}

/// Starts the bare axum websocket server (`bare-ws`, its own process) and measures it with
/// `sockets` websockets open on `path` (`/ws`: axum's default buffers; `/ws-lean`: 4 KiB).
async fn measure_bare(path: &str, sockets: usize) -> anyhow::Result<(f64, f64)> {
    let port = free_port()?;
    let bare = Proc(
        Command::new(std::env::current_exe()?)
            .args(["bare-ws", "--port", &port.to_string()])
            .spawn()
            .context("starting the bare axum websocket server")?,
    );
    wait_ready(&format!("http://127.0.0.1:{port}/healthz")).await?;
    let ws = format!("ws://127.0.0.1:{port}{path}");
    measure(bare.0.id(), &ws, None, sockets).await
}

/// `switchboard-bench bare-ws --port P`: the baseline, an axum server that keeps websockets
/// open (reading until the client closes) and answers `/healthz`. `/ws` upgrades with axum's
/// default buffers, `/ws-lean` with the 4 KiB read and write buffers Switchboard's sockets
/// use (`routes::events::lean_socket`).
pub async fn bare_ws(port: u16) -> anyhow::Result<()> {
    use axum::extract::ws::{WebSocket, WebSocketUpgrade};
    async fn hold(mut socket: WebSocket) {
        while let Some(Ok(_)) = socket.recv().await {}
    }
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/ws",
            axum::routing::get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(hold) }),
        )
        .route(
            "/ws-lean",
            axum::routing::get(|ws: WebSocketUpgrade| async move {
                ws.read_buffer_size(4 * 1024)
                    .write_buffer_size(4 * 1024)
                    .on_upgrade(hold)
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
