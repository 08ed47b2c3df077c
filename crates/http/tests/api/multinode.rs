//! Two nodes sharing PostgreSQL and NATS JetStream: a customer writes to node A, the agent's
//! live page is connected to node B and sees it; the agent's reply, accepted by node B, is
//! sent by whichever node claims it. Runs when both TEST_DATABASE_URL and TEST_NATS_URL are
//! set; under CI (`CI` set) their absence is a failure, since CI sets them.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_http::Server;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEMO_PASSWORD, eventually, init, test_config};
use crate::postgres::FreshDb;

/// The NATS URL and a fresh database, or `None` (skipped, said on stderr) when
/// TEST_NATS_URL or TEST_DATABASE_URL is unset; under CI (`CI` set) that is a failure, since
/// CI provides both.
pub(super) async fn services() -> Option<(String, FreshDb)> {
    let (Ok(nats), true) = (
        std::env::var("TEST_NATS_URL"),
        std::env::var("TEST_DATABASE_URL").is_ok(),
    ) else {
        assert!(
            std::env::var("CI").is_err(),
            "TEST_NATS_URL and TEST_DATABASE_URL must be set under CI"
        );
        eprintln!("SKIPPED: multi-node test (set TEST_NATS_URL and TEST_DATABASE_URL)");
        return None;
    };
    Some((nats, FreshDb::create().await?))
}

/// Starts a node over `db` and `nats` with the demo data; returns its base URL, its stop
/// token, its data directory and the demo web chat channel id.
pub(super) async fn node(
    db: &str,
    nats: &str,
) -> (String, CancellationToken, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.database_url = Some(db.to_string());
    config.nats_url = Some(nats.to_string());
    let server = Server::build(config).await.expect("node builds");
    let demo = server
        .app()
        .seed_demo(Some(DEMO_PASSWORD))
        .await
        .expect("demo seeds");
    let base = format!("http://{}", server.addr());
    let stop = CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    (base, stop, dir, demo.webchat_channel_id)
}

/// Logs `email` in on `base` with the demo password; returns the session cookie and the CSRF
/// token.
pub(super) async fn login_on(http: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "login of {email}");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let login: Value = r.json().await.unwrap();
    (cookie, login["csrf_token"].as_str().unwrap().to_string())
}

