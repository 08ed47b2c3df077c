//! The agent desk's extras end to end: retrying a failed message (the same message goes
//! again), the view counts in one request, the WhatsApp template catalogue, and typing state
//! both ways (agent → Telegram / WhatsApp / Signal / web chat, web chat and Signal customer → desk).
//! Providers are the mocks of `providers.rs`, fed the real fixtures.

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::multinode::login_on;
use crate::privacy::audited;
use crate::providers::{
    SIGNAL_ACCOUNT, SignalDaemon, TG_SECRET, TG_TOKEN, WA_APP_SECRET, WA_PHONE_ID, WA_TOKEN,
    WA_WABA_ID, fixture, mount_whatsapp_templates, signal_daemon_mock, signal_mock, telegram_mock,
    wa_sign, wait_for, whatsapp_mock,
};
use crate::webchat::{connect, next_matching};

/// Adds a WhatsApp channel on the mock, with the WABA id the template catalogue needs
/// unless `waba` is false.
pub(crate) async fn add_whatsapp(app: &TestApp, api_base: &str, waba: bool) -> String {
    let mut credentials = json!({
        "access_token": WA_TOKEN, "phone_number_id": WA_PHONE_ID,
        "app_secret": WA_APP_SECRET, "verify_token": "verify-me",
    });
    if waba {
        credentials["business_account_id"] = json!(WA_WABA_ID);
    }
    let (s, b) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "whatsapp", "name": format!("WhatsApp {waba}"),
                   "credentials": credentials, "api_base": api_base}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["channel"]["id"].as_str().expect("id").to_string()
}

/// Posts the real `inbound_text.json` (timestamp `ts`) to a WhatsApp channel's webhook and
/// returns the conversation it landed in.
async fn whatsapp_customer_writes(app: &TestApp, channel: &str, ts: i64) -> String {
    let mut v = fixture("whatsapp/inbound_text.json");
    v["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(ts.to_string());
    let raw = serde_json::to_vec(&v).expect("json");
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
    conversation_on(app, "whatsapp").await
}

/// The open conversation on a channel kind (waits for it to appear).
async fn conversation_on(app: &TestApp, kind: &'static str) -> String {
    eventually(10, "the conversation to be stored", || async move {
        let (_, b) = app.get("/api/v1/conversations?view=open").await;
        b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == kind)
            .and_then(|c| c["id"].as_str())
            .map(str::to_string)
    })
    .await
}

async fn messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    b["messages"].as_array().cloned().unwrap_or_default()
}

/// Waits for message `id` of `conv` to reach `status`; returns it.
async fn wait_status(app: &TestApp, conv: &str, id: &str, status: &'static str) -> Value {
    eventually(10, "the message's status", || async move {
        messages(app, conv)
            .await
            .into_iter()
            .find(|m| m["id"] == id && m["status"] == status)
    })
    .await
}

/// `POST …/messages/{id}/retry`.
async fn retry(app: &TestApp, conv: &str, id: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/conversations/{conv}/messages/{id}/retry"),
        json!(null),
    )
    .await
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------- retry

#[tokio::test]
async fn a_failed_reply_is_sent_again_as_the_same_message_and_reaches_the_customer_once() {
    // Arrange: WhatsApp refuses the next send for good (131026, undeliverable).
    let (mock, provider) = whatsapp_mock().await;
    *provider.undeliverable_next.lock().unwrap() = 1;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp(&app, &mock.uri(), false).await;
    let conv = whatsapp_customer_writes(&app, &channel, now_secs()).await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Your card is on its way"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["message"]["id"].as_str().unwrap().to_string();
    let failed = wait_status(&app, &conv, &id, "failed").await;
    assert_eq!(failed["failure"]["code"], "131026", "{failed}");

    // Act: the agent sends it again.
    let (s, b) = retry(&app, &conv, &id).await;

    // Assert: the same message goes back to the queue, then out, once.
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["message"]["id"], id.as_str());
    assert_eq!(b["message"]["status"], "queued");
    assert!(b["message"]["failure"].is_null(), "{b}");
    let sent = wait_status(&app, &conv, &id, "sent").await;
    assert!(sent["failure"].is_null(), "{sent}");
    assert!(sent["provider_id"].as_str().is_some(), "{sent}");
    let ours = |b: &Value| b["text"]["body"] == "Your card is on its way";
    let accepted: Vec<Value> = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|b| ours(b))
        .cloned()
        .collect();
    assert_eq!(accepted.len(), 1, "delivered once: {accepted:?}");
    assert_eq!(
        provider
            .bodies("/messages")
            .iter()
            .filter(|b| ours(b))
            .count(),
        2,
        "one refused attempt, one accepted"
    );
    let all = messages(&app, &conv).await;
    assert_eq!(
        all.iter()
            .filter(|m| m["content"]["body"] == "Your card is on its way")
            .count(),
        1,
        "the history keeps one message"
    );

    // The retry is in the audit log, with ids and without the text.
    let retries = audited(&app, "message.retry").await;
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0]["subject"], format!("message:{id}"));
    assert_eq!(retries[0]["details"]["conversation_id"], conv.as_str());
    assert!(
        retries[0]["actor"].as_str().unwrap().starts_with("user:"),
        "{retries:?}"
    );
    assert!(
        !retries[0].to_string().contains("card is on its way"),
        "no message text in the audit log: {retries:?}"
    );

    // A message that did not fail is not sent again, and nothing more is audited.
    let (s, b) = retry(&app, &conv, &id).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("sent"),
        "{b}"
    );
    assert_eq!(audited(&app, "message.retry").await.len(), 1);
}

