//! Routing end to end: web chat customers go through the bundled bot, ask for a person, and
//! the real router (a worker in the server) assigns them by presence, skills and capacity;
//! transfers, internal notes, wrap-up codes, SLA timers across a restart, and the two-node
//! PostgreSQL guarantee that a conversation is never assigned twice.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_core::routing::{AgentPresence, AgentSettings};
use switchboard_core::{ConversationId, EventKind, TenantId, UserId};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_in};

/// A customer on the demo web chat who asks the bot for a person; returns the conversation.
async fn customer_asks_for_agent(app: &TestApp, tag: &str) -> String {
    let token = app.new_visitor().await;
    let (s, first) = app.customer_says(&token, &format!("{tag}-1"), "hi").await;
    assert_eq!(s, 202, "{first}");
    let (s, second) = app
        .customer_says(&token, &format!("{tag}-2"), "agent")
        .await;
    assert_eq!(s, 202, "{second}");
    second["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string()
}

/// A conversation with its `routing` fields (the conversation at the top level).
async fn row(app: &TestApp, conv: &str) -> Value {
    let (s, body) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(s, 200, "{body}");
    let mut row = body["conversation"].clone();
    row["routing"] = body["routing"].clone();
    row
}

/// Waits until the conversation is assigned and returns the assignee.
async fn wait_assigned(app: &TestApp, conv: &str) -> String {
    eventually(10, &format!("{conv} assigned"), || async {
        let (_, b) = app.get(&format!("/api/v1/conversations/{conv}")).await;
        (b["conversation"]["state"] == "assigned")
            .then(|| b["conversation"]["assignee"].as_str().map(str::to_string))
            .flatten()
    })
    .await
}

/// Waits until the router has placed the conversation in a queue (still waiting).
async fn wait_placed(app: &TestApp, conv: &str) -> Value {
    eventually(10, &format!("{conv} placed in a queue"), || async {
        let r = row(app, conv).await;
        (!r["routing"]["queue"].is_null()).then_some(r)
    })
    .await
}

/// The id of a staff user by display name.
async fn user_id(app: &TestApp, name: &str) -> String {
    let (s, body) = app.get("/api/v1/agents").await;
    assert_eq!(s, 200, "{body}");
    body["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["user_id"].as_str())
        .expect("user exists")
        .to_string()
}

async fn queue_id(app: &TestApp, name: &str) -> String {
    let (_, body) = app.get("/api/v1/queues").await;
    body["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .and_then(|q| q["id"].as_str())
        .expect("queue exists")
        .to_string()
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .put(app.url(path))
        .header("x-csrf-token", app.csrf.clone().expect("logged in"))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_customer_who_asks_for_an_agent_goes_to_an_available_agent_and_never_to_an_offline_one() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;

    // Everyone is offline: the conversation is placed in the flow's queue and waits.
    let conv = customer_asks_for_agent(&app, "a").await;
    let placed = wait_placed(&app, &conv).await;
    assert_eq!(placed["routing"]["queue"], queue_id(&app, "general").await);
    assert_eq!(
        placed["state"], "queued",
        "offline agents get nothing: {placed}"
    );
    assert!(placed["assignee"].is_null());
    assert!(
        !placed["routing"]["timer_due"].is_null(),
        "a waiting conversation keeps an SLA timer: {placed}"
    );

    // Ann becomes available: the router gives it to her (Ben stays offline).
    app.set_presence("available").await;
    assert_eq!(wait_assigned(&app, &conv).await, ann);
    let (_, mine) = app.get("/api/v1/desk/conversations?view=mine").await;
    assert_eq!(mine["conversations"][0]["id"], conv.as_str());
    assert_eq!(
        mine["conversations"][0]["routing"]["last_agent"],
        ann.as_str()
    );
}

#[tokio::test]
async fn a_skill_the_flow_asks_for_decides_who_gets_the_conversation() {
    let mut app = spawn_app().await;
    // Ben collects, Ann lends; the loan flow hands off to `loans` with skill `lending`.
    app.login("ben@demo.example").await;
    app.set_presence("available").await;
    app.login("admin@demo.example").await;
    let ben = user_id(&app, "Ben Agent").await;
    let loans = queue_id(&app, "loans").await;
    let conv = customer_asks_for_agent(&app, "s").await;
    wait_placed(&app, &conv).await;
    // Move it to loans (supervisor transfer to a queue): Ben lacks `lending`, so it waits.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_queue": loans, "note": "wants a loan"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["state"], "queued", "{body}");
    assert_eq!(body["conversation"]["routing"]["queue"], loans.as_str());
    // A transfer to Ben by hand is refused for the same reason.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_agent": ben}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("skill"),
        "{body}"
    );
    // Ann (lending) comes online and gets it.
    app.login("ann@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;
    app.set_presence("available").await;
    assert_eq!(wait_assigned(&app, &conv).await, ann);
}

#[tokio::test]
async fn at_capacity_the_backlog_waits_fifo_and_drains_when_a_slot_frees() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;
    let (s, body) = put(
        &app,
        &format!("/api/v1/agents/{ann}"),
        json!({"capacity": 1}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    app.login("ann@demo.example").await;
    app.set_presence("available").await;

    let first = customer_asks_for_agent(&app, "f1").await;
    assert_eq!(wait_assigned(&app, &first).await, ann);
    let second = customer_asks_for_agent(&app, "f2").await;
    wait_placed(&app, &second).await;
    let third = customer_asks_for_agent(&app, "f3").await;
    wait_placed(&app, &third).await;
    for c in [&second, &third] {
        assert_eq!(row(&app, c).await["state"], "queued", "Ann is full");
    }

    // Ann resolves the first: the oldest waiting conversation takes the slot.
    let (s, body) = app
        .post(&format!("/api/v1/conversations/{first}/resolve"), json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(wait_assigned(&app, &second).await, ann);
    assert_eq!(row(&app, &third).await["state"], "queued", "still one slot");

    // Taking by hand is refused at capacity too.
    let (s, body) = app
        .post(&format!("/api/v1/conversations/{third}/take"), json!({}))
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limit"),
        "{body}"
    );
}

#[tokio::test]
async fn a_transfer_carries_a_note_that_the_customer_never_sees() {
    let mut app = spawn_app().await;
    app.login("ben@demo.example").await;
    let ben = user_id(&app, "Ben Agent").await;
    app.set_presence("available").await;
    let conv = customer_asks_for_agent(&app, "t").await;
    assert_eq!(wait_assigned(&app, &conv).await, ben);

    app.login("ann@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;
    app.set_presence("available").await;
    // Ann cannot move Ben's conversation.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_agent": ann}),
        )
        .await;
    assert_eq!(s, 409, "agents transfer only their own work: {body}");

    app.login("ben@demo.example").await;
    let secret = "Customer is upset about fees <b>handle gently</b>";
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_agent": ann, "note": secret}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["assignee"], ann.as_str());
    let (s, note) = app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            json!({"body": "internal: check the account first"}),
        )
        .await;
    assert_eq!(s, 201, "{note}");

    let (_, notes) = app
        .get(&format!("/api/v1/conversations/{conv}/notes"))
        .await;
    let notes = notes["notes"].as_array().expect("notes").clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["kind"], "transfer");
    assert_eq!(notes[0]["body"], secret);
    assert_eq!(notes[0]["data"]["from_agent"], ben.as_str());
    assert_eq!(notes[0]["data"]["to_agent"], ann.as_str());
    assert_eq!(notes[1]["kind"], "note");

    // Nothing of it is a message, so nothing reaches the customer's channel.
    let (_, messages) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let text = messages.to_string();
    assert!(!text.contains("upset about fees") && !text.contains("check the account"));
    // The desks hear about the note.
    let tenant: TenantId = app.demo.tenant_id.parse().expect("tenant");
    let events = app
        .app
        .store
        .events_after(tenant, 0, 1000)
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::NoteAdded { note } if note.body == secret))
    );
}

