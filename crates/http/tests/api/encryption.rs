//! Encryption at rest end to end: known texts written through the WhatsApp and Telegram
//! webhooks (real fixture shapes), an inbound WhatsApp image and an agent's reply appear
//! nowhere in the raw SQLite file, its WAL or the media folder, while the API returns them.
//! The same for web chat (websocket), Signal, a flow answer and an internal note, on SQLite
//! and on PostgreSQL (every table's rows as JSON; when `TEST_DATABASE_URL` is set). And
//! WhatsApp ↔ Signal linking by phone number, which now runs on keyed hashes.

use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_in};
use crate::media::{jpeg, mount_whatsapp_media, post_whatsapp};
use crate::providers::{
    SIGNAL_ACCOUNT, TG_SECRET, TG_TOKEN, WA_APP_SECRET, WA_TOKEN, add_whatsapp_channel, fixture,
    signal_mock, telegram_mock, whatsapp_mock,
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
    // Replying takes the conversation, which routing allows an available agent only.
    app.set_presence("available").await;
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

const WEB_MARKER: &str = "Pangolin-Teal-6406";
const SIGNAL_MARKER: &str = "Ibis-Mandarin-3175";
const ID_NUMBER: &str = "8001015009087";
const NOTE_MARKER: &str = "Gecko-Obsidian-7742";
const SIGNAL_NUMBER: &str = "+4917655519283";

/// A web chat customer's websocket.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame of `ws` that matches `pred` (pings and other frames skipped).
async fn frame_matching(
    ws: &mut Socket,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    for _ in 0..50 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame ok");
        if let Ws::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).expect("JSON frame");
            if pred(&v) {
                return v;
            }
        }
    }
    panic!("no matching frame in 50 frames");
}

