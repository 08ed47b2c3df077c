//! Crash tests of the built `switchboard` binary: the server is killed with SIGKILL at random
//! moments while providers post webhooks and agents reply, then restarted; afterwards every
//! acknowledged inbound message is stored exactly once, every acknowledged reply reached the
//! (mocked) provider at least once, no reply was sent twice by one running server, and the
//! message the server recorded as sent is the provider's answer to its last send.
//!
//! Flow sessions and timers too: the SQLite test's web chat answers with a small probe flow
//! (two questions, then a `wait` with a timeout). Customers are parked at its second question
//! and on its timer before the kills, others walk through it during them; afterwards every
//! session went on from the node it was at (the parked customers answer after the last
//! restart), every question was asked once and every timer fired exactly once.
//!
//! The WhatsApp Graph API is an in-test axum server that answers like Meta (fixture bodies)
//! and records every send with the server "life" it came from. Webhooks are real fixtures,
//! signed like Meta's (WhatsApp) or carrying the secret token (Telegram); a webhook not
//! answered 200 is retried until it is, as providers do. The counts are printed (run with
//! `--nocapture` to see them).
//!
//! `the_two_node_kill_test` runs two servers on one PostgreSQL database and one NATS: a web
//! chat customer on node A and an agent on node B exchange messages live, then node A is
//! killed with SIGKILL mid-traffic and node B finishes all pending work (replies node A had
//! claimed are sent once its leases expire); no reply is sent twice while both nodes run.
//! Main-menu customers that node A took to the loan application's first question answer it
//! on node B after the kill, and their sessions go on at that question. It runs when
//! TEST_DATABASE_URL and TEST_NATS_URL are set (psql creates its database).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "crash-test-password-1";
const WA_TOKEN: &str = "EAAG-crash-token";
const WA_PHONE_ID: &str = "106540352242922";
const WA_SECRET: &str = "crash-app-secret";
const TG_TOKEN: &str = "123456:crash-token";
const TG_SECRET: &str = "tg-crash-secret";

fn fixture(rel: &str) -> Value {
    let path = format!(
        "{}/../../../shared/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A tiny deterministic generator (xorshift), seeded from the clock and printed, so a failing
/// schedule of kills can be replayed with CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        eprintln!("crash test seed: CRASH_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

// ------------------------------------------------------------------ mock WhatsApp API

/// One send the mock answered 200.
#[derive(Clone, Debug)]
struct Send {
    text: String,
    wamid: String,
    /// Which life of which server sent it (bumped at every kill).
    life: usize,
}

#[derive(Default)]
struct Graph {
    sends: Mutex<Vec<Send>>,
    life: AtomicUsize,
    next: AtomicUsize,
}

async fn graph_send(
    axum::extract::State(g): axum::extract::State<Arc<Graph>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {WA_TOKEN}"))
    {
        let e = json!({"error": {"message": "Invalid OAuth access token.", "code": 190}});
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(e));
    }
    if body["status"] == "read" {
        return (
            axum::http::StatusCode::OK,
            axum::Json(json!({"success": true})),
        );
    }
    let n = g.next.fetch_add(1, SeqCst);
    let wamid = format!("wamid.crash.out.{n}");
    g.sends.lock().unwrap().push(Send {
        text: body["text"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        wamid: wamid.clone(),
        life: g.life.load(SeqCst),
    });
    let mut ok = fixture("whatsapp/api/send_message_response_200.json");
    ok["messages"][0]["id"] = json!(wamid);
    ok["contacts"][0]["input"] = body["to"].clone();
    ok["contacts"][0]["wa_id"] = body["to"].clone();
    (axum::http::StatusCode::OK, axum::Json(ok))
}

async fn graph_mock() -> (String, Arc<Graph>) {
    let g = Arc::new(Graph::default());
    let router = axum::Router::new()
        .route(
            &format!("/{WA_PHONE_ID}/messages"),
            axum::routing::post(graph_send),
        )
        .route(
            "/bot{rest}",
            axum::routing::post(|| async { axum::Json(json!({"ok": true, "result": true})) }),
        )
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), g)
}

// ------------------------------------------------------------------ the server process

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env_remove("SWITCHBOARD_NATS_URL")
        .env_remove("SWITCHBOARD_MASTER_KEY_FILE")
        // An explicit key: nothing is written to the tester's home, and every node of the
        // two-node test opens the same database with the same key.
        .env("SWITCHBOARD_MASTER_KEY", common::TEST_KEY)
        .env("SWITCHBOARD_LOG", "warn");
    c
}

/// Where a node keeps its data, which database it uses and where it listens.
#[derive(Clone)]
struct NodeSpec {
    data: PathBuf,
    database_url: Option<String>,
    nats_url: Option<String>,
    port: u16,
}