#[tokio::test]
async fn a_queue_that_requires_a_wrap_up_code_refuses_to_resolve_without_one() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    app.set_presence("available").await;
    let loans = queue_id(&app, "loans").await;
    let conv = customer_asks_for_agent(&app, "w").await;
    wait_assigned(&app, &conv).await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_queue": loans}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    wait_assigned(&app, &conv).await;
    assert_eq!(row(&app, &conv).await["routing"]["queue"], loans.as_str());

    let cases = [
        (json!({}), 422, "no code"),
        (json!({"wrap_up_code": "  "}), 422, "blank code"),
        (json!({"wrap_up_code": "sold"}), 422, "another queue's code"),
    ];
    for (body, status, why) in cases {
        let (s, b) = app
            .post(&format!("/api/v1/conversations/{conv}/resolve"), body)
            .await;
        assert_eq!(s, status, "{why}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("application_complete") && msg.contains("declined"),
            "{why}: the message names the codes: {msg}"
        );
        assert_eq!(
            row(&app, &conv).await["state"],
            "assigned",
            "{why}: nothing changed"
        );
    }
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/resolve"),
            json!({"wrap_up_code": "more_documents"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["conversation"]["state"], "resolved");
    let (_, resolved) = app.get("/api/v1/desk/conversations?view=resolved").await;
    assert_eq!(
        resolved["conversations"][0]["routing"]["wrap_up_code"],
        "more_documents"
    );

    // Reopen puts it back in its queue.
    let (s, b) = app
        .post(&format!("/api/v1/conversations/{conv}/reopen"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["conversation"]["routing"]["wrap_up_code"].is_null());
}

#[tokio::test]
async fn an_sla_breach_timer_survives_a_restart_and_fires() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let general = queue_id(&app, "general").await;
    let (s, body) = put(
        &app,
        &format!("/api/v1/queues/{general}"),
        json!({"name": "general", "settings": {"first_response_secs": 3, "warn_before_secs": 0}}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let conv = customer_asks_for_agent(&app, "sla").await;
    let placed = wait_placed(&app, &conv).await;
    assert!(!placed["routing"]["timer_due"].is_null(), "{placed}");
    let id: ConversationId = conv.parse().expect("id");
    let tenant: TenantId = app.demo.tenant_id.parse().expect("tenant");
    let breached = |events: &[switchboard_core::Event]| {
        events.iter().any(|e| {
            matches!(&e.kind, EventKind::SlaAlert { conversation_id, breach: true, .. } if *conversation_id == id)
        })
    };
    let events = app
        .app
        .store
        .events_after(tenant, 0, 5000)
        .await
        .expect("events");
    assert!(
        !breached(&events),
        "the deadline is still ahead when the server stops"
    );
    let dir = app.stop().await;

    // Restart over the same database: the timer row is all that remembers the deadline.
    let app = spawn_app_in(dir, None).await;
    let breach = eventually(15, "the first-response breach", || async {
        let events = app.app.store.events_after(tenant, 0, 5000).await.ok()?;
        events.into_iter().find_map(|e| match e.kind {
            EventKind::SlaAlert {
                conversation_id,
                breach: true,
                target,
                ..
            } if conversation_id == id => Some(target),
            _ => None,
        })
    })
    .await;
    assert_eq!(breach, "first_response");
    let routed = app
        .app
        .store
        .routed_conversation(tenant, id)
        .await
        .expect("read")
        .expect("exists");
    assert!(
        routed.marks.first_response_breach,
        "recorded, so it fires once"
    );
}

#[tokio::test]
async fn queues_and_canned_responses_check_their_input() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let (s, _) = app
        .post("/api/v1/queues", json!({"name": "vip", "settings": {}}))
        .await;
    assert_eq!(s, 403, "agents do not manage queues");
    app.login("admin@demo.example").await;
    let cases = [
        (json!({"name": "general"}), 409, "name taken"),
        (json!({"name": "  "}), 422, "blank name"),
        (
            json!({"name": "x", "settings": {"wrap_up_required": true}}),
            422,
            "required without codes",
        ),
        (
            json!({"name": "x", "settings": {"policy": "random"}}),
            422,
            "unknown policy",
        ),
        (
            json!({"name": "x", "settings": {"business_hours": {"time_zone": "Nowhere/City", "weekly": []}}}),
            422,
            "bad zone",
        ),
        (
            json!({"name": "x", "settings": {"nope": 1}}),
            422,
            "unknown field",
        ),
    ];
    for (body, status, why) in cases {
        let (s, b) = app.post("/api/v1/queues", body).await;
        assert_eq!(s, status, "{why}: {b}");
    }
    let (_, queues) = app.get("/api/v1/queues").await;
    assert_eq!(
        queues["queues"].as_array().map(Vec::len),
        Some(4),
        "nothing partial was saved"
    );

    let (s, c) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "/thanks", "title": "Thanks", "body": "Thanks {{contact.name}}, {{agent.name}} here. {{unknown}}"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["canned_response"]["shortcut"], "thanks");
    let (s, _) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "thanks", "title": "Again", "body": "x"}),
        )
        .await;
    assert_eq!(s, 409);
    let conv = customer_asks_for_agent(&app, "c").await;
    let id = c["canned_response"]["id"].as_str().expect("id");
    let (s, r) = app
        .post(
            &format!("/api/v1/canned-responses/{id}/render"),
            json!({"conversation_id": conv}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(
        r["text"].as_str().unwrap_or("").contains("Demo Admin here"),
        "{r}"
    );
    assert_eq!(
        r["missing"],
        json!(["contact.name", "unknown"]),
        "a web chat visitor has no name yet"
    );
}

#[tokio::test]
async fn the_supervisor_view_shows_queues_agents_and_history() {
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let (s, _) = app.get("/api/v1/supervisor").await;
    assert_eq!(s, 403, "agents do not see the supervisor view");
    app.set_presence("available").await;
    let served = customer_asks_for_agent(&app, "v1").await;
    wait_assigned(&app, &served).await;
    app.set_presence("away").await;
    let waiting = customer_asks_for_agent(&app, "v2").await;
    wait_placed(&app, &waiting).await;

    app.login("admin@demo.example").await;
    let (v, general) = supervisor_queue(&app, "/api/v1/supervisor?hours=3", "general").await;
    assert_eq!(general["waiting"], 1, "{general}");
    assert_eq!(general["agents_available"], 0, "Ann is away");
    let ann = v["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "Ann Agent")
        .expect("ann")
        .clone();
    assert_eq!(ann["presence"], "away");
    assert_eq!(ann["load"], 1);
    assert_eq!(v["agents_by_state"]["away"], 1);
    let history = v["history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    let last = &history[2];
    assert_eq!(
        (last["volume"].as_u64(), last["served"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
}

/// Two nodes (two connection pools, two runtimes) over one PostgreSQL database run routing
/// rounds for the same tenant at the same time: every conversation is assigned at most
/// once and no agent goes over capacity.
#[tokio::test]
async fn two_nodes_routing_at_once_never_double_assign_on_postgresql() {
    let Some(db) = crate::postgres::FreshDb::create().await else {
        return;
    };
    crate::helpers::init();
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::helpers::test_config(dir.path());
    config.database_url = Some(db.url.clone());
    let node = |c: switchboard_app::Config| async move {
        switchboard_app::App::open(c).await.expect("node opens")
    };
    let a = node(config.clone()).await;
    let b = node(config.clone()).await;
    let demo = a
        .seed_demo(Some(crate::helpers::DEMO_PASSWORD))
        .await
        .expect("demo");
    let tenant: TenantId = demo.tenant_id.parse().expect("tenant");
    let channel = demo.webchat_channel_id.parse().expect("channel");

    // 12 agents × capacity 2 = 24 slots for 60 waiting conversations.
    let general = a
        .store
        .queues(tenant)
        .await
        .expect("queues")
        .into_iter()
        .find(|q| q.name == "general")
        .expect("demo queue")
        .id;
    let mut agents: Vec<UserId> = Vec::new();
    for i in 0..12 {
        let u = a
            .create_user(
                tenant,
                &format!("agent{i}@demo.example"),
                &format!("Agent {i}"),
                switchboard_core::Role::Agent,
                crate::helpers::DEMO_PASSWORD,
            )
            .await
            .expect("user");
        let s = AgentSettings {
            presence: AgentPresence::Available,
            capacity: 2,
            queues: vec![general],
            ..AgentSettings::default_for(u.id, switchboard_app::now())
        };
        a.store
            .save_agent_settings(tenant, &s, switchboard_app::now())
            .await
            .expect("settings");
        agents.push(u.id);
    }
    let items: Vec<_> = (0..60)
        .map(|i| switchboard_core::ports::IngestItem {
            tenant_id: tenant,
            channel_id: channel,
            message: switchboard_core::InboundMessage {
                external_contact_id: format!("visitor-{i}"),
                contact_name: None,
                phone: None,
                provider_message_id: format!("pg-{i}"),
                provider_ts: None,
                content: switchboard_core::Content::text("help"),
            },
            new_conversation_state: switchboard_core::ConversationState::Queued,
            received_at: switchboard_app::now(),
        })
        .collect();
    a.store.ingest(&items).await.expect("ingest");

    // Act: 8 rounds on each node, all at once.
    let mut rounds = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        rounds.push(tokio::spawn(async move { app.route(tenant).await }));
    }
    for r in rounds {
        r.await.expect("task").expect("round");
    }

    // Assert: 24 assignments, one per conversation, at most 2 per agent.
    let events = a
        .store
        .events_after(tenant, 0, 100_000)
        .await
        .expect("events");
    let mut assigned: HashMap<ConversationId, u32> = HashMap::new();
    for e in &events {
        if let EventKind::ConversationChanged { conversation } = &e.kind
            && conversation.conversation.state == switchboard_core::ConversationState::Assigned
        {
            *assigned.entry(conversation.conversation.id).or_default() += 1;
        }
    }
    assert_eq!(assigned.len(), 24, "every slot filled once");
    assert!(
        assigned.values().all(|&n| n == 1),
        "assigned twice: {assigned:?}"
    );
    let someone = a
        .store
        .user(tenant, agents[0])
        .await
        .expect("read")
        .expect("user");
    let agents_now = a.list_agents(&someone).await.expect("agents");
    assert!(agents_now.iter().all(|v| v.load <= 2), "over capacity");
    a.store.ping().await.expect("still up");
    db.drop_it().await;
}

/// The error message of a refused request.
fn reason(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn message_count(app: &TestApp, conv: &str) -> usize {
    let (s, body) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(s, 200, "{body}");
    body["messages"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn assigning_or_replying_by_hand_respects_presence_skills_and_capacity() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;
    let ben = user_id(&app, "Ben Agent").await;
    let loans = queue_id(&app, "loans").await;

    // Everyone is offline: the conversation waits in `general`.
    let conv = customer_asks_for_agent(&app, "h").await;
    wait_placed(&app, &conv).await;

    // Ann is offline: neither assigning herself nor replying takes it, and the refused
    // reply stores nothing.
    app.login("ann@demo.example").await;
    let before = message_count(&app, &conv).await;
    let (s, body) = app
        .post(&format!("/api/v1/conversations/{conv}/assign"), json!({}))
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(reason(&body).contains("offline"), "{body}");
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "hello from an offline agent"}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(reason(&body).contains("offline"), "{body}");
    assert_eq!(message_count(&app, &conv).await, before, "no partial write");
    assert_eq!(row(&app, &conv).await["state"], "queued");
    // Agents cannot force.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"force": true}),
        )
        .await;
    assert_eq!(s, 403, "{body}");

    // In `loans` (needs `lending`), Ben, available, is refused for the missing skill.
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/transfer"),
            json!({"to_queue": loans}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    app.login("ben@demo.example").await;
    app.set_presence("available").await;
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"user_id": ben}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(reason(&body).contains("lending"), "{body}");
    assert_eq!(row(&app, &conv).await["state"], "queued");
    // A supervisor may force it, on purpose.
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/assign"),
            json!({"user_id": ben, "force": true}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["assignee"], ben.as_str());

    // Capacity: Ann (capacity 1, available) gets the next conversation from `general`;
    // the one after waits, and neither a supervisor's assignment nor Ann's reply goes past
    // her limit.
    let (s, body) = put(
        &app,
        &format!("/api/v1/agents/{ann}"),
        json!({"capacity": 1}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    app.login("ben@demo.example").await;
    app.set_presence("away").await;
    app.login("ann@demo.example").await;
    app.set_presence("available").await;
    let second = customer_asks_for_agent(&app, "h2").await;
    assert_eq!(wait_assigned(&app, &second).await, ann);
    let third = customer_asks_for_agent(&app, "h3").await;
    wait_placed(&app, &third).await;
    let before = message_count(&app, &third).await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{third}/messages"),
            json!({"text": "one too many"}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(reason(&body).contains("capacity"), "{body}");
    assert_eq!(
        message_count(&app, &third).await,
        before,
        "no partial write"
    );
    app.login("admin@demo.example").await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{third}/assign"),
            json!({"user_id": ann}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(reason(&body).contains("capacity"), "{body}");
    assert_eq!(row(&app, &third).await["state"], "queued");

    // With room again, the same assignment goes through.
    let (s, body) = put(
        &app,
        &format!("/api/v1/agents/{ann}"),
        json!({"capacity": 2}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{third}/assign"),
            json!({"user_id": ann}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["conversation"]["assignee"], ann.as_str());
}

/// The supervisor snapshot at `path` and its queue named `name`.
async fn supervisor_queue(app: &TestApp, path: &str, name: &str) -> (Value, Value) {
    let (s, v) = app.get(path).await;
    assert_eq!(s, 200, "{v}");
    let q = v["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .expect("queue listed")
        .clone();
    (v, q)
}

/// The whole message list of a conversation as text (for looking for a bot's words).
async fn messages_text(app: &TestApp, conv: &str) -> String {
    let (s, body) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(s, 200, "{body}");
    body["messages"].to_string()
}

#[tokio::test]
async fn a_customer_who_writes_after_a_resolve_reopens_it_within_the_window_and_starts_anew_after()
{
    let mut app = spawn_app().await;
    app.login("ann@demo.example").await;
    let ann = user_id(&app, "Ann Agent").await;
    app.set_presence("available").await;
    let token = app.new_visitor().await;
    let (s, _) = app.customer_says(&token, "r-1", "hi").await;
    assert_eq!(s, 202);
    let (s, asked) = app.customer_says(&token, "r-2", "agent").await;
    assert_eq!(s, 202, "{asked}");
    let conv = asked["conversation_id"].as_str().expect("id").to_string();
    assert_eq!(wait_assigned(&app, &conv).await, ann);
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/resolve"),
            json!({"wrap_up_code": "answered"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let resolved_opened = row(&app, &conv).await["routing"]["opened_at"].clone();

    // Within the default window (a day), Ann away: the customer's message reopens the same
    // conversation into its queue, with fresh clocks and no wrap-up code.
    app.set_presence("away").await;
    let (s, again) = app.customer_says(&token, "r-3", "one more thing").await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["conversation_id"], conv.as_str(), "same conversation");
    let r = row(&app, &conv).await;
    assert_eq!(r["state"], "queued", "{r}");
    assert_eq!(r["routing"]["queue"], queue_id(&app, "general").await);
    assert!(r["routing"]["wrap_up_code"].is_null(), "{r}");
    assert_ne!(
        r["routing"]["opened_at"], resolved_opened,
        "the resolution clock restarts: {r}"
    );
    let (_, desk) = app.get("/api/v1/desk/conversations?view=unassigned").await;
    assert!(
        desk["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .any(|c| c["id"] == conv.as_str()),
        "the desk shows it waiting: {desk}"
    );
    // Back to her when she is available (the returning-customer rule).
    app.set_presence("available").await;
    assert_eq!(wait_assigned(&app, &conv).await, ann);

    // A queue with reopening switched off: the next message after a resolve starts anew.
    app.login("admin@demo.example").await;
    let general = queue_id(&app, "general").await;
    let (s, body) = put(
        &app,
        &format!("/api/v1/queues/{general}"),
        json!({"name": "general", "settings": {"reopen_within_secs": 0}}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["queue"]["settings"]["reopen_within_secs"], 0, "{body}");
    app.login("ann@demo.example").await;
    let (s, b) = app
        .post(&format!("/api/v1/conversations/{conv}/resolve"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, fresh) = app.customer_says(&token, "r-4", "hello again").await;
    assert_eq!(s, 202, "{fresh}");
    let new_conv = fresh["conversation_id"].as_str().expect("id");
    assert_ne!(new_conv, conv, "a new conversation: {fresh}");
    assert_eq!(row(&app, &conv).await["state"], "resolved");
}

#[tokio::test]
async fn resolution_sla_keeps_running_while_an_agent_holds_the_conversation() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let general = queue_id(&app, "general").await;
    let (s, body) = put(
        &app,
        &format!("/api/v1/queues/{general}"),
        json!({"name": "general", "settings": {
            "first_response_secs": 2, "resolution_secs": 3, "warn_before_secs": 0
        }}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    app.login("ann@demo.example").await;
    app.set_presence("available").await;
    let conv = customer_asks_for_agent(&app, "sla-assigned").await;
    wait_assigned(&app, &conv).await;
    let r = row(&app, &conv).await;
    assert!(
        !r["routing"]["timer_due"].is_null(),
        "an assigned conversation keeps its SLA timer: {r}"
    );

    let id: ConversationId = conv.parse().expect("id");
    let tenant: TenantId = app.demo.tenant_id.parse().expect("tenant");
    let targets = eventually(20, "both breaches while assigned", || async {
        let events = app.app.store.events_after(tenant, 0, 5000).await.ok()?;
        let breached: Vec<String> = events
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::SlaAlert {
                    conversation_id,
                    breach: true,
                    target,
                    ..
                } if conversation_id == id => Some(target),
                _ => None,
            })
            .collect();
        (breached.len() >= 2).then_some(breached)
    })
    .await;
    assert_eq!(
        targets,
        ["first_response", "resolution"],
        "each once, in order"
    );
    let r = row(&app, &conv).await;
    assert_eq!(r["state"], "assigned", "{r}");
    assert!(
        r["routing"]["timer_due"].is_null(),
        "nothing left to watch: {r}"
    );
    let routed = app
        .app
        .store
        .routed_conversation(tenant, id)
        .await
        .expect("read")
        .expect("exists");
    assert!(routed.marks.resolution_breach && routed.marks.first_response_breach);

    app.login("admin@demo.example").await;
    let (_, q) = supervisor_queue(&app, "/api/v1/supervisor", "general").await;
    assert_eq!(
        (
            q["waiting"].as_u64(),
            q["assigned"].as_u64(),
            q["sla_breached"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "the supervisor sees the held conversation past its target: {q}"
    );
}

#[tokio::test]
async fn a_closed_queue_with_an_out_of_hours_flow_hands_the_waiting_customer_to_that_flow() {
    let mut app = spawn_app().await;
    app.login("admin@demo.example").await;
    let general = queue_id(&app, "general").await;
    let today = time::OffsetDateTime::now_utc().date();
    let dates: Vec<String> = [today.previous_day(), Some(today), today.next_day()]
        .into_iter()
        .flatten()
        .map(|d| d.to_string())
        .collect();
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let hours = json!({
        "time_zone": "UTC",
        "weekly": days.iter().map(|d| json!({"day": d, "open": "08:00", "close": "17:00"})).collect::<Vec<_>>(),
        "closed_dates": dates,
    });
    let bad = [
        (json!({"out_of_hours_flow": "no_such_flow"}), "no_such_flow"),
        (json!({"out_of_hours_flow": "  "}), "out_of_hours_flow"),
        (
            json!({"reopen_within_secs": 99_999_999}),
            "reopen_within_secs",
        ),
    ];
    for (settings, named) in bad {
        let (s, body) = put(
            &app,
            &format!("/api/v1/queues/{general}"),
            json!({"name": "general", "settings": settings}),
        )
        .await;
        assert_eq!(s, 422, "{settings}: {body}");
        assert!(reason(&body).contains(named), "{settings}: {body}");
    }
    let (s, body) = put(
        &app,
        &format!("/api/v1/queues/{general}"),
        json!({"name": "general", "settings": {
            "business_hours": hours, "out_of_hours_flow": "main_menu"
        }}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["queue"]["settings"]["out_of_hours_flow"], "main_menu");

    let conv = customer_asks_for_agent(&app, "ooh").await;
    let welcome = "welcome to Switchboard Demo Bank";
    eventually(
        15,
        "the out-of-hours flow greets the customer again",
        || async {
            let text = messages_text(&app, &conv).await;
            (text.matches(welcome).count() >= 2).then_some(())
        },
    )
    .await;
    let r = row(&app, &conv).await;
    assert_eq!(r["state"], "bot", "the flow holds the conversation: {r}");
    assert!(r["routing"]["timer_due"].is_null(), "{r}");
    assert!(
        !messages_text(&app, &conv)
            .await
            .contains("We are closed right now"),
        "no plain closed notice instead of the flow"
    );
}
