//! Request limits on every route family: an oversized body is refused with 413 before any
//! handler work (JSON API, webhooks, web chat), and a client that never finishes its body is
//! cut off with 408 once `limits.request_timeout_secs` has passed.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_on_every_route_family() {
    let mut app = spawn_app().await;
    let channel = app.demo.webchat_channel_id.clone();
    let token = app.new_visitor().await;
    // 300 KiB: over the API limit (256 KiB).
    let api_body =
        serde_json::to_vec(&json!({"email": "a@b.c", "password": "x".repeat(300 * 1024)}))
            .expect("json");
    // 4 MiB: over the webhook limit (3 MiB).
    let hook_body = serde_json::to_vec(&json!({"pad": "x".repeat(4 * 1024 * 1024)})).expect("json");
    let cases: Vec<(&str, String, Vec<u8>, Option<String>)> = vec![
        (
            "JSON API, unauthenticated",
            "/api/v1/auth/login".into(),
            api_body.clone(),
            None,
        ),
        (
            "JSON API, staff",
            "/api/v1/tokens".into(),
            api_body.clone(),
            None,
        ),
        (
            "webhooks",
            format!("/hooks/telegram/{channel}"),
            hook_body,
            None,
        ),
        (
            "web chat",
            format!("/chat/{channel}/messages"),
            serde_json::to_vec(&json!({"client_msg_id": "big", "text": "x".repeat(300 * 1024)}))
                .expect("json"),
            Some(token),
        ),
    ];
    app.login("admin@demo.example").await;
    for (family, path, body, bearer) in cases {
        let mut req = app
            .client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .header("x-csrf-token", app.csrf.clone().unwrap_or_default())
            .body(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.expect("request sent");
        assert_eq!(r.status().as_u16(), 413, "{family}: {path}");
    }
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_is_cut_off_with_408() {
    let app = spawn_app_with(Arc::new(tempfile::tempdir().expect("dir")), |c| {
        c.limits.request_timeout_secs = 1
    })
    .await;
    // Arrange: announce 100 bytes, send 10, then wait.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // Act: the server answers on its own (the test's only wait is for that answer).
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    // Assert
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn no_provider_channel_can_be_configured_to_take_unsigned_webhooks() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    // WhatsApp without the app secret that signs its webhooks: refused, nothing stored.
    let (status, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "whatsapp", "name": "wa", "validate": false,
                   "credentials": {"access_token": "t", "phone_number_id": "1"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("app_secret"),
        "{body}"
    );
    // Telegram without a webhook secret gets a generated one, so its webhook still needs it.
    let (status, added) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "telegram", "name": "tg", "validate": false,
                   "credentials": {"bot_token": "123:abc"}}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let id = added["channel"]["id"].as_str().expect("id");
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1,
        "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": false, "first_name": "A"},
        "text": "unsigned"}});
    let r = reqwest::Client::new()
        .post(app.url(&format!("/hooks/telegram/{id}")))
        .json(&update)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 401);
    let (_, channels) = app.get("/api/v1/channels").await;
    let kinds: Vec<&str> = channels["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"whatsapp"), "{kinds:?}");
}