#[tokio::test]
async fn retry_refuses_a_customer_whatsapp_marked_unreachable_with_409() {
    // Arrange: three undeliverable answers in a row mark the customer unreachable.
    let (mock, provider) = whatsapp_mock().await;
    *provider.undeliverable_next.lock().unwrap() = 3;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp(&app, &mock.uri(), false).await;
    let conv = whatsapp_customer_writes(&app, &channel, now_secs()).await;
    let mut first = String::new();
    for n in 0..3 {
        let (s, b) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({"text": format!("try {n}")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        if n == 0 {
            first = b["message"]["id"].as_str().unwrap().to_string();
        }
        let (app_ref, conv_ref) = (&app, conv.as_str());
        eventually(10, "the reply to fail", || async move {
            let failed = messages(app_ref, conv_ref)
                .await
                .iter()
                .filter(|m| m["status"] == "failed")
                .count();
            (failed > n).then_some(())
        })
        .await;
    }

    // Act
    let (s, b) = retry(&app, &conv, &first).await;

    // Assert: refused with the reason, nothing queued, no provider call.
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "recipient_unreachable", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("131026"),
        "{b}"
    );
    let m = messages(&app, &conv).await;
    let again = m.iter().find(|m| m["id"] == first.as_str()).unwrap();
    assert_eq!(again["status"], "failed", "{again}");
    assert_eq!(provider.bodies("/messages").len(), 3);
}

#[tokio::test]
async fn retry_refuses_the_customers_messages_unknown_ids_and_a_closed_whatsapp_window() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp(&app, &mock.uri(), false).await;
    // The customer last wrote 25 hours ago: the window is closed.
    let conv = whatsapp_customer_writes(&app, &channel, now_secs() - 25 * 3600).await;
    let inbound = messages(&app, &conv).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A customer's message: 409.
    let (s, b) = retry(&app, &conv, &inbound).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only a failed message"),
        "{b}"
    );
    // Unknown and malformed ids.
    let missing = "0192f3c4-5b6a-7c8d-9e0f-112233445566";
    let (s, b) = retry(&app, &conv, missing).await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = retry(&app, &conv, "nope").await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "invalid_id");

    // Free-form text that failed because the window is closed (queued by the store directly,
    // as a flow message would be): the sender refuses it before any provider call.
    let tenant = app.demo.tenant_id.parse().unwrap();
    let (msg, _) = app
        .app
        .store
        .enqueue_outbound(
            tenant,
            conv.parse().unwrap(),
            switchboard_core::ports::NewOutbound {
                sender: switchboard_core::Sender::Bot,
                content: switchboard_core::Content::text("Are you still there?"),
                lane: switchboard_core::ports::Lane::Live,
            },
            switchboard_app::now(),
        )
        .await
        .unwrap();
    app.app.wake_sender();
    let id = msg.id.to_string();
    let failed = wait_status(&app, &conv, &id, "failed").await;
    assert_eq!(failed["failure"]["class"], "needs_template", "{failed}");

    // Retrying it: 422 template_required, and nothing changes.
    let (s, b) = retry(&app, &conv, &id).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "template_required");
    let after = messages(&app, &conv).await;
    let m = after.iter().find(|m| m["id"] == id.as_str()).unwrap();
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["failure"]["class"], "needs_template", "{m}");
    assert!(provider.bodies("/messages").is_empty(), "no provider call");
}

