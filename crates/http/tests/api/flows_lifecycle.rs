//! Flows over their lifetime, end to end: a campaign opening a WhatsApp conversation (template
//! rules, consent), sessions pinned to the flow version they started on, `menu` inside a
//! keyword's flow, inactivity expiry through a clock the test moves forward (also across a
//! restart, since timers are rows), and the transparency messages on a provider channel.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_app::clock::ShiftedClock;
use switchboard_app::{App, Config};
use switchboard_core::Content;
use switchboard_http::Server;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEMO_PASSWORD, TestApp, eventually, init, spawn_app, test_config};
use crate::providers::{
    MockState, add_whatsapp_channel, fixture, wa_sign, wait_for, whatsapp_mock,
};

// ------------------------------------------------------------------ helpers

/// A server whose job worker and flow runtime read `clock`, with a handle to stop it cleanly.
struct ClockedApp {
    app: TestApp,
    stop: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl ClockedApp {
    async fn start(dir: Arc<tempfile::TempDir>, clock: Arc<ShiftedClock>) -> ClockedApp {
        init();
        let config: Config = test_config(dir.path());
        let listen = config.listen;
        let app = App::open(config)
            .await
            .expect("app opens")
            .with_clock(clock);
        let server = Server::with_app(app, listen).await.expect("server binds");
        let addr = server.addr();
        let app = server.app().clone();
        let demo = app
            .seed_demo(Some(DEMO_PASSWORD))
            .await
            .expect("demo seeds");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(server.run_until_stopped(stop.clone()));
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client builds");
        let app = TestApp::from_parts(addr, app, client, demo, stop.clone(), dir);
        ClockedApp { app, stop, handle }
    }

    /// Stops the server and waits for its workers; returns its data directory.
    async fn stop(self) -> Arc<tempfile::TempDir> {
        let dir = self.app.dir.clone();
        self.stop.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server stopped cleanly");
        dir
    }
}

/// A web chat customer's conversation, read through the staff API.
async fn webchat_says(app: &TestApp, token: &str, id: &str, text: &str) -> (String, String) {
    let (s, accepted) = app.customer_says(token, id, text).await;
    assert_eq!(s, 202, "{accepted}");
    (
        accepted["conversation_id"]
            .as_str()
            .expect("conversation")
            .to_string(),
        accepted["message_id"]
            .as_str()
            .expect("message")
            .to_string(),
    )
}

fn readable(m: &Value) -> String {
    let content: Content = serde_json::from_value(m["content"].clone()).expect("content");
    content.preview()
}

async fn messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (s, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(s, 200, "{b}");
    b["messages"].as_array().cloned().unwrap_or_default()
}

/// The bot's messages after `message_id`, once there are at least `n`.
async fn answers(app: &TestApp, conv: &str, message_id: &str, n: usize) -> Vec<String> {
    eventually(10, "the bot's answer", || async move {
        let list = messages(app, conv).await;
        let at = list.iter().position(|x| x["id"] == message_id)?;
        let after: Vec<String> = list[at + 1..]
            .iter()
            .filter(|x| x["direction"] == "outbound")
            .map(readable)
            .collect();
        (after.len() >= n).then_some(after)
    })
    .await
}

async fn conversation(app: &TestApp, conv: &str) -> Value {
    let (s, b) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// A WhatsApp text from `wa_id` with message id `wamid`, sent `ago` before now.
fn wa_text(wa_id: &str, wamid: &str, text: &str, ago: Duration) -> Value {
    let mut v = fixture("whatsapp/inbound_text.json");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(wa_id);
    let m = &mut value["messages"][0];
    m["from"] = json!(wa_id);
    m["id"] = json!(wamid);
    m["text"]["body"] = json!(text);
    let ts = time::OffsetDateTime::now_utc().unix_timestamp() - ago.as_secs() as i64;
    m["timestamp"] = json!(ts.to_string());
    v
}

async fn post_wa(app: &TestApp, channel: &str, payload: &Value) {
    let raw = serde_json::to_vec(payload).expect("json");
    let r = app
        .client
        .post(app.url(&format!("/hooks/whatsapp/{channel}")))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", wa_sign(&raw))
        .body(raw)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
}

/// What the WhatsApp mock accepted for `wa_id`, as `template:NAME`, `text:BODY`,
/// `interactive:BODY`.
fn wa_sent(provider: &MockState, wa_id: &str) -> Vec<String> {
    provider
        .accepted
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b["to"] == wa_id)
        .map(|b| match b["type"].as_str().unwrap_or("") {
            "template" => format!("template:{}", b["template"]["name"].as_str().unwrap_or("")),
            "text" => format!("text:{}", b["text"]["body"].as_str().unwrap_or("")),
            "interactive" => format!(
                "interactive:{}",
                b["interactive"]["body"]["text"].as_str().unwrap_or("")
            ),
            other => other.to_string(),
        })
        .collect()
}

async fn wa_conversation_of(app: &TestApp, wa_id: &str) -> Option<Value> {
    let (_, b) = app.get("/api/v1/conversations?view=open").await;
    for c in b["conversations"].as_array()?.clone() {
        if c["channel_kind"] != "whatsapp" {
            continue;
        }
        let full = conversation(app, c["id"].as_str()?).await;
        if full["identities"]
            .as_array()?
            .iter()
            .any(|i| i["external_id"] == wa_id)
        {
            return Some(full);
        }
    }
    None
}

async fn set_settings(
    app: &TestApp,
    channel: &str,
    f: impl FnOnce(&mut switchboard_core::ChannelSettings),
) {
    let tenant = app.demo.tenant_id.parse().expect("tenant id");
    let channel_id = channel.parse().expect("channel id");
    let mut ch = app
        .app
        .store
        .channel(channel_id)
        .await
        .expect("read")
        .expect("channel");
    f(&mut ch.settings);
    app.app
        .store
        .set_channel_settings(tenant, channel_id, &ch.settings)
        .await
        .expect("settings saved");
}

const MAIN_GREETING: &str = "automated assistant";
const BALANCE_PROMPT: &str = "Please send your account number (8 to 12 digits).";
const DAY: Duration = Duration::from_secs(24 * 3600);

// ------------------------------------------------------------------ 1. campaigns

#[tokio::test]
async fn a_campaign_opens_a_whatsapp_conversation_with_a_template_outside_the_window() {
    // Arrange: a customer wrote two days ago; that conversation is resolved.
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let customer = "27820000001";
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.old", "hello", 2 * DAY),
    )
    .await;
    let old = eventually(10, "the old conversation", || {
        wa_conversation_of(&app, customer)
    })
    .await;
    let old_id = old["conversation"]["id"].as_str().expect("id").to_string();
    let contact = old["contact"]["id"].as_str().expect("contact").to_string();
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{old_id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let start = json!({"contact_id": contact, "channel_id": channel});

    // Act + Assert: no template, and main_menu does not open with one: refused, nothing written.
    let (s, b) = app
        .post("/api/v1/flows/main_menu/start", start.clone())
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "template_required", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("24 hours")),
        "{b}"
    );
    assert!(
        wa_conversation_of(&app, customer).await.is_none(),
        "no conversation opened"
    );

    // Act: with a template.
    let mut with_template = start.clone();
    with_template["template"] =
        json!({"name": "account_update", "language": "en_US", "variables": ["Sheena"]});
    let (s, b) = app
        .post("/api/v1/flows/main_menu/start", with_template)
        .await;
    assert_eq!(s, 202, "{b}");
    let conv = b["conversation"]["conversation"]["id"]
        .as_str()
        .or_else(|| b["conversation"]["id"].as_str())
        .expect("conversation id")
        .to_string();
    assert_ne!(conv, old_id, "a new conversation is opened");
    assert_eq!(
        conversation(&app, &conv).await["conversation"]["state"],
        "bot"
    );

    // Assert: only the template went out; the flow waits for the customer.
    let p = provider.clone();
    wait_for(10, "the template", move || {
        !wa_sent(&p, customer).is_empty()
    })
    .await;
    assert_eq!(wa_sent(&provider, customer), ["template:account_update"]);
    let template = provider
        .accepted
        .lock()
        .expect("lock")
        .iter()
        .find(|b| b["to"] == customer)
        .cloned()
        .expect("sent");
    assert_eq!(
        template["template"]["components"][0]["parameters"][0]["text"], "Sheena",
        "{template}"
    );

    // Act: the customer answers the template.
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.answer", "hi", Duration::ZERO),
    )
    .await;

    // Assert: now the flow starts, in the conversation the campaign opened.
    let p = provider.clone();
    wait_for(10, "the main menu", move || {
        wa_sent(&p, customer).len() >= 3
    })
    .await;
    let sent = wa_sent(&provider, customer);
    assert!(
        sent[1].starts_with("text:") && sent[1].contains(MAIN_GREETING),
        "{sent:?}"
    );
    assert!(
        sent[2].starts_with("interactive:How can we help"),
        "{sent:?}"
    );
    let now_open = wa_conversation_of(&app, customer).await.expect("open");
    assert_eq!(now_open["conversation"]["id"], conv.as_str());

    // Inside the window a campaign's flow starts at once, with no template.
    let (s, b) = app.post("/api/v1/flows/balance/start", start.clone()).await;
    assert_eq!(s, 202, "{b}");
    let p = provider.clone();
    wait_for(10, "the balance prompt", move || {
        wa_sent(&p, customer)
            .iter()
            .any(|m| m == &format!("text:{BALANCE_PROMPT}"))
    })
    .await;
    assert_eq!(
        wa_sent(&provider, customer)
            .iter()
            .filter(|m| m.starts_with("template:"))
            .count(),
        1,
        "no template inside the window"
    );

    // A customer who opts out is refused afterwards.
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.stop", "stop", Duration::ZERO),
    )
    .await;
    let (app_ref, conv_ref) = (&app, conv.clone());
    eventually(10, "the opt-out", || {
        let conv = conv_ref.clone();
        async move {
            (conversation(app_ref, &conv).await["conversation"]["state"] == "resolved")
                .then_some(())
        }
    })
    .await;
    let (s, b) = app.post("/api/v1/flows/balance/start", start).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("opted out")),
        "{b}"
    );
}