impl NodeSpec {
    fn new(data: &Path, database_url: Option<&str>, nats_url: Option<&str>) -> NodeSpec {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        NodeSpec {
            data: data.to_path_buf(),
            database_url: database_url.map(str::to_string),
            nats_url: nats_url.map(str::to_string),
            port,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn store_args(&self, c: &mut Command) {
        c.arg("--data-dir").arg(&self.data);
        if let Some(u) = &self.database_url {
            c.arg("--database-url").arg(u);
        }
    }

    /// Runs a one-shot command (seeding, adding channels) and returns its JSON output.
    fn run_json(&self, args: &[&str]) -> Value {
        let mut c = bin();
        c.args(args);
        self.store_args(&mut c);
        let o = c.output().expect("binary runs");
        assert!(
            o.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        })
    }

    /// Starts `switchboard serve` (logs go to `<data>/serve-<port>.log`).
    fn spawn(&self) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join(format!("serve-{}.log", self.port)))
            .expect("log file");
        let mut c = bin();
        c.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port));
        self.store_args(&mut c);
        if let Some(n) = &self.nats_url {
            c.arg("--nats-url").arg(n);
        }
        c.env("SWITCHBOARD_LOG", "warn")
            // Short leases: a killed node's claimed rows are taken over within seconds.
            .env("SWITCHBOARD__SENDER__LEASE_SECS", "2")
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("log file"))
            .spawn()
            .map(Server)
            .expect("switchboard serve starts")
    }
}

/// A running `switchboard serve`, killed with SIGKILL when dropped (also when a test fails).
struct Server(Child);

