//! Outbound media end to end: an agent attaches a file to a conversation
//! (`POST /api/v1/conversations/{id}/attachments`); it is stored encrypted, queued like a
//! reply, and reaches each mocked provider the way its API wants (WhatsApp: upload, then send
//! by media id; Telegram: multipart sendPhoto; Signal: a base64 data URI), or the web chat
//! visitor's page through a URL only that visitor may fetch. Bad uploads get a precise 4xx
//! and store nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};
use crate::providers::{
    SIGNAL_ACCOUNT, TG_SECRET, TG_TOKEN, WA_PHONE_ID, add_whatsapp_channel, base64, fixture,
    signal_mock, telegram_mock, wait_for, whatsapp_mock,
};

/// A small PNG-looking file with a marker to look for on disk.
fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(b"switchboard outbound attachment bytes");
    v
}

/// Uploads `bytes` as the `file` part (with `mime` and `name`) plus an optional caption.
async fn attach(
    app: &TestApp,
    conv: &str,
    bytes: Vec<u8>,
    mime: &str,
    name: &str,
    caption: Option<&str>,
) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .expect("mime");
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if let Some(c) = caption {
        form = form.text("caption", c.to_string());
    }
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/attachments")))
        .multipart(form);
    if let Some(c) = &app.csrf {
        req = req.header("x-csrf-token", c);
    }
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn messages(app: &TestApp, conv: &str) -> Vec<Value> {
    let (_, b) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    b["messages"].as_array().cloned().unwrap_or_default()
}

/// The id of the only conversation of `kind`, once it exists.
async fn conversation_of(app: &TestApp, kind: &'static str) -> String {
    eventually(10, "the conversation", || async move {
        let (_, b) = app.get("/api/v1/conversations").await;
        b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == kind)
            .and_then(|c| c["id"].as_str().map(str::to_string))
    })
    .await
}

/// The agent's message `id` once its status is `status`.
async fn wait_status(app: &TestApp, conv: &str, id: &str, status: &'static str) -> Value {
    eventually(10, "the attachment's status", || async move {
        messages(app, conv)
            .await
            .into_iter()
            .find(|m| m["id"] == id && m["status"] == status)
    })
    .await
}

/// The agent's messages in `conv`.
async fn agent_messages(app: &TestApp, conv: &str) -> usize {
    messages(app, conv)
        .await
        .iter()
        .filter(|m| m["sender"]["type"] == "agent")
        .count()
}

/// Logs in as the demo admin and sets them available (replying takes the conversation,
/// which routing allows only to an available agent).
async fn agent(app: &mut TestApp) {
    app.login("admin@demo.example").await;
    app.set_presence("available").await;
}

/// Every file under the media store, temporary ones included.
fn media_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.dir.path().join("media"), &mut out);
    out
}

