//! Encryption at rest end to end: known texts written through the WhatsApp and Telegram
//! webhooks (real fixture shapes), an inbound WhatsApp image and an agent's reply appear
//! nowhere in the raw SQLite file, its WAL or the media folder, while the API returns them.
//! (The PostgreSQL half of the raw scan is `crates/storage/tests/encryption.rs`.)

use serde_json::json;

use crate::helpers::{eventually, spawn_app};
use crate::media::{jpeg, mount_whatsapp_media, post_whatsapp};
use crate::providers::{
    TG_SECRET, TG_TOKEN, WA_APP_SECRET, WA_TOKEN, add_whatsapp_channel, fixture, telegram_mock,
    whatsapp_mock,
};

const MARKER: &str = "Quokka-Vermilion-8812";
const NAME: &str = "Philippa Grünewald-Oyelaran";
const WA_ID: &str = "4915233378120";
const TG_MARKER: &str = "Narwhal-Saffron-5530";
const REPLY: &str = "Axolotl-Cobalt-2291";

/// Every file under `dir`, as bytes joined together.
fn read_tree(dir: &std::path::Path, out: &mut Vec<u8>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_tree(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
}

#[tokio::test]
async fn texts_written_through_every_channel_are_nowhere_on_disk_in_clear() {
    // Arrange
    let (wa, _wa_state) = whatsapp_mock().await;
    mount_whatsapp_media(&wa, jpeg()).await;
    let (tg, _tg_state) = telegram_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let whatsapp = add_whatsapp_channel(&app, &wa.uri()).await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({
                "kind": "telegram",
                "name": "Support bot",
                "credentials": {"bot_token": TG_TOKEN, "webhook_secret": TG_SECRET},
                "api_base": tg.uri(),
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let telegram = body["channel"]["id"].as_str().expect("id").to_string();

    // Act: WhatsApp text with a name and number, a WhatsApp image, a Telegram text ...
    // Sent now, so the 24-hour window is open for the agent's reply.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let mut text = fixture("whatsapp/inbound_text.json");
    let value = &mut text["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["profile"]["name"] = json!(NAME);
    value["contacts"][0]["wa_id"] = json!(WA_ID);
    value["messages"][0]["from"] = json!(WA_ID);
    value["messages"][0]["text"]["body"] = json!(format!("my loan id {MARKER}"));
    value["messages"][0]["timestamp"] = json!(now);
    post_whatsapp(&app, &whatsapp, &text).await;
    let mut image = fixture("whatsapp/inbound_image.json");
    let value = &mut image["entry"][0]["changes"][0]["value"];
    value["messages"][0]["from"] = json!(WA_ID);
    value["messages"][0]["id"] = json!("wamid.image-2");
    value["messages"][0]["timestamp"] = json!(now);
    value["contacts"][0]["wa_id"] = json!(WA_ID);
    value["contacts"][0]["profile"]["name"] = json!(NAME);
    post_whatsapp(&app, &whatsapp, &image).await;
    let mut update = fixture("telegram/update_message_text.json");
    update["message"]["text"] = json!(format!("order {TG_MARKER}"));
    let s = app
        .client
        .post(app.url(&format!("/hooks/telegram/{telegram}")))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .json(&update)
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(s, 200);

    // ... and an agent's reply on WhatsApp.
    let conv = eventually(10, "the WhatsApp image is stored", || async {
        let (_, b) = app.get("/api/v1/conversations").await;
        let conv = b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == "whatsapp")?
            .clone();
        let id = conv["id"].as_str()?.to_string();
        let (_, m) = app
            .get(&format!("/api/v1/conversations/{id}/messages"))
            .await;
        m["messages"]
            .as_array()?
            .iter()
            .any(|m| m["content"]["media"]["stored_key"].is_string())
            .then_some(id)
    })
    .await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": format!("your loan {REPLY}")}),
        )
        .await;
    assert!(s == 201 || s == 200, "{s} {b}");

    // Assert: the API gives everything back in clear ...
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let all = m.to_string();
    assert!(all.contains(MARKER) && all.contains(REPLY), "{all}");
    let (_, list) = app.get("/api/v1/conversations").await;
    assert!(list.to_string().contains(NAME), "{list}");
    let tg_conv = list["conversations"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["channel_kind"] == "telegram"))
        .and_then(|c| c["id"].as_str())
        .expect("telegram conversation")
        .to_string();
    let (_, tg_messages) = app
        .get(&format!("/api/v1/conversations/{tg_conv}/messages"))
        .await;
    assert!(tg_messages.to_string().contains(TG_MARKER), "{tg_messages}");

    // ... while the raw database, its WAL and the media folder hold none of it.
    let mut raw = Vec::new();
    for name in ["switchboard.db", "switchboard.db-wal"] {
        if let Ok(bytes) = std::fs::read(app.dir.path().join(name)) {
            raw.extend(bytes);
        }
    }
    assert!(raw.len() > 10_000, "the scan reads the database");
    read_tree(&app.dir.path().join("media"), &mut raw);
    let raw = String::from_utf8_lossy(&raw);
    for secret in [
        MARKER,
        TG_MARKER,
        REPLY,
        NAME,
        WA_ID,
        "switchboard test image bytes",
        WA_TOKEN,
        WA_APP_SECRET,
        TG_TOKEN,
        TG_SECRET,
    ] {
        assert!(!raw.contains(secret), "{secret:?} is on disk in clear");
    }
}
