//! Real headless Chromium (through chromedriver) drives the customer page, the agent desk and
//! the supervisor view: a message each way; then routing end to end (presence, a hand-off
//! routed live into "mine", a canned response, an internal note the customer never sees, a
//! transfer another agent sees live, resolve with a wrap-up code, the supervisor's figures);
//! the template picker and retry of a failed message; emoji, RTL and combining text kept
//! exactly both ways; the desk's event socket dropped and resumed without a reload.
//! Customer markup (`<script>`, `<img onerror>`) must stay text everywhere. Screenshots go
//! to `target/test-artifacts/`.
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

/// chromedriver and the browsers it starts, in a process group of their own. Dropping it
/// (also when a test panics before closing its sessions) kills the whole group, so no
/// Chromium outlives the test. The browsers' profile folders go with it.
struct Driver {
    _child: tokio::process::Child,
    group: Option<u32>,
    port: u16,
    profiles: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }
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
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    Some(Driver {
        group: child.id(),
        _child: child,
        port,
        profiles: std::sync::Mutex::new(Vec::new()),
    })
}

async fn browser(driver: &Driver) -> Client {
    let profile = tempfile::tempdir().expect("profile dir");
    let profile_path = profile.path().to_path_buf();
    driver.profiles.lock().expect("profiles lock").push(profile);
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile_path.display()),
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

/// Waits until an element matches `css` (use attribute selectors for states).
async fn wait_css(c: &Client, css: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if c.find_all(Locator::Css(css))
            .await
            .is_ok_and(|els| !els.is_empty())
        {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = c
                .screenshot()
                .await
                .map(|png| std::fs::write(artifacts().join("failure.png"), png));
            panic!("timed out waiting for `{css}`");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The visible text of the whole page.
async fn page_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("page text")
}

/// Logs in on the desk page at `path` as `email`.
async fn log_in(c: &Client, app: &crate::helpers::TestApp, path: &str, email: &str) {
    c.goto(&app.url(path)).await.unwrap();
    type_into(c, "#login-email", email).await;
    type_into(c, "#login-password", DEMO_PASSWORD).await;
    click(c, "#login-submit").await;
    wait_css(c, "#live-status[data-state=\"live\"]").await;
}

/// Chooses the option of the `<select>` at `css` whose text contains `label`.
async fn choose(c: &Client, css: &str, label: &str) {
    let select = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` not found: {e}"));
    select
        .select_by(Locator::XPath(&format!(
            ".//option[contains(., '{label}')]"
        )))
        .await
        .unwrap_or_else(|e| panic!("choosing {label:?} in `{css}`: {e}"));
}

/// Sends keys to whatever has the focus (the desk's keyboard shortcuts).
async fn press(c: &Client, keys: &str) {
    c.active_element()
        .await
        .expect("a focused element")
        .send_keys(keys)
        .await
        .expect("keys sent");
}

/// Focuses the element at `focus` (by clicking it), presses `keys` and waits for `expect`
/// to match. Live updates re-render the inbox, and a row re-rendered between the focus and
/// the key press loses it (the keys then go nowhere), so the whole gesture is repeated
/// until it has its effect, for at most 10 s.
async fn press_on(c: &Client, focus: &str, keys: &str, expect: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        click(c, focus).await;
        if let Ok(el) = c.active_element().await {
            let _ = el.send_keys(keys).await;
        }
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        while tokio::time::Instant::now() < until {
            if c.find(Locator::Css(expect)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("pressing {keys:?} on `{focus}` never gave `{expect}`");
        }
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

/// Clicks the element matching `css`. Live lists re-render, so an element that went stale
/// between finding and clicking is looked up again.
async fn click(c: &Client, css: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let el = c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` not found: {e}"));
        match el.click().await {
            Ok(()) => return,
            Err(e)
                if e.to_string().contains("stale element")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("clicking `{css}`: {e}"),
        }
    }
}

