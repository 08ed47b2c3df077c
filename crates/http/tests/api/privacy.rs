//! Privacy from the chat itself (issue 6): STOP/START in every conversation state, "my data",
//! "forget me" with confirmation and self-service erasure, checked against every table of the
//! real SQLite database afterwards.

use serde_json::Value;
use switchboard_core::ContactId;
use switchboard_core::ports::ConsentStatus;

use crate::helpers::{TestApp, eventually, spawn_app};

/// Sends `text` as the customer and waits for the first outbound message after it.
async fn say(app: &TestApp, token: &str, n: &mut u32, text: &str) -> (String, String) {
    *n += 1;
    let (status, accepted) = app.customer_says(token, &format!("p-{n}"), text).await;
    assert_eq!(status, 202, "{accepted}");
    let conv = accepted["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let id = accepted["message_id"].as_str().expect("id").to_string();
    let reply = eventually(10, &format!("the answer to {text:?}"), || {
        let (conv, id) = (conv.clone(), id.clone());
        async move {
            let (_, m) = app
                .get(&format!("/api/v1/conversations/{conv}/messages"))
                .await;
            let list = m["messages"].as_array()?.clone();
            let at = list.iter().position(|x| x["id"] == id.as_str())?;
            list[at + 1..]
                .iter()
                .find(|x| x["direction"] == "outbound")
                .map(|x| {
                    x["content"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
        }
    })
    .await;
    (conv, reply)
}

async fn contact_of(app: &TestApp, conv: &str) -> ContactId {
    let (_, body): (u16, Value) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    body["contact"]["id"]
        .as_str()
        .expect("contact")
        .parse()
        .expect("id")
}

#[tokio::test]
async fn stop_and_start_work_while_an_agent_owns_the_conversation() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let token = app.new_visitor().await;
    let mut n = 0;
    let (conv, _) = say(&app, &token, &mut n, "hi").await;
    let (_, handed) = say(&app, &token, &mut n, "agent").await;
    assert!(!handed.is_empty());
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["state"], "assigned");

    // Act: STOP while an agent owns it.
    let (_, reply) = say(&app, &token, &mut n, "STOP").await;

    // Assert: confirmed, recorded with the customer's words, conversation still the agent's.
    assert!(reply.contains("opted out"), "{reply}");
    let tenant = app.demo.tenant_id.parse().expect("tenant");
    let contact = contact_of(&app, &conv).await;
    let consents = app
        .app
        .store
        .consents(tenant, contact)
        .await
        .expect("consents");
    let last = consents.last().expect("a consent");
    assert_eq!(last.status, ConsentStatus::OptedOut);
    assert_eq!(last.wording.as_deref(), Some("STOP"));
    assert_eq!(last.source, "chat:webchat");
    let (_, body) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(body["conversation"]["state"], "assigned");

    // A template (proactive) is refused now; a plain reply (service) still goes.
    let c: switchboard_core::ConversationId = conv.parse().expect("id");
    let refused = app
        .app
        .ensure_proactive_allowed(
            c,
            switchboard_core::ports::Lane::Bulk,
            &switchboard_core::Content::text("Our new offer"),
        )
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("opted out")),
        "{refused:?}"
    );
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            serde_json::json!({"text": "Sure, I can still help with your question."}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    // START opts in again.
    let (_, reply) = say(&app, &token, &mut n, "start").await;
    assert!(reply.contains("opted in"), "{reply}");
    let consents = app
        .app
        .store
        .consents(tenant, contact)
        .await
        .expect("consents");
    assert_eq!(
        consents.last().expect("consent").status,
        ConsentStatus::OptedIn
    );
    assert!(
        app.app
            .ensure_proactive_allowed(
                c,
                switchboard_core::ports::Lane::Bulk,
                &switchboard_core::Content::text("Our new offer"),
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn my_data_then_forget_me_erases_the_customer_from_every_table() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let tenant = app.demo.tenant_id.parse().expect("tenant");
    let mut settings = app
        .app
        .store
        .privacy_settings(tenant)
        .await
        .expect("settings");
    settings.self_service_erasure = true;
    app.app
        .privacy
        .save_settings(tenant, &settings)
        .await
        .expect("saved");
    let token = app.new_visitor().await;
    let mut n = 0;
    let secret = "my-unique-secret-phrase-4711";
    let (conv, _) = say(&app, &token, &mut n, secret).await;
    let contact = contact_of(&app, &conv).await;

    let (_, summary) = say(&app, &token, &mut n, "my data").await;
    assert!(summary.contains("holds about you"), "{summary}");
    assert!(summary.contains("Conversations: 1"), "{summary}");

    let export = app
        .app
        .store
        .export_contact(tenant, contact, switchboard_app::now())
        .await
        .expect("export");
    let json = serde_json::to_string(&export).expect("json");
    assert!(json.contains(secret), "the export holds the messages");
    for key in [
        "contact",
        "identities",
        "conversations",
        "messages",
        "consents",
        "records",
        "flow_sessions",
        "erasure_requests",
        "retention",
    ] {
        assert!(
            serde_json::to_value(&export).expect("v").get(key).is_some(),
            "{key}"
        );
    }

    let (_, ask) = say(&app, &token, &mut n, "forget me").await;
    assert!(ask.contains("Reply YES"), "{ask}");
    let (_, bye) = say(&app, &token, &mut n, "yes").await;
    assert!(bye.contains("erasing your data now"), "{bye}");

    // The erasure job runs once the last notice has left.
    let store = app.app.store.clone();
    eventually(15, "the contact to be erased", || {
        let store = store.clone();
        async move {
            store
                .contact(tenant, contact)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    let tombstones = app
        .app
        .store
        .tombstones(tenant, 10)
        .await
        .expect("tombstones");
    assert_eq!(tombstones[0].reason, "self_service");
    assert!(tombstones[0].messages_inbound >= 4, "{:?}", tombstones[0]);

    // No row of any table mentions the customer's words or ids any more.
    let db = app.dir.path().join("switchboard.db");
    let conn = rusqlite_free_scan(&db, &[secret, &contact.to_string(), &conv]);
    assert!(conn.is_empty(), "rows still mention the customer: {conn:?}");
}

/// Every text cell of every table of the SQLite file, searched for `needles`; returns
/// `table.column ~ needle` hits; `needles[0]` is the customer's text, the rest are ids. Uses
/// sqlx directly on the file.
fn rusqlite_free_scan(db: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let db = db.to_path_buf();
    let needles: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .expect("open db");
            let tables: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("tables")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let mut hits = Vec::new();
            for t in tables {
                let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{t}')"
                )))
                    .fetch_all(&mut conn)
                    .await
                    .expect("cols")
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect();
                for c in cols {
                    for needle in &needles {
                        let q = format!("SELECT COUNT(*) FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE ?");
                        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                            .bind(format!("%{needle}%"))
                            .fetch_one(&mut conn)
                            .await
                            .unwrap_or(0);
                        // Bare ids (no personal data) stay where the design keeps them: the erasure
                        // request that was completed, and the append-only, hash-chained audit log.
                        let id_allowed = needle != &needles[0]
                            && (t == "erasure_requests" || t == "audit_log");
                        if n > 0 && !id_allowed {
                            hits.push(format!("{t}.{c} ~ {needle}"));
                        }
                    }
                }
            }
            hits
        })
    })
    .join()
    .expect("scan thread")
}