#[tokio::test]
async fn a_flow_that_opens_with_a_template_needs_none_in_the_request() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let tenant = app.demo.tenant_id.parse().expect("tenant");
    app.app
        .load_flows(
            tenant,
            &[(
                "reminder.yaml",
                r#"
id: reminder
nodes:
  - id: open
    type: send
    template: {name: payment_due, variables: ["{{contact.name}}"]}
  - id: answer
    type: wait
    timeout_seconds: 86400
    save: reply
    next: thanks
    on_timeout: quiet
  - id: thanks
    type: end
    text: "Thanks, we got your answer."
  - id: quiet
    type: end
"#,
            )],
        )
        .await
        .expect("loads");
    let customer = "27820000002";
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.r1", "hello", 3 * DAY),
    )
    .await;
    let old = eventually(10, "the conversation", || {
        wa_conversation_of(&app, customer)
    })
    .await;
    let contact = old["contact"]["id"].as_str().expect("contact").to_string();
    let old_id = old["conversation"]["id"].as_str().expect("id").to_string();
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{old_id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    let (s, b) = app
        .post(
            "/api/v1/flows/reminder/start",
            json!({"contact_id": contact, "channel_id": channel}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let p = provider.clone();
    wait_for(10, "the flow's template", move || {
        wa_sent(&p, customer).contains(&"template:payment_due".to_string())
    })
    .await;
    assert_eq!(wa_sent(&provider, customer), ["template:payment_due"]);
}

// ------------------------------------------------------------------ 2. versions

#[tokio::test]
async fn a_session_keeps_the_flow_version_it_started_on() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let tenant = app.demo.tenant_id.parse().expect("tenant");
    let survey = |v: &str| {
        format!(
            r#"
id: survey
nodes:
  - id: ask
    type: ask
    prompt: "{v}: what is your name?"
    save: name
  - id: thanks
    type: end
    text: "{v}: thanks {{{{vars.name}}}}"
"#
        )
    };
    let v1 = survey("v1");
    let saved = app
        .app
        .load_flows(tenant, &[("survey.yaml", &v1)])
        .await
        .expect("v1");
    assert_eq!(saved[0].flow.version, 1);

    // A session starts on v1.
    let token = app.new_visitor().await;
    let (conv, _) = webchat_says(&app, &token, "a-1", "hi").await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/flow"),
            json!({"flow_id": "survey"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    eventually(10, "the v1 question", || async {
        messages(&app, &conv)
            .await
            .iter()
            .any(|m| readable(m) == "v1: what is your name?")
            .then_some(())
    })
    .await;

    // v2 is loaded while that session waits.
    let v2 = survey("v2");
    let saved = app
        .app
        .load_flows(tenant, &[("survey.yaml", &v2)])
        .await
        .expect("v2");
    assert_eq!(saved[0].flow.version, 2);

    // The running session continues on v1.
    let (_, m) = webchat_says(&app, &token, "a-2", "Thandi").await;
    assert_eq!(answers(&app, &conv, &m, 1).await, ["v1: thanks Thandi"]);

    // A new session runs v2.
    let other = app.new_visitor().await;
    let (conv2, _) = webchat_says(&app, &other, "b-1", "hi").await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv2}/flow"),
            json!({"flow_id": "survey"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    eventually(10, "the v2 question", || async {
        messages(&app, &conv2)
            .await
            .iter()
            .any(|m| readable(m) == "v2: what is your name?")
            .then_some(())
    })
    .await;
}

// ------------------------------------------------------------------ 3. menu

#[tokio::test]
async fn menu_inside_a_keyword_flow_opens_the_channels_main_flow() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = app.demo.webchat_channel_id.clone();

    // The default flow (main_menu) is the channel's main flow.
    let token = app.new_visitor().await;
    let (conv, m) = webchat_says(&app, &token, "k-1", "balance").await;
    let first = answers(&app, &conv, &m, 2).await;
    assert_eq!(
        first.last().map(String::as_str),
        Some(BALANCE_PROMPT),
        "{first:?}"
    );
    let (_, m) = webchat_says(&app, &token, "k-2", "menu").await;
    let menu = answers(&app, &conv, &m, 2).await;
    assert!(
        menu.iter()
            .any(|x| x.starts_with("How can we help you today?")),
        "`menu` opens the main menu, not the balance flow again: {menu:?}"
    );
    assert!(!menu.iter().any(|x| x == BALANCE_PROMPT), "{menu:?}");

    // `menu_flow` overrides it.
    set_settings(&app, &channel, |s| s.menu_flow = Some("order".into())).await;
    let token = app.new_visitor().await;
    let (conv, m) = webchat_says(&app, &token, "o-1", "balance").await;
    answers(&app, &conv, &m, 2).await;
    let (_, m) = webchat_says(&app, &token, "o-2", "menu").await;
    let menu = answers(&app, &conv, &m, 1).await;
    assert!(
        !menu
            .iter()
            .any(|x| x.starts_with("How can we help you today?") || x == BALANCE_PROMPT),
        "`menu` opens the configured order flow: {menu:?}"
    );
    assert!(
        menu.iter()
            .any(|x| x.starts_with("What would you like to browse?")),
        "the order flow's first question: {menu:?}"
    );
}

// ------------------------------------------------------------------ 4. expiry

const EXPIRY: &str = "We haven't heard from you for a while";

async fn wait_for_expiry(app: &TestApp, conv: &str) -> Vec<String> {
    eventually(10, "the expiry message", || async move {
        let list = messages(app, conv).await;
        let texts: Vec<String> = list.iter().map(readable).collect();
        texts.iter().any(|t| t.starts_with(EXPIRY)).then_some(texts)
    })
    .await
}

#[tokio::test]
async fn an_idle_session_expires_with_its_message_when_the_clock_passes_its_timeout() {
    let clock = ShiftedClock::new(Duration::ZERO);
    let dir = Arc::new(tempfile::tempdir().expect("dir"));
    let mut server = ClockedApp::start(dir, clock.clone()).await;
    server.app.login("ann@demo.example").await;
    let app = &server.app;
    let token = app.new_visitor().await;
    let (conv, m) = webchat_says(app, &token, "e-1", "hi").await;
    answers(app, &conv, &m, 2).await;

    // 29 minutes: nothing is due (main_menu expires after 30).
    clock.advance(Duration::from_secs(29 * 60));
    app.app.wake_jobs();
    // 31 minutes: the timer row is due.
    clock.advance(Duration::from_secs(2 * 60));
    app.app.wake_jobs();
    let texts = wait_for_expiry(app, &conv).await;
    assert_eq!(
        texts.iter().filter(|t| t.starts_with(EXPIRY)).count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        conversation(app, &conv).await["conversation"]["state"],
        "resolved"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_session_expires_after_a_restart_because_its_timer_is_a_row() {
    // A session is waiting when the server stops.
    let dir = Arc::new(tempfile::tempdir().expect("dir"));
    let mut first = ClockedApp::start(dir, ShiftedClock::new(Duration::ZERO)).await;
    first.app.login("ann@demo.example").await;
    let token = first.app.new_visitor().await;
    let (conv, m) = webchat_says(&first.app, &token, "r-1", "hi").await;
    answers(&first.app, &conv, &m, 2).await;
    let dir = first.stop().await;

    // The next start is 31 minutes later.
    let mut second = ClockedApp::start(dir, ShiftedClock::new(Duration::from_secs(31 * 60))).await;
    second.app.login("ann@demo.example").await;
    second.app.app.wake_jobs();
    wait_for_expiry(&second.app, &conv).await;
    assert_eq!(
        conversation(&second.app, &conv).await["conversation"]["state"],
        "resolved"
    );
    second.stop().await;
}

// ------------------------------------------------------------------ 5. transparency

#[tokio::test]
async fn whatsapp_customers_are_told_who_answers_and_when_a_person_joins() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;

    // Set before the first webhook: the webhook path caches channels for a few seconds.
    set_settings(&app, &channel, |s| {
        s.default_flow = Some("main_menu".into());
        s.welcome_message = Some("You reached ACME Telecom's automated assistant.".into());
        s.handoff_message = Some("A person from ACME Telecom is joining this chat now.".into());
    })
    .await;

    // The default flow's greeting says which business and that a bot answers.
    let customer = "27820000011";
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.t2", "hi", Duration::ZERO),
    )
    .await;
    let p = provider.clone();
    wait_for(10, "the greeting", move || wa_sent(&p, customer).len() >= 2).await;
    let sent = wa_sent(&provider, customer);
    assert!(
        sent[0].contains("Demo Bank") && sent[0].contains(MAIN_GREETING),
        "{sent:?}"
    );
    post_wa(
        &app,
        &channel,
        &wa_text(customer, "wamid.t3", "agent", Duration::ZERO),
    )
    .await;
    let p = provider.clone();
    wait_for(10, "the hand-off notice", move || {
        wa_sent(&p, customer).len() >= 3
    })
    .await;
    assert_eq!(
        wa_sent(&provider, customer)[2],
        "text:A person from ACME Telecom is joining this chat now."
    );
    let conv = wa_conversation_of(&app, customer).await.expect("open");
    assert_eq!(conv["conversation"]["state"], "queued");

    // A keyword's flow does not introduce the business: the channel's welcome comes first.
    let keyword = "27820000013";
    post_wa(
        &app,
        &channel,
        &wa_text(keyword, "wamid.t6", "balance", Duration::ZERO),
    )
    .await;
    let p = provider.clone();
    wait_for(10, "the welcome", move || wa_sent(&p, keyword).len() >= 2).await;
    assert_eq!(
        wa_sent(&provider, keyword),
        [
            "text:You reached ACME Telecom's automated assistant.".to_string(),
            format!("text:{BALANCE_PROMPT}")
        ]
    );

    // Without a channel wording the flow's own hand-off message is used.
    set_settings(&app, &channel, |s| s.handoff_message = None).await;
    let third = "27820000012";
    post_wa(
        &app,
        &channel,
        &wa_text(third, "wamid.t4", "hi", Duration::ZERO),
    )
    .await;
    let p = provider.clone();
    wait_for(10, "the greeting", move || wa_sent(&p, third).len() >= 2).await;
    post_wa(
        &app,
        &channel,
        &wa_text(third, "wamid.t5", "agent", Duration::ZERO),
    )
    .await;
    let p = provider.clone();
    wait_for(10, "the hand-off notice", move || {
        wa_sent(&p, third).len() >= 3
    })
    .await;
    assert!(
        wa_sent(&provider, third)[2].contains("passing you to a person"),
        "{:?}",
        wa_sent(&provider, third)
    );
}
