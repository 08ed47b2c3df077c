//! Provider channels when things go wrong, end to end against the mock providers:
//! - a long text split into parts that fails at part 2 is resumed at part 2, so the customer
//!   gets every part exactly once;
//! - a revoked token (WhatsApp 190, Telegram 401) pauses the channel: replies stay queued,
//!   the channels API shows why, and resuming with good credentials sends them in order;
//! - a customer who blocked the bot gets nothing from a flow either: every send is guarded,
//!   not only agent replies.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::providers::{
    TG_SECRET, TG_TOKEN, WA_TOKEN, add_whatsapp_channel, fixture, telegram_mock, wa_sign,
    whatsapp_mock,
};

/// The customer of `whatsapp/inbound_text.json` writes now; returns the conversation id.
async fn whatsapp_customer_writes(app: &TestApp, channel: &str) -> String {
    let mut v = fixture("whatsapp/inbound_text.json");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    v["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(now.to_string());
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
    assert_eq!(r.status(), 200);
    conversation_of(app, "whatsapp").await
}

async fn conversation_of(app: &TestApp, kind: &str) -> String {
    let (_, b) = app.get("/api/v1/conversations").await;
    b["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["channel_kind"] == kind)
        .and_then(|c| c["id"].as_str())
        .expect("a conversation")
        .to_string()
}

/// Every outbound message of a conversation (agent, bot and system ones).
async fn outbound(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    b["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect()
}

/// The agent's replies of a conversation.
async fn replies(app: &TestApp, conv: &str) -> Vec<Value> {
    outbound(app, conv)
        .await
        .into_iter()
        .filter(|m| m["sender"]["type"] == "agent")
        .collect()
}

async fn reply(app: &TestApp, conv: &str, text: &str) {
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

async fn channel_json(app: &TestApp, id: &str) -> Value {
    let (s, b) = app.get("/api/v1/channels").await;
    assert_eq!(s, 200, "{b}");
    b["channels"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .expect("the channel is listed")
}

/// Waits until the `n` agent replies of `conv` all have `status`; returns them.
async fn replies_are(app: &TestApp, conv: &str, n: usize, status: &str) -> Vec<Value> {
    let what = format!("{n} replies to be {status}");
    eventually(15, &what, || async move {
        let m = replies(app, conv).await;
        (m.len() == n && m.iter().all(|m| m["status"] == status)).then_some(m)
    })
    .await
}

#[tokio::test]
async fn a_long_reply_that_failed_at_part_two_is_resumed_there_and_each_part_arrives_once() {
    // Arrange: WhatsApp splits at 4096 characters; this text needs three parts.
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let conv = whatsapp_customer_writes(&app, &channel).await;
    let words: Vec<String> = (0..1800).map(|i| format!("w{i:04}")).collect();
    let text = words.join(" ");
    // Part 2 (about words 683 to 1365) is answered 500 / 131000 ("Something went wrong":
    // retry) the first time it is sent.
    *provider.fail_once_containing.lock().unwrap() = Some("w1000".into());

    // Act
    reply(&app, &conv, &text).await;

    // Assert: sent, and the provider accepted three parts that hold every word once, in
    // order; the failed part 2 was sent again, part 1 was not.
    let msgs = replies_are(&app, &conv, 1, "sent").await;
    // Only this reply's parts (the server may also send queue notices meanwhile).
    let ours = |b: &Value| {
        b["text"]["body"]
            .as_str()
            .and_then(|t| t.split_whitespace().next())
            .is_some_and(|w| words.iter().any(|x| x == w))
    };
    let accepted: Vec<Value> = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|b| ours(b))
        .cloned()
        .collect();
    assert_eq!(accepted.len(), 3, "three parts accepted");
    let received: Vec<String> = accepted
        .iter()
        .flat_map(|b| {
            b["text"]["body"]
                .as_str()
                .expect("a text part")
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(received, words, "every word exactly once, in order");
    let calls = provider.bodies("/messages");
    assert_eq!(
        calls.iter().filter(|b| ours(b)).count(),
        4,
        "part 1, part 2 (refused), part 2 again, part 3"
    );
    // The mock numbers accepted sends; the first part's number is its place among them.
    let all = provider.accepted.lock().unwrap().clone();
    let first = all.iter().position(ours).expect("part 1") + 1;
    assert_eq!(
        msgs[0]["provider_id"],
        format!("wamid.mock.{first}"),
        "the message is known by its first part's id"
    );
}

#[tokio::test]
async fn a_revoked_whatsapp_token_pauses_the_channel_and_resuming_sends_the_queued_replies() {
    // Arrange
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let conv = whatsapp_customer_writes(&app, &channel).await;
    *provider.revoked.lock().unwrap() = true;

    // Act: a reply meets Graph's 190 "session has expired".
    reply(&app, &conv, "first").await;

    // Assert: the channel is paused with Meta's reason, the reply waits (not failed).
    let app_ref = &app;
    let ch = channel.as_str();
    let paused = eventually(10, "the channel to be paused", || async move {
        let c = channel_json(app_ref, ch).await;
        (!c["paused"].is_null()).then_some(c)
    })
    .await;
    assert!(
        paused["paused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Session has expired")),
        "{paused}"
    );
    assert!(paused["paused"]["since"].is_string(), "{paused}");
    reply(&app, &conv, "second").await;
    let msgs = replies(&app, &conv).await;
    assert!(
        msgs.iter().all(|m| m["status"] == "queued"),
        "paused replies stay queued: {msgs:?}"
    );

    // Act: resuming while the token is still revoked is refused and changes nothing.
    let (s, b) = app
        .post(&format!("/api/v1/channels/{channel}/resume"), json!({}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused")),
        "{b}"
    );
    assert!(!channel_json(&app, &channel).await["paused"].is_null());

    // Act: the operator enters a working token.
    *provider.revoked.lock().unwrap() = false;
    let (s, b) = app
        .post(
            &format!("/api/v1/channels/{channel}/resume"),
            json!({"credentials": {"access_token": WA_TOKEN}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["channel"]["paused"].is_null(), "{b}");
    assert!(
        b["channel"].get("credentials").is_none(),
        "secrets never leave"
    );

    // Assert: both replies go out, in the order they were written, each once.
    replies_are(&app, &conv, 2, "sent").await;
    let texts: Vec<Value> = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["text"]["body"].clone())
        .filter(|t| t == "first" || t == "second")
        .collect();
    assert_eq!(texts, vec![json!("first"), json!("second")]);
}

async fn telegram_channel(app: &TestApp, api_base: &str) -> String {
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({
                "kind": "telegram",
                "name": "Support bot",
                "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                "api_base": api_base,
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    body["channel"]["id"].as_str().expect("id").to_string()
}

async fn post_update(app: &TestApp, channel: &str, update: &Value) {
    let s = app
        .client
        .post(app.url(&format!("/hooks/telegram/{channel}")))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .json(update)
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_revoked_telegram_token_pauses_the_bot_until_the_token_is_re_tested() {
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = telegram_channel(&app, &mock.uri()).await;
    post_update(
        &app,
        &channel,
        &fixture("telegram/update_message_text.json"),
    )
    .await;
    let conv = conversation_of(&app, "telegram").await;
    *provider.revoked.lock().unwrap() = true;

    reply(&app, &conv, "hello").await;
    let app_ref = &app;
    let ch = channel.as_str();
    let paused = eventually(10, "the bot to be paused", || async move {
        let c = channel_json(app_ref, ch).await;
        (!c["paused"].is_null()).then_some(c)
    })
    .await;
    assert_eq!(paused["paused"]["reason"], "Unauthorized", "{paused}");
    assert_eq!(replies(&app, &conv).await[0]["status"], "queued");

    // The token works again (e.g. the operator fixed it at @BotFather): a re-test resumes.
    *provider.revoked.lock().unwrap() = false;
    let (s, b) = app
        .post(&format!("/api/v1/channels/{channel}/resume"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    replies_are(&app, &conv, 1, "sent").await;
    let hellos = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["text"] == "hello")
        .count();
    assert_eq!(hellos, 1, "sent once, after the resume");
}

#[tokio::test]
async fn resuming_needs_an_admin_and_a_known_channel() {
    let (mock, _provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let (s, b) = app
        .post(
            "/api/v1/channels/0190c3c4-0000-7000-8000-000000000000/resume",
            json!({}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = app
        .post("/api/v1/channels/not-an-id/resume", json!({}))
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = app
        .post(
            &format!("/api/v1/channels/{channel}/resume"),
            json!({"credentials": "token"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    app.login("ann@demo.example").await;
    app.set_presence("available").await;
    let (s, b) = app
        .post(&format!("/api/v1/channels/{channel}/resume"), json!({}))
        .await;
    assert_eq!(s, 403, "agents cannot resume channels: {b}");
}

#[tokio::test]
async fn a_flow_message_to_a_customer_who_blocked_the_bot_fails_without_calling_telegram() {
    // Arrange: the customer writes, then blocks the bot.
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = telegram_channel(&app, &mock.uri()).await;
    let mut update = fixture("telegram/update_message_text.json");
    let customer = update["message"]["from"]["id"].clone();
    update["message"]["chat"]["id"] = customer.clone();
    post_update(&app, &channel, &update).await;
    let conv = conversation_of(&app, "telegram").await;
    let mut blocked = fixture("telegram/update_my_chat_member_bot_blocked.json");
    blocked["update_id"] = json!(update["update_id"].as_i64().unwrap_or(0) + 1);
    blocked["my_chat_member"]["from"]["id"] = customer.clone();
    blocked["my_chat_member"]["chat"]["id"] = customer;
    post_update(&app, &channel, &blocked).await;

    // Act: staff start a flow, whose first message goes through the outbox, not through
    // the agent reply check.
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/flow"),
            json!({"flow_id": "balance"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");

    // Assert: the bot's message failed with the reason, and Telegram was never called.
    let app_ref = &app;
    let conv_ref = conv.as_str();
    let failed = eventually(15, "the flow's messages to fail", || async move {
        let m: Vec<Value> = outbound(app_ref, conv_ref)
            .await
            .into_iter()
            .filter(|m| m["sender"]["type"] == "bot")
            .collect();
        (!m.is_empty() && m.iter().all(|m| m["status"] == "failed")).then_some(m)
    })
    .await;
    assert_eq!(
        failed[0]["failure"]["code"], "recipient_unreachable",
        "{failed:?}"
    );
    assert!(
        failed[0]["failure"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("blocked")),
        "{failed:?}"
    );
    for m in &failed {
        let text = &m["content"]["body"];
        assert!(
            provider
                .bodies("/sendMessage")
                .iter()
                .all(|b| &b["text"] != text),
            "the bot's message never reached Telegram: {text}"
        );
    }
}