/// Sends `text` as the web chat customer (HTTP fallback, same visitor as the websocket) and
/// waits for the bot's answer.
async fn customer_says_and_bot_answers(app: &TestApp, token: &str, n: &str, text: &str) {
    let (s, accepted) = app.customer_says(token, n, text).await;
    assert_eq!(s, 202, "{accepted}");
    let conv = accepted["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let id = accepted["message_id"]
        .as_str()
        .expect("message")
        .to_string();
    eventually(10, &format!("the bot's answer to {text:?}"), || {
        let (conv, id) = (conv.clone(), id.clone());
        async move {
            let (_, m) = app
                .get(&format!("/api/v1/conversations/{conv}/messages"))
                .await;
            let list = m["messages"].as_array()?.clone();
            let at = list.iter().position(|x| x["id"] == id.as_str())?;
            list[at + 1..]
                .iter()
                .any(|x| x["direction"] == "outbound")
                .then_some(())
        }
    })
    .await;
}

/// Everything the server keeps, as text: the SQLite file and WAL (or every PostgreSQL row as
/// JSON) and every file of the media folder.
async fn raw_text(app: &TestApp, pg_url: Option<&str>) -> String {
    use sqlx::{Connection, Row};
    let mut raw = Vec::new();
    match pg_url {
        None => {
            for name in ["switchboard.db", "switchboard.db-wal"] {
                if let Ok(bytes) = std::fs::read(app.dir.path().join(name)) {
                    raw.extend(bytes);
                }
            }
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
            let tables: Vec<String> =
                sqlx::query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .expect("tables")
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect();
            assert!(tables.len() > 20, "the scan sees the schema: {tables:?}");
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT row_to_json(t)::text FROM \"{table}\" t"
                )))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
                for r in rows {
                    raw.extend(r.get::<String, _>(0).into_bytes());
                    raw.push(b'\n');
                }
            }
        }
    }
    assert!(raw.len() > 10_000, "the scan reads the database");
    read_tree(&app.dir.path().join("media"), &mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

/// Web chat over a websocket, Signal through its mocked signal-cli, a flow answer (the loan
/// application's ID number) and an agent's internal note: the API returns them, the
/// database and media folder hold none of them in clear.
async fn web_chat_signal_flow_answers_and_notes_stay_sealed(pg_url: Option<String>) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message as Ws;

    // Arrange
    let (signal, _signal_state, queue) = signal_mock().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut app = spawn_app_in(dir, pg_url.clone()).await;
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": signal.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    // Act: a web chat customer writes over the websocket ...
    let (mut ws, _) = tokio_tungstenite::connect_async(
        app.ws_url(&format!("/chat/{}/ws", app.demo.webchat_channel_id)),
    )
    .await
    .expect("websocket connects");
    ws.send(Ws::Text(
        json!({"type": "hello", "token": null}).to_string().into(),
    ))
    .await
    .expect("hello");
    let welcome = frame_matching(&mut ws, |v| v["type"] == "welcome").await;
    let token = welcome["token"].as_str().expect("token").to_string();
    ws.send(Ws::Text(
        json!({"type": "message", "client_msg_id": "ws-1", "text": format!("hi, {WEB_MARKER}")})
            .to_string()
            .into(),
    ))
    .await
    .expect("message");
    frame_matching(&mut ws, |v| v["type"] == "accepted").await;
    frame_matching(&mut ws, |v| {
        v["type"] == "message" && v["message"]["sender"]["type"] == "bot"
    })
    .await;
    // ... then applies for a loan through the demo flows, giving an ID number ...
    for (n, text) in [
        "Apply for a loan",
        "R20 000",
        "24",
        "R25 000",
        ID_NUMBER,
        "yes",
    ]
    .into_iter()
    .enumerate()
    {
        customer_says_and_bot_answers(&app, &token, &format!("loan-{n}"), text).await;
    }
    let (_, list) = app.get("/api/v1/conversations").await;
    let web_conv = list["conversations"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["channel_kind"] == "webchat"))
        .and_then(|c| c["id"].as_str())
        .expect("web chat conversation")
        .to_string();
    // ... an agent writes an internal note about the customer ...
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{web_conv}/notes"),
            json!({"body": format!("checked ID {ID_NUMBER}, {NOTE_MARKER}")}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // ... and a Signal customer writes (the real frame shape, through the receiver's poll).
    let mut frame = fixture("signal/rest_ws_receive_attachment.json");
    frame["envelope"]["dataMessage"]["attachments"] = json!([]);
    frame["envelope"]["dataMessage"]["message"] = json!(format!("card {SIGNAL_MARKER}"));
    frame["envelope"]["source"] = json!(SIGNAL_NUMBER);
    frame["envelope"]["sourceNumber"] = json!(SIGNAL_NUMBER);
    frame["envelope"]["sourceName"] = json!(NAME);
    frame["account"] = json!(SIGNAL_ACCOUNT);
    queue.lock().expect("queue").push(frame);
    let app_ref = &app;
    let signal_conv = eventually(15, "the Signal message is stored", || async move {
        let (_, b) = app_ref.get("/api/v1/conversations").await;
        b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == "signal")?["id"]
            .as_str()
            .map(str::to_string)
    })
    .await;

    // Assert: the API gives everything back in clear ...
    let (_, web) = app
        .get(&format!("/api/v1/conversations/{web_conv}/messages"))
        .await;
    let web = web.to_string();
    assert!(web.contains(WEB_MARKER) && web.contains(ID_NUMBER), "{web}");
    let (_, state) = app.get(&format!("/api/v1/conversations/{web_conv}")).await;
    assert_eq!(state["conversation"]["state"], "queued", "{state}");
    assert!(state["records"].to_string().contains(ID_NUMBER) || web.contains(ID_NUMBER));
    let (_, notes) = app
        .get(&format!("/api/v1/conversations/{web_conv}/notes"))
        .await;
    assert!(notes.to_string().contains(NOTE_MARKER), "{notes}");
    let (_, sig) = app
        .get(&format!("/api/v1/conversations/{signal_conv}/messages"))
        .await;
    assert!(sig.to_string().contains(SIGNAL_MARKER), "{sig}");
    let contact = state["conversation"]["contact_id"]
        .as_str()
        .expect("contact")
        .to_string();
    let (s, _) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(s, 200, "viewing a contact is audited");

    // ... while nothing the customers or the agent wrote is on disk in clear.
    let raw = raw_text(&app, pg_url.as_deref()).await;
    assert!(
        raw.contains("admin@demo.example"),
        "the scan sees what is stored in clear (staff e-mail)"
    );
    for secret in [
        WEB_MARKER,
        SIGNAL_MARKER,
        ID_NUMBER,
        NOTE_MARKER,
        NAME,
        SIGNAL_NUMBER,
        &SIGNAL_NUMBER[1..],
    ] {
        assert!(!raw.contains(secret), "{secret:?} is stored in clear");
    }
}