async fn whatsapp_customer_writes(app: &TestApp, channel: &str, ts: i64) {
    let mut v = fixture("whatsapp/inbound_text.json");
    v["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(ts.to_string());
    crate::media::post_whatsapp(app, channel, &v).await;
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn an_attached_image_is_uploaded_to_whatsapp_and_sent_by_its_media_id() {
    // Arrange: a WhatsApp customer wrote just now.
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    whatsapp_customer_writes(&app, &channel, now_secs()).await;
    let conv = conversation_of(&app, "whatsapp").await;

    // Act
    let (s, b) = attach(
        &app,
        &conv,
        png(),
        "image/png",
        "chart.png",
        Some("Q3 chart"),
    )
    .await;

    // Assert: queued as an image with our stored copy.
    assert_eq!(s, 201, "{b}");
    let m = &b["message"];
    assert_eq!(m["content"]["type"], "media");
    assert_eq!(m["content"]["kind"], "image");
    assert_eq!(m["content"]["caption"], "Q3 chart");
    assert_eq!(m["content"]["media"]["filename"], "chart.png");
    let id = m["id"].as_str().expect("id").to_string();
    // Stored encrypted: the marker is in no file of the media store.
    let marker = b"switchboard outbound attachment bytes";
    for f in media_files(&app) {
        let raw = std::fs::read(&f).expect("read");
        assert!(!raw.windows(marker.len()).any(|w| w == marker), "{f:?}");
    }

    // The file was uploaded as WhatsApp wants, then sent by the id the upload returned.
    let sent = wait_status(&app, &conv, &id, "sent").await;
    assert!(
        sent["provider_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("wamid."))
    );
    let uploads = provider.uploaded(&format!("/{WA_PHONE_ID}/media"));
    assert_eq!(uploads.len(), 1, "one upload");
    let field = |n: &str| uploads[0].iter().find(|p| p.name == n).cloned().expect(n);
    assert_eq!(field("messaging_product").text(), "whatsapp");
    assert_eq!(field("type").text(), "image/png");
    assert_eq!(field("file").data, png());
    assert_eq!(field("file").filename.as_deref(), Some("chart.png"));
    let bodies: Vec<Value> = provider
        .bodies("/messages")
        .into_iter()
        .filter(|b| b["type"] == "image")
        .collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["image"]["id"], "mock-media-1");
    assert_eq!(bodies[0]["image"]["caption"], "Q3 chart");
    assert!(bodies[0]["image"]["link"].is_null());

    // The agent sees the file through the staff media URL.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/media/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png());
}

#[tokio::test]
async fn a_type_whatsapp_refuses_fails_visibly_with_the_providers_reason() {
    // GIF is no WhatsApp image type (jpeg/png only), so it goes as a document, and Graph
    // refuses that upload's type too: the message fails for good, with the reason shown.
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    whatsapp_customer_writes(&app, &channel, now_secs()).await;
    let conv = conversation_of(&app, "whatsapp").await;

    let (s, b) = attach(
        &app,
        &conv,
        b"GIF89a....".to_vec(),
        "image/gif",
        "a.gif",
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["message"]["id"].as_str().expect("id").to_string();

    let failed = wait_status(&app, &conv, &id, "failed").await;
    assert_eq!(failed["failure"]["class"], "permanent", "{failed}");
    let reason = failed["failure"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("image/gif"), "{reason}");
    assert!(
        provider
            .bodies("/messages")
            .iter()
            .all(|b| b["type"] != "image")
    );
}

#[tokio::test]
async fn outside_the_whatsapp_window_an_attachment_is_refused_and_nothing_is_stored() {
    let (mock, provider) = whatsapp_mock().await;
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let channel = add_whatsapp_channel(&app, &mock.uri()).await;
    whatsapp_customer_writes(&app, &channel, now_secs() - 25 * 3600).await;
    let conv = conversation_of(&app, "whatsapp").await;
    let before = media_files(&app).len();

    let (s, b) = attach(&app, &conv, png(), "image/png", "chart.png", None).await;

    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "template_required", "{b}");
    assert_eq!(media_files(&app).len(), before, "no file written");
    assert_eq!(agent_messages(&app, &conv).await, 0, "no message queued");
    assert!(provider.uploaded("/media").is_empty());
}

#[tokio::test]
async fn bad_uploads_get_precise_errors_and_store_nothing() {
    // Arrange: uploads up to 1 KiB; a web chat conversation.
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut app = spawn_app_with(dir, |c| c.limits.max_upload_bytes = 1024).await;
    agent(&mut app).await;
    let token = app.new_visitor().await;
    let (s, b) = app.customer_says(&token, "c-1", "hello").await;
    assert_eq!(s, 202, "{b}");
    let conv = b["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();

    // Too large: 413.
    let (s, b) = attach(&app, &conv, vec![7u8; 2048], "image/png", "big.png", None).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "file_too_large");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_upload_bytes")
    );
    // A type outside the allow-list: 415.
    let (s, b) = attach(
        &app,
        &conv,
        b"MZ".to_vec(),
        "application/x-msdownload",
        "a.exe",
        None,
    )
    .await;
    assert_eq!(s, 415, "{b}");
    assert_eq!(b["error"]["code"], "unsupported_media_type");
    // Not multipart at all: 415.
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/attachments"),
            json!({"file": "x"}),
        )
        .await;
    assert_eq!(s, 415, "{b}");
    // A caption but no file, an empty file, an unknown part: 422.
    let form = reqwest::multipart::Form::new().text("caption", "hi");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/attachments")))
        .header("x-csrf-token", app.csrf.clone().unwrap_or_default())
        .multipart(form)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 422);
    let (s, _) = attach(&app, &conv, Vec::new(), "image/png", "empty.png", None).await;
    assert_eq!(s, 422);
    // Without the CSRF header: 403.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conv}/attachments")))
        .multipart(reqwest::multipart::Form::new().text("caption", "hi"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 403);

    // Nothing was written: no message, no file (not even a temporary one).
    assert_eq!(agent_messages(&app, &conv).await, 0);
    assert!(media_files(&app).is_empty(), "{:?}", media_files(&app));
}

