//! Signal end to end:
//! - through a mocked signal-cli-rest-api (normal mode): the receiver task polls
//!   `/v1/receive/{number}`, the message (real fixture) is stored and shown to the agent, and
//!   the reply goes out through `/v2/send`; a received attachment is copied into the media
//!   store and then deleted from signal-cli;
//! - through a mocked `signal-cli daemon --http`: messages and receipts arrive on the
//!   server-sent event stream, the reply goes out by JSON-RPC `send`, and receipts move it
//!   to delivered and read.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::providers::{
    SIGNAL_ACCOUNT, SignalDaemon, fixture, signal_daemon_mock, signal_mock,
    signal_mock_with_attachments, wait_for,
};

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
    app.set_presence("available").await;
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
    let inbound = signal_messages(&app, &conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 1);

    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Es ist 12 Uhr."}),
        )
        .await;
    assert_eq!(s, 201);
    let p = provider.clone();
    wait_for(10, "/v2/send", move || {
        p.bodies("/v2/send")
            .iter()
            .any(|b| b["message"] == "Es ist 12 Uhr.")
    })
    .await;
    let sent: Vec<Value> = provider
        .bodies("/v2/send")
        .into_iter()
        .filter(|b| b["message"] == "Es ist 12 Uhr.")
        .collect();
    assert_eq!(sent[0]["number"], SIGNAL_ACCOUNT);
    assert_eq!(sent[0]["message"], "Es ist 12 Uhr.");
    assert_eq!(sent[0]["recipients"], json!(["<uuid>"]));
}