// ---------------------------------------------------------------- counts

#[tokio::test]
async fn the_counts_match_every_desk_list_and_agents_do_not_see_all() {
    // Arrange: three web chat customers; an agent takes one of them.
    let mut app = spawn_app().await;
    for n in 0..3 {
        let visitor = app.new_visitor().await;
        let (s, _) = app
            .customer_says(&visitor, &format!("c-{n}"), "I need a person")
            .await;
        assert_eq!(s, 202);
    }
    app.login("admin@demo.example").await;
    let app_ref = &app;
    let first = eventually(10, "the conversations", || async move {
        let (_, b) = app_ref.get("/api/v1/desk/conversations?view=all").await;
        let rows = b["conversations"].as_array()?.clone();
        (rows.len() == 3).then(|| rows[0]["id"].as_str().unwrap().to_string())
    })
    .await;
    app.set_presence("available").await;
    let (s, b) = app
        .post(&format!("/api/v1/conversations/{first}/assign"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");

    // Act
    let (s, counts) = app.get("/api/v1/desk/counts").await;

    // Assert: each count is the length of its list.
    assert_eq!(s, 200, "{counts}");
    for view in ["mine", "my_queues", "unassigned", "all"] {
        let (_, list) = app
            .get(&format!("/api/v1/desk/conversations?view={view}&limit=500"))
            .await;
        let n = list["conversations"].as_array().unwrap().len();
        assert_eq!(counts["counts"][view], json!(n), "{view}: {counts}");
    }
    assert_eq!(counts["counts"]["mine"], 1);
    assert_eq!(counts["counts"]["all"], 3);

    // An agent gets the views an agent has.
    app.login("ann@demo.example").await;
    let (s, counts) = app.get("/api/v1/desk/counts").await;
    assert_eq!(s, 200, "{counts}");
    assert_eq!(counts["counts"]["mine"], 0);
    assert!(counts["counts"].get("all").is_none(), "{counts}");
}

// ---------------------------------------------------------------- templates

#[tokio::test]
async fn the_template_catalogue_lists_approved_whatsapp_templates_from_every_page_once() {
    let (mock, provider) = whatsapp_mock().await;
    mount_whatsapp_templates(&mock, &provider).await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = add_whatsapp(&app, &mock.uri(), true).await;

    let (s, b) = app
        .get(&format!("/api/v1/channels/{channel}/templates"))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["templates"],
        json!([
            {"name": "order_update", "language": "en_US", "category": "UTILITY",
             "body": "Order {{1}} is on its way.", "variables": 1},
            {"name": "appointment_reminder", "language": "en_US", "category": "UTILITY",
             "body": "Hi {{1}}, this is a reminder of your appointment on {{2}}.", "variables": 2},
        ]),
        "approved ones only, both pages"
    );
    let calls = provider.bodies("/message_templates");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1]["after"], "page2");

    // Cached: asking again does not call the provider.
    let (s, again) = app
        .get(&format!("/api/v1/channels/{channel}/templates"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(again, b);
    assert_eq!(provider.bodies("/message_templates").len(), 2);

    // A channel without templates lists none; one without its WABA id says what is missing.
    let (s, b) = app
        .get(&format!(
            "/api/v1/channels/{}/templates",
            app.demo.webchat_channel_id
        ))
        .await;
    assert_eq!((s, b), (200, json!({"templates": []})));
    let no_waba = add_whatsapp(&app, &mock.uri(), false).await;
    let (s, b) = app
        .get(&format!("/api/v1/channels/{no_waba}/templates"))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("business_account_id"),
        "{b}"
    );
}

// ---------------------------------------------------------------- typing

