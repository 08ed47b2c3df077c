//! Inbound media end to end: a webhook naming a file is stored at once; the media job then
//! downloads the file from the mocked provider (WhatsApp: media id → URL → authenticated
//! download; Telegram: getFile → `/file/bot<token>/<path>`) into the media store, and staff
//! fetch it only through `GET /api/v1/media/{message_id}`. Another tenant gets 404; a file
//! over `channels.media_max_bytes` stays a message with the reason.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};
use crate::providers::{
    TG_SECRET, TG_TOKEN, WA_TOKEN, fixture, telegram_mock, wa_sign, whatsapp_mock,
};

/// The media id in `whatsapp/inbound_image.json`.
pub(crate) const WA_MEDIA_ID: &str = "1003383421387256";

/// A small "JPEG" the mocks serve.
pub(crate) fn jpeg() -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0];
    b.extend_from_slice(b"switchboard test image bytes");
    b
}

/// Mounts `GET /{media-id}` (the URL answer, fixture shape, pointing at the mock) and the
/// download, both demanding the bearer token as Meta does.
pub(crate) async fn mount_whatsapp_media(mock: &MockServer, bytes: Vec<u8>) {
    let mut info = fixture("whatsapp/api/media_retrieve_url_response.json");
    info["id"] = json!(WA_MEDIA_ID);
    info["url"] = json!(format!(
        "{}/whatsapp_business/attachments/{WA_MEDIA_ID}",
        mock.uri()
    ));
    info["sha256"] = json!(hex::encode(Sha256::digest(&bytes)));
    info["file_size"] = json!(bytes.len().to_string());
    let bearer = format!("Bearer {WA_TOKEN}");
    Mock::given(method("GET"))
        .and(path(format!("/{WA_MEDIA_ID}")))
        .and(wiremock::matchers::header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(info))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/whatsapp_business/attachments/{WA_MEDIA_ID}"
        )))
        .and(wiremock::matchers::header("authorization", bearer.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(bytes),
        )
        .mount(mock)
        .await;
}

pub(crate) async fn post_whatsapp(app: &TestApp, channel: &str, payload: &Value) {
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

/// The only message of the only conversation of `kind`, once `done` says it is final.
async fn the_message(app: &TestApp, kind: &str, done: fn(&Value) -> bool) -> Value {
    eventually(10, "the media message settles", || async {
        let (_, b) = app.get("/api/v1/conversations").await;
        let conv = b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == kind)?
            .clone();
        let (_, m) = app
            .get(&format!(
                "/api/v1/conversations/{}/messages",
                conv["id"].as_str()?
            ))
            .await;
        let first = m["messages"].as_array()?.first()?.clone();
        done(&first).then_some(first)
    })
    .await
}

fn stored(m: &Value) -> bool {
    m["content"]["media"]["stored_key"].is_string()
}

async fn get_bytes(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.expect("sent")
}

