//! Typing across two nodes sharing PostgreSQL and NATS: a web chat customer typing on node A
//! shows on an agent's desk connected to node B, the agent's typing sent through node B shows
//! on the customer's page on node A, and node A's throttle counts the notice node B sent.
//! Runs when TEST_DATABASE_URL and TEST_NATS_URL are set; under CI (`CI` set) their absence is
//! a failure, since CI provides both.

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{DEMO_PASSWORD, init};
use crate::multinode::{next_matching, node};
use crate::postgres::FreshDb;

/// The NATS URL and a fresh database, or `None` (skipped) outside CI when either is missing.
async fn services() -> Option<(String, FreshDb)> {
    let ci = std::env::var("CI").is_ok();
    let (Ok(nats), true) = (
        std::env::var("TEST_NATS_URL"),
        std::env::var("TEST_DATABASE_URL").is_ok(),
    ) else {
        assert!(
            !ci,
            "TEST_NATS_URL and TEST_DATABASE_URL must be set under CI"
        );
        eprintln!("SKIPPED: multi-node typing test (set TEST_NATS_URL and TEST_DATABASE_URL)");
        return None;
    };
    Some((nats, FreshDb::create().await?))
}

/// Logs `email` in on `base`; returns the session cookie and the CSRF token.
async fn login(http: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn typing_crosses_nodes_both_ways_and_the_throttle_counts_the_other_nodes_notice() {
    init();
    let Some((nats, db)) = services().await else {
        return;
    };
    let (a, stop_a, _da, channel) = node(&db.url, &nats).await;
    let (b, stop_b, _db, _) = node(&db.url, &nats).await;

    // Arrange: the agent's desk socket is open on node B; the customer writes through node A
    // and keeps a page open there. Seeing the message on B's socket proves it listens.
    let on_b = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let (cookie, csrf_b) = login(&on_b, &b, "ann@demo.example").await;
    let mut req = format!("{}/api/v1/events", b.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut desk, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let customer = reqwest::Client::new();
    let token: Value = customer
        .post(format!("{a}/chat/{channel}/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let acc: Value = customer
        .post(format!("{a}/chat/{channel}/messages"))
        .bearer_auth(&token)
        .json(&json!({"client_msg_id": "t-1", "text": "are you there?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = acc["conversation_id"].as_str().unwrap().to_string();
    next_matching(&mut desk, |v| {
        v["type"] == "message_created" && v["data"]["message"]["conversation_id"] == conv.as_str()
    })
    .await;
    let (mut chat, _) =
        tokio_tungstenite::connect_async(format!("{}/chat/{channel}/ws", a.replace("http", "ws")))
            .await
            .expect("web chat socket on node A");
    let hello = json!({"type": "hello", "token": token}).to_string();
    chat.send(Ws::Text(hello.into())).await.unwrap();
    next_matching(&mut chat, |v| v["type"] == "welcome").await;

    // Act + assert: the customer types on node A; the desk on node B shows it.
    let typing = json!({"type": "typing"}).to_string();
    chat.send(Ws::Text(typing.into())).await.unwrap();
    let seen = next_matching(&mut desk, |v| v["type"] == "typing").await;
    assert_eq!(seen["data"]["conversation_id"], conv.as_str());
    assert!(seen.get("seq").is_none(), "typing is not a numbered event");

    // The agent types through node B; the customer's page on node A shows it.
    let r: Value = on_b
        .post(format!("{b}/api/v1/conversations/{conv}/typing"))
        .header("x-csrf-token", &csrf_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["typing"], "sent", "{r}");
    let frame = next_matching(&mut chat, |v| v["type"] == "typing").await;
    assert!(
        frame["name"].as_str().is_some_and(|n| !n.is_empty()),
        "the page names the agent: {frame}"
    );

    // Node A got B's notice before its page did, so an agent typing there now is throttled:
    // the customer is not told twice within 5 s because two nodes are involved.
    let on_a = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let (_, csrf_a) = login(&on_a, &a, "ann@demo.example").await;
    let r: Value = on_a
        .post(format!("{a}/api/v1/conversations/{conv}/typing"))
        .header("x-csrf-token", &csrf_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["typing"], "throttled", "{r}");

    stop_a.cancel();
    stop_b.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    db.drop_it().await;
}