async fn signal_messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    m["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_signal_attachment_is_copied_into_the_media_store_and_deleted_from_signal_cli() {
    // Arrange: signal-cli holds the customer's picture.
    let (mock, provider, queue, attachments) = signal_mock_with_attachments().await;
    let picture = b"\x89PNG\r\n\x1a\n a picture from Signal".to_vec();
    attachments
        .lock()
        .unwrap()
        .insert("1qeCjjWOOo9Gxv8pfdCw.png".into(), picture.clone());
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": mock.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    // Act: the message with the attachment (real fixture) is received.
    queue
        .lock()
        .unwrap()
        .push(fixture("signal/rest_ws_receive_attachment.json"));

    // Assert: the file is ours now, served to staff, and signal-cli's copy is gone.
    let app_ref = &app;
    let message = eventually(15, "the attachment to be stored", || async move {
        let conv = signal_conversations(app_ref).await.first()?["id"]
            .as_str()?
            .to_string();
        signal_messages(app_ref, &conv)
            .await
            .into_iter()
            .find(|m| m["content"]["media"]["stored_key"].is_string())
    })
    .await;
    assert_eq!(message["content"]["kind"], "image", "{message}");
    let id = message["id"].as_str().expect("id");
    let r = app
        .client
        .get(app.url(&format!("/api/v1/media/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").to_vec(), picture);
    let p = provider.clone();
    wait_for(10, "signal-cli's copy to be deleted", move || {
        p.requests
            .lock()
            .unwrap()
            .iter()
            .any(|(path, _)| path == "DELETE /v1/attachments/1qeCjjWOOo9Gxv8pfdCw.png")
    })
    .await;
}

/// A server with an available admin and a Signal channel in JSON-RPC mode on `daemon`,
/// returned once its receiver listens to the daemon's event stream.
async fn app_reading_daemon(daemon: &SignalDaemon) -> TestApp {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal daemon", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": daemon.uri, "mode": "json-rpc"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    wait_for(10, "the receiver to open the event stream", move || {
        daemon.listeners() > 0
    })
    .await;
    app
}

#[tokio::test]
async fn signal_cli_daemon_events_are_received_and_receipts_mark_the_reply_delivered_then_read() {
    // Arrange
    let daemon = signal_daemon_mock().await;
    let app = app_reading_daemon(&daemon).await;

    // Act: the customer writes (real JSON-RPC `receive` notification on the stream).
    let mut frame = fixture("signal/jsonrpc_receive_data_message.json");
    frame["params"]["account"] = json!(SIGNAL_ACCOUNT);
    daemon.push(&frame);

    // Assert: stored and shown.
    let app_ref = &app;
    let conv = eventually(10, "the Signal message to be stored", || async move {
        signal_conversations(app_ref)
            .await
            .first()
            .and_then(|c| c["id"].as_str().map(str::to_string))
    })
    .await;
    let inbound: Vec<Value> = signal_messages(&app, &conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound[0]["content"]["body"], "foobar");

    // Act: the agent answers; it goes out as JSON-RPC `send` to the customer's ACI.
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "bonjour"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let conv_ref = conv.as_str();
    let reply_ts = eventually(10, "the reply to be sent", || async move {
        signal_messages(app_ref, conv_ref)
            .await
            .into_iter()
            .find(|m| m["sender"]["type"] == "agent" && m["status"] == "sent")
            .and_then(|m| m["provider_id"].as_str().map(str::to_string))
    })
    .await;
    let sent = daemon.state.accepted.lock().unwrap().clone();
    let reply = sent
        .iter()
        .find(|b| b["params"]["message"] == "bonjour")
        .expect("the reply reached signal-cli");
    assert_eq!(reply["method"], "send");
    assert_eq!(reply["params"]["recipient"], json!(["uuid"]));

    // Act: signal-cli re-delivers the message, then the customer's phone reports delivery
    // and reading of our reply (real receipt fixtures, matched by our send timestamp).
    daemon.push(&frame);
    for (file, status) in [
        ("signal/jsonrpc_receive_receipt_delivered.json", "delivered"),
        ("signal/jsonrpc_receive_receipt_read.json", "read"),
    ] {
        let mut receipt = fixture(file);
        let env = &mut receipt["params"]["envelope"];
        env["source"] = json!("+33123456789");
        env["sourceNumber"] = json!("+33123456789");
        env["sourceUuid"] = json!("uuid");
        env["receiptMessage"]["timestamps"] =
            json!([reply_ts.parse::<u64>().expect("a Signal timestamp")]);
        daemon.push(&receipt);
        eventually(10, &format!("the reply to be {status}"), || async move {
            signal_messages(app_ref, conv_ref)
                .await
                .into_iter()
                .any(|m| m["sender"]["type"] == "agent" && m["status"] == status)
                .then_some(())
        })
        .await;
    }

    // Assert: the re-delivered message (streamed before the receipts) was stored once.
    let inbound = signal_messages(&app, &conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 1);
}

#[tokio::test]
async fn a_signal_daemon_attachment_is_fetched_with_get_attachment_and_stored() {
    // Arrange: signal-cli (JSON-RPC daemon) holds the customer's picture.
    let daemon = signal_daemon_mock().await;
    let picture = b"\x89PNG\r\n\x1a\n a picture from the Signal daemon".to_vec();
    daemon
        .attachments
        .lock()
        .unwrap()
        .insert("1qeCjjWOOo9Gxv8pfdCw.png".into(), picture.clone());
    let app = app_reading_daemon(&daemon).await;

    // Act: a `receive` notification carrying the attachment of the REST fixture.
    let mut frame = fixture("signal/jsonrpc_receive_data_message.json");
    let attachment =
        fixture("signal/rest_ws_receive_attachment.json")["envelope"]["dataMessage"]["attachments"]
            .clone();
    frame["params"]["envelope"]["dataMessage"]["attachments"] = attachment;
    daemon.push(&frame);

    // Assert: fetched with getAttachment, stored, and served to staff.
    let app_ref = &app;
    let message = eventually(15, "the attachment to be stored", || async move {
        let conv = signal_conversations(app_ref).await.first()?["id"]
            .as_str()?
            .to_string();
        signal_messages(app_ref, &conv)
            .await
            .into_iter()
            .find(|m| m["content"]["media"]["stored_key"].is_string())
    })
    .await;
    let id = message["id"].as_str().expect("id");
    let r = app
        .client
        .get(app.url(&format!("/api/v1/media/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").to_vec(), picture);
    let asked: Vec<Value> = daemon
        .state
        .bodies("/api/v1/rpc")
        .into_iter()
        .filter(|b| b["method"] == "getAttachment")
        .collect();
    assert_eq!(asked[0]["params"]["id"], "1qeCjjWOOo9Gxv8pfdCw.png");
}