impl Server {
    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the server answers `/readyz`.
async fn wait_ready(http: &reqwest::Client, base: &str, child: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("switchboard serve exited with {status} (see serve-*.log in the data dir)");
        }
        assert!(Instant::now() < deadline, "{base} not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------ load

/// What the load generator got acknowledged.
#[derive(Default)]
struct Acked {
    /// Provider message ids answered 200.
    inbound: Mutex<Vec<String>>,
    /// Webhook posts that were not answered 200 (and were retried).
    inbound_retries: AtomicUsize,
    /// Reply texts answered 201, with the message id.
    replies: Mutex<Vec<(String, String)>>,
    /// Replies whose request failed (not acknowledged; may or may not be stored).
    replies_unacked: AtomicUsize,
}

fn whatsapp_webhook(i: usize) -> (String, Vec<u8>) {
    let mut body = fixture("whatsapp/inbound_text.json");
    // Many customers: WhatsApp allows about one message every 6 s to the same recipient, so
    // replies spread over many conversations keep the per-pair limiter out of the way.
    let from = format!("4915{:08}", i % 150);
    let wamid = format!("wamid.crash.in.{i}");
    let v = &mut body["entry"][0]["changes"][0]["value"];
    v["contacts"][0]["wa_id"] = json!(from);
    v["messages"][0]["from"] = json!(from);
    v["messages"][0]["id"] = json!(wamid);
    v["messages"][0]["text"]["body"] = json!(format!("inbound {i}"));
    // Written just now: replies stay inside WhatsApp's 24-hour window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    v["messages"][0]["timestamp"] = json!(now.to_string());
    (wamid, serde_json::to_vec(&body).expect("JSON"))
}

fn telegram_webhook(i: usize) -> (String, Vec<u8>) {
    let mut body = fixture("telegram/update_message_text.json");
    let chat = 300_000 + (i % 10) as i64;
    body["update_id"] = json!(900_000 + i);
    body["message"]["message_id"] = json!(10_000 + i);
    body["message"]["from"]["id"] = json!(chat);
    body["message"]["chat"]["id"] = json!(chat);
    body["message"]["text"] = json!(format!("telegram {i}"));
    (format!("tg-{i}"), serde_json::to_vec(&body).expect("JSON"))
}

/// Posts webhook `i` to one of `bases` until a server answers 200 (a provider retries).
async fn post_until_acked(
    http: &reqwest::Client,
    bases: &[String],
    wa: &str,
    tg: &str,
    i: usize,
    acked: &Acked,
) {
    let telegram = i % 4 == 3;
    let (id, body) = if telegram {
        telegram_webhook(i)
    } else {
        whatsapp_webhook(i)
    };
    let mut attempt = 0usize;
    loop {
        let base = &bases[(i + attempt) % bases.len()];
        let req = if telegram {
            http.post(format!("{base}/hooks/telegram/{tg}"))
                .header("x-telegram-bot-api-secret-token", TG_SECRET)
        } else {
            http.post(format!("{base}/hooks/whatsapp/{wa}")).header(
                "x-hub-signature-256",
                switchboard_channels::whatsapp::inbound::sign(&body, WA_SECRET),
            )
        };
        let r = req
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 200 => {
                acked.inbound.lock().unwrap().push(id);
                return;
            }
            Ok(r) if r.status().is_client_error() => {
                panic!(
                    "webhook {i} refused: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )
            }
            _ => {
                acked.inbound_retries.fetch_add(1, SeqCst);
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    }
}

/// A logged-in staff session: cookie and CSRF token.
#[derive(Clone)]
struct Staff {
    cookie: String,
    csrf: String,
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> Staff {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login request");
    assert_eq!(r.status().as_u16(), 200, "login as {email}");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string();
    let body: Value = r.json().await.expect("login JSON");
    let staff = Staff {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_string(),
    };
    // Routing gives (and lets replies take) conversations only to an available agent within
    // capacity: this agent answers many customers, so she goes available at the largest one.
    let me = body["user"]["id"].as_str().expect("user id");
    let r = http
        .put(format!("{base}/api/v1/agents/{me}"))
        .header("cookie", &staff.cookie)
        .header("x-csrf-token", &staff.csrf)
        .json(&json!({"presence": "available", "capacity": MAX_CAPACITY}))
        .send()
        .await
        .expect("agent settings request");
    assert_eq!(r.status().as_u16(), 200, "{email} goes available");
    staff
}

/// The largest capacity an agent can have (`PUT /api/v1/agents/{id}` accepts 1-100); replies
/// go to at most this many conversations.
const MAX_CAPACITY: usize = 100;

async fn get_json(http: &reqwest::Client, staff: &Staff, url: &str) -> Option<Value> {
    let r = http
        .get(url)
        .header("cookie", &staff.cookie)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Open WhatsApp conversations (agents reply there; its API is the mock we count on).
async fn whatsapp_conversations(http: &reqwest::Client, staff: &Staff, base: &str) -> Vec<String> {
    let Some(list) = get_json(
        http,
        staff,
        &format!("{base}/api/v1/conversations?view=open&limit=500"),
    )
    .await
    else {
        return Vec::new();
    };
    let mut ids: Vec<String> = list["conversations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["channel_kind"] == "whatsapp")
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // The oldest ones (ids are time-ordered), so the set stays the same as more arrive and
    // the agent never needs more than her capacity.
    ids.sort();
    ids.truncate(MAX_CAPACITY / 2);
    ids
}

/// Agents reply `n` times into WhatsApp conversations, through any of `bases`.
async fn reply_load(
    http: &reqwest::Client,
    staff: &Staff,
    bases: &[String],
    n: usize,
    acked: &Acked,
) {
    let mut convs = Vec::new();
    let mut j = 0usize;
    while j < n {
        let base = &bases[j % bases.len()];
        // Reply across the conversations open so far (more appear as webhooks arrive).
        if j.is_multiple_of(10) || convs.len() < 20 {
            // From whichever node answers (one may be dead).
            for k in 0..bases.len() {
                let fresh =
                    whatsapp_conversations(http, staff, &bases[(j + k) % bases.len()]).await;
                if !fresh.is_empty() {
                    convs = fresh;
                    break;
                }
            }
            if convs.len() < 20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        // Walk the list with a stride so consecutive replies go to different customers.
        let conv = &convs[(j * 7) % convs.len()];
        let text = format!("reply {j}");
        let r = http
            .post(format!("{base}/api/v1/conversations/{conv}/messages"))
            .header("cookie", &staff.cookie)
            .header("x-csrf-token", &staff.csrf)
            .json(&json!({"text": text}))
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 201 => {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let id = v["message"]["id"].as_str().unwrap_or_default().to_string();
                acked.replies.lock().unwrap().push((text, id));
            }
            Ok(r) if r.status().is_client_error() => {
                panic!(
                    "reply refused: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )
            }
            _ => {
                acked.replies_unacked.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        j += 1;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

// ------------------------------------------------------------------ checks

/// Every message each conversation holds, read through `base`.
async fn all_messages(http: &reqwest::Client, staff: &Staff, base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for view in ["open", "resolved"] {
        let list = get_json(
            http,
            staff,
            &format!("{base}/api/v1/conversations?view={view}&limit=500"),
        )
        .await
        .expect("conversation list");
        for c in list["conversations"].as_array().expect("conversations") {
            let id = c["id"].as_str().expect("id");
            let m = get_json(
                http,
                staff,
                &format!("{base}/api/v1/conversations/{id}/messages?limit=1000"),
            )
            .await
            .expect("messages");
            out.extend(m["messages"].as_array().expect("messages").iter().cloned());
        }
    }
    out
}

/// Checks the outcome and prints the counts; returns nothing, panics on any loss.
async fn check_outcome(
    http: &reqwest::Client,
    staff: &Staff,
    base: &str,
    acked: &Acked,
    graph: &Graph,
    kills: usize,
) {
    let acked_in: Vec<String> = acked.inbound.lock().unwrap().clone();
    let acked_replies: Vec<(String, String)> = acked.replies.lock().unwrap().clone();

    // Every acknowledged reply reaches the provider (the survivors finish pending work).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent: std::collections::HashSet<String> = graph
            .sends
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.text.clone())
            .collect();
        let missing: Vec<&String> = acked_replies
            .iter()
            .map(|(t, _)| t)
            .filter(|t| !sent.contains(*t))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged replies never reached the provider, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the recording of the last sends commit.
    let messages = loop {
        let messages = all_messages(http, staff, base).await;
        let unsent = messages
            .iter()
            .filter(|m| m["direction"] == "outbound" && m["status"] == "queued")
            .count();
        if unsent == 0 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Inbound: every acknowledged provider id stored exactly once.
    let mut stored_in: HashMap<String, usize> = HashMap::new();
    for m in messages.iter().filter(|m| m["direction"] == "inbound") {
        let body = m["content"]["body"].as_str().unwrap_or_default();
        *stored_in.entry(body.to_string()).or_default() += 1;
    }
    let body_of = |id: &str| -> String {
        if let Some(i) = id.strip_prefix("wamid.crash.in.") {
            format!("inbound {i}")
        } else {
            format!("telegram {}", id.trim_start_matches("tg-"))
        }
    };
    let mut lost = Vec::new();
    let mut doubled = Vec::new();
    for id in &acked_in {
        match stored_in.get(&body_of(id)).copied().unwrap_or(0) {
            0 => lost.push(id.clone()),
            1 => {}
            _ => doubled.push(id.clone()),
        }
    }
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");

    // Outbound: no reply sent twice by one running server; a reply sent again after a kill
    // was not yet recorded as sent, and what is recorded is the provider's last answer.
    let sends = graph.sends.lock().unwrap().clone();
    let mut by_text: BTreeMap<String, Vec<Send>> = BTreeMap::new();
    for s in sends.iter() {
        by_text.entry(s.text.clone()).or_default().push(s.clone());
    }
    let stored_out: HashMap<String, &Value> = messages
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .filter_map(|m| Some((m["id"].as_str()?.to_string(), m)))
        .collect();
    let mut resent_after_kill = 0;
    for (text, id) in &acked_replies {
        let s = &by_text[text];
        let mut lives: Vec<usize> = s.iter().map(|x| x.life).collect();
        lives.dedup();
        assert_eq!(
            lives.len(),
            s.len(),
            "{text:?} was sent twice by one running server: {s:?}"
        );
        if s.len() > 1 {
            resent_after_kill += s.len() - 1;
        }
        let m = stored_out
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged reply {text:?} ({id}) is not stored"));
        assert!(
            m["status"] == "sent" || m["status"] == "delivered" || m["status"] == "read",
            "{text:?} is {} after the provider took it",
            m["status"]
        );
        assert_eq!(
            m["provider_id"].as_str(),
            Some(s.last().expect("sent").wamid.as_str()),
            "{text:?}: the recorded send is not the last one (it was sent again after the \
             provider confirmed it): {s:?}"
        );
    }

    println!(
        "crash test: {kills} kills; inbound acknowledged {} (stored exactly once: {}, webhook \
         retries while down {}); replies acknowledged {} (reached the provider: {}, provider \
         calls {}, sent again after a kill {}, unacknowledged requests {}); messages stored {}",
        acked_in.len(),
        acked_in.len() - lost.len() - doubled.len(),
        acked.inbound_retries.load(SeqCst),
        acked_replies.len(),
        acked_replies.len(),
        sends.len(),
        resent_after_kill,
        acked.replies_unacked.load(SeqCst),
        messages.len(),
    );
}

/// Seeds the demo tenant and adds the WhatsApp and Telegram channels pointing at the mock;
/// returns their ids and the demo web chat channel's.
fn seed(node: &NodeSpec, api: &str) -> (String, String, String) {
    let demo = node.run_json(&[
        "demo",
        "--seed-only",
        "--json",
        "--admin-password",
        PASSWORD,
    ]);
    let wa = node.run_json(&[
        "channels",
        "add",
        "whatsapp",
        "--tenant",
        "demo",
        "--access-token",
        WA_TOKEN,
        "--phone-number-id",
        WA_PHONE_ID,
        "--app-secret",
        WA_SECRET,
        "--api-base",
        api,
        "--no-validate",
        "--json",
    ]);
    let tg = node.run_json(&[
        "channels",
        "add",
        "telegram",
        "--tenant",
        "demo",
        "--bot-token",
        TG_TOKEN,
        "--webhook-secret",
        TG_SECRET,
        "--api-base",
        api,
        "--no-validate",
        "--json",
    ]);
    (
        wa["channel_id"].as_str().expect("channel id").to_string(),
        tg["channel_id"].as_str().expect("channel id").to_string(),
        demo["webchat_channel_id"]
            .as_str()
            .expect("web chat channel")
            .to_string(),
    )
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

// ------------------------------------------------------------------ flow sessions and timers

/// The web chat's default flow in the SQLite crash test: two free-text questions, then a
/// `wait` whose timeout ([`PROBE_WAIT_SECS`]) ends the session with a message. Every bot
/// message names the answers given so far, so it shows which node took an answer and that
/// the session's variables survived; a session that started again would ask the first
/// question twice, and a timer that fired twice would leave two timeout messages.
const PROBE_FLOW: &str = r#"
id: crash_probe
name: Crash probe
nodes:
  - id: first
    type: ask
    prompt: "probe first: your code?"
    save: code
  - id: second
    type: ask
    prompt: "probe second: {{vars.code}}, your colour?"
    save: colour
  - id: hold
    type: wait
    text: "probe hold: {{vars.code}}/{{vars.colour}}"
    timeout_seconds: 8
    save: late
    next: answered
    on_timeout: expired
  - id: expired
    type: end
    text: "probe expired: {{vars.code}}"
  - id: answered
    type: end
    text: "probe answered: {{vars.code}}"
"#;

/// The probe's customers parked at its second question before the kills (they answer it
/// after the last restart).
const PROBE_ASKING: usize = 12;
/// The probe's customers parked on its wait timer before the kills.
const PROBE_TIMING: usize = 12;
/// The probe's customers walking through it while the server is killed.
const PROBE_MOVING: usize = 12;

/// What the probe says to customer `n`, in order: the two questions, the wait's text and the
/// timeout's message.
fn probe_script(n: usize) -> Vec<String> {
    vec![
        "probe first: your code?".to_string(),
        format!("probe second: code-{n}, your colour?"),
        format!("probe hold: code-{n}/colour-{n}"),
        format!("probe expired: code-{n}"),
    ]
}

/// What probe customer `n` says at step `k` (0 opens the conversation, 1 the code, 2 the colour).
fn probe_answer(n: usize, k: usize) -> String {
    match k {
        0 => format!("hi probe {n}"),
        1 => format!("code-{n}"),
        _ => format!("colour-{n}"),
    }
}

/// Loads [`PROBE_FLOW`] and makes it the web chat channel's default flow.
fn load_probe(node: &NodeSpec, webchat: &str) {
    let file = node.data.join("crash_probe.yaml");
    std::fs::write(&file, PROBE_FLOW).expect("probe flow file");
    let file = file.to_str().expect("UTF-8 path");
    node.run_json(&[
        "flows",
        "load",
        "--tenant",
        "demo",
        "--default-flow",
        "crash_probe",
        "--channel",
        webchat,
        "--json",
        file,
    ]);
}

/// Web chat customers: visitor tokens and, once their first message is acknowledged, their
/// conversations.
struct Chatters {
    webchat: String,
    tokens: Vec<String>,
    convs: Mutex<Vec<Option<String>>>,
}

impl Chatters {
    /// `n` new visitors of the web chat channel `webchat`, made through `base`.
    async fn new(http: &reqwest::Client, base: &str, webchat: &str, n: usize) -> Chatters {
        let mut tokens = Vec::new();
        for _ in 0..n {
            let r = http
                .post(format!("{base}/chat/{webchat}/session"))
                .send()
                .await
                .expect("visitor session request");
            assert_eq!(r.status().as_u16(), 201, "new web chat visitor");
            let v: Value = r.json().await.expect("session JSON");
            tokens.push(v["token"].as_str().expect("visitor token").to_string());
        }
        Chatters {
            webchat: webchat.to_string(),
            convs: Mutex::new(vec![None; n]),
            tokens,
        }
    }

    /// Customer `n` says `text` through any of `bases` until one answers 202 (a resend with
    /// the same `client_msg_id` is stored once, as the web chat page does); returns the
    /// conversation.
    async fn say(
        &self,
        http: &reqwest::Client,
        bases: &[String],
        n: usize,
        client_msg_id: &str,
        text: &str,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0usize;
        loop {
            let base = &bases[attempt % bases.len()];
            let r = http
                .post(format!("{base}/chat/{}/messages", self.webchat))
                .bearer_auth(&self.tokens[n])
                .json(&json!({"client_msg_id": client_msg_id, "text": text}))
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 202 => {
                    // The body may be lost when the server dies right after answering.
                    if let Ok(v) = r.json::<Value>().await
                        && let Some(conv) = v["conversation_id"].as_str()
                    {
                        self.convs.lock().unwrap()[n] = Some(conv.to_string());
                        return conv.to_string();
                    }
                }
                Ok(r) if r.status().is_client_error() => panic!(
                    "web chat message {client_msg_id} refused: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "web chat message {client_msg_id} never acknowledged"
            );
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// The conversations known so far.
    fn known(&self) -> Vec<String> {
        self.convs
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// The messages of `conv`, oldest first, read through the first of `bases` that answers.
async fn conversation_messages(
    http: &reqwest::Client,
    staff: &Staff,
    bases: &[String],
    conv: &str,
) -> Option<Vec<Value>> {
    for base in bases {
        let url = format!("{base}/api/v1/conversations/{conv}/messages?limit=1000");
        if let Some(m) = get_json(http, staff, &url).await {
            return m["messages"].as_array().cloned();
        }
    }
    None
}

/// The bodies of the messages in `list` sent by `sender` (`bot`, `customer`, ...).
fn bodies_by(list: &[Value], sender: &str) -> Vec<String> {
    list.iter()
        .filter(|m| m["sender"]["type"] == sender)
        .map(|m| {
            m["content"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Waits (60 s at most, across restarts) until the bot's messages in `conv` satisfy `done`;
/// returns them.
async fn await_bot(
    http: &reqwest::Client,
    staff: &Staff,
    bases: &[String],
    conv: &str,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(list) = conversation_messages(http, staff, bases, conv).await {
            let bot = bodies_by(&list, "bot");
            if done(&bot) {
                return bot;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{conv}: the bot never sent {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Walks probe customer `n` through steps `from..to`: each says the answer and waits for the
/// bot's next message.
async fn probe_walk(
    http: &reqwest::Client,
    staff: &Staff,
    bases: &[String],
    probe: &Chatters,
    n: usize,
    steps: std::ops::Range<usize>,
) {
    for k in steps {
        let conv = probe
            .say(
                http,
                bases,
                n,
                &format!("probe-{n}-{k}"),
                &probe_answer(n, k),
            )
            .await;
        let what = format!("probe message {}", k + 1);
        await_bot(http, staff, bases, &conv, &what, |bot| bot.len() > k).await;
    }
}

/// Where the probe's sessions are, read just before a kill: (at a question, on the timer).
async fn probe_snapshot(
    http: &reqwest::Client,
    staff: &Staff,
    bases: &[String],
    probe: &Chatters,
) -> (usize, usize) {
    let (mut asking, mut timing) = (0, 0);
    for conv in probe.known() {
        let bot = conversation_messages(http, staff, bases, &conv)
            .await
            .map(|list| bodies_by(&list, "bot").len());
        match bot {
            Some(1 | 2) => asking += 1,
            Some(3) => timing += 1,
            _ => {}
        }
    }
    (asking, timing)
}

/// After the kills: every probe session said its whole script, each message once and in
/// order (so each session went on from the node it was at, and each timer fired exactly
/// once), every customer message is stored once, and nothing is left unsent.
async fn check_probe(http: &reqwest::Client, staff: &Staff, bases: &[String], probe: &Chatters) {
    let convs: Vec<String> = probe
        .convs
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, c)| {
            c.clone()
                .unwrap_or_else(|| panic!("probe customer {n} has no conversation"))
        })
        .collect();
    for conv in &convs {
        await_bot(http, staff, bases, conv, "the timeout message", |bot| {
            bot.len() >= 4
        })
        .await;
    }
    // A timer that fired twice would do so once its lease (2 s) ran out: look again after it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (n, conv) in convs.iter().enumerate() {
        let list = conversation_messages(http, staff, bases, conv)
            .await
            .expect("messages");
        assert_eq!(
            bodies_by(&list, "bot"),
            probe_script(n),
            "probe customer {n} ({conv}): the bot's messages"
        );
        let said: Vec<String> = (0..3).map(|k| probe_answer(n, k)).collect();
        assert_eq!(
            bodies_by(&list, "customer"),
            said,
            "probe customer {n} ({conv}): the customer's messages, each stored once"
        );
        let unsent: Vec<&Value> = list
            .iter()
            .filter(|m| m["direction"] == "outbound")
            .filter(|m| !matches!(m["status"].as_str(), Some("sent" | "delivered" | "read")))
            .collect();
        assert!(
            unsent.is_empty(),
            "probe customer {n}: not sent: {unsent:?}"
        );
    }
}

const INBOUND: usize = 600;
const REPLIES: usize = 120;
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_at_random_moments_loses_and_doubles_nothing() {
    // Arrange: a seeded database whose web chat answers with the probe flow, the mock
    // provider and a running server.
    let dir = tempfile::tempdir().unwrap();
    let (api, graph) = graph_mock().await;
    let node = NodeSpec::new(dir.path(), None, None);
    let (wa, tg, webchat) = seed(&node, &api);
    load_probe(&node, &webchat);
    let http = client();
    let mut child = node.spawn();
    wait_ready(&http, &node.base(), &mut child).await;
    let staff = login(&http, &node.base(), "admin@demo.example").await;
    let acked = Arc::new(Acked::default());
    let bases = vec![node.base()];
    let mut rng = Rng::new();

    // Flow sessions in the middle of the probe when the kills come: some wait at its second
    // question, some on its timer (8 s, so they fire during and after the kills).
    let probe = Arc::new(
        Chatters::new(
            &http,
            &node.base(),
            &webchat,
            PROBE_ASKING + PROBE_TIMING + PROBE_MOVING,
        )
        .await,
    );
    let mut parking = tokio::task::JoinSet::new();
    for n in 0..PROBE_ASKING + PROBE_TIMING {
        let (http, staff, bases, probe) =
            (http.clone(), staff.clone(), bases.clone(), probe.clone());
        let to = if n < PROBE_ASKING { 2 } else { 3 };
        parking.spawn(async move { probe_walk(&http, &staff, &bases, &probe, n, 0..to).await });
    }
    while let Some(r) = parking.join_next().await {
        r.expect("parking a probe customer");
    }

    // Act: webhooks (8 at a time), replies and probe customers walking through the flow go
    // on while the server is killed and restarted.
    let next = Arc::new(AtomicUsize::new(0));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, bases, wa, tg, acked, next) = (
            http.clone(),
            bases.clone(),
            wa.clone(),
            tg.clone(),
            acked.clone(),
            next.clone(),
        );
        load.spawn(async move {
            loop {
                let i = next.fetch_add(1, SeqCst);
                if i >= INBOUND {
                    break;
                }
                post_until_acked(&http, &bases, &wa, &tg, i, &acked).await;
            }
        });
    }
    {
        let (http, staff, bases, acked) =
            (http.clone(), staff.clone(), bases.clone(), acked.clone());
        load.spawn(async move { reply_load(&http, &staff, &bases, REPLIES, &acked).await });
    }
    for n in PROBE_ASKING + PROBE_TIMING..probe.tokens.len() {
        let (http, staff, bases, probe) =
            (http.clone(), staff.clone(), bases.clone(), probe.clone());
        let delay = Duration::from_millis(rng.below(3000));
        load.spawn(async move {
            tokio::time::sleep(delay).await;
            probe_walk(&http, &staff, &bases, &probe, n, 0..3).await;
        });
    }
    let (mut asking_at_kills, mut timing_at_kills) = (0, 0);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
        let (asking, timing) = probe_snapshot(&http, &staff, &bases, &probe).await;
        asking_at_kills += asking;
        timing_at_kills += timing;
        child.kill();
        graph.life.fetch_add(1, SeqCst);
        child = node.spawn();
        wait_ready(&http, &node.base(), &mut child).await;
    }
    while let Some(r) = load.join_next().await {
        r.expect("load task");
    }
    // The customers parked at the second question answer it now: the restarted server
    // must take the answer at that node.
    let mut answering = tokio::task::JoinSet::new();
    for n in 0..PROBE_ASKING {
        let (http, staff, bases, probe) =
            (http.clone(), staff.clone(), bases.clone(), probe.clone());
        answering.spawn(async move { probe_walk(&http, &staff, &bases, &probe, n, 2..3).await });
    }
    while let Some(r) = answering.join_next().await {
        r.expect("answering after the kills");
    }

    // Assert.
    check_outcome(&http, &staff, &node.base(), &acked, &graph, KILLS).await;
    assert!(
        asking_at_kills > 0 && timing_at_kills > 0,
        "the kills must find sessions at a question and on a timer (found {asking_at_kills} \
         and {timing_at_kills}); the machine was too slow for this schedule"
    );
    check_probe(&http, &staff, &bases, &probe).await;
    let sessions = probe.tokens.len();
    println!(
        "crash test, flows: {sessions} probe sessions; at kill moments {asking_at_kills} \
         sessions were at a question and {timing_at_kills} on a wait timer (summed over the \
         {KILLS} kills); afterwards all {sessions} went on from the node they were at \
         (each question asked once, {PROBE_ASKING} answered only after the last restart) and \
         all {sessions} timers fired exactly once (one timeout message each)"
    );
    child.kill();
}

// ------------------------------------------------------------------ two nodes

/// A fresh PostgreSQL database next to TEST_DATABASE_URL (created with psql), dropped on drop.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    fn create(admin: &str) -> PgDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("sb_crash_{}_{nanos}", std::process::id());
        let o = Command::new("psql")
            .arg(admin)
            .arg("-qc")
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("psql runs (install the PostgreSQL client)");
        assert!(
            o.status.success(),
            "creating the test database: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("URL has a database");
        PgDb {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame of `ws` matching `pred` (10 s at most).
async fn next_frame(ws: &mut Socket, pred: impl Fn(&Value) -> bool) -> Value {
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a web chat frame within 10 s")
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).expect("JSON frame");
            if pred(&v) {
                return v;
            }
        }
    }
}

/// Main-menu sessions started on node A and answered on node B in the two-node test.
const RESUMED_ON_B: usize = 3;
/// The loan application's first question (flows/loan_application.yaml).
const HOW_MUCH: &str = "How much would you like to borrow";
/// Its second question.
const HOW_LONG: &str = "Over how many months";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_node_kill_test() {
    use futures::SinkExt;
    let (Ok(admin_url), Ok(nats)) = (
        std::env::var("TEST_DATABASE_URL"),
        std::env::var("TEST_NATS_URL"),
    ) else {
        eprintln!("SKIPPED: two-node kill test (set TEST_DATABASE_URL and TEST_NATS_URL)");
        return;
    };
    // Arrange: two servers on one PostgreSQL database and one NATS.
    let db = PgDb::create(&admin_url);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (api, graph) = graph_mock().await;
    let a = NodeSpec::new(dir_a.path(), Some(&db.url), Some(&nats));
    let b = NodeSpec::new(dir_b.path(), Some(&db.url), Some(&nats));
    let (wa, tg, webchat) = seed(&a, &api);
    let http = client();
    let (mut child_a, mut child_b) = (a.spawn(), b.spawn());
    wait_ready(&http, &a.base(), &mut child_a).await;
    wait_ready(&http, &b.base(), &mut child_b).await;
    let staff = login(&http, &b.base(), "admin@demo.example").await;

    // A web chat customer on node A, the agent on node B, messages both ways.
    let session: Value = http
        .post(format!("{}/chat/{webchat}/session", a.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"]
        .as_str()
        .expect("visitor token")
        .to_string();
    let (mut chat, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/chat/{webchat}/ws", a.port))
            .await
            .expect("web chat socket on node A");
    let hello = json!({"type": "hello", "token": token}).to_string();
    chat.send(hello.into()).await.unwrap();
    next_frame(&mut chat, |v| v["type"] == "welcome").await;
    let said = json!({"type": "message", "client_msg_id": "c-1", "text": "hello from node A"});
    chat.send(said.to_string().into()).await.unwrap();
    next_frame(&mut chat, |v| v["type"] == "accepted").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let conv = loop {
        let list = get_json(
            &http,
            &staff,
            &format!("{}/api/v1/conversations?view=open&limit=500", b.base()),
        )
        .await
        .unwrap_or(Value::Null);
        let found = list["conversations"].as_array().and_then(|a| {
            a.iter()
                .find(|c| c["channel_kind"] == "webchat")
                .and_then(|c| c["id"].as_str().map(str::to_string))
        });
        if let Some(c) = found {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "node B never showed node A's customer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = http
        .post(format!("{}/api/v1/conversations/{conv}/messages", b.base()))
        .header("cookie", &staff.cookie)
        .header("x-csrf-token", &staff.csrf)
        .json(&json!({"text": "hello from node B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.text().await.unwrap_or_default()
    );
    next_frame(&mut chat, |v| {
        v["type"] == "message" && v["message"]["content"]["body"] == "hello from node B"
    })
    .await;

    // Customers of the demo's main menu, served by node A, wait at the loan application's
    // first question.
    let only_a = vec![a.base()];
    let menu = Chatters::new(&http, &a.base(), &webchat, RESUMED_ON_B).await;
    for n in 0..RESUMED_ON_B {
        let conv = menu
            .say(&http, &only_a, n, &format!("menu-{n}-0"), "hello")
            .await;
        await_bot(&http, &staff, &only_a, &conv, "the main menu", |bot| {
            bot.len() >= 2
        })
        .await;
        menu.say(
            &http,
            &only_a,
            n,
            &format!("menu-{n}-1"),
            "Apply for a loan",
        )
        .await;
        await_bot(
            &http,
            &staff,
            &only_a,
            &conv,
            "the amount question",
            |bot| bot.last().is_some_and(|t| t.starts_with(HOW_MUCH)),
        )
        .await;
    }

    // Act: webhooks and replies go to both nodes; node A is killed mid-traffic.
    let bases = vec![a.base(), b.base()];
    let acked = Arc::new(Acked::default());
    let next = Arc::new(AtomicUsize::new(0));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, bases, wa, tg, acked, next) = (
            http.clone(),
            bases.clone(),
            wa.clone(),
            tg.clone(),
            acked.clone(),
            next.clone(),
        );
        load.spawn(async move {
            loop {
                let i = next.fetch_add(1, SeqCst);
                if i >= INBOUND {
                    break;
                }
                post_until_acked(&http, &bases, &wa, &tg, i, &acked).await;
            }
        });
    }
    {
        let (http, staff, bases, acked) =
            (http.clone(), staff.clone(), bases.clone(), acked.clone());
        load.spawn(async move { reply_load(&http, &staff, &bases, REPLIES, &acked).await });
    }
    // Kill node A once a quarter of the replies went through both nodes, a little later.
    let mut rng = Rng::new();
    while acked.replies.lock().unwrap().len() < REPLIES / 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
    child_a.kill();
    // Sends after this point come from node B alone.
    graph.life.fetch_add(1, SeqCst);
    while let Some(r) = load.join_next().await {
        r.expect("load task");
    }

    // The menu customers answer on node B: their sessions go on at the question node A
    // asked (the next one is the term), and no question is asked twice.
    let only_b = vec![b.base()];
    for n in 0..RESUMED_ON_B {
        let conv = menu
            .say(&http, &only_b, n, &format!("menu-{n}-2"), "R20 000")
            .await;
        let bot = await_bot(&http, &staff, &only_b, &conv, "the term question", |bot| {
            bot.last().is_some_and(|t| t.starts_with(HOW_LONG))
        })
        .await;
        let asked = |q: &str| bot.iter().filter(|t| t.starts_with(q)).count();
        assert_eq!(
            (asked(HOW_MUCH), asked(HOW_LONG)),
            (1, 1),
            "{conv}: each question once: {bot:?}"
        );
    }

    // Assert: node B finished everything; nothing was sent twice while both were healthy.
    check_outcome(&http, &staff, &b.base(), &acked, &graph, 1).await;
    println!(
        "two-node test, flows: {RESUMED_ON_B} main-menu sessions that node A had taken to the \
         loan amount question went on at that question on node B after node A was killed"
    );
    child_b.kill();
}
