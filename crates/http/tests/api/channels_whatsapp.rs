//! WhatsApp end to end: a signed webhook (real fixture) is stored and shown to the agent, the
//! agent's reply reaches the mocked Graph API in WhatsApp's format, and status webhooks move
//! the message to delivered and read. Also: bad signatures, duplicates, the 24 h window,
//! 429 handling, and a burst of replies held by our own per-recipient limiter.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};
use crate::providers::{
    Bucket, WA_PHONE_ID, add_whatsapp_channel, fixture, wa_sign, wait_for, whatsapp_mock,
};

/// The customer of `inbound_text.json`.
const CUSTOMER: &str = "16505551234";

/// `inbound_text.json` with the message timestamp set to `ts` (unix seconds).
fn inbound_at(ts: i64) -> Value {
    let mut v = fixture("whatsapp/inbound_text.json");
    v["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(ts.to_string());
    v
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// POSTs a payload to the channel's webhook, signed unless `signature` is given.
async fn post_hook(
    app: &TestApp,
    channel: &str,
    payload: &Value,
    signature: Option<&str>,
) -> (u16, Value) {
    let raw = serde_json::to_vec(payload).expect("json");
    let sig = signature
        .map(str::to_string)
        .unwrap_or_else(|| wa_sign(&raw));
    let r = app
        .client
        .post(app.url(&format!("/hooks/whatsapp/{channel}")))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(raw)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn conversations(app: &TestApp) -> Vec<Value> {
    let (_, b) = app.get("/api/v1/conversations").await;
    b["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["channel_kind"] == "whatsapp")
        .collect()
}

async fn messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    b["messages"].as_array().cloned().unwrap_or_default()
}

/// A status webhook about our message `wamid`.
fn status(file: &str, wamid: &str) -> Value {
    let mut v = fixture(file);
    let st = &mut v["entry"][0]["changes"][0]["value"]["statuses"][0];
    st["id"] = json!(wamid);
    st["recipient_id"] = json!(CUSTOMER);
    v
}

#[tokio::test]
async fn a_whatsapp_message_reaches_the_agent_and_the_reply_is_delivered_and_read() {
    // Arrange
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;

    // Act: the customer writes.
    let (s, body) = post_hook(&app, &channel, &inbound_at(now_secs()), None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["stored"], 1);

    // Assert: the agent sees it.
    let convs = conversations(&app).await;
    assert_eq!(convs.len(), 1);
    let conv = convs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(convs[0]["contact_name"], "Sheena Nelson");
    let msgs = messages(&app, &conv).await;
    assert_eq!(msgs[0]["content"]["body"], "Does it come in another color?");
    assert_eq!(
        msgs[0]["provider_id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );

    // Act: the agent answers.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Yes, in blue."}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    // Assert: the Graph API got WhatsApp's own format, with our bearer token.
    // (The server may also tell the customer their place in the queue.)
    let is_reply = |b: &Value| b["text"]["body"] == "Yes, in blue.";
    let p = provider.clone();
    wait_for(10, "the send to reach the mock", move || {
        p.bodies("/messages").iter().any(is_reply)
    })
    .await;
    let sent: Vec<Value> = provider
        .bodies("/messages")
        .into_iter()
        .filter(is_reply)
        .collect();
    assert_eq!(sent[0]["messaging_product"], "whatsapp");
    assert_eq!(sent[0]["to"], CUSTOMER);
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(sent[0]["text"]["body"], "Yes, in blue.");
    let app_ref = &app;
    let conv_ref = conv.as_str();
    let wamid = eventually(10, "the reply to be marked sent", || async move {
        let m = messages(app_ref, conv_ref).await;
        m.iter()
            .find(|m| m["sender"]["type"] == "agent" && m["status"] == "sent")
            .and_then(|m| m["provider_id"].as_str().map(str::to_string))
    })
    .await;
    assert!(wamid.starts_with("wamid.mock."), "{wamid}");

    // Act: Meta reports delivered, then read (and a late delivered after read).
    for file in [
        "whatsapp/status_delivered.json",
        "whatsapp/status_read.json",
        "whatsapp/status_delivered.json",
    ] {
        let (s, b) = post_hook(&app, &channel, &status(file, &wamid), None).await;
        assert_eq!(s, 200, "{b}");
    }

    // Assert: read, and the late delivered did not move it back.
    let m = messages(&app, &conv).await;
    let reply = m.iter().find(|m| m["sender"]["type"] == "agent").unwrap();
    assert_eq!(reply["status"], "read", "{reply}");
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_refused_and_nothing_is_stored() {
    let (mock, _provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let payload = inbound_at(now_secs());
    let forged = format!("sha256={}", "0".repeat(64));
    let (s, _) = post_hook(&app, &channel, &payload, Some(&forged)).await;
    assert_eq!(s, 401);
    let r = app
        .client
        .post(app.url(&format!("/hooks/whatsapp/{channel}")))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&payload).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "missing signature");
    assert!(conversations(&app).await.is_empty(), "nothing stored");

    // Unknown channel: 404; a body over the limit: 413.
    let unknown = uuid::Uuid::now_v7();
    let (s, _) = post_hook(&app, &unknown.to_string(), &payload, None).await;
    assert_eq!(s, 404);
    let huge = json!({"object": "whatsapp_business_account", "pad": "x".repeat(4 * 1024 * 1024)});
    let (s, _) = post_hook(&app, &channel, &huge, None).await;
    assert_eq!(s, 413);
}

#[tokio::test]
async fn a_duplicate_webhook_is_stored_once() {
    let (mock, _provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let payload = inbound_at(now_secs());
    let (_, first) = post_hook(&app, &channel, &payload, None).await;
    let (s, second) = post_hook(&app, &channel, &payload, None).await;
    assert_eq!(s, 200, "a retry is acknowledged");
    assert_eq!(
        (first["stored"].clone(), second["duplicates"].clone()),
        (json!(1), json!(1))
    );
    let convs = conversations(&app).await;
    let conv = convs[0]["id"].as_str().unwrap();
    let inbound = messages(&app, conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 1);
}

#[tokio::test]
async fn the_subscription_handshake_answers_the_challenge_only_with_the_verify_token() {
    let (mock, _provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let hook = app.url(&format!("/hooks/whatsapp/{channel}"));
    let good = app
        .client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status().as_u16(), 200);
    assert_eq!(good.text().await.unwrap(), "1158201444");
    let bad = app
        .client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 403);
}

#[tokio::test]
async fn outside_the_24_hour_window_free_text_is_refused_but_a_template_is_sent() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    // The customer last wrote 25 hours ago (provider time).
    let (s, _) = post_hook(&app, &channel, &inbound_at(now_secs() - 25 * 3600), None).await;
    assert_eq!(s, 200);
    let conv = conversations(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Still there?"}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["code"], "template_required");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("template")
    );

    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"template": {"name": "order_update", "language": "en_US", "variables": ["42"]}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let p = provider.clone();
    wait_for(10, "the template to reach the mock", move || {
        !p.bodies("/messages").is_empty()
    })
    .await;
    let sent = provider.bodies("/messages");
    assert_eq!(sent.len(), 1, "the refused text never left");
    assert_eq!(sent[0]["type"], "template");
    assert_eq!(sent[0]["template"]["name"], "order_update");
    assert_eq!(sent[0]["template"]["language"]["code"], "en_US");
}

#[tokio::test]
async fn a_429_from_whatsapp_is_retried_after_the_wait_and_then_sent() {
    let (mock, provider) = whatsapp_mock().await;
    // Meta's default tier, enforced; plus one forced 429 to exercise the retry.
    *provider.bucket.lock().unwrap() = Some(Bucket::new(80.0, 80.0));
    *provider.fail_next.lock().unwrap() = 1;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    post_hook(&app, &channel, &inbound_at(now_secs()), None).await;
    let conv = conversations(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hello"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let reply = body["message"]["id"]
        .as_str()
        .expect("reply id")
        .to_string();
    let app_ref = &app;
    let (conv_ref, reply_ref) = (conv.as_str(), reply.as_str());
    eventually(15, "the reply to be sent after the 429", || async move {
        let m = messages(app_ref, conv_ref).await;
        m.iter()
            .any(|m| m["id"] == reply_ref && m["status"] == "sent")
            .then_some(())
    })
    .await;
    assert_eq!(*provider.rejected.lock().unwrap(), 1);
    let accepted = provider.accepted.lock().unwrap().len();
    assert_eq!(
        provider.bodies("/messages").len(),
        accepted + 1,
        "one 429, every other send accepted"
    );
    let hellos = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["text"]["body"] == "hello")
        .count();
    assert_eq!(hellos, 1, "the reply was sent once");
}

#[tokio::test]
async fn adding_a_channel_with_a_wrong_token_is_refused_by_the_provider_check() {
    let (mock, _provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "whatsapp", "name": "WA", "api_base": mock.uri(), "credentials": {
                "access_token": "wrong", "phone_number_id": WA_PHONE_ID, "app_secret": "x"}}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid OAuth"),
        "{body}"
    );
    app.login("ann@demo.example").await;
    app.set_presence("available").await;
    let (s, _) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "telegram", "name": "x", "credentials": {}}),
        )
        .await;
    assert_eq!(s, 403, "agents cannot add channels");
}

