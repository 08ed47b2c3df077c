//! The web chat loop over real websockets: customer page ↔ server ↔ agent API and events.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{DEMO_PASSWORD, TestApp, eventually, spawn_app};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(url: &str, cookie: Option<&str>) -> Socket {
    let mut req = url.into_client_request().unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket connects");
    ws
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Ws::Text(v.to_string().into())).await.unwrap();
}

/// Next JSON frame, skipping pings; panics after 5 s.
pub(crate) async fn next(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("socket open")
            .expect("frame ok");
        if let Ws::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Reads frames until one matches `pred`.
pub(crate) async fn next_matching(ws: &mut Socket, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let v = next(ws).await;
        if pred(&v) {
            return v;
        }
    }
    panic!("no matching frame in 50 frames");
}

async fn open_chat(app: &TestApp, token: Option<&str>) -> (Socket, Value) {
    let mut ws = connect(
        &app.ws_url(&format!("/chat/{}/ws", app.demo.webchat_channel_id)),
        None,
    )
    .await;
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

async fn session_cookie(app: &TestApp, email: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_customer_and_an_agent_exchange_messages_both_ways() {
    let mut app = spawn_app().await;
    // The customer opens the page and says hello.
    let (mut chat, welcome) = open_chat(&app, None).await;
    assert_eq!(
        welcome["business"], "Demo Bank",
        "customers see which business they talk to"
    );
    assert_eq!(welcome["messages"].as_array().unwrap().len(), 0);
    let token = welcome["token"].as_str().unwrap().to_string();
    send(
        &mut chat,
        json!({"type": "message", "client_msg_id": "c-1", "text": "I lost my card"}),
    )
    .await;
    let accepted = next_matching(&mut chat, |v| v["type"] == "accepted").await;
    assert_eq!(accepted["duplicate"], false);
    // The automated welcome arrives, labelled as a bot.
    let bot = next_matching(&mut chat, |v| {
        v["type"] == "message" && v["message"]["sender"]["type"] == "bot"
    })
    .await;
    assert!(
        bot["message"]["content"]["body"]
            .as_str()
            .unwrap()
            .contains("automated assistant")
    );

    // The agent sees the conversation and answers.
    app.login("ann@demo.example").await;
    let (_, list) = app.get("/api/v1/conversations?view=open").await;
    let row = &list["conversations"][0];
    assert_eq!(row["channel_kind"], "webchat");
    // The demo web chat's default flow answers first; an agent may still step in.
    assert_eq!(row["state"], "bot");
    let conv = row["id"].as_str().unwrap().to_string();
    let (s, reply) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Blocked it for you <b>now</b>"}),
        )
        .await;
    assert_eq!(s, 201, "{reply}");
    assert_eq!(reply["message"]["status"], "queued");

    // The reply reaches the customer's page through the outbox, verbatim.
    let got = next_matching(&mut chat, |v| {
        v["type"] == "message" && v["message"]["sender"]["type"] == "agent"
    })
    .await;
    assert_eq!(
        got["message"]["content"]["body"],
        "Blocked it for you <b>now</b>"
    );
    assert_eq!(
        got["message"]["sender"]["name"], "Ann Agent",
        "customers see which person answers"
    );

    // The message is marked sent, and the replying agent now owns the conversation.
    let msg_id = reply["message"]["id"].as_str().unwrap().to_string();
    let app_ref = &app;
    eventually(5, "reply marked sent", || async {
        let (_, m) = app_ref
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        m["messages"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == msg_id.as_str() && x["status"] == "sent")
            .cloned()
    })
    .await;
    let (_, c) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(c["conversation"]["state"], "assigned");

    // A resend of the same client message id (after a flaky connection) is not stored twice.
    send(
        &mut chat,
        json!({"type": "message", "client_msg_id": "c-1", "text": "I lost my card"}),
    )
    .await;
    let dup = next_matching(&mut chat, |v| v["type"] == "accepted").await;
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["message_id"], accepted["message_id"]);

    // Reloading the page with the stored token resumes the same conversation.
    drop(chat);
    let (_chat2, again) = open_chat(&app, Some(&token)).await;
    let bodies: Vec<&str> = again["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[0], "I lost my card");
    assert_eq!(bodies[2], "Blocked it for you <b>now</b>");
}

#[tokio::test]
async fn agents_get_live_events_and_resume_after_a_reconnect() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app, "ann@demo.example").await;
    let mut events = connect(&app.ws_url("/api/v1/events"), Some(&cookie)).await;

    let token = app.new_visitor().await;
    app.customer_says(&token, "e-1", "first").await;
    let created = next_matching(&mut events, |v| v["type"] == "message_created").await;
    assert_eq!(created["data"]["message"]["content"]["body"], "first");
    let seen = created["seq"].as_i64().unwrap();
    drop(events);

    // While the agent is offline, more happens.
    app.customer_says(&token, "e-2", "second").await;
    app.customer_says(&token, "e-3", "third").await;

    // Reconnecting with the last seen sequence number replays everything missed, in order.
    let mut events = connect(
        &app.ws_url(&format!("/api/v1/events?after={seen}")),
        Some(&cookie),
    )
    .await;
    let mut bodies = Vec::new();
    let mut last = seen;
    while bodies.len() < 2 {
        let e = next(&mut events).await;
        let seq = e["seq"].as_i64().unwrap();
        assert!(
            seq > last,
            "events arrive in order without repeats ({seq} after {last})"
        );
        last = seq;
        if e["type"] == "message_created" && e["data"]["message"]["direction"] == "inbound" {
            bodies.push(
                e["data"]["message"]["content"]["body"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(bodies, ["second", "third"]);
}

#[tokio::test]
async fn a_customer_message_to_an_agents_conversation_reaches_the_agent_live() {
    // Messages to queued or assigned conversations create no job (nothing to decide); the
    // agent must still see them live, from the events published at ingest.
    let mut app = spawn_app().await;
    let token = app.new_visitor().await;
    app.customer_says(&token, "q-1", "hello").await;
    app.login("ann@demo.example").await;
    let (_, list) = app.get("/api/v1/conversations?view=open").await;
    let conv = list["conversations"][0]["id"].as_str().unwrap().to_string();
    // The agent steps in (replying assigns the conversation to them).
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "Ann here"}),
        )
        .await;
    assert_eq!(s, 201);
    let app_ref = &app;
    eventually(5, "conversation assigned", || async {
        let (_, c) = app_ref.get(&format!("/api/v1/conversations/{conv}")).await;
        (c["conversation"]["state"] == "assigned").then_some(())
    })
    .await;

    let cookie = session_cookie(&app, "ann@demo.example").await;
    let mut events = connect(&app.ws_url("/api/v1/events"), Some(&cookie)).await;
    app.customer_says(&token, "q-2", "my card is blocked").await;
    let created = next_matching(&mut events, |v| {
        v["type"] == "message_created" && v["data"]["message"]["direction"] == "inbound"
    })
    .await;
    assert_eq!(
        created["data"]["message"]["content"]["body"],
        "my card is blocked"
    );
    assert_eq!(created["data"]["message"]["conversation_id"], conv.as_str());
}

#[tokio::test]
async fn the_events_socket_refuses_strangers() {
    let app = spawn_app().await;
    let req = app.ws_url("/api/v1/events").into_client_request().unwrap();
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("no session, no socket");
    assert!(err.to_string().contains("401"), "{err}");
    let cookie = session_cookie(&app, "ann@demo.example").await;
    let mut req = app.ws_url("/api/v1/events").into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("cross-site socket refused");
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn bad_chat_frames_get_an_error_frame_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let (mut chat, _) = open_chat(&app, None).await;
    for (frame, code) in [
        ("{oops", "invalid_frame"),
        (
            r#"{"type":"message","client_msg_id":"x","text":""}"#,
            "empty_message",
        ),
        (r#"{"type":"hello"}"#, "already_greeted"),
    ] {
        chat.send(Ws::Text(frame.into())).await.unwrap();
        let e = next(&mut chat).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame}"
        );
    }
    send(
        &mut chat,
        json!({"type": "message", "client_msg_id": "ok-1", "text": "still here"}),
    )
    .await;
    let acc = next_matching(&mut chat, |v| v["type"] == "accepted").await;
    assert_eq!(acc["duplicate"], false);
}
