//! Typing across two nodes sharing PostgreSQL and NATS: a web chat customer typing on node A
//! shows on an agent's desk connected to node B, the agent's typing sent through node B shows
//! on the customer's page on node A, and node A's throttle counts the notice node B sent.
//! Runs when TEST_DATABASE_URL and TEST_NATS_URL are set; under CI (`CI` set) their absence is
//! a failure, since CI provides both.

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::helpers::init;
use crate::multinode::{
    customer_page, customer_writes, events_on, login_on, next_matching, node, services,
};

/// Tells `base` that the agent of session `http` (with `csrf`) is typing in `conv`; returns
/// the answer.
async fn agent_types(http: &reqwest::Client, base: &str, conv: &str, csrf: &str) -> Value {
    let r = http
        .post(format!("{base}/api/v1/conversations/{conv}/typing"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
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
    let (cookie, csrf_b) = login_on(&on_b, &b, "ann@demo.example").await;
    let mut desk = events_on(&b, &cookie).await;
    let customer = reqwest::Client::new();
    let (token, conv) = customer_writes(&customer, &a, &channel, "t-1", "are you there?").await;
    next_matching(&mut desk, |v| {
        v["type"] == "message_created" && v["data"]["message"]["conversation_id"] == conv.as_str()
    })
    .await;
    let mut chat = customer_page(&a, &channel, &token).await;

    // Act + assert: the customer types on node A; the desk on node B shows it.
    let typing = json!({"type": "typing"}).to_string();
    chat.send(Ws::Text(typing.into())).await.unwrap();
    let seen = next_matching(&mut desk, |v| v["type"] == "typing").await;
    assert_eq!(seen["data"]["conversation_id"], conv.as_str());
    assert!(seen.get("seq").is_none(), "typing is not a numbered event");

    // The agent types through node B; the customer's page on node A shows it.
    let r = agent_types(&on_b, &b, &conv, &csrf_b).await;
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
    let (_, csrf_a) = login_on(&on_a, &a, "ann@demo.example").await;
    let r = agent_types(&on_a, &a, &conv, &csrf_a).await;
    assert_eq!(r["typing"], "throttled", "{r}");

    stop_a.cancel();
    stop_b.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    db.drop_it().await;
}
