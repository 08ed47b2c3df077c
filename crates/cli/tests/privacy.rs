//! A data-protection officer at the command line, against the real binary: a web chat
//! customer's data is exported (to standard output and to an owner-only file) and erased
//! with `switchboard contacts`, both recorded in the audit log as `cli`; retention reports
//! and runs with `switchboard retention`; mistakes get a clear error and change nothing.

mod common;

use std::path::Path;

use common::{Served, bin, run, text};
use serde_json::{Value, json};

const PASSWORD: &str = "privacy-cli-password-1";

#[test]
fn privacy_commands_have_help() {
    for args in [
        &["contacts", "--help"][..],
        &["contacts", "export", "--help"],
        &["contacts", "erase", "--help"],
        &["retention", "--help"],
        &["retention", "report", "--help"],
        &["retention", "run", "--help"],
    ] {
        let o = bin().args(args).output().expect("runs");
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

/// Starts `switchboard serve`, lets one web chat customer write `words`, stops the server
/// (SIGTERM, graceful) and returns (conversation id, contact id).
async fn a_customer_writes(data: &Path, words: &str) -> (String, String) {
    let o = run(
        &[
            "demo",
            "--seed-only",
            "--json",
            "--admin-password",
            PASSWORD,
        ],
        data,
    );
    assert!(o.status.success(), "{}", text(&o));
    let seeded: Value = serde_json::from_slice(&o.stdout).expect("json");
    let webchat = seeded["webchat_channel_id"]
        .as_str()
        .expect("channel")
        .to_string();
    let server = Served::start(bin(), data, None).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{base}/chat/{webchat}/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let token = session["token"].as_str().expect("token");
    let r = http
        .post(format!("{base}/chat/{webchat}/messages"))
        .bearer_auth(token)
        .json(&json!({"client_msg_id": "cli-1", "text": words}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 202, "committed before it was accepted");
    let accepted: Value = r.json().await.expect("json");
    let conversation = accepted["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    server.stop();

    let db = data.join("switchboard.db");
    use sqlx::{Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let contact: String = sqlx::query("SELECT contact_id FROM conversations WHERE id = ?")
        .bind(&conversation)
        .fetch_one(&mut conn)
        .await
        .expect("the conversation")
        .get(0);
    (conversation, contact)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_is_exported_and_erased_from_the_command_line_and_both_are_audited() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Arrange
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let words = "cli-privacy-words-5521";
    let (conversation, contact) = a_customer_writes(data, words).await;

    // Act 1: export to standard output and to a file.
    let o = run(&["contacts", "export", "--tenant", "demo", &contact], data);
    assert!(o.status.success(), "{}", text(&o));
    let export: Value = serde_json::from_slice(&o.stdout).expect("the export is JSON");
    assert_eq!(export["format"], "switchboard.contact-export.v1");
    assert_eq!(export["contact"]["id"], contact.as_str());
    assert!(export.to_string().contains(words), "{export}");
    let file = data.join("export.json");
    let o = run(
        &[
            "contacts",
            "export",
            "--tenant",
            "demo",
            &contact,
            "--out",
            file.to_str().expect("path"),
        ],
        data,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 conversations"), "{}", text(&o));
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("json");
    assert_eq!(saved["contact"]["id"], contact.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "personal data readable by its owner only"
        );
    }

    // Mistakes are refused with what to do, and change nothing.
    let o = run(&["contacts", "erase", "--tenant", "demo", &contact], data);
    assert!(!o.status.success());
    assert!(text(&o).contains("--yes"), "{}", text(&o));
    let o = run(
        &["contacts", "export", "--tenant", "demo", "not-an-id"],
        data,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("is not a contact id"), "{}", text(&o));
    let o = run(&["contacts", "export", "--tenant", "nope", &contact], data);
    assert!(!o.status.success());
    assert!(text(&o).contains("switchboard tenants add"), "{}", text(&o));

    // Act 2: erase.
    let o = run(
        &[
            "contacts", "erase", "--tenant", "demo", &contact, "--yes", "--json",
        ],
        data,
    );
    assert!(o.status.success(), "{}", text(&o));
    let erased: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(erased["tombstone"]["reason"], "cli");
    assert!(
        erased["rows_deleted"]["messages"].as_u64() >= Some(1),
        "{erased}"
    );

    // Assert: gone (a second erasure and an export say so), and audited as `cli`.
    let o = run(
        &["contacts", "erase", "--tenant", "demo", &contact, "--yes"],
        data,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("no contact"), "{}", text(&o));
    let o = run(&["contacts", "export", "--tenant", "demo", &contact], data);
    assert!(!o.status.success());
    let o = run(&["audit", "list", "--tenant", "demo", "--json"], data);
    assert!(o.status.success(), "{}", text(&o));
    let entries: Value = serde_json::from_slice(&o.stdout).expect("json");
    let entries = entries.as_array().expect("entries");
    let subject = format!("contact:{contact}");
    let exports = entries
        .iter()
        .filter(|e| e["action"] == "contact.export" && e["subject"] == subject.as_str())
        .count();
    assert_eq!(exports, 2, "each export is recorded");
    let erase = entries
        .iter()
        .find(|e| e["action"] == "contact.erase")
        .expect("the erasure is recorded");
    assert_eq!(erase["actor"], "cli");
    assert_eq!(erase["subject"], subject.as_str());
    assert!(!Value::Array(entries.clone()).to_string().contains(words));
    let o = run(&["audit", "verify", "--tenant", "demo"], data);
    assert!(o.status.success(), "{}", text(&o));

    // The customer's words and ids are nowhere in the database file's tables any more.
    use sqlx::Connection;
    let db = data.join("switchboard.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE id = ?")
        .bind(&conversation)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[test]
fn retention_report_and_run_say_what_is_kept_and_what_to_do() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let o = run(&["demo", "--seed-only", "--admin-password", PASSWORD], data);
    assert!(o.status.success(), "{}", text(&o));

    let o = run(&["retention", "report", "--tenant", "demo"], data);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("messages kept"), "{}", text(&o));
    assert!(text(&o).contains("No purge has run yet."), "{}", text(&o));
    assert!(
        text(&o).contains("PUT /api/v1/privacy/settings"),
        "{}",
        text(&o)
    );

    let o = run(&["retention", "run", "--tenant", "demo", "--json"], data);
    assert!(o.status.success(), "{}", text(&o));
    let run_report: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(run_report["messages_deleted"], 0);

    let o = run(&["retention", "report", "--tenant", "demo", "--json"], data);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["runs"][0]["id"], run_report["id"]);
    assert!(report["retention"]["messages_days"].is_null());

    let o = run(&["audit", "list", "--tenant", "demo", "--json"], data);
    let entries: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        entries
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "retention.purge" && e["actor"] == "cli"),
        "a purge someone started is recorded even when nothing was due"
    );

    let o = run(&["retention", "run", "--tenant", "nope"], data);
    assert!(!o.status.success());
    assert!(text(&o).contains("switchboard tenants add"), "{}", text(&o));
}