#[tokio::test]
async fn a_burst_of_replies_held_by_our_own_pair_limiter_all_arrive_in_order_and_none_fails() {
    // Arrange: the per-recipient limit lets 16 messages go back to back, then one every 2 s,
    // longer than the sender waits in place (half the 2 s lease), so later replies are put
    // back for their turn. One attempt allowed: if a limiter wait counted as an attempt, the
    // first reply it held would be marked failed.
    let (mock, provider) = whatsapp_mock().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut app = spawn_app_with(dir, |c| {
        c.sender.lease_secs = 2;
        c.sender.max_attempts = 1;
        c.channels.whatsapp_pair_interval_secs = 2;
        c.channels.whatsapp_pair_burst = 16;
    })
    .await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    let (s, body) = post_hook(&app, &channel, &inbound_at(now_secs()), None).await;
    assert_eq!(s, 200, "{body}");
    let conv = conversations(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Act: the agent sends 20 replies at once.
    let texts: Vec<String> = (1..=20).map(|i| format!("burst reply {i}")).collect();
    for text in &texts {
        let (s, body) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({ "text": text }),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }

    // Assert: every reply ends sent (none failed), and the provider got them in order, once.
    let app_ref = &app;
    let conv_ref = conv.as_str();
    let replies = eventually(60, "all 20 replies to be settled", || async move {
        let m = messages(app_ref, conv_ref).await;
        let replies: Vec<Value> = m
            .into_iter()
            .filter(|m| {
                m["content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("burst reply "))
            })
            .collect();
        (replies.len() == 20 && replies.iter().all(|m| m["status"] != "queued")).then_some(replies)
    })
    .await;
    for m in &replies {
        assert_eq!(m["status"], "sent", "{m}");
    }
    let delivered: Vec<String> = provider
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["body"].as_str().map(str::to_string))
        .filter(|b| b.starts_with("burst reply "))
        .collect();
    assert_eq!(delivered, texts, "all 20, in the order written, each once");
    assert_eq!(*provider.rejected.lock().unwrap(), 0, "no 429 was involved");
}

#[tokio::test]
async fn a_customer_whatsapp_calls_undeliverable_three_times_in_a_row_is_marked_unreachable() {
    // Arrange: WhatsApp answers 131026 (undeliverable) to the next three sends.
    let (mock, provider) = whatsapp_mock().await;
    *provider.undeliverable_next.lock().unwrap() = 3;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut app = spawn_app_with(dir, |c| c.sender.max_attempts = 1).await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    post_hook(&app, &channel, &inbound_at(now_secs()), None).await;
    let conv = conversations(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Act: three replies, each refused as undeliverable.
    for n in 0..3 {
        let (s, b) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({"text": format!("try {n}")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let app_ref = &app;
        let conv_ref = conv.as_str();
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

    // Assert: the fourth reply is refused before any provider call, saying why.
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "one more"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let msg = b["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("131026"), "{msg}");
    assert_eq!(provider.bodies("/messages").len(), 3);
}