#[tokio::test]
async fn a_customer_page_and_an_agent_page_exchange_messages_in_chromium() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_app().await;
    // The customer writes (with markup that must stay text); the agent, logged in, finds the
    // conversation live in "unassigned" (the bot still has it) and opens it.
    let said = "Hello <img src=x onerror=alert(1)> from the browser";
    let (customer, agent) = chat_and_desk(&driver, &app, said).await;

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

#[tokio::test]
async fn a_handed_off_chat_is_routed_transferred_and_resolved_live_and_the_supervisor_sees_it() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_app().await;
    let customer = browser(&driver).await;
    let ann = browser(&driver).await;
    let ben = browser(&driver).await;
    let boss = browser(&driver).await;

    // Ann and Ben log in; both start offline.
    log_in(&ann, &app, "/agent", "ann@demo.example").await;
    log_in(&ben, &app, "/agent", "ben@demo.example").await;
    // The admin opens the supervisor view directly.
    log_in(&boss, &app, "/supervisor", "admin@demo.example").await;
    wait_css(&boss, "#sup-queues tr[data-queue=\"general\"]").await;

    // The customer writes markup, then asks for a person.
    customer
        .goto(&app.url(&format!("/chat/{}", app.demo.webchat_channel_id)))
        .await
        .unwrap();
    wait_text(&customer, "#chat-title", "Demo Bank").await;
    let script = "<script>window.__pwned = 1; alert(1)</script>";
    let img = "<img src=x onerror=\"window.__pwned = 2; alert(2)\">";
    for text in [script, img, "agent"] {
        type_into(&customer, "#chat-text", text).await;
        click(&customer, "#chat-send").await;
        // Each message is committed before the next is typed (the page echoes it back).
        wait_text(&customer, "#chat-messages .message.inbound", text).await;
    }

    // Nobody is available: the supervisor sees it waiting in `general`.
    wait_text(
        &boss,
        "#sup-queues tr[data-queue=\"general\"] .waiting",
        "1",
    )
    .await;
    wait_css(&boss, "#sup-chart svg[aria-label^=\"1 conversations\"]").await;

    // Ann goes available (Ben stays offline, so the router can only pick her).
    choose(&ann, "#presence", "Available").await;
    wait_css(&ann, "#presence[data-presence=\"available\"]").await;

    // Routed to Ann: it appears live in her "mine" list, and her count says so.
    wait_css(&ann, "#inbox .conversation[data-state=\"assigned\"]").await;
    wait_text(&ann, ".count[data-count=\"mine\"]", "1").await;
    click(&ann, "#inbox .conversation").await;
    wait_text(&ann, "#messages .message.inbound", script).await;
    wait_text(&ann, "#messages .message.inbound", img).await;
    // The contact panel shows the web chat identity.
    wait_text(&ann, "#contact-identities", "webchat").await;

    // The supervisor sees the queue drained and Ann's load without a reload.
    wait_text(
        &boss,
        "#sup-queues tr[data-queue=\"general\"] .waiting",
        "0",
    )
    .await;
    wait_text(&boss, "#sup-agents tr[data-agent=\"Ann Agent\"]", "1/3").await;
    wait_text(
        &boss,
        "#sup-queues tr[data-queue=\"general\"] .assigned",
        "1",
    )
    .await;

    // A canned response: `/hel` opens the filtered list, Enter fills in the variables.
    type_into(&ann, "#composer-text", "/hel").await;
    wait_text(&ann, "#canned-list .canned.active", "/hello").await;
    press(&ann, "\u{E007}").await; // Enter
    wait_text_value(&ann, "#composer-text", "this is Ann Agent from").await;
    click(&ann, "#composer-send").await;
    wait_text(
        &customer,
        "#chat-messages .message.outbound",
        "this is Ann Agent from",
    )
    .await;

    // An internal note: on the desk, marked as internal.
    let secret = "Internal: customer sounded upset, check the fees";
    click(&ann, "#note-mode").await;
    type_into(&ann, "#composer-text", secret).await;
    click(&ann, "#composer-send").await;
    wait_text(&ann, "#messages .note", secret).await;

    // Ben goes available; Ann transfers to him with a note, and he sees it live.
    choose(&ben, "#presence", "Available").await;
    wait_css(&ben, "#presence[data-presence=\"available\"]").await;
    let handover = "Over to you Ben: fees question";
    click(&ann, "#transfer-open").await;
    choose(&ann, "#transfer-target", "Ben Agent").await;
    type_into(&ann, "#transfer-note", handover).await;
    click(&ann, "#transfer-submit").await;
    wait_css(&ben, "#inbox .conversation[data-state=\"assigned\"]").await;
    click(&ben, "#inbox .conversation").await;
    wait_text(&ben, "#messages .note-transfer", handover).await;
    wait_text(&ben, "#messages .note", secret).await;
    let reply = "Ben here, the fees are waived";
    type_into(&ben, "#composer-text", reply).await;
    click(&ben, "#composer-send").await;
    wait_text(&customer, "#chat-messages .message.outbound", reply).await;
    wait_text(&boss, "#sup-agents tr[data-agent=\"Ben Agent\"]", "1/3").await;

    // The customer got Ben's later reply, so anything sent before it has arrived too: the
    // notes never reach the customer's page.
    let seen = page_text(&customer).await;
    assert!(
        !seen.contains(secret),
        "an internal note reached the customer: {seen}"
    );
    assert!(
        !seen.contains(handover),
        "a transfer note reached the customer: {seen}"
    );

    // Customer markup stayed text on every page: no element, no script run, no alert.
    for (who, page, list) in [
        ("customer", &customer, "#chat-messages"),
        ("ben", &ben, "#messages"),
        ("ann", &ann, "#messages"),
    ] {
        for tag in ["script", "img"] {
            let found = page
                .find_all(Locator::Css(&format!("{list} {tag}")))
                .await
                .unwrap();
            assert!(
                found.is_empty(),
                "{who}'s page turned customer text into <{tag}>"
            );
        }
        let pwned = page
            .execute("return window.__pwned === undefined", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, json!(true), "customer markup ran on {who}'s page");
        assert!(
            page.get_alert_text().await.is_err(),
            "an alert opened on {who}'s page"
        );
    }

    let dir = artifacts();
    std::fs::write(
        dir.join("desk-routing.png"),
        ben.screenshot().await.unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("supervisor-view.png"),
        boss.screenshot().await.unwrap(),
    )
    .unwrap();

    // Ben resolves from the keyboard (`e`) with the queue's wrap-up code.
    press_on(
        &ben,
        "#inbox .conversation .row-button",
        "e",
        "#resolve-dialog[open]",
    )
    .await;
    choose(&ben, "#wrap-up", "answered").await;
    click(&ben, "#resolve-submit").await;
    wait_css(&ben, "#reopen:not([hidden])").await;
    wait_text(&ben, "#conv-meta .state", "resolved").await;
    // It leaves "mine" live and the supervisor sees the queue empty and Ben free again.
    wait_text(&ben, ".count[data-count=\"mine\"]", "0").await;
    wait_text(&boss, "#sup-agents tr[data-agent=\"Ben Agent\"]", "0/3").await;
    wait_text(
        &boss,
        "#sup-queues tr[data-queue=\"general\"] .waiting",
        "0",
    )
    .await;
    let bars = boss
        .find_all(Locator::Css("#sup-chart svg rect.bar"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 8, "one bar per hour of the last 8");
    wait_text(&boss, "#sup-chart", "volume").await;

    // The wrap-up code is on the resolved conversation (Ben's "resolved" view, key 5).
    click(&ben, "#inbox-search").await;
    press(&ben, "\u{E00C}").await; // Escape leaves the search
    press(&ben, "5").await;
    wait_css(
        &ben,
        ".view-btn[data-view=\"resolved\"][aria-pressed=\"true\"]",
    )
    .await;
    wait_css(&ben, "#inbox .conversation[data-state=\"resolved\"]").await;
    click(&ben, "#inbox .conversation").await;
    wait_text(&ben, "#contact-routing", "answered").await;

    std::fs::write(
        dir.join("supervisor-after-resolve.png"),
        boss.screenshot().await.unwrap(),
    )
    .unwrap();
    for c in [customer, ann, ben, boss] {
        c.close().await.unwrap();
    }
}

