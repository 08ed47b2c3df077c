//! `spawn_app()` and the few generic helpers the API tests share.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_app::demo::DemoInfo;
use switchboard_app::{App, Config};
use switchboard_http::Server;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Password given to the demo accounts in tests.
pub const DEMO_PASSWORD: &str = "test-password-123";

static INIT: Once = Once::new();

/// Process-wide test setup: the TLS provider reqwest needs, and logs when `TEST_LOG=1`.
pub fn init() {
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .try_init();
        }
    });
}

/// A running server and a client with a cookie jar.
pub struct TestApp {
    /// Bound address.
    pub addr: SocketAddr,
    /// Runtime (for direct store access in assertions).
    pub app: App,
    /// HTTP client with cookies.
    pub client: reqwest::Client,
    /// Demo data.
    pub demo: DemoInfo,
    /// CSRF token after `login`.
    pub csrf: Option<String>,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Kept so the data directory lives as long as the server.
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

/// A config for a test server in `dir`.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.sender.base_backoff_ms = 20;
    config.sender.max_backoff_ms = 100;
    // The demo flows call this server's own demo account endpoint, as `switchboard demo` allows.
    config.flows.allow_hosts = vec!["self".into()];
    // The Signal receiver polls its mock quickly.
    config.channels.signal_poll_interval_ms = 100;
    // Tests pass an explicit master key: none is made in the tester's home directory.
    config.keys.master_key = Some(switchboard_app::config::KeyText::new(TEST_MASTER_KEY));
    config
}

/// The master key of test servers (64 hex digits = 32 bytes).
pub const TEST_MASTER_KEY: &str =
    "0707070707070707070707070707070707070707070707070707070707070707";

/// Starts a server over a fresh SQLite database with the demo data seeded.
pub async fn spawn_app() -> TestApp {
    init();
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    spawn_app_in(dir, None).await
}

/// Starts a server over the database in `dir` (a restart when it already holds data), or
/// over `database_url` when given.
pub async fn spawn_app_in(
    dir: std::sync::Arc<tempfile::TempDir>,
    database_url: Option<String>,
) -> TestApp {
    spawn_app_with(dir, |c| c.database_url = database_url).await
}

/// Starts a server over a fresh SQLite database in `dir` with `configure` applied to the test
/// configuration.
pub async fn spawn_app_with(
    dir: std::sync::Arc<tempfile::TempDir>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    init();
    let mut config = test_config(dir.path());
    configure(&mut config);
    let server = Server::build(config).await.expect("server builds");
    let addr = server.addr();
    let app = server.app().clone();
    let demo = app
        .seed_demo(Some(DEMO_PASSWORD))
        .await
        .expect("demo seeds");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(server.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    TestApp {
        addr,
        app,
        client,
        demo,
        csrf: None,
        shutdown,
        handle: Some(handle),
        dir,
    }
}

impl TestApp {
    /// Wraps a server started by the caller (tests that inject transports).
    pub fn from_parts(
        addr: SocketAddr,
        app: App,
        client: reqwest::Client,
        demo: DemoInfo,
        shutdown: CancellationToken,
        dir: std::sync::Arc<tempfile::TempDir>,
    ) -> TestApp {
        TestApp {
            addr,
            app,
            client,
            demo,
            csrf: None,
            shutdown,
            handle: None,
            dir,
        }
    }

    /// `http://addr` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://addr` + path.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// GET, returning status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON with the CSRF header when logged in.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(c) = &self.csrf {
            req = req.header("x-csrf-token", c);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST a raw body with a content type, with the CSRF header when logged in.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(c) = &self.csrf {
            req = req.header("x-csrf-token", c);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Logs in (cookie kept by the client) and remembers the CSRF token.
    pub async fn login(&mut self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "login failed: {body}");
        self.csrf = body["csrf_token"].as_str().map(str::to_string);
        body
    }

    /// Sets the logged-in staff member's presence (`available`, `away`, `offline`). Taking a
    /// routed conversation, by assignment or by replying, needs an available agent.
    pub async fn set_presence(&self, presence: &str) {
        let r = self
            .client
            .put(self.url("/api/v1/me/presence"))
            .header("x-csrf-token", self.csrf.clone().expect("logged in"))
            .json(&json!({"presence": presence}))
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        assert_eq!(status, 200, "presence {presence}: {:?}", r.text().await);
    }

    /// Creates a second business ("other", with admin eve@other.example) and logs in as its
    /// admin, for tenant-isolation checks.
    pub async fn log_in_as_another_tenant(&mut self) {
        let other = self
            .app
            .store
            .create_tenant("other", "Other Co", switchboard_app::now())
            .await
            .expect("second tenant");
        self.app
            .create_user(
                other.id,
                "eve@other.example",
                "Eve",
                switchboard_core::Role::Admin,
                DEMO_PASSWORD,
            )
            .await
            .expect("second tenant's admin");
        self.login("eve@other.example").await;
    }

    /// Posts a customer message over the web chat HTTP fallback; returns the JSON answer.
    pub async fn customer_says(
        &self,
        token: &str,
        client_msg_id: &str,
        text: &str,
    ) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(&format!("/chat/{}/messages", self.demo.webchat_channel_id)))
            .bearer_auth(token)
            .json(&json!({"client_msg_id": client_msg_id, "text": text}))
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A fresh web chat visitor token.
    pub async fn new_visitor(&self) -> String {
        let r = self
            .client
            .post(self.url(&format!("/chat/{}/session", self.demo.webchat_channel_id)))
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> std::sync::Arc<tempfile::TempDir> {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.dir.clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
