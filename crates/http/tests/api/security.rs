//! Access control and the audit log, end to end: login throttling and lockout (429 with
//! `Retry-After`, admin unlock), session idle expiry, API tokens (scopes, no CSRF, revocation,
//! last use, tenant isolation), role changes, and the audit entries each of these leaves.

use serde_json::{Value, json};
use switchboard_app::audit::verify_tenant;
use switchboard_core::TenantId;

use crate::helpers::{DEMO_PASSWORD, TestApp, spawn_app, spawn_app_with};

/// A customer conversation (web chat) and its contact: `(conversation id, contact id)`.
async fn conversation(app: &TestApp) -> (String, String) {
    let token = app.new_visitor().await;
    let (status, acc) = app.customer_says(&token, "s1", "hello").await;
    assert!(status < 300, "{acc}");
    let conv = acc["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let conversation_id = conv.parse().expect("id");
    let summary = app
        .app
        .store
        .conversation(tenant_id(app), conversation_id)
        .await
        .expect("lookup")
        .expect("conversation");
    (conv, summary.conversation.contact_id.to_string())
}

fn tenant_id(app: &TestApp) -> TenantId {
    app.demo.tenant_id.parse().expect("tenant id")
}

/// The demo tenant's audit actions, oldest first.
async fn actions(app: &TestApp) -> Vec<(String, String, Value)> {
    app.app
        .store
        .audit_entries(tenant_id(app), 0, 10_000)
        .await
        .expect("audit entries")
        .into_iter()
        .map(|e| (e.action, e.subject, e.details))
        .collect()
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request sent")
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let (user, _) = app
        .app
        .store
        .user_for_login(email)
        .await
        .expect("lookup")
        .expect("user exists");
    user.id.to_string()
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_with_429_until_an_admin_unlocks_it() {
    // Arrange
    let mut app = spawn_app_with(
        std::sync::Arc::new(tempfile::tempdir().expect("dir")),
        |c| c.sessions.max_failures_per_account = 3,
    )
    .await;
    // Act: two failures answer 401, the third locks.
    for _ in 0..2 {
        let r = login_status(&app, "ann@demo.example", "wrong password!").await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = login_status(&app, "ann@demo.example", "wrong password!").await;
    // Assert
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 900, "{retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // The right password is refused too while locked, without being checked.
    let r = login_status(&app, "ann@demo.example", DEMO_PASSWORD).await;
    assert_eq!(r.status().as_u16(), 429);
    // Other accounts are not affected.
    app.login("ben@demo.example").await;
    // An admin lifts the lock.
    app.login("admin@demo.example").await;
    let ann = user_id(&app, "ann@demo.example").await;
    let (status, body) = app
        .post(&format!("/api/v1/users/{ann}/unlock"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let r = login_status(&app, "ann@demo.example", DEMO_PASSWORD).await;
    assert_eq!(r.status().as_u16(), 200);
    // Every step is in the audit log, with ids only.
    let log = actions(&app).await;
    let names: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
    let subject = format!("user:{ann}");
    let about_ann: Vec<&str> = log
        .iter()
        .filter(|(_, s, _)| *s == subject)
        .map(|(a, _, _)| a.as_str())
        .collect();
    assert_eq!(
        about_ann,
        [
            "user.create",
            "auth.login_failed",
            "auth.login_failed",
            "auth.login_failed",
            "auth.lockout",
            "auth.login_failed",
            "auth.unlock",
            "auth.login"
        ],
        "{names:?}"
    );
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains("ann@demo.example") && !text.contains("wrong password"));
    let v = verify_tenant(app.app.store.as_ref(), tenant_id(&app))
        .await
        .expect("verify");
    assert!(v.ok(), "{v:?}");
}

#[tokio::test]
async fn one_client_address_guessing_many_accounts_is_locked_out() {
    let app = spawn_app_with(
        std::sync::Arc::new(tempfile::tempdir().expect("dir")),
        |c| c.sessions.max_failures_per_ip = 4,
    )
    .await;
    // Unknown e-mails count against the address only.
    for i in 0..3 {
        let r = login_status(&app, &format!("nobody{i}@demo.example"), "guess guess!").await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = login_status(&app, "nobody9@demo.example", "guess guess!").await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Even a right password from that address waits for the lock to end.
    let r = login_status(&app, "admin@demo.example", DEMO_PASSWORD).await;
    assert_eq!(r.status().as_u16(), 429);
}

async fn login_via(app: &TestApp, forwarded_for: &str, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own() {
    // The test client reaches the server from 127.0.0.1, playing the load balancer.
    let app = spawn_app_with(
        std::sync::Arc::new(tempfile::tempdir().expect("dir")),
        |c| {
            c.sessions.max_failures_per_ip = 4;
            c.proxy.trusted = vec!["127.0.0.1".to_string().try_into().expect("address")];
        },
    )
    .await;
    for i in 0..3 {
        let s = login_via(
            &app,
            "198.51.100.7",
            &format!("x{i}@demo.example"),
            "guess guess!",
        )
        .await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        login_via(&app, "198.51.100.7", "x9@demo.example", "guess guess!").await,
        429,
        "the fourth failure locks the address"
    );
    assert_eq!(
        login_via(&app, "198.51.100.7", "admin@demo.example", DEMO_PASSWORD).await,
        429,
        "the guessing client is locked"
    );
    assert_eq!(
        login_via(&app, "203.0.113.20", "admin@demo.example", DEMO_PASSWORD).await,
        200,
        "another customer behind the same balancer is not"
    );
    assert_eq!(
        login_via(
            &app,
            "6.6.6.6, 198.51.100.7",
            "admin@demo.example",
            DEMO_PASSWORD
        )
        .await,
        429,
        "a forged left part of the chain does not dodge the lock"
    );
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_for_header_does_not_dodge_the_lock() {
    let app = spawn_app_with(
        std::sync::Arc::new(tempfile::tempdir().expect("dir")),
        |c| c.sessions.max_failures_per_ip = 4,
    )
    .await;
    for i in 0..3 {
        let s = login_via(
            &app,
            &format!("198.51.100.{i}"),
            &format!("x{i}@demo.example"),
            "guess guess!",
        )
        .await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        login_via(&app, "198.51.100.9", "x9@demo.example", "guess guess!").await,
        429,
        "four failures from one TCP peer lock it, whatever the header said"
    );
    assert_eq!(
        login_via(&app, "203.0.113.20", "admin@demo.example", DEMO_PASSWORD).await,
        429,
        "the header is ignored: the TCP peer is locked"
    );
}

#[tokio::test]
async fn an_idle_session_ends_and_needs_a_new_login() {
    // Arrange: log in without a cookie jar to see the cookie.
    let app = spawn_app().await;
    let r = login_status(&app, "ann@demo.example", DEMO_PASSWORD).await;
    assert_eq!(r.status().as_u16(), 200);
    let set_cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    let token = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("sb_session="))
        .expect("session cookie")
        .to_string();
    let me = |token: String| {
        let url = app.url("/api/v1/me");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", format!("sb_session={token}"))
                .send()
                .await
                .expect("request sent")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(token.clone()).await, 200);
    // Act: the session was last used 31 minutes ago (default idle timeout: 30).
    let long_ago = switchboard_app::now() - time::Duration::minutes(31);
    app.app
        .store
        .touch_session(&switchboard_app::auth::token_hash(&token), long_ago)
        .await
        .expect("touch");
    // Assert
    assert_eq!(me(token.clone()).await, 401);
    // A use within the timeout keeps it alive.
    let recent = switchboard_app::now() - time::Duration::minutes(29);
    app.app
        .store
        .touch_session(&switchboard_app::auth::token_hash(&token), recent)
        .await
        .expect("touch");
    assert_eq!(me(token).await, 200);
}

async fn bearer(app: &TestApp, secret: &str, method: reqwest::Method, path: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .request(method.clone(), app.url(path))
        .bearer_auth(secret);
    if method != reqwest::Method::GET {
        req = req.json(&json!({}));
    }
    req.send().await.expect("request sent").status().as_u16()
}

#[tokio::test]
async fn api_tokens_are_scoped_shown_once_need_no_csrf_and_stop_when_revoked() {
    // Arrange
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (status, created) = app
        .post(
            "/api/v1/tokens",
            json!({"name": "reporting", "scope": "read"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let read = created["secret"].as_str().expect("secret").to_string();
    assert!(read.starts_with("sbt_"));
    let read_id = created["token"]["id"].as_str().expect("id").to_string();
    let (_, created) = app
        .post("/api/v1/tokens", json!({"name": "crm", "scope": "write"}))
        .await;
    let write = created["secret"].as_str().expect("secret").to_string();
    // A bad scope is refused with a clear message.
    let (status, body) = app
        .post("/api/v1/tokens", json!({"name": "x", "scope": "root"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("read, write or admin")
    );

    // Act + Assert: a read token reads, and cannot write.
    assert_eq!(
        bearer(&app, &read, reqwest::Method::GET, "/api/v1/conversations").await,
        200
    );
    let (conv, _) = conversation(&app).await;
    // What a token reads is audited under the token.
    let path = format!("/api/v1/conversations/{conv}/messages");
    assert_eq!(bearer(&app, &read, reqwest::Method::GET, &path).await, 200);
    let entries = app
        .app
        .store
        .audit_entries(tenant_id(&app), 0, 10_000)
        .await
        .expect("entries");
    let view = entries
        .iter()
        .find(|e| e.action == "conversation.view")
        .expect("view audited");
    assert_eq!(view.actor, format!("api-token:{read_id}"));
    assert_eq!(
        bearer(
            &app,
            &read,
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{conv}/resolve")
        )
        .await,
        403
    );
    // A write token writes without any CSRF header, but is capped below admin.
    let r = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/conversations/{conv}/assign")))
        .bearer_auth(&write)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        bearer(&app, &write, reqwest::Method::GET, "/api/v1/tokens").await,
        403
    );
    // A made-up token and a malformed header are 401.
    assert_eq!(
        bearer(
            &app,
            "sbt_0000",
            reqwest::Method::GET,
            "/api/v1/conversations"
        )
        .await,
        401
    );
    let r = reqwest::Client::new()
        .get(app.url("/api/v1/conversations"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 401);

    // The list shows the last use but never a secret.
    let (status, list) = app.get("/api/v1/tokens").await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&read) && !text.contains(&write));
    let listed = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == read_id.as_str())
        .expect("read token listed");
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(!text.contains("token_hash"));

    // Revoked: refused at once.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/tokens/{read_id}")))
        .header("x-csrf-token", app.csrf.clone().expect("csrf"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        bearer(&app, &read, reqwest::Method::GET, "/api/v1/conversations").await,
        401
    );

    // Audited: creation and revocation, with the token acting as itself.
    let log = actions(&app).await;
    assert!(
        log.iter()
            .any(|(a, s, _)| a == "token.create" && *s == format!("api-token:{read_id}"))
    );
    assert!(
        log.iter()
            .any(|(a, s, _)| a == "token.revoke" && *s == format!("api-token:{read_id}"))
    );
}

#[tokio::test]
async fn a_token_of_one_tenant_cannot_reach_another_tenants_data() {
    let mut app = spawn_app().await;
    app.log_in_as_another_tenant().await;
    let (status, created) = app
        .post("/api/v1/tokens", json!({"name": "other", "scope": "admin"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let (conv, _) = conversation(&app).await;
    assert_eq!(
        bearer(
            &app,
            &secret,
            reqwest::Method::GET,
            &format!("/api/v1/conversations/{conv}")
        )
        .await,
        404
    );
    assert_eq!(
        bearer(&app, &secret, reqwest::Method::GET, "/api/v1/audit").await,
        200
    );
}

#[tokio::test]
async fn admins_change_roles_and_read_the_audit_log_and_others_cannot() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let (status, _) = app.get("/api/v1/audit").await;
    assert_eq!(status, 403);
    let ben = user_id(&app, "ben@demo.example").await;
    let (status, _) = app
        .client
        .patch(app.url(&format!("/api/v1/users/{ben}")))
        .header("x-csrf-token", app.csrf.clone().expect("csrf"))
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("sent");
    assert_eq!(status, 403);

    app.login("admin@demo.example").await;
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/users/{ben}")))
        .header("x-csrf-token", app.csrf.clone().expect("csrf"))
        .json(&json!({"role": "supervisor"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    // Admins cannot change their own role.
    let me = user_id(&app, "admin@demo.example").await;
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/users/{me}")))
        .header("x-csrf-token", app.csrf.clone().expect("csrf"))
        .json(&json!({"role": "agent"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 403);
    // Ben is a supervisor from his next request.
    app.login("ben@demo.example").await;
    let (status, _) = app.get("/api/v1/users").await;
    assert_eq!(status, 200);

    app.login("admin@demo.example").await;
    let (status, page) = app.get("/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200);
    let entries = page["entries"].as_array().expect("entries");
    let change = entries
        .iter()
        .find(|e| e["action"] == "user.role_change")
        .expect("role change audited");
    assert_eq!(change["subject"], format!("user:{ben}"));
    assert_eq!(
        change["details"],
        json!({"from": "agent", "to": "supervisor"})
    );
    assert!(entries.iter().any(|e| e["action"] == "auth.login"));
    // Entries link up: each carries the hash of the one before.
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    // Pages continue where the last one ended.
    let (_, first) = app.get("/api/v1/audit?limit=1").await;
    assert_eq!(first["next_after"], 1);
    let (_, second) = app.get("/api/v1/audit?after=1&limit=1").await;
    assert_eq!(second["entries"][0]["seq"], 2);
}

#[tokio::test]
async fn views_of_contact_data_and_logouts_are_audited() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let (conv, contact) = conversation(&app).await;
    let (status, _) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(status, 200);
    let (status, _) = app.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, 204);
    let log = actions(&app).await;
    assert!(
        log.iter()
            .any(|(a, s, _)| a == "conversation.view" && *s == format!("conversation:{conv}"))
    );
    assert!(
        log.iter()
            .any(|(a, s, _)| a == "contact.view" && *s == format!("contact:{contact}"))
    );
    assert_eq!(log.last().map(|(a, _, _)| a.as_str()), Some("auth.logout"));
}

#[tokio::test]
async fn configuration_changes_are_audited_with_ids_only() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let (status, q) = app.post("/api/v1/queues", json!({"name": "Loans"})).await;
    assert_eq!(status, 201, "{q}");
    let queue = q["queue"]["id"].as_str().expect("queue id").to_string();
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/queues/{queue}")))
        .header("x-csrf-token", app.csrf.clone().expect("csrf"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 204);
    let (status, added) = app
        .post(
            "/api/v1/channels",
            json!({"kind": "telegram", "name": "tg", "validate": false,
                   "credentials": {"bot_token": "123:audit-secret"}}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let channel = added["channel"]["id"].as_str().expect("id");
    let log = actions(&app).await;
    let queue_changes: Vec<&Value> = log
        .iter()
        .filter(|(a, s, _)| a == "config.queue_change" && *s == format!("queue:{queue}"))
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(
        queue_changes,
        [&json!({"change": "create"}), &json!({"change": "delete"})]
    );
    assert!(log.iter().any(|(a, s, d)| a == "config.channel_add"
        && *s == format!("channel:{channel}")
        && *d == json!({"kind": "telegram"})));
    // The demo's seeding loaded flows: recorded with their ids and versions.
    assert!(log.iter().any(|(a, _, _)| a == "config.flow_load"));
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains("audit-secret") && !text.contains("Loans"));
}