#[tokio::test]
async fn a_web_chat_visitor_fetches_the_file_sent_to_them_and_nobody_else_can() {
    // Arrange: visitor A writes; the agent attaches a PDF to A's conversation.
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let a = app.new_visitor().await;
    let (_, b) = app.customer_says(&a, "a-1", "send me the invoice").await;
    let conv = b["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let pdf = b"%PDF-1.4 invoice".to_vec();
    let (s, b) = attach(
        &app,
        &conv,
        pdf.clone(),
        "application/pdf",
        "invoice.pdf",
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["message"]["id"].as_str().expect("id").to_string();
    let ch = app.demo.webchat_channel_id.to_string();
    let path = format!("/chat/{ch}/media/{id}");

    // Act + assert: A gets the bytes, as a download.
    let r = app
        .client
        .get(app.url(&path))
        .bearer_auth(&a)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("attachment")
    );
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), pdf);
    // Visitor B (with a conversation of their own) gets 404, no token gets 401.
    let b_token = app.new_visitor().await;
    app.customer_says(&b_token, "b-1", "hi").await;
    let r = app
        .client
        .get(app.url(&path))
        .bearer_auth(&b_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 404);
    let r = app.client.get(app.url(&path)).send().await.expect("sent");
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn an_attached_photo_reaches_telegram_as_a_multipart_send_photo() {
    let (mock, provider) = telegram_mock().await;
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "telegram", "name": "Bot",
                   "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                   "api_base": mock.uri(), "register_webhook": false}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let channel = body["channel"]["id"].as_str().expect("id").to_string();
    let r = app
        .client
        .post(app.url(&format!("/hooks/telegram/{channel}")))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .json(&fixture("telegram/update_message_text.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    let conv = conversation_of(&app, "telegram").await;

    let (s, b) = attach(&app, &conv, png(), "image/png", "chart.png", Some("Q3")).await;
    assert_eq!(s, 201, "{b}");
    let id = b["message"]["id"].as_str().expect("id").to_string();

    let sent = wait_status(&app, &conv, &id, "sent").await;
    assert!(
        sent["provider_id"]
            .as_str()
            .is_some_and(|p| p.contains(':'))
    );
    let ups = provider.uploaded(&format!("/bot{TG_TOKEN}/sendPhoto"));
    assert_eq!(ups.len(), 1);
    let field = |n: &str| ups[0].iter().find(|p| p.name == n).cloned().expect(n);
    assert_eq!(field("photo").data, png());
    assert_eq!(field("photo").filename.as_deref(), Some("chart.png"));
    assert_eq!(field("caption").text(), "Q3");
    assert!(field("chat_id").text().parse::<i64>().is_ok());
}

#[tokio::test]
async fn an_attached_file_reaches_signal_as_a_base64_data_uri() {
    let (mock, provider, queue) = signal_mock().await;
    let mut app = spawn_app().await;
    agent(&mut app).await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": mock.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let mut frame = fixture("signal/rest_ws_receive_attachment.json");
    frame["envelope"]["dataMessage"]["attachments"] = json!([]);
    frame["account"] = json!(SIGNAL_ACCOUNT);
    queue.lock().expect("queue").push(frame);
    let conv = conversation_of(&app, "signal").await;

    let pdf = b"%PDF-1.4 terms".to_vec();
    let (s, b) = attach(
        &app,
        &conv,
        pdf.clone(),
        "application/pdf",
        "terms.pdf",
        Some("Terms"),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    let p = provider.clone();
    wait_for(10, "a Signal send with an attachment", move || {
        p.bodies("/v2/send")
            .iter()
            .any(|b| b["base64_attachments"].is_array())
    })
    .await;
    let sent: Vec<Value> = provider
        .bodies("/v2/send")
        .into_iter()
        .filter(|b| b["base64_attachments"].is_array())
        .collect();
    assert_eq!(
        sent[0]["base64_attachments"][0],
        format!(
            "data:application/pdf;filename=terms.pdf;base64,{}",
            base64(&pdf)
        )
    );
    assert_eq!(sent[0]["message"], "Terms");
}
