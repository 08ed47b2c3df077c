//! The same end-to-end loop on PostgreSQL: a web chat customer and an agent exchange messages
//! through a server whose only state is a PostgreSQL database. Runs when `TEST_DATABASE_URL`
//! is set (CI sets it); otherwise it says it was skipped.

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{eventually, spawn_app_in};

/// A fresh database on the server named by `TEST_DATABASE_URL`, dropped by the guard.
pub struct FreshDb {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

impl FreshDb {
    pub async fn create() -> Option<FreshDb> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("SKIPPED: PostgreSQL end-to-end test (set TEST_DATABASE_URL)");
            return None;
        };
        let name = format!("sb_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL reachable at TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .expect("URL has a database name");
        Some(FreshDb {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    pub async fn drop_it(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

#[tokio::test]
async fn a_customer_and_an_agent_exchange_messages_on_postgresql() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut app = spawn_app_in(dir, Some(db.url.clone())).await;
    assert_eq!(app.app.backend, "postgres");

    let token = app.new_visitor().await;
    let (s, acc) = app
        .customer_says(&token, "pg-1", "hello from postgres")
        .await;
    assert_eq!(s, 202, "{acc}");
    let (_, dup) = app
        .customer_says(&token, "pg-1", "hello from postgres")
        .await;
    assert_eq!(dup["duplicate"], true);
    let conv = acc["conversation_id"].as_str().unwrap().to_string();

    app.login("ann@demo.example").await;
    let (s, reply) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "answered from postgres"}),
        )
        .await;
    assert_eq!(s, 201, "{reply}");
    let id = reply["message"]["id"].as_str().unwrap().to_string();
    let (app_ref, conv_ref, id_ref) = (&app, &conv, &id);
    eventually(10, "reply sent", || async move {
        let (_, m) = app_ref
            .get(&format!("/api/v1/conversations/{conv_ref}/messages"))
            .await;
        m["messages"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == id_ref.as_str() && x["status"] == "sent")
            .cloned()
    })
    .await;
    let (s, ready) = app.get("/readyz").await;
    assert_eq!((s, ready["database"].as_str()), (200, Some("postgres")));
    app.stop().await;
    db.drop_it().await;
}
