//! Signal end to end through a mocked signal-cli-rest-api (normal mode): the receiver task
//! polls `/v1/receive/{number}`, the message (real fixture) is stored and shown to the agent,
//! and the reply goes out through `/v2/send`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::providers::{SIGNAL_ACCOUNT, fixture, signal_mock, wait_for};

async fn signal_conversations(app: &TestApp) -> Vec<Value> {
    let (_, b) = app.get("/api/v1/conversations").await;
    b["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["channel_kind"] == "signal")
        .collect()
}

#[tokio::test]
async fn a_signal_message_is_received_by_polling_and_the_reply_goes_out_through_v2_send() {
    let (mock, provider, queue) = signal_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": mock.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert!(body["webhook_url"].is_null(), "Signal has no webhook");

    // The customer writes: the frame waits in signal-cli's queue until the receiver polls.
    let mut frame = fixture("signal/rest_ws_receive_attachment.json");
    frame["envelope"]["dataMessage"]["attachments"] = json!([]);
    frame["account"] = json!(SIGNAL_ACCOUNT);
    queue.lock().unwrap().push(frame.clone());
    let app_ref = &app;
    let conv = eventually(10, "the Signal message to be stored", || async move {
        signal_conversations(app_ref)
            .await
            .first()
            .and_then(|c| c["id"].as_str().map(str::to_string))
    })
    .await;
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(m["messages"][0]["content"]["body"], "Uhrzeit");

    // The same frame delivered again (signal-cli re-delivery) is stored once.
    queue.lock().unwrap().push(frame);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(m["messages"].as_array().unwrap().len(), 1);

    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Es ist 12 Uhr."}),
        )
        .await;
    assert_eq!(s, 201);
    let p = provider.clone();
    wait_for(10, "/v2/send", move || !p.bodies("/v2/send").is_empty()).await;
    let sent = provider.bodies("/v2/send");
    assert_eq!(sent[0]["number"], SIGNAL_ACCOUNT);
    assert_eq!(sent[0]["message"], "Es ist 12 Uhr.");
    assert_eq!(sent[0]["recipients"], json!(["<uuid>"]));
}