#[tokio::test]
async fn a_whatsapp_image_is_downloaded_by_a_job_and_served_only_to_its_tenant() {
    // Arrange
    let (mock, _provider) = whatsapp_mock().await;
    mount_whatsapp_media(&mock, jpeg()).await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = crate::providers::add_whatsapp_channel(&app, &mock.uri()).await;

    // Act: the customer sends a photo.
    post_whatsapp(&app, &channel, &fixture("whatsapp/inbound_image.json")).await;

    // Assert: the job stored it; the message carries the stored copy's facts.
    let m = the_message(&app, "whatsapp", stored).await;
    let media = &m["content"]["media"];
    let sha = hex::encode(Sha256::digest(jpeg()));
    assert_eq!(media["sha256"], sha.as_str());
    assert_eq!(media["size"], jpeg().len());
    assert_eq!(media["mime_type"], "image/jpeg");
    // The file is named by a keyed hash (not its SHA-256, which would confirm a guessed
    // file) and holds no plaintext: encrypted as it was downloaded.
    let key = media["stored_key"].as_str().expect("stored key");
    assert!(!key.contains(&sha), "{key}");
    let on_disk = app.dir.path().join("media").join(key);
    let raw = std::fs::read(on_disk).expect("stored file");
    assert_ne!(raw, jpeg());
    let marker = b"switchboard test image bytes";
    assert!(
        !raw.windows(marker.len()).any(|w| w == marker),
        "the image's bytes are not on disk in clear"
    );

    // The agent fetches the same bytes through our own URL, with safe headers.
    let id = m["id"].as_str().expect("id").to_string();
    let r = get_bytes(&app, &format!("/api/v1/media/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "private");
    assert_eq!(h["content-disposition"], "inline");
    let body = r.bytes().await.expect("body");
    assert_eq!(hex::encode(Sha256::digest(&body)), sha);

    // A text message has no file: 404 with a clear message.
    let mut text = fixture("whatsapp/inbound_text.json");
    text["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.text.1");
    post_whatsapp(&app, &channel, &text).await;
    let (_, b) = app.get("/api/v1/conversations").await;
    let convs = b["conversations"].as_array().expect("list").clone();
    let text_id = {
        let mut found = None;
        for c in convs {
            let (_, ms) = app
                .get(&format!(
                    "/api/v1/conversations/{}/messages",
                    c["id"].as_str().unwrap()
                ))
                .await;
            for msg in ms["messages"].as_array().unwrap() {
                if msg["content"]["type"] == "text" && msg["direction"] == "inbound" {
                    found = Some(msg["id"].as_str().unwrap().to_string());
                }
            }
        }
        found.expect("the text message")
    };
    let (s, e) = app.get(&format!("/api/v1/media/{text_id}")).await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "media_not_stored", "{e}");

    // Not logged in: 401. Another tenant: 404, exactly like an unknown id.
    let anonymous = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/media/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status().as_u16(), 401);
    app.log_in_as_another_tenant().await;
    let (s, _) = app.get(&format!("/api/v1/media/{id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn an_oversized_whatsapp_file_stays_a_message_with_the_reason() {
    // Arrange: a server that keeps files up to 16 bytes.
    let (mock, _provider) = whatsapp_mock().await;
    mount_whatsapp_media(&mock, jpeg()).await;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut app = spawn_app_with(dir, |c| c.channels.media_max_bytes = 16).await;
    app.login("admin@demo.example").await;
    let channel = crate::providers::add_whatsapp_channel(&app, &mock.uri()).await;

    // Act
    post_whatsapp(&app, &channel, &fixture("whatsapp/inbound_image.json")).await;

    // Assert: refused for good, with a sentence; nothing stored, nothing to fetch.
    let m = the_message(&app, "whatsapp", |m| !m["failure"].is_null()).await;
    assert_eq!(m["failure"]["class"], "permanent");
    let reason = m["failure"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("larger than"), "{reason}");
    assert!(m["content"]["media"]["stored_key"].is_null());
    let (s, e) = app
        .get(&format!("/api/v1/media/{}", m["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 404);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than"),
        "{e}"
    );
}

#[tokio::test]
async fn a_telegram_photo_is_fetched_with_get_file_and_stored() {
    // Arrange
    let (mock, _provider) = telegram_mock().await;
    let mut file = fixture("telegram/api/get_file_result_file_object.json");
    file["file_path"] = json!("photos/file_7.jpg");
    Mock::given(method("POST"))
        .and(path(format!("/bot{TG_TOKEN}/getFile")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": file})))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/file/bot{TG_TOKEN}/photos/file_7.jpg")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(jpeg()))
        .mount(&mock)
        .await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({
                "kind": "telegram",
                "name": "Support bot",
                "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                "api_base": mock.uri(),
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let channel = body["channel"]["id"].as_str().unwrap().to_string();

    // Act: an update carrying the photo fixture.
    let update = json!({"update_id": 900_001, "message": fixture("telegram/message_photo_with_caption.json")});
    let r = app
        .client
        .post(app.url(&format!("/hooks/telegram/{channel}")))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .json(&update)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);

    // Assert
    let m = the_message(&app, "telegram", stored).await;
    let sha = hex::encode(Sha256::digest(jpeg()));
    assert_eq!(m["content"]["media"]["sha256"], sha.as_str());
    assert_eq!(m["content"]["media"]["mime_type"], "image/jpeg");
    let r = get_bytes(
        &app,
        &format!("/api/v1/media/{}", m["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], &jpeg()[..]);
}