/// Opens the live event socket on `base` with a session `cookie`.
pub(super) async fn events_on(base: &str, cookie: &str) -> Socket {
    let mut req = format!("{}/api/v1/events", base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// A new web chat customer of `channel` writes `text` through `base`; returns their token
/// and the conversation id.
pub(super) async fn customer_writes(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    client_msg_id: &str,
    text: &str,
) -> (String, String) {
    let token: Value = http
        .post(format!("{base}/chat/{channel}/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let acc: Value = http
        .post(format!("{base}/chat/{channel}/messages"))
        .bearer_auth(&token)
        .json(&json!({"client_msg_id": client_msg_id, "text": text}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = acc["conversation_id"].as_str().unwrap().to_string();
    (token, conv)
}

/// Opens the customer's page of `channel` on `base` and greets with `token`; returns the
/// socket once welcomed.
pub(super) async fn customer_page(base: &str, channel: &str, token: &str) -> Socket {
    use futures::SinkExt;
    let (mut chat, _) = tokio_tungstenite::connect_async(format!(
        "{}/chat/{channel}/ws",
        base.replace("http", "ws")
    ))
    .await
    .expect("web chat socket");
    let hello = json!({"type": "hello", "token": token}).to_string();
    chat.send(Ws::Text(hello.into())).await.unwrap();
    next_matching(&mut chat, |v| v["type"] == "welcome").await;
    chat
}

#[tokio::test]
async fn an_agent_on_node_b_sees_live_a_message_that_arrived_at_node_a() {
    init();
    let Some((nats, db)) = services().await else {
        return;
    };
    let (a, stop_a, _da, channel) = node(&db.url, &nats).await;
    let (b, stop_b, _db, channel_b) = node(&db.url, &nats).await;
    assert_eq!(channel, channel_b, "both nodes serve the same data");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // The agent logs in on node B and opens the live feed there.
    let (cookie, csrf) = login_on(&http, &b, "ann@demo.example").await;
    let mut events = events_on(&b, &cookie).await;

    // A customer writes to node A.
    let (_, conv) = customer_writes(&http, &a, &channel, "mn-1", "hello node A").await;

    // Node B's page receives it live.
    let seen = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Ws::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "message_created"
                && v["data"]["message"]["content"]["body"] == "hello node A"
            {
                break v;
            }
        }
    };
    assert_eq!(seen["data"]["message"]["conversation_id"], conv.as_str());

    // The agent answers through node B; the reply is sent by one of the nodes.
    let (s, reply) = {
        let r = http
            .post(format!("{b}/api/v1/conversations/{conv}/messages"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"text": "hello from node B"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 201, "{reply}");
    let id = reply["message"]["id"].as_str().unwrap().to_string();
    let (http_ref, a_ref, conv_ref, id_ref) = (&http, &a, &conv, &id);
    eventually(10, "reply sent, seen from node A", || async move {
        let m: Value = http_ref
            .get(format!("{a_ref}/api/v1/conversations/{conv_ref}/messages"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        m["messages"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == id_ref.as_str() && x["status"] == "sent")
            .cloned()
    })
    .await;

    stop_a.cancel();
    stop_b.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.drop_it().await;
}

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Next JSON text frame of `ws` matching `pred`; panics when none comes within 10 s.
pub(super) async fn next_matching(ws: &mut Socket, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Ws::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if pred(&v) {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn agent_replies_through_node_b_reach_the_customer_page_on_node_a_live() {
    init();
    let Some((nats, db)) = services().await else {
        return;
    };
    let (a, stop_a, _da, channel) = node(&db.url, &nats).await;
    let (b, stop_b, _db, _) = node(&db.url, &nats).await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // Arrange: the customer has written through node A and keeps a page open there.
    let (token, conv) = customer_writes(&http, &a, &channel, "c-1", "anyone there?").await;
    let mut chat = customer_page(&a, &channel, &token).await;
    let (_, csrf) = login_on(&http, &b, "ann@demo.example").await;

    // Act: the agent, on node B, answers several times. Node B's sender is woken by each
    // reply, so most (usually all) of them leave from node B, where the page is not.
    let replies: Vec<String> = (1..=5).map(|i| format!("reply {i} from node B")).collect();
    for text in &replies {
        let r = http
            .post(format!("{b}/api/v1/conversations/{conv}/messages"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }

    // Assert: the page on node A shows every reply live, in the order they were written.
    let mut seen = Vec::new();
    while seen.len() < replies.len() {
        let v = next_matching(&mut chat, |v| {
            v["type"] == "message" && v["message"]["sender"]["type"] == "agent"
        })
        .await;
        seen.push(
            v["message"]["content"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        seen, replies,
        "every reply reached the page on node A, in order"
    );

    stop_a.cancel();
    stop_b.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.drop_it().await;
}

// ------------------------------------------------- one Signal receiver across the nodes

/// A mocked `signal-cli daemon --http`: its health check and the server-sent event stream
/// `GET /api/v1/events`, which counts how many streams are open at once.
#[derive(Default)]
struct SignalDaemon {
    open: std::sync::atomic::AtomicUsize,
    max_open: std::sync::atomic::AtomicUsize,
    opened: std::sync::atomic::AtomicUsize,
    frames: std::sync::OnceLock<tokio::sync::broadcast::Sender<String>>,
}

/// Counts an open event stream until the stream is dropped (the client went away).
struct OpenStream(std::sync::Arc<SignalDaemon>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn signal_events(
    axum::extract::State(d): axum::extract::State<std::sync::Arc<SignalDaemon>>,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use std::sync::atomic::Ordering::SeqCst;
    let now_open = d.open.fetch_add(1, SeqCst) + 1;
    d.max_open.fetch_max(now_open, SeqCst);
    d.opened.fetch_add(1, SeqCst);
    let rx = d.frames.get().expect("set at start").subscribe();
    let guard = OpenStream(d.clone());
    let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        loop {
            match rx.recv().await {
                Ok(f) => {
                    return Some((
                        Ok(axum::response::sse::Event::default().data(f)),
                        (rx, guard),
                    ));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    // Frequent keep-alives make a vanished client show up as a failed write at once.
    axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_millis(100)))
}

async fn signal_daemon() -> (String, std::sync::Arc<SignalDaemon>) {
    let d = std::sync::Arc::new(SignalDaemon::default());
    let _ = d.frames.set(tokio::sync::broadcast::channel(64).0);
    let router = axum::Router::new()
        .route("/api/v1/check", axum::routing::get(|| async { "OK" }))
        .route("/api/v1/events", axum::routing::get(signal_events))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), d)
}

/// A node running in its own Tokio runtime on its own thread, so the test can make it die
/// the way a killed process does: its tasks vanish mid-flight, nothing is released.
struct ThreadNode {
    base: String,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadNode {
    fn start(db: &str, nats: &str, lease_secs: u64) -> ThreadNode {
        let (db, nats) = (db.to_string(), nats.to_string());
        let (info_tx, info_rx) = std::sync::mpsc::channel();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let mut config = test_config(dir.path());
                config.database_url = Some(db);
                config.nats_url = Some(nats);
                config.sender.lease_secs = lease_secs;
                let server = Server::build(config).await.expect("node builds");
                server
                    .app()
                    .seed_demo(Some(DEMO_PASSWORD))
                    .await
                    .expect("demo seeds");
                let base = format!("http://{}", server.addr());
                tokio::spawn(server.run_until_stopped(CancellationToken::new()));
                info_tx.send(base).expect("test waits");
                let _ = killed.await;
                drop(dir);
            });
            // Drops every task where it stands: no lease is released, sockets just close.
            rt.shutdown_background();
        });
        let base = info_rx.recv().expect("node started");
        ThreadNode {
            base,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ThreadNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Logs in as the demo admin on `base`; returns a client with the session and the CSRF token.
async fn admin_on(base: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let (_, csrf) = login_on(&http, base, "admin@demo.example").await;
    (http, csrf)
}

/// Bodies of the Signal messages `base` shows, in any order.
async fn signal_bodies(http: &reqwest::Client, base: &str) -> Option<Vec<String>> {
    let list: Value = http
        .get(format!("{base}/api/v1/conversations"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut bodies = Vec::new();
    for c in list["conversations"].as_array()? {
        if c["channel_kind"] != "signal" {
            continue;
        }
        let id = c["id"].as_str()?;
        let m: Value = http
            .get(format!("{base}/api/v1/conversations/{id}/messages"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        for x in m["messages"].as_array()? {
            bodies.push(
                x["content"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    bodies.sort();
    Some(bodies)
}

/// A Signal `receive` notification (real fixture) with its own timestamp and text.
fn signal_frame(ts: u64, text: &str) -> String {
    let mut frame = crate::providers::fixture("signal/jsonrpc_receive_data_message.json");
    frame["params"]["envelope"]["timestamp"] = json!(ts);
    frame["params"]["envelope"]["dataMessage"]["timestamp"] = json!(ts);
    frame["params"]["envelope"]["dataMessage"]["message"] = json!(text);
    frame.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_receives_a_signal_account_and_another_takes_over_when_it_dies() {
    use std::sync::atomic::Ordering::SeqCst;
    init();
    let Some((nats, db)) = services().await else {
        return;
    };
    let (daemon_url, daemon) = signal_daemon().await;

    // Arrange: node A gets a Signal account (its receiver starts and takes the lease), then
    // node B starts and finds the account too.
    let mut a = ThreadNode::start(&db.url, &nats, 2);
    let (admin_a, csrf) = admin_on(&a.base).await;
    let r = admin_a
        .post(format!("{}/api/v1/channels", a.base))
        .header("x-csrf-token", &csrf)
        .json(&json!({"kind": "signal", "name": "Signal", "credentials": {
            "account": "+49987654321", "api_base": daemon_url, "mode": "json-rpc"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let d = &daemon;
    eventually(10, "node A's receiver to connect", || async move {
        (d.open.load(SeqCst) == 1).then_some(())
    })
    .await;
    let mut b = ThreadNode::start(&db.url, &nats, 2);
    let (admin_b, _) = admin_on(&b.base).await;

    // Act 1: a customer writes while both nodes run.
    daemon
        .frames
        .get()
        .unwrap()
        .send(signal_frame(1_700_000_000_001, "first"))
        .unwrap();
    let (http_b, base_b) = (&admin_b, b.base.clone());
    let base_b = &base_b;
    eventually(10, "the first message stored", || async move {
        (signal_bodies(http_b, base_b).await? == ["first"]).then_some(())
    })
    .await;

    // Act 2: node A dies without releasing anything; node B takes the account over once
    // A's lease expired, and receives the next message.
    a.kill();
    eventually(20, "node B's receiver to take over", || async move {
        (d.opened.load(SeqCst) >= 2 && d.open.load(SeqCst) == 1).then_some(())
    })
    .await;
    daemon
        .frames
        .get()
        .unwrap()
        .send(signal_frame(1_700_000_000_002, "second"))
        .unwrap();
    eventually(10, "the second message stored by node B", || async move {
        (signal_bodies(http_b, base_b).await? == ["first", "second"]).then_some(())
    })
    .await;

    // Assert: never two readers of the account at once, and each message stored once.
    assert_eq!(
        daemon.max_open.load(SeqCst),
        1,
        "two nodes read the same Signal account at the same time"
    );
    assert_eq!(
        signal_bodies(&admin_b, &b.base).await.unwrap(),
        ["first", "second"]
    );
    b.kill();
    db.drop_it().await;
}
