use serde_json::json;

use crate::helpers::{DEMO_PASSWORD, spawn_app};

#[tokio::test]
async fn login_sets_an_httponly_samesite_cookie_and_me_returns_the_user() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ADMIN@demo.example", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("sb_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (s, me) = app.get("/api/v1/me").await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "admin@demo.example");
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["tenant"]["name"], "Demo Bank");
    assert!(me["csrf_token"].as_str().is_some_and(|t| t.len() == 64));
    assert!(me["user"].get("password_hash").is_none(), "no hash leaks");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let (s1, b1) = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@demo.example", "password": "wrong-password"}),
        )
        .await;
    let (s2, b2) = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@demo.example", "password": "wrong-password"}),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2, "the answers must not reveal which accounts exist");
    let (s, body) = app.get("/api/v1/me").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}

#[tokio::test]
async fn state_changing_requests_without_the_csrf_token_are_refused() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let token = app.new_visitor().await;
    let (_, acc) = app.customer_says(&token, "c1", "hello").await;
    let conv = acc["conversation_id"].as_str().unwrap().to_string();

    let csrf = app.csrf.take();
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    app.csrf = Some("0".repeat(64));
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(s, 403, "a wrong token is refused too");
    app.csrf = csrf;
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, msgs) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let agent_msgs = msgs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"]["type"] == "agent")
        .count();
    assert_eq!(
        agent_msgs, 1,
        "only the request with the right token stored a message"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (s, _) = app.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/api/v1/me").await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn only_admins_create_users_and_duplicates_conflict() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let new_user = json!({"email": "cy@demo.example", "name": "Cy", "role": "agent", "password": "long-enough-pw"});
    let (s, _) = app.post("/api/v1/users", new_user.clone()).await;
    assert_eq!(s, 403, "an agent cannot create users");
    let (s, _) = app.get("/api/v1/users").await;
    assert_eq!(s, 403, "an agent cannot list users");

    let admin = spawn_app_as_admin(app).await;
    let (s, body) = admin.post("/api/v1/users", new_user.clone()).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["user"]["role"], "agent");
    let (s, body) = admin.post("/api/v1/users", new_user).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("email_taken"))
    );
    let (s, body) = admin
        .post("/api/v1/users", json!({"email": "dee@demo.example", "name": "Dee", "role": "agent", "password": "short"}))
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 10")
    );
    let (s, body) = admin.get("/api/v1/users").await;
    assert_eq!(s, 200);
    assert_eq!(body["users"].as_array().unwrap().len(), 4);
}

async fn spawn_app_as_admin(mut app: crate::helpers::TestApp) -> crate::helpers::TestApp {
    app.login("admin@demo.example").await;
    app
}
