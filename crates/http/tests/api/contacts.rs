//! Contacts end to end: a Telegram customer who blocks the bot is shown unreachable and a
//! reply to them fails at once with the reason; staff merge two contacts and see every
//! conversation under the survivor; unknown ids answer 404 and change nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::providers::{TG_SECRET, TG_TOKEN, fixture, telegram_mock};

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

/// A text update from Telegram user `id`; returns (conversation id, contact id).
async fn customer_writes(
    app: &TestApp,
    channel: &str,
    id: i64,
    update_id: i64,
) -> (String, String) {
    let mut update = fixture("telegram/update_message_text.json");
    update["update_id"] = json!(update_id);
    update["message"]["from"]["id"] = json!(id);
    update["message"]["chat"]["id"] = json!(id);
    post_update(app, channel, &update).await;
    // The newest activity comes first.
    let (_, b) = app.get("/api/v1/conversations").await;
    let conv = b["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["channel_kind"] == "telegram")
        .cloned()
        .expect("conversation");
    (
        conv["id"].as_str().expect("id").to_string(),
        conv["contact_id"].as_str().expect("contact").to_string(),
    )
}

#[tokio::test]
async fn a_customer_who_blocked_the_bot_is_unreachable_and_a_reply_fails_with_the_reason() {
    // Arrange
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = telegram_channel(&app, &mock.uri()).await;
    let (conv, contact) = customer_writes(&app, &channel, 218485655, 1).await;

    // Act: the customer blocks the bot (real fixture, this customer's ids).
    let mut blocked = fixture("telegram/update_my_chat_member_bot_blocked.json");
    blocked["update_id"] = json!(2);
    blocked["my_chat_member"]["from"]["id"] = json!(218485655);
    blocked["my_chat_member"]["chat"]["id"] = json!(218485655);
    post_update(&app, &channel, &blocked).await;

    // Assert: visible on the contact, and a reply is refused before anything is queued.
    let (s, body) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(s, 200, "{body}");
    let identity = &body["identities"][0];
    assert!(
        identity["unreachable"]
            .as_str()
            .is_some_and(|r| r.contains("blocked")),
        "{body}"
    );
    assert_eq!(body["conversations"][0]["id"], conv.as_str());
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "are you there?"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "recipient_unreachable");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        provider.bodies("/sendMessage").is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn staff_merge_two_contacts_and_see_both_conversations_under_the_survivor() {
    // Arrange: two Telegram customers (the same person, say, on two accounts).
    let (mock, _provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = telegram_channel(&app, &mock.uri()).await;
    let (_, first) = customer_writes(&app, &channel, 1001, 1).await;
    let mut update = fixture("telegram/update_message_text.json");
    update["update_id"] = json!(2);
    update["message"]["from"]["id"] = json!(1002);
    update["message"]["chat"]["id"] = json!(1002);
    update["message"]["text"] = json!("second account");
    post_update(&app, &channel, &update).await;
    let (_, b) = app.get("/api/v1/conversations").await;
    let second = b["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["last_message_preview"] == "second account")
        .and_then(|c| c["contact_id"].as_str())
        .expect("second contact")
        .to_string();
    assert_ne!(first, second);
    // Resolve one conversation: one contact may hold only one open conversation per channel.
    let (_, b) = app.get(&format!("/api/v1/contacts/{second}")).await;
    let second_conv = b["conversations"][0]["id"]
        .as_str()
        .expect("conv")
        .to_string();
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{second_conv}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);

    // Act / Assert: an unknown id is 404 and changes nothing.
    let unknown = "0190b5a0-0000-7000-8000-000000000000";
    let (s, _) = app
        .post(
            &format!("/api/v1/contacts/{first}/merge"),
            json!({"other": unknown}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.get(&format!("/api/v1/contacts/{unknown}")).await;
    assert_eq!(s, 404);
    let (s, b) = app
        .post(
            &format!("/api/v1/contacts/{first}/merge"),
            json!({"other": "nope"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");

    let (s, body) = app
        .post(
            &format!("/api/v1/contacts/{first}/merge"),
            json!({"other": second}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["identities"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    assert_eq!(
        body["conversations"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    assert_eq!(body["identities"][1]["linked_by"], "merge");
}