#[tokio::test]
async fn web_chat_signal_flow_answers_and_notes_are_nowhere_in_the_sqlite_files_in_clear() {
    web_chat_signal_flow_answers_and_notes_stay_sealed(None).await;
}

#[tokio::test]
async fn web_chat_signal_flow_answers_and_notes_are_in_no_postgresql_row_in_clear() {
    let Some(db) = crate::postgres::FreshDb::create().await else {
        return;
    };
    web_chat_signal_flow_answers_and_notes_stay_sealed(Some(db.url.clone())).await;
    db.drop_it().await;
}

#[tokio::test]
async fn whatsapp_and_signal_from_one_number_are_one_contact_with_both_histories() {
    // Arrange
    let (wa, _wa_state) = whatsapp_mock().await;
    let (signal, _signal_state, queue) = signal_mock().await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let whatsapp = add_whatsapp_channel(&app, &wa.uri()).await;
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "signal", "name": "Signal", "credentials": {
                "account": SIGNAL_ACCOUNT, "api_base": signal.uri(), "mode": "rest"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    // Act: the customer writes on WhatsApp, then on Signal from the same number.
    let mut text = fixture("whatsapp/inbound_text.json");
    let value = &mut text["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["profile"]["name"] = json!(NAME);
    value["contacts"][0]["wa_id"] = json!(WA_ID);
    value["messages"][0]["from"] = json!(WA_ID);
    value["messages"][0]["text"]["body"] = json!(format!("on WhatsApp {MARKER}"));
    post_whatsapp(&app, &whatsapp, &text).await;
    let app_ref = &app;
    let wa_conv = eventually(10, "the WhatsApp message is stored", || async move {
        let (_, b) = app_ref.get("/api/v1/conversations").await;
        b["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["channel_kind"] == "whatsapp")
            .cloned()
    })
    .await;
    let mut frame = fixture("signal/rest_ws_receive_attachment.json");
    frame["envelope"]["dataMessage"]["attachments"] = json!([]);
    frame["envelope"]["dataMessage"]["message"] = json!(format!("on Signal {SIGNAL_MARKER}"));
    frame["envelope"]["source"] = json!(format!("+{WA_ID}"));
    frame["envelope"]["sourceNumber"] = json!(format!("+{WA_ID}"));
    frame["account"] = json!(SIGNAL_ACCOUNT);
    queue.lock().expect("queue").push(frame);
    // Linking runs right after the Signal message is committed.
    let contact = wa_conv["contact_id"].clone();
    let sig_conv = eventually(
        15,
        "the Signal conversation to belong to the WhatsApp contact",
        || {
            let contact = contact.clone();
            async move {
                let (_, b) = app_ref.get("/api/v1/conversations").await;
                b["conversations"]
                    .as_array()?
                    .iter()
                    .find(|c| c["channel_kind"] == "signal" && c["contact_id"] == contact)
                    .cloned()
            }
        },
    )
    .await;

    // Assert: one contact, with both identities and both conversations ...
    let contact = contact.as_str().expect("contact");
    let (s, person) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(s, 200, "{person}");
    let kinds: Vec<&str> = person["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"whatsapp") && kinds.contains(&"signal"),
        "{person}"
    );
    assert_eq!(
        person["conversations"].as_array().map(Vec::len),
        Some(2),
        "{person}"
    );
    // ... and each conversation's history is readable from the contact.
    for (conv, marker) in [(&wa_conv, MARKER), (&sig_conv, SIGNAL_MARKER)] {
        let id = conv["id"].as_str().expect("id");
        let (_, m) = app
            .get(&format!("/api/v1/conversations/{id}/messages"))
            .await;
        assert!(m.to_string().contains(marker), "{m}");
    }
}
