//! The access table: every route of the server, who may call it, and a walk that checks it.
//!
//! The list of routes is read from `src/routes/*.rs` (every `.route("…", get(…).post(…))`),
//! so a new route that is missing from [`TABLE`] fails
//! `every_route_is_in_the_access_table`; a stale table entry fails it too. For each staff
//! route the walk checks, over HTTP against a real server:
//! - without a session: 401;
//! - as each role below the route's minimum: 403 (with a body that would otherwise be valid,
//!   so the refusal is about the role);
//! - as each role at or above it: neither 401 nor 403 nor 5xx, and 2xx for reads;
//! - as the admin of a second tenant, with the first tenant's ids in the path: 404.

use std::collections::BTreeSet;

use serde_json::json;
use switchboard_core::Role;

use crate::helpers::{DEMO_PASSWORD, TestApp, spawn_app};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// No staff login (webhooks, web chat, health, login, pages): the route authenticates
    /// its caller another way (signature, visitor token) or serves public content.
    Public,
    /// Staff with at least this role.
    Staff(Role),
}

use Access::{Public, Staff};
const AGENT: Access = Staff(Role::Agent);
const SUPERVISOR: Access = Staff(Role::Supervisor);
const ADMIN: Access = Staff(Role::Admin);

/// One row: method, route pattern (as written in the router), access, and the JSON body the
/// walk sends (placeholders like `{conversation}` are filled with real ids).
struct Row(&'static str, &'static str, Access, Option<&'static str>);

/// Every route. Keep in the router's spelling; see the module docs.
const TABLE: &[Row] = &[
    // public
    Row("GET", "/", Public, None),
    Row("GET", "/agent", Public, None),
    Row("GET", "/supervisor", Public, None),
    Row("GET", "/static/{*path}", Public, None),
    Row("GET", "/healthz", Public, None),
    Row("GET", "/readyz", Public, None),
    Row("GET", "/api/v1/demo/accounts/{account}", Public, None),
    Row("POST", "/api/v1/auth/login", Public, None),
    Row("GET", "/hooks/{kind}/{id}", Public, None),
    Row("POST", "/hooks/{kind}/{id}", Public, None),
    Row("GET", "/chat/{channel}", Public, None),
    Row("GET", "/chat/{channel}/ws", Public, None),
    Row("POST", "/chat/{channel}/session", Public, None),
    Row("POST", "/chat/{channel}/messages", Public, None),
    Row("GET", "/chat/{channel}/media/{message_id}", Public, None),
    // any staff member
    Row("GET", "/api/v1/me", AGENT, None),
    Row("GET", "/api/v1/events", AGENT, None),
    Row("GET", "/api/v1/conversations", AGENT, None),
    Row("GET", "/api/v1/conversations/{id}", AGENT, None),
    Row("GET", "/api/v1/conversations/{id}/messages", AGENT, None),
    Row(
        "POST",
        "/api/v1/conversations/{id}/messages",
        AGENT,
        Some(r#"{"text": "walk"}"#),
    ),
    Row(
        "POST",
        "/api/v1/conversations/{id}/assign",
        AGENT,
        Some("{}"),
    ),
    // The walk's message is the customer's own: 409 (only failed outbound ones go again).
    Row(
        "POST",
        "/api/v1/conversations/{id}/messages/{message_id}/retry",
        AGENT,
        None,
    ),
    Row(
        "POST",
        "/api/v1/conversations/{id}/typing",
        AGENT,
        Some("{}"),
    ),
    Row("GET", "/api/v1/desk/counts", AGENT, None),
    Row("GET", "/api/v1/channels/{id}/templates", AGENT, None),
    Row(
        "POST",
        "/api/v1/conversations/{id}/resolve",
        AGENT,
        Some("{}"),
    ),
    Row(
        "POST",
        "/api/v1/conversations/{id}/reopen",
        AGENT,
        Some("{}"),
    ),
    Row(
        "POST",
        "/api/v1/conversations/{id}/flow",
        AGENT,
        Some(r#"{"flow_id": "main_menu"}"#),
    ),
    Row("POST", "/api/v1/conversations/{id}/take", AGENT, Some("{}")),
    Row(
        "POST",
        "/api/v1/conversations/{id}/transfer",
        AGENT,
        Some(r#"{"to_queue": "{queue}"}"#),
    ),
    Row("GET", "/api/v1/conversations/{id}/notes", AGENT, None),
    Row(
        "POST",
        "/api/v1/conversations/{id}/notes",
        AGENT,
        Some(r#"{"body": "walk"}"#),
    ),
    Row("GET", "/api/v1/contacts/{id}", AGENT, None),
    Row("GET", "/api/v1/contacts/{id}/consents", AGENT, None),
    Row("GET", "/api/v1/privacy/settings", AGENT, None),
    Row(
        "POST",
        "/api/v1/contacts/{id}/merge",
        AGENT,
        Some(r#"{"other": "{other_contact}"}"#),
    ),
    Row("GET", "/api/v1/media/{message_id}", AGENT, None),
    // Multipart only: the walk's JSON body gets 415 once access is granted.
    Row(
        "POST",
        "/api/v1/conversations/{id}/attachments",
        AGENT,
        Some(r#"{"caption": "walk"}"#),
    ),
    Row("GET", "/api/v1/channels", AGENT, None),
    Row("GET", "/api/v1/queues", AGENT, None),
    Row("GET", "/api/v1/queues/{id}", AGENT, None),
    Row(
        "PUT",
        "/api/v1/me/presence",
        AGENT,
        Some(r#"{"presence": "away"}"#),
    ),
    Row("GET", "/api/v1/agents", AGENT, None),
    Row("GET", "/api/v1/desk/conversations", AGENT, None),
    Row("GET", "/api/v1/canned-responses", AGENT, None),
    Row(
        "POST",
        "/api/v1/canned-responses/{id}/render",
        AGENT,
        Some(r#"{"conversation_id": "{conversation}"}"#),
    ),
    Row("POST", "/api/v1/auth/logout", AGENT, Some("{}")),
    // supervisors
    Row("GET", "/api/v1/users", SUPERVISOR, None),
    Row("GET", "/api/v1/supervisor", SUPERVISOR, None),
    Row(
        "POST",
        "/api/v1/queues",
        SUPERVISOR,
        Some(r#"{"name": "walk {role}"}"#),
    ),
    Row(
        "PUT",
        "/api/v1/queues/{id}",
        SUPERVISOR,
        Some(r#"{"name": "walked {role}"}"#),
    ),
    Row("DELETE", "/api/v1/queues/{id}", SUPERVISOR, None),
    Row(
        "PUT",
        "/api/v1/agents/{id}",
        SUPERVISOR,
        Some(r#"{"capacity": 3}"#),
    ),
    Row(
        "POST",
        "/api/v1/canned-responses",
        SUPERVISOR,
        Some(r#"{"shortcut": "walk-{role}", "title": "t", "body": "b"}"#),
    ),
    Row(
        "PUT",
        "/api/v1/canned-responses/{id}",
        SUPERVISOR,
        Some(r#"{"shortcut": "walked-{role}", "title": "t", "body": "b"}"#),
    ),
    Row("DELETE", "/api/v1/canned-responses/{id}", SUPERVISOR, None),
    Row(
        "POST",
        "/api/v1/contacts/{id}/consents",
        SUPERVISOR,
        Some(r#"{"channel_id": "{channel}", "status": "opted_in"}"#),
    ),
    Row("GET", "/api/v1/privacy/erasure-requests", SUPERVISOR, None),
    Row("GET", "/api/v1/privacy/tombstones", SUPERVISOR, None),
    Row("GET", "/api/v1/privacy/retention/runs", SUPERVISOR, None),
    Row(
        "POST",
        "/api/v1/flows/{flow_id}/start",
        SUPERVISOR,
        Some(r#"{"contact_id": "{contact}", "channel_id": "{channel}"}"#),
    ),
    // admins
    Row(
        "POST",
        "/api/v1/users",
        ADMIN,
        Some(
            r#"{"email": "walk-{role}@demo.example", "name": "Walk", "role": "agent", "password": "walk-password-1"}"#,
        ),
    ),
    Row(
        "PATCH",
        "/api/v1/users/{id}",
        ADMIN,
        Some(r#"{"role": "agent"}"#),
    ),
    Row("POST", "/api/v1/users/{id}/unlock", ADMIN, Some("{}")),
    Row(
        "POST",
        "/api/v1/channels",
        ADMIN,
        Some(
            r#"{"kind": "telegram", "name": "walk", "credentials": {"bot_token": "123:walk"}, "validate": false}"#,
        ),
    ),
    Row("POST", "/api/v1/channels/{id}/resume", ADMIN, Some("{}")),
    Row("GET", "/api/v1/audit", ADMIN, None),
    Row("GET", "/api/v1/tokens", ADMIN, None),
    Row(
        "POST",
        "/api/v1/tokens",
        ADMIN,
        Some(r#"{"name": "walk", "scope": "read"}"#),
    ),
    Row("DELETE", "/api/v1/tokens/{id}", ADMIN, None),
    Row("GET", "/api/v1/contacts/{id}/export", ADMIN, None),
    Row("PUT", "/api/v1/privacy/settings", ADMIN, Some("{}")),
    Row(
        "POST",
        "/api/v1/privacy/erasure-requests/{id}/approve",
        ADMIN,
        None,
    ),
    Row(
        "POST",
        "/api/v1/privacy/erasure-requests/{id}/deny",
        ADMIN,
        Some(r#"{"note": "walk"}"#),
    ),
    Row("POST", "/api/v1/privacy/retention/run", ADMIN, None),
    // Last: it erases the contact the rows above use.
    Row("DELETE", "/api/v1/contacts/{id}", ADMIN, None),
];

/// `(METHOD, path)` of every route the routers declare, read from their source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("routes folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("readable");
        let mut rest = src.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments, up to its closing parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[..end];
            let Some(q1) = args.find('"') else { continue };
            let Some(q2) = args[q1 + 1..].find('"') else {
                continue;
            };
            let route = &args[q1 + 1..q1 + 1 + q2];
            let methods = &args[q1 + 2 + q2..];
            for m in ["get", "post", "put", "patch", "delete"] {
                let needle = format!("{m}(");
                let calls = methods.match_indices(&needle).filter(|(i, _)| {
                    // Only whole words: `get(` but not `target(`.
                    methods[..*i]
                        .chars()
                        .last()
                        .is_none_or(|c| !c.is_alphanumeric() && c != '_')
                });
                if calls.count() > 0 {
                    found.insert((m.to_uppercase(), route.to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn every_route_is_in_the_access_table() {
    let source = routes_in_source();
    assert!(
        source.len() > 30,
        "the route scan found too little: {source:?}"
    );
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|Row(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = source.difference(&table).collect();
    let stale: Vec<_> = table.difference(&source).collect();
    assert!(
        missing.is_empty(),
        "routes without an access rule: add them to TABLE in tests/api/access.rs with the role they need: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "TABLE rows for routes that no longer exist: {stale:?}"
    );
}

/// Ids of the first tenant the walk puts in paths and bodies.
struct Ids {
    conversation: String,
    contact: String,
    other_contact: String,
    message: String,
    channel: String,
    queue: String,
    canned: String,
    token: String,
    user: String,
    missing: String,
}

async fn ids(app: &mut TestApp) -> Ids {
    let visitor = app.new_visitor().await;
    let (_, acc) = app.customer_says(&visitor, "w1", "hello").await;
    let conversation = acc["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let message = acc["message_id"].as_str().expect("message").to_string();
    let other = app.new_visitor().await;
    let (_, acc2) = app.customer_says(&other, "w2", "hello").await;
    let tenant = app.demo.tenant_id.parse().expect("tenant");
    let contact_of = |conv: String| {
        let store = app.app.store.clone();
        async move {
            store
                .conversation(tenant, conv.parse().expect("id"))
                .await
                .expect("lookup")
                .expect("conversation")
                .conversation
                .contact_id
                .to_string()
        }
    };
    let contact = contact_of(conversation.clone()).await;
    let other_contact =
        contact_of(acc2["conversation_id"].as_str().expect("conv").to_string()).await;
    app.login("admin@demo.example").await;
    let (s, q) = app
        .post("/api/v1/queues", json!({"name": "walk queue"}))
        .await;
    assert_eq!(s, 201, "{q}");
    let (s, c) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "walk", "title": "t", "body": "b"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let (s, t) = app
        .post("/api/v1/tokens", json!({"name": "walk", "scope": "read"}))
        .await;
    assert_eq!(s, 201, "{t}");
    let (s, u) = app
        .post(
            "/api/v1/users",
            json!({"email": "target@demo.example", "name": "Target", "role": "agent", "password": "target-password"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    Ids {
        conversation,
        contact,
        other_contact,
        message,
        channel: app.demo.webchat_channel_id.clone(),
        queue: q["queue"]["id"].as_str().expect("queue id").to_string(),
        canned: c["canned_response"]["id"]
            .as_str()
            .or_else(|| c["canned"]["id"].as_str())
            .or_else(|| c["id"].as_str())
            .expect("canned id")
            .to_string(),
        token: t["token"]["id"].as_str().expect("token id").to_string(),
        user: u["user"]["id"].as_str().expect("user id").to_string(),
        missing: "0192f3c4-5b6a-7c8d-9e0f-112233445566".to_string(),
    }
}

/// The concrete path and body of a row.
fn fill(row: &Row, ids: &Ids, role: &str) -> (String, Option<String>) {
    let id_for = |path: &str| -> String {
        let table = [
            ("/api/v1/conversations/", &ids.conversation),
            ("/api/v1/contacts/", &ids.contact),
            ("/api/v1/queues/", &ids.queue),
            ("/api/v1/agents/", &ids.user),
            ("/api/v1/users/", &ids.user),
            ("/api/v1/canned-responses/", &ids.canned),
            ("/api/v1/channels/", &ids.channel),
            ("/api/v1/tokens/", &ids.token),
            // No request exists: the id only has to be well-formed.
            ("/api/v1/privacy/erasure-requests/", &ids.missing),
        ];
        table
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, id)| (*id).clone())
            .unwrap_or_default()
    };
    let path = row
        .1
        .replace("{id}", &id_for(row.1))
        .replace("{message_id}", &ids.message)
        .replace("{flow_id}", "main_menu");
    let body = row.3.map(|b| {
        b.replace("{conversation}", &ids.conversation)
            .replace("{other_contact}", &ids.other_contact)
            .replace("{contact}", &ids.contact)
            .replace("{channel}", &ids.channel)
            .replace("{queue}", &ids.queue)
            .replace("{role}", role)
    });
    (path, body)
}

/// A logged-in client of one role (its own cookie jar and CSRF token).
struct Caller {
    client: reqwest::Client,
    csrf: Option<String>,
}

impl Caller {
    async fn login(app: &TestApp, email: &str) -> Caller {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let r = client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": DEMO_PASSWORD}))
            .send()
            .await
            .expect("login sent");
        assert_eq!(r.status().as_u16(), 200, "login as {email}");
        let body: serde_json::Value = r.json().await.expect("json");
        Caller {
            client,
            csrf: body["csrf_token"].as_str().map(str::to_string),
        }
    }

    fn anonymous() -> Caller {
        Caller {
            client: reqwest::Client::new(),
            csrf: None,
        }
    }

    async fn call(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let method: reqwest::Method = method.parse().expect("method");
        let mut req = self.client.request(method, app.url(path));
        if let Some(c) = &self.csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }
}

#[tokio::test]
async fn every_staff_route_enforces_its_role_and_refuses_another_tenants_ids() {
    // Arrange
    let mut app = spawn_app().await;
    let ids = ids(&mut app).await;
    for email in ["sam@demo.example"] {
        app.app
            .create_user(
                app.demo.tenant_id.parse().expect("tenant"),
                email,
                "Sam Supervisor",
                Role::Supervisor,
                DEMO_PASSWORD,
            )
            .await
            .expect("supervisor");
    }
    let staff_rows: Vec<&Row> = TABLE.iter().filter(|r| r.2 != Public).collect();

    // Another tenant's admin with this tenant's ids in the path: 404, before any change.
    app.log_in_as_another_tenant().await;
    let other = Caller::login(&app, "eve@other.example").await;
    for row in staff_rows.iter().filter(|r| r.1.contains('{')) {
        let (path, body) = fill(row, &ids, "other");
        let (status, text) = other.call(&app, row.0, &path, body.as_deref()).await;
        assert_eq!(
            status, 404,
            "{} {path} as another tenant's admin: {text}",
            row.0
        );
    }

    // Without a session: 401.
    let anonymous = Caller::anonymous();
    for row in &staff_rows {
        let (path, body) = fill(row, &ids, "anon");
        let (status, text) = anonymous.call(&app, row.0, &path, body.as_deref()).await;
        assert_eq!(status, 401, "{} {path} without a session: {text}", row.0);
    }

    // Each role: 403 below the minimum, allowed at or above it.
    let roles = [
        (Role::Agent, "ann@demo.example"),
        (Role::Supervisor, "sam@demo.example"),
        (Role::Admin, "admin@demo.example"),
    ];
    let mut callers = Vec::new();
    for (_, email) in roles {
        callers.push(Caller::login(&app, email).await);
    }
    for row in &staff_rows {
        let Staff(min) = row.2 else { continue };
        for (i, (role, email)) in roles.iter().enumerate() {
            let (path, body) = fill(row, &ids, role.as_str());
            let (status, text) = callers[i].call(&app, row.0, &path, body.as_deref()).await;
            let what = format!("{} {path} as {role}", row.0);
            if role.includes(min) {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{what}: expected to be allowed, got {status} {text}"
                );
                if row.0 == "GET" && path != "/api/v1/events" && !path.starts_with("/api/v1/media/")
                {
                    assert!((200..300).contains(&status), "{what}: {status} {text}");
                }
            } else {
                assert_eq!(status, 403, "{what}: expected 403, got {text}");
            }
            if row.1 == "/api/v1/auth/logout" {
                callers[i] = Caller::login(&app, email).await;
            }
        }
    }
}
