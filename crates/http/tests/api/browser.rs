//! Real headless Chromium (through chromedriver) drives the customer page and the agent desk:
//! a message each way, with screenshots saved to `target/test-artifacts/`.
//!
//! Skipped with a clear message when chromedriver is missing on a developer machine; under CI
//! (`CI` set) a missing browser is a failure, because `.ci/run` installs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{DEMO_PASSWORD, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    _child: tokio::process::Child,
    port: u16,
}

async fn start_driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        if std::env::var("CI").is_ok() {
            panic!("chromium/chromedriver missing under CI: .ci/run must install them");
        }
        eprintln!("SKIPPED: browser test (install chromium and chromium-driver to run it)");
        return None;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    Some(Driver {
        _child: child,
        port,
    })
}

async fn browser(driver: &Driver) -> Client {
    let profile = tempfile::tempdir().expect("profile dir").keep();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let caps = match caps {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("literal object"),
    };
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(c) => return c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot reach chromedriver: {e}"),
        }
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(els) = c.find_all(Locator::Css(css)).await {
            for el in els {
                if el.text().await.is_ok_and(|t| t.contains(text)) {
                    return;
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            let _ = c
                .screenshot()
                .await
                .map(|png| std::fs::write(artifacts().join("failure.png"), png));
            panic!("timed out waiting for `{css}` containing {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types `text` into the element matching `css`.
async fn type_into(c: &Client, css: &str, text: &str) {
    let el = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` not found: {e}"));
    el.send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
}

/// Clicks the element matching `css`.
async fn click(c: &Client, css: &str) {
    let el = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` not found: {e}"));
    el.click()
        .await
        .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
}

#[tokio::test]
async fn a_customer_page_and_an_agent_page_exchange_messages_in_chromium() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_app().await;
    let customer = browser(&driver).await;
    let agent = browser(&driver).await;

    // The customer opens the chat page and writes (with markup that must stay text).
    customer
        .goto(&app.url(&format!("/chat/{}", app.demo.webchat_channel_id)))
        .await
        .unwrap();
    wait_text(&customer, "#chat-title", "Demo Bank").await;
    let said = "Hello <img src=x onerror=alert(1)> from the browser";
    type_into(&customer, "#chat-text", said).await;
    click(&customer, "#chat-send").await;
    wait_text(
        &customer,
        "#chat-messages .message.outbound",
        "automated assistant",
    )
    .await;

    // The agent logs in and sees it live.
    agent.goto(&app.url("/agent")).await.unwrap();
    type_into(&agent, "#login-email", "ann@demo.example").await;
    type_into(&agent, "#login-password", DEMO_PASSWORD).await;
    click(&agent, "#login-submit").await;
    // The inbox row previews the last message: the demo flow's main menu.
    wait_text(&agent, "#inbox .conversation", "How can we help you today?").await;
    click(&agent, "#inbox .conversation").await;
    wait_text(&agent, "#messages .message.inbound", said).await;

    // The agent replies; the customer's page shows it.
    let reply = "Hi! Ann here, how can I help?";
    type_into(&agent, "#composer-text", reply).await;
    click(&agent, "#composer-send").await;
    wait_text(&customer, "#chat-messages .message.outbound", reply).await;
    wait_text(&agent, "#messages .message.outbound .status", "sent").await;

    // A second customer message arrives at the open agent page without a reload.
    type_into(&customer, "#chat-text", "Thanks, Ann").await;
    click(&customer, "#chat-send").await;
    wait_text(&agent, "#messages .message.inbound", "Thanks, Ann").await;

    // The markup was shown as text, never executed or turned into an element.
    let imgs = customer
        .find_all(Locator::Css("#chat-messages img"))
        .await
        .unwrap();
    assert!(imgs.is_empty(), "customer text must never become HTML");
    let imgs = agent.find_all(Locator::Css("#messages img")).await.unwrap();
    assert!(
        imgs.is_empty(),
        "customer text must never become HTML on the desk"
    );

    let dir = artifacts();
    std::fs::write(
        dir.join("agent-desk.png"),
        agent.screenshot().await.unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("customer-chat.png"),
        customer.screenshot().await.unwrap(),
    )
    .unwrap();
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}
