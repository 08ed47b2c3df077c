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
    // Only an available agent takes a routed conversation (the router may beat her to it:
    // assigning it to herself again is then a no-op).
    app.set_presence("available").await;
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

// ---------------------------------------------------------------- staff API (issue 6)

/// DELETE with the CSRF header when logged in.
async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let mut req = app.client.delete(app.url(path));
    if let Some(c) = &app.csrf {
        req = req.header("x-csrf-token", c);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// PUT JSON with the CSRF header.
async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let mut req = app.client.put(app.url(path)).json(&body);
    if let Some(c) = &app.csrf {
        req = req.header("x-csrf-token", c);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The tenant's audit entries with `action` (read through the admin API).
pub(crate) async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let (s, body) = app.get("/api/v1/audit?limit=1000").await;
    assert_eq!(s, 200, "{body}");
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn staff_export_and_erasure_are_admin_only_audited_and_tenant_scoped() {
    // Arrange: a customer with a conversation.
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let token = app.new_visitor().await;
    let mut n = 0;
    let secret = "export-me-phrase-0815";
    let (conv, _) = say(&app, &token, &mut n, secret).await;
    let contact = contact_of(&app, &conv).await;
    let export_path = format!("/api/v1/contacts/{contact}/export");
    let contact_path = format!("/api/v1/contacts/{contact}");

    // An agent may neither export nor erase.
    let (s, body) = app.get(&export_path).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = delete(&app, &contact_path).await;
    assert_eq!(s, 403, "{body}");

    // Another tenant's admin gets 404, as for an id that does not exist.
    app.log_in_as_another_tenant().await;
    let (s, _) = app.get(&export_path).await;
    assert_eq!(s, 404);
    let (s, _) = delete(&app, &contact_path).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .get(&format!("/api/v1/contacts/{contact}/consents"))
        .await;
    assert_eq!(s, 404);

    // Act 1: the admin exports.
    app.login("admin@demo.example").await;
    let r = app
        .client
        .get(app.url(&export_path))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        disposition.contains(&format!("contact-{contact}.json")),
        "{disposition}"
    );
    let export: Value = r.json().await.expect("json");
    assert_eq!(export["format"], "switchboard.contact-export.v1");
    assert_eq!(export["contact"]["id"], contact.to_string().as_str());
    assert!(
        export["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["content"]["body"] == secret),
        "the export holds the customer's words: {export}"
    );
    assert_eq!(export["conversations"].as_array().expect("convs").len(), 1);

    // Act 2: the admin erases.
    let (s, erased) = delete(&app, &contact_path).await;
    assert_eq!(s, 200, "{erased}");
    assert_eq!(erased["tombstone"]["reason"], "admin");
    assert_eq!(
        erased["tombstone"]["channel_kinds"],
        serde_json::json!(["webchat"])
    );
    assert!(
        erased["tombstone"]["messages_inbound"].as_i64() >= Some(1),
        "{erased}"
    );
    assert!(
        erased["rows_deleted"]["messages"].as_u64() >= Some(2),
        "{erased}"
    );
    assert_eq!(erased["rows_deleted"]["contacts"], 1);
    assert!(erased.get("media_keys").is_none(), "file names stay inside");

    // Assert: gone everywhere the API shows it; a second erasure is a 404.
    let (s, _) = app.get(&contact_path).await;
    assert_eq!(s, 404);
    let (s, _) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(s, 404);
    let (s, _) = delete(&app, &contact_path).await;
    assert_eq!(s, 404);
    let (s, _) = app.get(&export_path).await;
    assert_eq!(s, 404);
    let (_, tombs) = app.get("/api/v1/privacy/tombstones").await;
    assert_eq!(tombs["tombstones"][0]["id"], erased["tombstone"]["id"]);

    // Both are in the audit log, naming the admin and the contact, with counts only.
    let exports = audited(&app, "contact.export").await;
    let erasures = audited(&app, "contact.erase").await;
    assert_eq!(exports.len(), 1, "the refused attempts were not exports");
    assert_eq!(erasures.len(), 1);
    for e in exports.iter().chain(&erasures) {
        assert_eq!(e["subject"], format!("contact:{contact}").as_str());
        assert!(
            e["actor"].as_str().is_some_and(|a| a.starts_with("user:")),
            "{e}"
        );
        assert!(
            !e.to_string().contains(secret),
            "no message text in the log: {e}"
        );
    }
    assert_eq!(
        exports[0]["details"]["messages"].as_u64(),
        export["messages"].as_array().map(|m| m.len() as u64)
    );
    assert_eq!(
        erasures[0]["details"]["tombstone"],
        erased["tombstone"]["id"]
    );

    // The raw database no longer holds the customer's words or ids outside the kept places.
    let db = app.dir.path().join("switchboard.db");
    let hits = rusqlite_free_scan(&db, &[secret, &contact.to_string(), &conv]);
    assert!(hits.is_empty(), "rows still mention the customer: {hits:?}");
}

#[tokio::test]
async fn a_customer_request_waits_for_an_admin_who_denies_with_a_reason_or_approves() {
    // Arrange: the default settings (staff decide).
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let token = app.new_visitor().await;
    let mut n = 0;
    let (conv, _) = say(&app, &token, &mut n, "hello").await;
    let (_, ask) = say(&app, &token, &mut n, "Forget me!").await;
    assert!(ask.contains("Reply YES"), "{ask}");
    let (_, filed) = say(&app, &token, &mut n, "yes").await;
    assert!(filed.contains("passed to our team"), "{filed}");
    let contact = contact_of(&app, &conv).await;

    // The request is listed for staff; an unknown status is a clear 422.
    let (s, list) = app
        .get("/api/v1/privacy/erasure-requests?status=pending")
        .await;
    assert_eq!(s, 200, "{list}");
    let requests = list["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1, "{list}");
    assert_eq!(requests[0]["contact_id"], contact.to_string().as_str());
    assert_eq!(requests[0]["source"], "chat:webchat");
    let id = requests[0]["id"].as_str().expect("id").to_string();
    let (s, body) = app
        .get("/api/v1/privacy/erasure-requests?status=maybe")
        .await;
    assert_eq!(s, 422, "{body}");

    // A denial needs the reason the customer is told.
    let deny = format!("/api/v1/privacy/erasure-requests/{id}/deny");
    let (s, body) = app.post(&deny, serde_json::json!({"note": "  "})).await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = app
        .post(
            &deny,
            serde_json::json!({"note": "we must keep loan records for five years"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "denied");
    assert!(body["decided_by"].is_string(), "{body}");
    let told = eventually(10, "the customer to be told why", || async {
        let (_, m) = app
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        m["messages"].as_array()?.iter().rev().find_map(|x| {
            let b = x["content"]["body"].as_str()?;
            b.contains("declined").then(|| b.to_string())
        })
    })
    .await;
    assert!(told.contains("loan records"), "{told}");
    // Decided once: a second decision is a conflict, and nothing was erased.
    let (s, _) = app
        .post(
            &format!("/api/v1/privacy/erasure-requests/{id}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(s, 200);

    // Act: the customer asks again; this time the admin approves.
    let (_, _) = say(&app, &token, &mut n, "forget me").await;
    let (_, _) = say(&app, &token, &mut n, "YES").await;
    let (_, list) = app
        .get("/api/v1/privacy/erasure-requests?status=pending")
        .await;
    let id2 = list["requests"][0]["id"].as_str().expect("id").to_string();
    assert_ne!(id, id2);
    let (s, body) = app
        .post(
            &format!("/api/v1/privacy/erasure-requests/{id2}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "approved");

    // Assert: the job erases the customer once the notice has left; the request completes.
    eventually(15, "the approved erasure to run", || async {
        let (s, _) = app.get(&format!("/api/v1/contacts/{contact}")).await;
        (s == 404).then_some(())
    })
    .await;
    let (_, list) = app.get("/api/v1/privacy/erasure-requests").await;
    let done = list["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| r["id"] == id2.as_str())
        .expect("the request stays, without personal data")
        .clone();
    assert_eq!(done["status"], "completed");
    let (_, tombs) = app.get("/api/v1/privacy/tombstones").await;
    assert_eq!(tombs["tombstones"][0]["reason"], "customer_request");
    assert_eq!(tombs["tombstones"][0]["id"], done["tombstone_id"]);
    assert_eq!(audited(&app, "contact.erasure_deny").await.len(), 1);
    assert_eq!(audited(&app, "contact.erasure_approve").await.len(), 1);
    let erasures = audited(&app, "contact.erase").await;
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0]["actor"], "system", "the job erased");
    assert_eq!(erasures[0]["details"]["request"], id2.as_str());
}

#[tokio::test]
async fn privacy_settings_are_checked_whole_and_custom_words_answer_in_their_language() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let (s, defaults) = app.get("/api/v1/privacy/settings").await;
    assert_eq!(s, 200, "{defaults}");
    assert_eq!(defaults["self_service_erasure"], false);
    assert_eq!(defaults["language"], "en");
    let mut wanted = defaults.clone();
    wanted["commands"] = serde_json::json!({"en": {"opt_out": ["halt"], "opt_in": ["resume"]}});
    wanted["replies"] =
        serde_json::json!({"en": {"opted_out": "Halted. Type RESUME to hear from us again."}});
    wanted["retention"]["messages_days"] = serde_json::json!(365);

    // An agent may read but not change them.
    let (s, body) = put(&app, "/api/v1/privacy/settings", wanted.clone()).await;
    assert_eq!(s, 403, "{body}");

    // Bad input is refused whole, with the field named.
    app.login("admin@demo.example").await;
    let mut bad = wanted.clone();
    bad["retention"]["messages_days"] = serde_json::json!(0);
    let (s, body) = put(&app, "/api/v1/privacy/settings", bad).await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("messages_days")),
        "{body}"
    );
    let mut bad = wanted.clone();
    bad["commands"]["en"]["opt_in"] = serde_json::json!(["halt"]);
    let (s, body) = put(&app, "/api/v1/privacy/settings", bad).await;
    assert_eq!(s, 422, "{body}");
    let mut bad = wanted.clone();
    bad["retention_days"] = serde_json::json!(3);
    let (s, body) = put(&app, "/api/v1/privacy/settings", bad).await;
    assert_eq!(s, 422, "unknown fields are typos: {body}");
    let (_, now) = app.get("/api/v1/privacy/settings").await;
    assert_eq!(now, defaults, "nothing was saved");

    // Act: valid settings.
    let (s, saved) = put(&app, "/api/v1/privacy/settings", wanted.clone()).await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!(saved["retention"]["messages_days"], 365);
    let changes = audited(&app, "config.privacy_settings").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0]["details"]["changed"],
        serde_json::json!(["commands", "replies", "retention"])
    );

    // Assert: the customer's word and the configured reply; the built-in Afrikaans reply
    // answers the Afrikaans word.
    let token = app.new_visitor().await;
    let mut n = 0;
    let (conv, reply) = say(&app, &token, &mut n, "HALT").await;
    assert_eq!(reply, "Halted. Type RESUME to hear from us again.");
    let (_, reply) = say(&app, &token, &mut n, "resume").await;
    assert!(
        reply.contains("opted in"),
        "English text for the field not configured: {reply}"
    );
    let (_, reply) = say(&app, &token, &mut n, "vergeet my").await;
    assert!(reply.contains("JA"), "{reply}");
    let (_, reply) = say(&app, &token, &mut n, "nee").await;
    assert!(reply.contains("gekanselleer"), "{reply}");
    let contact = contact_of(&app, &conv).await;
    let (s, consents) = app
        .get(&format!("/api/v1/contacts/{contact}/consents"))
        .await;
    assert_eq!(s, 200, "{consents}");
    let list = consents["consents"].as_array().expect("consents");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "opted_out");
    assert_eq!(list[0]["wording"], "HALT");
    assert_eq!(list[1]["status"], "opted_in");
}

#[tokio::test]
async fn staff_record_consent_given_outside_the_chat_and_it_blocks_templates() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let token = app.new_visitor().await;
    let mut n = 0;
    let (conv, _) = say(&app, &token, &mut n, "hi there").await;
    let contact = contact_of(&app, &conv).await;
    let path = format!("/api/v1/contacts/{contact}/consents");
    let channel = app.demo.webchat_channel_id.clone();
    let body = serde_json::json!({"channel_id": channel, "status": "opted_out", "wording": "Phoned in: no offers please"});
    let (s, _) = app.post(&path, body.clone()).await;
    assert_eq!(s, 403, "agents do not record consent");

    app.login("admin@demo.example").await;
    let (s, r) = app
        .post(
            &path,
            serde_json::json!({"channel_id": channel, "status": "maybe"}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("opted_out")),
        "{r}"
    );
    let (s, r) = app
        .post(
            &path,
            serde_json::json!({"channel_id": switchboard_core::ChannelId::new_at(1).to_string(), "status": "opted_out"}),
        )
        .await;
    assert_eq!(s, 404, "{r}");
    let (s, r) = app.post(&path, body).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["status"], "opted_out");
    assert!(
        r["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("staff:user:")),
        "{r}"
    );

    // A template to this customer is now refused up front.
    let c: switchboard_core::ConversationId = conv.parse().expect("id");
    let refused = app
        .app
        .ensure_proactive_allowed(
            c,
            switchboard_core::ports::Lane::Live,
            &switchboard_core::Content::Template {
                name: "offer".into(),
                language: "en".into(),
                variables: vec![],
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(audited(&app, "contact.consent_record").await.len(), 1);
}

// ------------------------------------------------------- media files and retention

/// The WhatsApp image fixture as sent by another customer (`wa_id`), with its own id.
fn image_from(wa_id: &str, message_id: &str) -> Value {
    let mut p = crate::providers::fixture("whatsapp/inbound_image.json");
    let value = &mut p["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = serde_json::json!(wa_id);
    value["contacts"][0]["profile"]["name"] = serde_json::json!(format!("Customer {wa_id}"));
    value["messages"][0]["from"] = serde_json::json!(wa_id);
    value["messages"][0]["id"] = serde_json::json!(message_id);
    p
}

/// (conversation id, first message) of every WhatsApp conversation, once `n` of them have
/// their file stored.
async fn stored_images(app: &TestApp, n: usize) -> Vec<(String, Value)> {
    eventually(15, "the images to be stored", || async {
        let (_, b) = app.get("/api/v1/conversations").await;
        let mut out = Vec::new();
        for c in b["conversations"].as_array()? {
            if c["channel_kind"] != "whatsapp" {
                continue;
            }
            let id = c["id"].as_str()?.to_string();
            let (_, m) = app
                .get(&format!("/api/v1/conversations/{id}/messages"))
                .await;
            let first = m["messages"].as_array()?.first()?.clone();
            if first["content"]["media"]["stored_key"].is_string() {
                out.push((id, first));
            }
        }
        (out.len() == n).then_some(out)
    })
    .await
}

#[tokio::test]
async fn erasing_a_contact_deletes_its_media_files_but_keeps_one_another_message_uses() {
    // Arrange: two customers send the same picture; the store keeps one file for both.
    let (mock, _provider) = crate::providers::whatsapp_mock().await;
    crate::media::mount_whatsapp_media(&mock, crate::media::jpeg()).await;
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let channel = crate::providers::add_whatsapp_channel(&app, &mock.uri()).await;
    crate::media::post_whatsapp(
        &app,
        &channel,
        &image_from("27825550001", "wamid.privacy.1"),
    )
    .await;
    crate::media::post_whatsapp(
        &app,
        &channel,
        &image_from("27825550002", "wamid.privacy.2"),
    )
    .await;
    let images = stored_images(&app, 2).await;
    let key = images[0].1["content"]["media"]["stored_key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(images[1].1["content"]["media"]["stored_key"], key.as_str());
    let file = app.dir.path().join("media").join(&key);
    assert!(file.exists());

    // Act 1: erase the first customer: the file stays, the other message uses it.
    let first = contact_of(&app, &images[0].0).await;
    let (s, erased) = delete(&app, &format!("/api/v1/contacts/{first}")).await;
    assert_eq!(s, 200, "{erased}");
    assert_eq!(erased["media_files_deleted"], 0);
    assert!(file.exists(), "still used by the second customer's message");
    let (s, _) = app
        .get(&format!(
            "/api/v1/media/{}",
            images[1].1["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(s, 200, "the second customer's picture still opens");

    // Act 2: erase the second: the file goes.
    let second = contact_of(&app, &images[1].0).await;
    let (s, erased) = delete(&app, &format!("/api/v1/contacts/{second}")).await;
    assert_eq!(s, 200, "{erased}");
    assert_eq!(erased["media_files_deleted"], 1);
    assert!(
        !file.exists(),
        "the erased customers' file is gone from the media store"
    );
    assert_eq!(
        erased["tombstone"]["channel_kinds"],
        serde_json::json!(["whatsapp"])
    );
}

/// A server whose worker and retention purges read `clock`.
async fn clocked_app(clock: std::sync::Arc<switchboard_app::clock::ShiftedClock>) -> TestApp {
    crate::helpers::init();
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let config = crate::helpers::test_config(dir.path());
    let listen = config.listen;
    let app = switchboard_app::App::open(config)
        .await
        .expect("app opens")
        .with_clock(clock);
    let server = switchboard_http::Server::with_app(app, listen)
        .await
        .expect("server binds");
    let addr = server.addr();
    let app = server.app().clone();
    let demo = app
        .seed_demo(Some(crate::helpers::DEMO_PASSWORD))
        .await
        .expect("demo seeds");
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client builds");
    TestApp::from_parts(addr, app, client, demo, stop, dir)
}

#[tokio::test]
async fn the_retention_timer_expires_old_files_then_purges_old_messages_and_reports_it() {
    // Arrange: a picture and a web chat message, kept 30 days, files 7 days.
    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
    let clock = switchboard_app::clock::ShiftedClock::new(std::time::Duration::ZERO);
    let mut app = clocked_app(clock.clone()).await;
    app.login("admin@demo.example").await;
    let (mock, _provider) = crate::providers::whatsapp_mock().await;
    crate::media::mount_whatsapp_media(&mock, crate::media::jpeg()).await;
    let channel = crate::providers::add_whatsapp_channel(&app, &mock.uri()).await;
    crate::media::post_whatsapp(
        &app,
        &channel,
        &image_from("27825550003", "wamid.retention.1"),
    )
    .await;
    let image = stored_images(&app, 1).await.remove(0);
    let key = image.1["content"]["media"]["stored_key"]
        .as_str()
        .expect("key")
        .to_string();
    let file = app.dir.path().join("media").join(&key);
    let token = app.new_visitor().await;
    let mut n = 0;
    let old_words = "words-from-long-ago-1234";
    let (conv, _) = say(&app, &token, &mut n, old_words).await;
    let (_, mut settings) = app.get("/api/v1/privacy/settings").await;
    settings["retention"] = serde_json::json!({"messages_days": 30, "media_days": 7});
    let (s, body) = put(&app, "/api/v1/privacy/settings", settings).await;
    assert_eq!(s, 200, "{body}");

    // Act 1: eight days later an admin runs a purge: only the file has expired.
    clock.advance(8 * DAY);
    let (s, run) = app
        .post("/api/v1/privacy/retention/run", serde_json::json!({}))
        .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["media_deleted"], 1, "{run}");
    assert_eq!(run["messages_deleted"], 0, "{run}");
    assert!(!file.exists(), "the expired file left the media store");
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{}/messages", image.0))
        .await;
    let kept = &m["messages"][0];
    assert_eq!(kept["id"], image.1["id"], "the message stays");
    assert!(kept["content"]["media"]["stored_key"].is_null(), "{kept}");
    assert_eq!(kept["content"]["media"]["mime_type"], "image/jpeg");

    // Act 2: past thirty days the tenant's timer (a job row) runs the purge by itself.
    clock.advance(31 * DAY);
    app.app.wake_jobs();
    let runs = eventually(20, "the timer's purge report", || async {
        let (_, r) = app.get("/api/v1/privacy/retention/runs").await;
        let runs = r["runs"].as_array()?.clone();
        runs.iter()
            .any(|x| x["messages_deleted"].as_u64() >= Some(2))
            .then_some(runs)
    })
    .await;

    // Assert: the old messages are gone, the conversation shows none of them; reports and
    // audit entries tell what happened and who did it.
    let by_timer = runs
        .iter()
        .find(|x| x["messages_deleted"].as_u64() >= Some(2))
        .expect("timer run");
    assert_eq!(by_timer["policy"]["messages_days"], 30);
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert!(
        !m.to_string().contains(old_words),
        "the purged message is gone: {m}"
    );
    let purges = audited(&app, "retention.purge").await;
    assert!(
        purges
            .iter()
            .any(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("user:")))
    );
    assert!(purges.iter().any(|e| e["actor"] == "system"), "{purges:?}");
    let hits = rusqlite_free_scan(&app.dir.path().join("switchboard.db"), &[old_words]);
    assert!(hits.is_empty(), "{hits:?}");
}
