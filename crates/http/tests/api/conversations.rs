//! Inbox views, assignment and resolution through the API.

use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app};

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the demo's main menu has answered the customer of `conv` (its greeting and
/// the menu), so no later bot message changes the conversation's latest activity.
async fn bot_answered(app: &TestApp, conv: &str) {
    eventually(10, "the bot's greeting and menu", || async move {
        let (_, m) = app
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        let bot = m["messages"]
            .as_array()?
            .iter()
            .filter(|x| x["sender"]["type"] == "bot")
            .count();
        (bot >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn views_follow_assignment_and_resolution() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let t1 = app.new_visitor().await;
    let t2 = app.new_visitor().await;
    // The second customer writes after the bot has answered the first, so the second
    // conversation's activity is the newer one.
    let (s, a) = app.customer_says(&t1, "a", "first customer").await;
    assert_eq!(s, 202, "{a}");
    let a = a["conversation_id"].as_str().unwrap().to_string();
    bot_answered(&app, &a).await;
    let (s, b) = app.customer_says(&t2, "b", "second customer").await;
    assert_eq!(s, 202, "{b}");
    let b = b["conversation_id"].as_str().unwrap().to_string();
    bot_answered(&app, &b).await;

    let (_, open) = app.get("/api/v1/conversations?view=open").await;
    assert_eq!(ids(&open), [b.clone(), a.clone()], "newest activity first");
    let (_, un) = app.get("/api/v1/conversations?view=unassigned").await;
    assert_eq!(ids(&un).len(), 2);

    let (s, body) = app
        .post(&format!("/api/v1/conversations/{a}/assign"), json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["state"], "assigned");
    let (_, mine) = app.get("/api/v1/conversations?view=mine").await;
    assert_eq!(ids(&mine), vec![a.clone()]);
    let (_, un) = app.get("/api/v1/conversations?view=unassigned").await;
    assert_eq!(ids(&un), vec![b.clone()]);

    let (s, body) = app
        .post(&format!("/api/v1/conversations/{a}/resolve"), json!({}))
        .await;
    assert_eq!(
        (s, body["conversation"]["state"].as_str()),
        (200, Some("resolved"))
    );
    let (_, resolved) = app.get("/api/v1/conversations?view=resolved").await;
    assert_eq!(ids(&resolved), vec![a.clone()]);
    let (s, body) = app
        .post(&format!("/api/v1/conversations/{a}/resolve"), json!({}))
        .await;
    assert_eq!(s, 422, "resolving twice is refused: {body}");
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{a}/messages"),
            json!({"text": "hello?"}),
        )
        .await;
    assert_eq!(s, 422, "no replies into a resolved conversation");

    // The customer writes again: a new conversation opens, the old one stays resolved.
    let (_, again) = app.customer_says(&t1, "a2", "me again").await;
    let a2 = again["conversation_id"].as_str().unwrap().to_string();
    assert_ne!(a2, a);
    let (_, open) = app.get("/api/v1/conversations?view=open").await;
    assert!(ids(&open).contains(&a2));
}

#[tokio::test]
async fn agents_take_conversations_for_themselves_and_supervisors_assign_anyone() {
    let mut app = spawn_app().await;
    let t = app.new_visitor().await;
    let (_, c) = app.customer_says(&t, "x", "help").await;
    let conv = c["conversation_id"].as_str().unwrap().to_string();
    let users = app
        .app
        .store
        .list_users(app.demo.tenant_id.parse().unwrap())
        .await
        .unwrap();
    let ben = users
        .iter()
        .find(|u| u.email.as_str() == "ben@demo.example")
        .unwrap()
        .id
        .to_string();

    app.login("ann@demo.example").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"user_id": ben}),
        )
        .await;
    assert_eq!(s, 403, "an agent cannot hand work to a colleague");

    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"user_id": ben}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["assignee"], ben.as_str());
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"user_id": "0192f3c4-5b6a-7c8d-9e0f-112233445566"}),
        )
        .await;
    assert_eq!(s, 404, "unknown user");

    let (s, detail) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(s, 200);
    assert_eq!(detail["identities"][0]["kind"], "webchat");
}