async fn typing(app: &TestApp, conv: &str) -> Value {
    let (s, b) = app
        .post(&format!("/api/v1/conversations/{conv}/typing"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

#[tokio::test]
async fn agent_typing_reaches_telegram_as_a_chat_action_once_per_interval() {
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (s, b) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "telegram", "name": "Bot",
                   "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                   "api_base": mock.uri()}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let channel = b["channel"]["id"].as_str().unwrap().to_string();
    let update = fixture("telegram/update_message_text.json");
    let r = app
        .client
        .post(app.url(&format!("/hooks/telegram/{channel}")))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let conv = conversation_on(&app, "telegram").await;

    assert_eq!(typing(&app, &conv).await, json!({"typing": "sent"}));
    assert_eq!(typing(&app, &conv).await, json!({"typing": "throttled"}));

    let p = provider.clone();
    wait_for(10, "sendChatAction", move || {
        !p.bodies("/sendChatAction").is_empty()
    })
    .await;
    let calls = provider.bodies("/sendChatAction");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["action"], "typing");
    assert_eq!(
        calls[0]["chat_id"].to_string().trim_matches('"'),
        update["message"]["chat"]["id"].to_string()
    );
    assert!(
        provider.bodies("/sendMessage").is_empty(),
        "typing is not a message"
    );
}

#[tokio::test]
async fn agent_typing_on_whatsapp_marks_the_last_customer_message_read_with_the_indicator() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = add_whatsapp(&app, &mock.uri(), false).await;
    let conv = whatsapp_customer_writes(&app, &channel, now_secs()).await;
    let wamid = fixture("whatsapp/inbound_text.json")["entry"][0]["changes"][0]["value"]
        ["messages"][0]["id"]
        .clone();

    assert_eq!(typing(&app, &conv).await, json!({"typing": "sent"}));

    let p = provider.clone();
    wait_for(10, "the typing indicator", move || {
        p.bodies("/messages").iter().any(|b| b["status"] == "read")
    })
    .await;
    let call = provider
        .bodies("/messages")
        .into_iter()
        .find(|b| b["status"] == "read")
        .unwrap();
    assert_eq!(
        call,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid,
               "typing_indicator": {"type": "text"}}),
        "the shape of mark_read_with_typing_indicator_request.json"
    );
    let shape = fixture("whatsapp/api/mark_read_with_typing_indicator_request.json");
    assert_eq!(call["typing_indicator"], shape["typing_indicator"]);
}

/// Adds a JSON-RPC Signal channel on `daemon`, has the fixture's customer write and returns
/// the conversation and the `receive` frame pushed.
async fn signal_rpc_conversation(app: &TestApp, daemon: &SignalDaemon) -> (String, Value) {
    let (s, b) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": daemon.uri, "mode": "json-rpc"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    wait_for(10, "the receiver to listen", move || daemon.listeners() > 0).await;
    let mut frame = fixture("signal/jsonrpc_receive_data_message.json");
    frame["params"]["account"] = json!(SIGNAL_ACCOUNT);
    daemon.push(&frame);
    (conversation_on(app, "signal").await, frame)
}

