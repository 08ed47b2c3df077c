//! Two nodes sharing PostgreSQL and NATS JetStream: a customer writes to node A, the agent's
//! live page is connected to node B and sees it; the agent's reply, accepted by node B, is
//! sent by whichever node claims it. Runs when both TEST_DATABASE_URL and TEST_NATS_URL are
//! set (CI sets them).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_http::Server;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEMO_PASSWORD, eventually, init, test_config};
use crate::postgres::FreshDb;

async fn node(db: &str, nats: &str) -> (String, CancellationToken, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.database_url = Some(db.to_string());
    config.nats_url = Some(nats.to_string());
    let server = Server::build(config).await.expect("node builds");
    let demo = server
        .app()
        .seed_demo(Some(DEMO_PASSWORD))
        .await
        .expect("demo seeds");
    let base = format!("http://{}", server.addr());
    let stop = CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    (base, stop, dir, demo.webchat_channel_id)
}

#[tokio::test]
async fn an_agent_on_node_b_sees_live_a_message_that_arrived_at_node_a() {
    init();
    let Ok(nats) = std::env::var("TEST_NATS_URL") else {
        eprintln!("SKIPPED: multi-node test (set TEST_NATS_URL and TEST_DATABASE_URL)");
        return;
    };
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let (a, stop_a, _da, channel) = node(&db.url, &nats).await;
    let (b, stop_b, _db, channel_b) = node(&db.url, &nats).await;
    assert_eq!(channel, channel_b, "both nodes serve the same data");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // The agent logs in on node B and opens the live feed there.
    let r = http
        .post(format!("{b}/api/v1/auth/login"))
        .json(&json!({"email": "ann@demo.example", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let login: Value = r.json().await.unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_string();
    let mut req = format!("{}/api/v1/events", b.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // A customer writes to node A.
    let token: Value = http
        .post(format!("{a}/chat/{channel}/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let acc: Value = http
        .post(format!("{a}/chat/{channel}/messages"))
        .bearer_auth(&token)
        .json(&json!({"client_msg_id": "mn-1", "text": "hello node A"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = acc["conversation_id"].as_str().unwrap().to_string();

    // Node B's page receives it live.
    let seen = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Ws::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "message_created"
                && v["data"]["message"]["content"]["body"] == "hello node A"
            {
                break v;
            }
        }
    };
    assert_eq!(seen["data"]["message"]["conversation_id"], conv.as_str());

    // The agent answers through node B; the reply is sent by one of the nodes.
    let (s, reply) = {
        let r = http
            .post(format!("{b}/api/v1/conversations/{conv}/messages"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"text": "hello from node B"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 201, "{reply}");
    let id = reply["message"]["id"].as_str().unwrap().to_string();
    let (http_ref, a_ref, conv_ref, id_ref) = (&http, &a, &conv, &id);
    eventually(10, "reply sent, seen from node A", || async move {
        let m: Value = http_ref
            .get(format!("{a_ref}/api/v1/conversations/{conv_ref}/messages"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        m["messages"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == id_ref.as_str() && x["status"] == "sent")
            .cloned()
    })
    .await;

    stop_a.cancel();
    stop_b.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.drop_it().await;
}