/// Waits until the form field at `css` has a value containing `text`.
async fn wait_text_value(c: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = match c.find(Locator::Css(css)).await {
            Ok(el) => el.prop("value").await.ok().flatten(),
            Err(_) => None,
        };
        if value.is_some_and(|v| v.contains(text)) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for `{css}` to hold {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_closed_whatsapp_window_offers_a_template_and_a_failed_send_can_be_sent_again() {
    use crate::providers::{fixture, mount_whatsapp_templates, wa_sign, wait_for, whatsapp_mock};

    let Some(driver) = start_driver().await else {
        return;
    };
    let (mock, provider) = whatsapp_mock().await;
    mount_whatsapp_templates(&mock, &provider).await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = crate::desk::add_whatsapp(&app, &mock.uri(), true).await;
    let hook = |payload: serde_json::Value| {
        let raw = serde_json::to_vec(&payload).expect("json");
        app.client
            .post(app.url(&format!("/hooks/whatsapp/{channel}")))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", wa_sign(&raw))
            .body(raw)
            .send()
    };
    // The customer last wrote 25 hours ago (provider time): the 24-hour window is closed.
    let mut inbound = fixture("whatsapp/inbound_text.json");
    let customer = inbound["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"].clone();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp() - 25 * 3600;
    inbound["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(ts.to_string());
    assert_eq!(hook(inbound).await.unwrap().status().as_u16(), 200);

    let admin = browser(&driver).await;
    log_in(&admin, &app, "/agent", "admin@demo.example").await;
    // Whoever answers a conversation takes it, and only an available person can.
    choose(&admin, "#presence", "Available").await;
    wait_css(&admin, "#presence[data-presence=\"available\"]").await;
    click(&admin, ".view-btn[data-view=\"all\"]").await;
    wait_css(&admin, "#inbox .conversation .tag.channel").await;
    wait_text(&admin, "#inbox .conversation", "whatsapp").await;
    click(&admin, "#inbox .conversation").await;
    wait_text(&admin, "#messages .message.inbound", "another color").await;

    // Free text is refused with the API's reason, and the template form opens with the
    // channel's approved templates to pick from (the pending one is not offered).
    type_into(&admin, "#composer-text", "Still there?").await;
    click(&admin, "#composer-send").await;
    wait_css(&admin, "#template-form:not([hidden])").await;
    wait_text(&admin, "#template-why", "template").await;
    wait_text(&admin, "#template-pick", "appointment_reminder (en_US)").await;
    assert!(
        !page_text(&admin).await.contains("welcome_back"),
        "only approved templates are offered"
    );
    choose(&admin, "#template-pick", "order_update (en_US)").await;
    wait_text(&admin, "#template-body", "Order {{1}} is on its way.").await;
    wait_text_value(&admin, "#template-name", "order_update").await;
    wait_text_value(&admin, "#template-language", "en_US").await;
    type_into(&admin, "#template-vars", "42").await;
    std::fs::write(
        artifacts().join("desk-template-picker.png"),
        admin.screenshot().await.unwrap(),
    )
    .unwrap();
    click(&admin, "#template-send").await;
    let is_template = |b: &serde_json::Value| b["template"]["name"] == "order_update";
    let p = provider.clone();
    wait_for(10, "the template to reach the mock", move || {
        p.bodies("/messages")
            .iter()
            .filter(|b| is_template(b))
            .count()
            == 1
    })
    .await;
    wait_text(&admin, "#messages .message.outbound .status", "sent").await;

    // Meta reports it failed: the desk shows the reason live and offers to send it again.
    let (_, convs) = app.get("/api/v1/conversations?view=open").await;
    let conv = convs["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_kind"] == "whatsapp")
        .and_then(|c| c["id"].as_str())
        .expect("the WhatsApp conversation")
        .to_string();
    let (_, msgs) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let wamid = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"]["type"] == "template")
        .and_then(|m| m["provider_id"].as_str())
        .expect("the template's provider id")
        .to_string();
    let mut failed = fixture("whatsapp/status_failed_131047.json");
    let st = &mut failed["entry"][0]["changes"][0]["value"]["statuses"][0];
    st["id"] = json!(wamid);
    st["recipient_id"] = customer;
    assert_eq!(hook(failed).await.unwrap().status().as_u16(), 200);
    // (The provider's own words from the status report, not the server's earlier refusals.)
    wait_text(
        &admin,
        "#messages .message.outbound .failure",
        "Re-engagement message",
    )
    .await;
    std::fs::write(
        artifacts().join("desk-failed-message.png"),
        admin.screenshot().await.unwrap(),
    )
    .unwrap();
    click(&admin, "#messages .failure .retry").await;
    let p = provider.clone();
    wait_for(10, "the template to be sent again", move || {
        p.bodies("/messages")
            .iter()
            .filter(|b| is_template(b))
            .count()
            == 2
    })
    .await;
    // Sent again as the same message: the failure goes, the history keeps one template.
    wait_text(&admin, "#messages .message.outbound .status", "sent").await;
    let (_, msgs) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let templates: Vec<&serde_json::Value> = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["content"]["type"] == "template")
        .collect();
    assert_eq!(templates.len(), 1, "{msgs}");
    assert_eq!(templates[0]["status"], "sent", "{msgs}");
    assert!(
        admin
            .find_all(Locator::Css("#messages .failure"))
            .await
            .unwrap()
            .is_empty(),
        "the failure is no longer shown"
    );
    admin.close().await.unwrap();
}

/// Sets a form field's value from JavaScript (ChromeDriver's typing handles only the Basic
/// Multilingual Plane, so emoji outside it cannot be typed) and fires `input` as typing would.
async fn set_value(c: &Client, css: &str, text: &str) {
    c.execute(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1]; \
         el.dispatchEvent(new Event('input', {bubbles: true}));",
        vec![json!(css), json!(text)],
    )
    .await
    .unwrap();
}