#[tokio::test]
async fn agent_typing_on_signal_calls_send_typing() {
    let daemon = signal_daemon_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (conv, frame) = signal_rpc_conversation(&app, &daemon).await;

    assert_eq!(typing(&app, &conv).await, json!({"typing": "sent"}));

    let state = daemon.state.clone();
    wait_for(10, "sendTyping", move || {
        state
            .bodies("/api/v1/rpc")
            .iter()
            .any(|b| b["method"] == "sendTyping")
    })
    .await;
    let call = daemon
        .state
        .bodies("/api/v1/rpc")
        .into_iter()
        .find(|b| b["method"] == "sendTyping")
        .unwrap();
    let source = frame["params"]["envelope"]["sourceUuid"]
        .as_str()
        .or(frame["params"]["envelope"]["source"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(call["params"]["recipient"], json!([source]), "{call}");
}

#[tokio::test]
async fn agent_typing_on_signal_rest_puts_the_typing_indicator() {
    let (mock, provider, queue) = signal_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (s, b) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal REST", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": mock.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let mut frame = fixture("signal/rest_ws_receive_attachment.json");
    frame["envelope"]["dataMessage"]["attachments"] = json!([]);
    frame["account"] = json!(SIGNAL_ACCOUNT);
    queue.lock().unwrap().push(frame.clone());
    let conv = conversation_on(&app, "signal").await;

    assert_eq!(typing(&app, &conv).await, json!({"typing": "sent"}));

    let p = provider.clone();
    wait_for(10, "the typing indicator", move || {
        !p.bodies("/v1/typing-indicator/+49987654321").is_empty()
    })
    .await;
    let call = &provider.bodies(&format!("/v1/typing-indicator/{SIGNAL_ACCOUNT}"))[0];
    let source = frame["envelope"]["sourceUuid"]
        .as_str()
        .or(frame["envelope"]["source"].as_str())
        .unwrap();
    assert_eq!(call, &json!({"recipient": source}));
}

#[tokio::test]
async fn a_signal_customer_typing_shows_on_the_desk_and_nothing_is_stored() {
    // Arrange: a Signal customer with a conversation; Ann's desk socket is open and has seen
    // the customer's second message (so it listens).
    let daemon = signal_daemon_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (conv, mut frame) = signal_rpc_conversation(&app, &daemon).await;
    let (cookie, _) = login_on(&app.client, &app.url(""), "ann@demo.example").await;
    let mut desk = connect(&app.ws_url("/api/v1/events"), Some(&cookie)).await;
    let env = frame["params"]["envelope"].clone();
    frame["params"]["envelope"]["timestamp"] = json!(env["timestamp"].as_i64().unwrap() + 1);
    daemon.push(&frame);
    next_matching(&mut desk, |v| {
        v["type"] == "message_created" && v["data"]["message"]["conversation_id"] == conv.as_str()
    })
    .await;
    let stored = messages(&app, &conv).await.len();

    // Act: someone without a conversation starts typing, then the customer (the real
    // signal-cli frame, re-addressed to our account and from this customer).
    let typing = |env_from: &Value| {
        let mut t = fixture("signal/jsonrpc_receive_typing_started.json");
        t["params"]["account"] = json!(SIGNAL_ACCOUNT);
        for key in ["source", "sourceNumber", "sourceUuid", "sourceName"] {
            t["params"]["envelope"][key] = env_from[key].clone();
        }
        t
    };
    daemon.push(&typing(
        &json!({"sourceUuid": "someone-else", "source": "+15550000"}),
    ));
    daemon.push(&typing(&env));

    // Assert: the desk shows the customer typing in that conversation, unnumbered; nothing
    // was stored and no conversation was opened for the stranger.
    let t = next_matching(&mut desk, |v| v["type"] == "typing").await;
    assert_eq!(t["data"]["conversation_id"], conv.as_str(), "{t}");
    assert!(t.get("seq").is_none(), "{t}");
    assert_eq!(
        messages(&app, &conv).await.len(),
        stored,
        "typing is not a message"
    );
    let (_, b) = app.get("/api/v1/conversations?view=open").await;
    let signal = b["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["channel_kind"] == "signal")
        .count();
    assert_eq!(signal, 1, "{b}");
}

#[tokio::test]
async fn web_chat_typing_shows_on_the_desk_and_the_agents_on_the_page() {
    let app = spawn_app().await;
    // The customer's page, with a conversation.
    let mut chat = connect(
        &app.ws_url(&format!("/chat/{}/ws", app.demo.webchat_channel_id)),
        None,
    )
    .await;
    chat.send(Ws::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .unwrap();
    next_matching(&mut chat, |v| v["type"] == "welcome").await;
    chat.send(Ws::Text(
        json!({"type": "message", "client_msg_id": "t-1", "text": "hello"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let accepted = next_matching(&mut chat, |v| v["type"] == "accepted").await;
    let (cookie, csrf) = login_on(&app.client, &app.url(""), "ann@demo.example").await;
    let mut desk = connect(&app.ws_url("/api/v1/events"), Some(&cookie)).await;
    let message_id = accepted["message_id"].clone();
    let (app_ref, cookie_ref) = (&app, cookie.as_str());
    let conv = eventually(10, "the conversation", || async move {
        let r = app_ref
            .client
            .get(app_ref.url("/api/v1/conversations?view=open"))
            .header("cookie", cookie_ref)
            .send()
            .await
            .ok()?;
        let b: Value = r.json().await.ok()?;
        b["conversations"][0]["id"].as_str().map(str::to_string)
    })
    .await;

    // The customer types: the desk hears it, without a sequence number.
    chat.send(Ws::Text(json!({"type": "typing"}).to_string().into()))
        .await
        .unwrap();
    let t = next_matching(&mut desk, |v| v["type"] == "typing").await;
    assert_eq!(t["data"]["conversation_id"], conv.as_str(), "{t}");
    assert!(t.get("seq").is_none(), "{t}");

    // The agent types: the page shows who.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/typing")))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t = next_matching(&mut chat, |v| v["type"] == "typing").await;
    assert_eq!(t["name"], "Ann Agent", "{t}");
    // Nothing was stored: the conversation holds the customer's message and the bot's.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/conversations/{conv}/messages")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let msgs: Value = r.json().await.unwrap();
    assert!(
        msgs["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == message_id)
    );
    assert!(
        msgs["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["content"]["type"] != "typing")
    );
}
