//! Telegram end to end: the channel is added through the admin API (getMe checked, webhook
//! registered with its secret), an update (real fixture) is stored and shown to the agent, the
//! reply reaches the mocked Bot API as `sendMessage`, 429 `retry_after` is honoured, callback
//! queries are answered, and a wrong secret token stores nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::providers::{TG_SECRET, TG_TOKEN, fixture, telegram_mock, wait_for};

async fn add_channel(app: &TestApp, api_base: &str) -> String {
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({
                "kind": "telegram",
                "name": "Support bot",
                "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                "api_base": api_base,
                "register_webhook": true,
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["webhook_registered"], true);
    body["channel"]["id"].as_str().expect("id").to_string()
}

async fn post_update(app: &TestApp, channel: &str, update: &Value, secret: Option<&str>) -> u16 {
    let mut req = app
        .client
        .post(app.url(&format!("/hooks/telegram/{channel}")))
        .json(update);
    if let Some(s) = secret {
        req = req.header("x-telegram-bot-api-secret-token", s);
    }
    req.send().await.expect("sent").status().as_u16()
}

async fn telegram_conversations(app: &TestApp) -> Vec<Value> {
    let (_, b) = app.get("/api/v1/conversations").await;
    b["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["channel_kind"] == "telegram")
        .collect()
}

async fn messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    b["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_telegram_message_reaches_the_agent_and_the_reply_goes_out_as_send_message() {
    // Arrange
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_channel(&app, &mock.uri()).await;
    let hook = provider.bodies("/setWebhook");
    assert_eq!(hook.len(), 1);
    assert!(
        hook[0]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/hooks/telegram/{channel}"))
    );
    assert_eq!(hook[0]["secret_token"], TG_SECRET);
    assert!(
        hook[0]["allowed_updates"]
            .as_array()
            .unwrap()
            .contains(&json!("callback_query"))
    );

    // Act
    let update = fixture("telegram/update_message_text.json");
    assert_eq!(
        post_update(&app, &channel, &update, Some(TG_SECRET)).await,
        200
    );

    // Assert: visible to the agent.
    let convs = telegram_conversations(&app).await;
    assert_eq!(convs.len(), 1);
    let conv = convs[0]["id"].as_str().unwrap().to_string();
    let msgs = messages(&app, &conv).await;
    assert_eq!(msgs[0]["content"]["body"], "hello there");

    // Act: the agent answers.
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Hi Waffle!"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Assert: the Bot API got sendMessage for the customer's chat.
    let p = provider.clone();
    // (The server may also tell the customer their place in the queue.)
    let is_reply = |b: &Value| b["text"] == "Hi Waffle!";
    wait_for(10, "sendMessage", move || {
        p.bodies("/sendMessage").iter().any(is_reply)
    })
    .await;
    let sent: Vec<Value> = provider
        .bodies("/sendMessage")
        .into_iter()
        .filter(is_reply)
        .collect();
    assert_eq!(
        sent[0]["chat_id"].to_string().trim_matches('"'),
        "218485655"
    );
    let app_ref = &app;
    let conv_ref = conv.as_str();
    let pid = eventually(10, "the reply to be sent", || async move {
        messages(app_ref, conv_ref)
            .await
            .iter()
            .find(|m| m["sender"]["type"] == "agent" && m["status"] == "sent")
            .and_then(|m| m["provider_id"].as_str().map(str::to_string))
    })
    .await;
    assert!(
        pid.starts_with("218485655:"),
        "Telegram ids are chat:message: {pid}"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_secret_token_is_refused_and_a_duplicate_update_is_stored_once() {
    let (mock, _provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_channel(&app, &mock.uri()).await;
    let update = fixture("telegram/update_message_text.json");
    assert_eq!(
        post_update(&app, &channel, &update, Some("wrong")).await,
        401
    );
    assert_eq!(post_update(&app, &channel, &update, None).await, 401);
    assert!(
        telegram_conversations(&app).await.is_empty(),
        "nothing stored"
    );
    assert_eq!(
        post_update(&app, &channel, &update, Some(TG_SECRET)).await,
        200
    );
    assert_eq!(
        post_update(&app, &channel, &update, Some(TG_SECRET)).await,
        200
    );
    let convs = telegram_conversations(&app).await;
    let inbound = messages(&app, convs[0]["id"].as_str().unwrap())
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 1);
    // The Signal kind has no webhook: nothing can be injected from outside.
    assert_eq!(
        app.client
            .post(app.url(&format!("/hooks/signal/{channel}")))
            .json(&update)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn a_callback_query_is_answered_right_away() {
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_channel(&app, &mock.uri()).await;
    let update = fixture("telegram/update_callback_query_inline_message.json");
    assert_eq!(
        post_update(&app, &channel, &update, Some(TG_SECRET)).await,
        200
    );
    let p = provider.clone();
    wait_for(5, "answerCallbackQuery", move || {
        !p.bodies("/answerCallbackQuery").is_empty()
    })
    .await;
    assert_eq!(
        provider.bodies("/answerCallbackQuery")[0]["callback_query_id"],
        "4382bfdwdsb323b2d9"
    );
}

#[tokio::test]
async fn a_429_from_telegram_waits_retry_after_and_then_sends() {
    let (mock, provider) = telegram_mock().await;
    *provider.fail_next.lock().unwrap() = 1;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_channel(&app, &mock.uri()).await;
    let update = fixture("telegram/update_message_text.json");
    post_update(&app, &channel, &update, Some(TG_SECRET)).await;
    let conv = telegram_conversations(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = std::time::Instant::now();
    let (status, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hello"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let app_ref = &app;
    let conv_ref = conv.as_str();
    eventually(15, "sent after the 429", || async move {
        messages(app_ref, conv_ref)
            .await
            .iter()
            .any(|m| {
                m["direction"] == "outbound"
                    && m["content"]["body"] == "hello"
                    && m["status"] == "sent"
            })
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "retry_after (1 s) was honoured"
    );
    assert_eq!(provider.bodies("/sendMessage").len(), 2);
}

#[tokio::test]
async fn a_new_telegram_conversation_on_a_channel_with_a_default_flow_starts_in_the_bot() {
    // Arrange: the demo tenant has the bundled flows loaded; the bot's default flow is the
    // main menu.
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_channel(&app, &mock.uri()).await;
    let channel_id: switchboard_core::ChannelId = channel.parse().expect("channel id");
    let row = app
        .app
        .store
        .channel(channel_id)
        .await
        .expect("store")
        .expect("channel");
    let settings = switchboard_core::ChannelSettings {
        default_flow: Some("main_menu".into()),
        ..row.settings.clone()
    };
    app.app
        .store
        .set_channel_settings(row.tenant_id, row.id, &settings)
        .await
        .expect("settings saved");

    // Act
    let update = fixture("telegram/update_message_text.json");
    assert_eq!(
        post_update(&app, &channel, &update, Some(TG_SECRET)).await,
        200
    );

    // Assert: the conversation is the bot's, and the flow's menu reaches the customer.
    let convs = telegram_conversations(&app).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["state"], "bot", "{}", convs[0]);
    let p = provider.clone();
    wait_for(10, "the flow's first message", move || {
        !p.bodies("/sendMessage").is_empty()
    })
    .await;
}
