//! Bad input gets a precise 4xx with a JSON error body, and nothing is written.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

async fn message_count(app: &crate::helpers::TestApp) -> usize {
    let tenant = app.demo.tenant_id.parse().unwrap();
    let convs = app
        .app
        .store
        .list_conversations(
            tenant,
            &switchboard_core::ports::ConversationFilter {
                states: vec![],
                assignee: None,
                limit: 500,
            },
        )
        .await
        .unwrap();
    let mut n = 0;
    for c in convs {
        n += app
            .app
            .store
            .list_messages(tenant, c.conversation.id, 1000)
            .await
            .unwrap()
            .len();
    }
    n
}

#[tokio::test]
async fn malformed_and_incomplete_json_is_refused_with_the_problem_named() {
    let mut app = spawn_app().await;
    let token = app.new_visitor().await;
    let (_, acc) = app.customer_says(&token, "m1", "hello").await;
    let conv = acc["conversation_id"].as_str().unwrap().to_string();
    app.login("ann@demo.example").await;
    let before = message_count(&app).await;
    let path = format!("/api/v1/conversations/{conv}/messages");

    let cases: Vec<(Vec<u8>, &str, u16, &str, &str)> = vec![
        (
            b"{not json".to_vec(),
            "application/json",
            400,
            "invalid_json",
            "syntax error",
        ),
        (
            b"{}".to_vec(),
            "application/json",
            422,
            "invalid_field",
            "missing text",
        ),
        (
            br#"{"text": 5}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
            "wrong type",
        ),
        (
            br#"{"text": "hi", "extra": 1}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
            "unknown field",
        ),
        (
            br#"{"text": "hi"}"#.to_vec(),
            "text/plain",
            415,
            "unsupported_media_type",
            "not JSON content type",
        ),
        (
            br#"{"text": "   "}"#.to_vec(),
            "application/json",
            422,
            "invalid",
            "blank text",
        ),
    ];
    for (body, ctype, status, expected, why) in cases {
        let (s, b) = app.post_raw(&path, ctype, body).await;
        assert_eq!((s, code(&b)), (status, expected), "{why}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{why}: message present"
        );
    }
    assert_eq!(message_count(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_nothing_is_stored() {
    let mut app = spawn_app().await;
    let token = app.new_visitor().await;
    let (_, acc) = app.customer_says(&token, "m1", "hello").await;
    let conv = acc["conversation_id"].as_str().unwrap().to_string();
    app.login("ann@demo.example").await;
    let before = message_count(&app).await;
    let huge = serde_json::to_vec(&json!({"text": "x".repeat(400 * 1024)})).unwrap();
    let (s, b) = app
        .post_raw(
            &format!("/api/v1/conversations/{conv}/messages"),
            "application/json",
            huge,
        )
        .await;
    assert_eq!((s, code(&b)), (413, "payload_too_large"), "{b}");
    assert_eq!(message_count(&app).await, before);
}

#[tokio::test]
async fn unknown_ids_and_unknown_channels_get_404() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let missing = "0192f3c4-5b6a-7c8d-9e0f-112233445566";
    let (s, b) = app.get(&format!("/api/v1/conversations/{missing}")).await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let (s, b) = app.get("/api/v1/conversations/not-a-uuid").await;
    assert_eq!((s, code(&b)), (400, "invalid_id"));
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{missing}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let (s, _) = app.get(&format!("/chat/{missing}")).await;
    assert_eq!(s, 404, "unknown web chat channel page");
    let r = app
        .client
        .post(app.url(&format!("/chat/{missing}/session")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "unknown web chat channel session");
    let (s, b) = app.get("/api/v1/conversations?view=everything").await;
    assert_eq!((s, code(&b)), (400, "invalid_query"));
    let (s, b) = app.get("/no/such/route").await;
    assert_eq!((s, code(&b)), (404, "not_found"));
}

#[tokio::test]
async fn an_invalid_session_or_visitor_token_is_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", "sb_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let before = message_count(&app).await;
    let (s, b) = app.customer_says("forged-token", "m1", "hello").await;
    assert_eq!((s, code(&b)), (401, "invalid_credentials"), "{b}");
    let token = app.new_visitor().await;
    let (s, b) = app.customer_says(&token, "", "hello").await;
    assert_eq!((s, code(&b)), (422, "invalid_client_msg_id"), "{b}");
    let (s, b) = app.customer_says(&token, "m2", &"y".repeat(5000)).await;
    assert_eq!((s, code(&b)), (422, "message_too_long"), "{b}");
    assert_eq!(message_count(&app).await, before);
}

#[tokio::test]
async fn another_tenants_conversation_is_invisible() {
    // Arrange: a second business with its own agent.
    let mut app = spawn_app().await;
    let token = app.new_visitor().await;
    let (_, acc) = app
        .customer_says(&token, "m1", "private to Demo Bank")
        .await;
    let conv = acc["conversation_id"].as_str().unwrap().to_string();
    // Act: an admin of another business uses Demo Bank's conversation id everywhere.
    app.log_in_as_another_tenant().await;
    let (s1, _) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    let (s2, _) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let (s3, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    let (s4, _) = app
        .post(&format!("/api/v1/conversations/{conv}/assign"), json!({}))
        .await;
    let (s5, _) = app
        .post(&format!("/api/v1/conversations/{conv}/resolve"), json!({}))
        .await;
    let (_, list) = app.get("/api/v1/conversations").await;
    // Assert
    assert_eq!([s1, s2, s3, s4, s5], [404; 5]);
    assert_eq!(list["conversations"].as_array().unwrap().len(), 0);
}