/// The exact `textContent` of every element matching `css`, in document order.
async fn texts(c: &Client, css: &str) -> Vec<String> {
    let v = c
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);",
            vec![json!(css)],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Waits until some element matching `css` has exactly `text` as its content.
async fn wait_exact(c: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !texts(c, css).await.iter().any(|t| t == text) {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for `{css}` to be exactly {text:?}; have {:?}",
                texts(c, css).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens the customer's chat page, where the customer writes `first`, and the agent's desk
/// (Ann) on that conversation, found live in "unassigned" while the bot has it.
async fn chat_and_desk(
    driver: &Driver,
    app: &crate::helpers::TestApp,
    first: &str,
) -> (Client, Client) {
    let customer = browser(driver).await;
    customer
        .goto(&app.url(&format!("/chat/{}", app.demo.webchat_channel_id)))
        .await
        .unwrap();
    wait_text(&customer, "#chat-title", "Demo Bank").await;
    type_into(&customer, "#chat-text", first).await;
    click(&customer, "#chat-send").await;
    wait_text(
        &customer,
        "#chat-messages .message.outbound",
        "automated assistant",
    )
    .await;
    let agent = browser(driver).await;
    log_in(&agent, app, "/agent", "ann@demo.example").await;
    wait_css(&agent, "#live-status[data-state=\"live\"]").await;
    click(&agent, ".view-btn[data-view=\"unassigned\"]").await;
    wait_css(&agent, "#inbox .conversation").await;
    click(&agent, "#inbox .conversation").await;
    wait_exact(&agent, "#messages .message.inbound .body", first).await;
    (customer, agent)
}

#[tokio::test]
async fn emoji_rtl_and_combining_text_round_trips_exactly_between_the_chat_and_the_desk() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_app().await;
    let (customer, agent) = chat_and_desk(&driver, &app, "first").await;

    // Astral emoji with skin tone and ZWJ, a flag, Arabic and Hebrew (RTL) with a mark,
    // decomposed accents (e + U+0301), a Devanagari cluster and a trailing space-less mix.
    let said = "Olá 👩🏽\u{200d}💻 🇿🇦 مرحبا بالعالم ‏שלום‎ Cafe\u{301} नमस्ते ñ\u{303}!";
    set_value(&customer, "#chat-text", said).await;
    click(&customer, "#chat-send").await;
    wait_exact(&agent, "#messages .message.inbound .body", said).await;

    let answer = "Shukran! 🙏🏿 ٱلسَّلَامُ عَلَيْكُمْ — e\u{301}\u{302} 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👨\u{200d}👩\u{200d}👧";
    set_value(&agent, "#composer-text", answer).await;
    // Typing in the composer shows on the customer's page before the message arrives.
    wait_text(&customer, "#chat-typing", "Ann Agent is typing").await;
    click(&agent, "#composer-send").await;
    wait_exact(&customer, "#chat-messages .message.outbound .body", answer).await;

    // Stored byte for byte too.
    let tenant = app.demo.tenant_id.parse().unwrap();
    let convs = app
        .app
        .store
        .list_conversations(
            tenant,
            &switchboard_core::ports::ConversationFilter {
                states: vec![],
                assignee: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let msgs = app
        .app
        .store
        .list_messages(tenant, convs[0].conversation.id, 50)
        .await
        .unwrap();
    let bodies: Vec<String> = msgs
        .iter()
        .filter_map(|m| match &m.content {
            switchboard_core::Content::Text { body } => Some(body.clone()),
            _ => None,
        })
        .collect();
    assert!(bodies.iter().any(|b| b == said), "{bodies:?}");
    assert!(bodies.iter().any(|b| b == answer), "{bodies:?}");
    std::fs::write(
        artifacts().join("desk-unicode.png"),
        agent.screenshot().await.unwrap(),
    )
    .unwrap();
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}

#[tokio::test]
async fn the_desk_resumes_after_losing_its_socket_with_every_missed_message_once_and_no_reload() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_app().await;
    let (customer, agent) = chat_and_desk(&driver, &app, "first").await;
    // A marker that a reload would wipe.
    agent
        .execute("window.__sameDocument = 'yes';", vec![])
        .await
        .unwrap();

    // The desk loses the network: its event socket closes.
    agent
        .execute("window.dispatchEvent(new Event('offline'));", vec![])
        .await
        .unwrap();
    wait_css(&agent, "#live-status[data-state=\"offline\"]").await;

    // Meanwhile the customer writes three messages (each stored before the next).
    let missed = ["while away 1", "while away 2 ✈️", "while away 3"];
    for (n, text) in missed.iter().enumerate() {
        set_value(&customer, "#chat-text", text).await;
        click(&customer, "#chat-send").await;
        let app_ref = &app;
        crate::helpers::eventually(10, "the message to be stored", || async move {
            let tenant = app_ref.demo.tenant_id.parse().ok()?;
            let convs = app_ref
                .app
                .store
                .list_conversations(
                    tenant,
                    &switchboard_core::ports::ConversationFilter {
                        states: vec![],
                        assignee: None,
                        limit: 10,
                    },
                )
                .await
                .ok()?;
            let msgs = app_ref
                .app
                .store
                .list_messages(tenant, convs.first()?.conversation.id, 100)
                .await
                .ok()?;
            let inbound = msgs
                .iter()
                .filter(|m| m.direction == switchboard_core::Direction::Inbound)
                .count();
            (inbound > n + 1).then_some(())
        })
        .await;
    }
    assert!(
        texts(&agent, "#messages .message.inbound .body")
            .await
            .iter()
            .all(|t| !t.starts_with("while away")),
        "nothing arrives while the socket is down"
    );

    // The network is back: the desk reconnects and replays what it missed.
    agent
        .execute("window.dispatchEvent(new Event('online'));", vec![])
        .await
        .unwrap();
    wait_css(&agent, "#live-status[data-state=\"live\"]").await;
    for text in missed {
        wait_exact(&agent, "#messages .message.inbound .body", text).await;
    }
    let shown = texts(&agent, "#messages .message.inbound .body").await;
    assert_eq!(
        shown,
        ["first", missed[0], missed[1], missed[2]],
        "every message once, in order"
    );
    let same = agent
        .execute("return window.__sameDocument || null;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!("yes"), "no reload");
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}
