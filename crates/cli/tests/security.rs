//! Security properties of the real binary:
//! - `switchboard audit verify` accepts an intact log and names the first edited entry;
//! - a server logging at `debug` through a login, an API-token channel add, a Telegram
//!   webhook with a marker text and a phone number, and an agent reply writes none of the
//!   password, tokens, cookie, secrets, message texts or phone number to its log.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Served, bin, run, text};
use serde_json::{Value, json};

const PASSWORD: &str = "log-test-password-9f2c";

fn seed(data: &Path) {
    let o = run(&["demo", "--seed-only", "--admin-password", PASSWORD], data);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn audit_verify_passes_an_intact_log_and_names_the_first_edited_entry() {
    // Arrange: seeding writes audit entries (users created, flows loaded).
    let dir = tempfile::tempdir().expect("dir");
    seed(dir.path());
    let o = run(&["audit", "verify"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("demo: intact"), "{}", text(&o));
    let o = run(&["audit", "list", "--tenant", "demo", "--json"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let entries: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        entries.as_array().is_some_and(|e| e.len() >= 3),
        "{entries}"
    );

    // Act: someone with database access edits entry 2 behind the application's back.
    let db = dir.path().join("switchboard.db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("open the database");
        sqlx::Executor::execute(&mut conn, "DROP TRIGGER audit_log_no_update")
            .await
            .expect("drop the guard");
        sqlx::Executor::execute(
            &mut conn,
            "UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 2",
        )
        .await
        .expect("edit");
    });

    // Assert
    let o = run(&["audit", "verify"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("demo: BROKEN at seq 2: content does not match its hash"),
        "{}",
        text(&o)
    );
}

/// A mock Telegram Bot API that accepts every call.
async fn telegram_mock() -> String {
    let router = axum::Router::new().route(
        "/{*rest}",
        axum::routing::post(|| async {
            axum::Json(
                json!({"ok": true, "result": {"message_id": 77, "date": 1764073100,
                "chat": {"id": 6021847733u64, "type": "private"}}}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_password_token_cookie_message_text_or_phone_number() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Arrange: a seeded database, an API token made on the command line, a server at debug.
    let dir = tempfile::tempdir().expect("dir");
    seed(dir.path());
    let o = run(
        &[
            "tokens",
            "create",
            "--tenant",
            "demo",
            "--email",
            "admin@demo.example",
            "--scope",
            "admin",
            "--name",
            "log test",
            "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let token: Value = serde_json::from_slice(&o.stdout).expect("json");
    let api_token = token["secret"].as_str().expect("secret").to_string();
    let log_path = dir.path().join("server.log");
    let mut command = bin();
    command.env("SWITCHBOARD_LOG", "debug");
    // Killed when the test ends, also when an assertion fails before the end.
    let server = Served::start(command, dir.path(), Some(&log_path)).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let secrets = Secrets::new();
    let mock = telegram_mock().await;

    // Act 1: a staff login.
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@demo.example", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    let session = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("sb_session="))
        .expect("cookie")
        .to_string();
    let me: Value = r.json().await.expect("json");
    let csrf = me["csrf_token"].as_str().expect("csrf").to_string();

    // Act 2: a channel added with the API token (bearer, no CSRF).
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(&api_token)
        .json(&json!({"kind": "telegram", "name": "log test", "api_base": mock, "validate": false,
                      "credentials": {"bot_token": secrets.bot_token, "webhook_secret": secrets.webhook_secret}}))
        .send()
        .await
        .expect("channel add");
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let added: Value = r.json().await.expect("json");
    let channel = added["channel"]["id"]
        .as_str()
        .expect("channel")
        .to_string();

    // Act 3: webhooks with a marker text and a shared phone number.
    let hook = format!("{base}/hooks/telegram/{channel}");
    let text_update = json!({"update_id": 734220117, "message": {"message_id": 411,
        "from": {"id": 6021847733u64, "is_bot": false, "first_name": "Sipho"},
        "chat": {"id": 6021847733u64, "first_name": "Sipho", "type": "private"},
        "date": 1764073010, "text": secrets.customer_text}});
    let contact_update = json!({"update_id": 734220118, "message": {"message_id": 412,
        "from": {"id": 6021847733u64, "is_bot": false, "first_name": "Sipho"},
        "chat": {"id": 6021847733u64, "first_name": "Sipho", "type": "private"},
        "date": 1764073012, "contact": {"phone_number": secrets.phone, "first_name": "Sipho",
        "user_id": 6021847733u64}}});
    for update in [&text_update, &contact_update] {
        let r = client
            .post(&hook)
            .header("x-telegram-bot-api-secret-token", &secrets.webhook_secret)
            .json(update)
            .send()
            .await
            .expect("webhook");
        assert_eq!(r.status().as_u16(), 200);
    }

    // Act 4: an agent reply on that conversation, sent through the mock.
    let mut conversation = None;
    for _ in 0..200 {
        let list: Value = client
            .get(format!("{base}/api/v1/conversations"))
            .header("cookie", format!("sb_session={session}"))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        conversation = list["conversations"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["channel_id"] == channel.as_str())
                .and_then(|c| c["id"].as_str())
                .map(str::to_string)
        });
        if conversation.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conversation = conversation.expect("the webhook opened a conversation");
    // Replying takes the routed conversation, which needs an available agent.
    let r = client
        .put(format!("{base}/api/v1/me/presence"))
        .header("cookie", format!("sb_session={session}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"presence": "available"}))
        .send()
        .await
        .expect("presence");
    assert_eq!(r.status().as_u16(), 200, "goes available");
    let r = client
        .post(format!(
            "{base}/api/v1/conversations/{conversation}/messages"
        ))
        .header("cookie", format!("sb_session={session}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"text": secrets.agent_text}))
        .send()
        .await
        .expect("reply");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let mut sent = false;
    for _ in 0..200 {
        let msgs: Value = client
            .get(format!(
                "{base}/api/v1/conversations/{conversation}/messages"
            ))
            .header("cookie", format!("sb_session={session}"))
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("json");
        sent = msgs["messages"].as_array().is_some_and(|ms| {
            ms.iter().any(|m| {
                m["direction"] == "outbound"
                    && m["status"] != "queued"
                    && m.to_string().contains(&secrets.agent_text)
            })
        });
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    assert!(sent, "the reply was never attempted");

    // Assert
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.contains("DEBUG"), "the server logged at debug");
    for (what, value) in [
        ("password", PASSWORD.to_string()),
        ("API token", api_token.clone()),
        ("session cookie", session),
        ("CSRF token", csrf),
        ("bot token", secrets.bot_token.clone()),
        ("webhook secret", secrets.webhook_secret.clone()),
        ("customer's message text", secrets.customer_text.clone()),
        ("agent's reply text", secrets.agent_text.clone()),
        ("phone number", secrets.phone.clone()),
        (
            "phone number digits",
            secrets.phone.trim_start_matches('+').to_string(),
        ),
    ] {
        assert!(!logs.contains(&value), "the log contains the {what}");
    }
}

/// Values that must never reach a log, distinctive enough to grep for.
struct Secrets {
    bot_token: String,
    webhook_secret: String,
    customer_text: String,
    agent_text: String,
    phone: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            bot_token: "7301924655:AAH-logtest-bot-token-d81f".into(),
            webhook_secret: "logtest-webhook-secret-4c1e".into(),
            customer_text: "MARKER customer asks about account 5520-logtest".into(),
            agent_text: "MARKER agent answers logtest-91ab".into(),
            phone: "+27825550143".into(),
        }
    }
}
