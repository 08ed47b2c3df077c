//! What the command-line tests share: the real `switchboard` binary with a test master key
//! and a clean environment, its output as text, and a served instance that is always
//! stopped, even when an assertion fails half-way (no server outlives its test).

#![allow(dead_code)] // each test file uses a different part

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The master key of test databases (64 hex digits = 32 bytes).
pub const TEST_KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// The binary, with the environment of the tester's shell removed and a test master key.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env_remove("SWITCHBOARD_MASTER_KEY_FILE")
        .env("SWITCHBOARD_MASTER_KEY", TEST_KEY)
        .env("SWITCHBOARD_LOG", "warn");
    c
}

/// Runs one command over the data directory `data` and waits for it.
pub fn run(args: &[&str], data: &Path) -> Output {
    bin()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("binary runs")
}

/// Standard output and standard error together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `switchboard serve`; killed when dropped unless stopped before.
pub struct Served {
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Served {
    /// Starts `serve` on a free port over `data` with `command`'s environment, sending its
    /// output to `log` (or nowhere), and waits until `/healthz` answers.
    pub async fn start(mut command: Command, data: &Path, log: Option<&Path>) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let (out, err) = match log {
            Some(path) => {
                let f = std::fs::File::create(path).expect("log file");
                (
                    Stdio::from(f.try_clone().expect("clone log")),
                    Stdio::from(f),
                )
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("serve starts");
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http
                .get(format!("{}/healthz", served.base))
                .send()
                .await
                .is_ok()
            {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not answer /healthz within 20 s");
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        let stopped = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(stopped.success(), "SIGTERM delivered");
        self.child.wait().expect("server exits");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // After `stop` this finds the process gone; both calls then fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
