//! Routing under load: thousands of waiting conversations and hundreds of agents on a real
//! SQLite database (PostgreSQL with `TEST_LOAD_DATABASE_URL` pointing at a database to use).
//! Part of the normal test run since the first round is batched (about 5 s in a debug build);
//! `cargo test -p switchboard-app --release --test routing_load -- --nocapture` prints how
//! long the first round (placing and assigning) and a steady-state round took. It checks the
//! invariants: nobody over capacity, nobody offline or unskilled served, nothing assigned
//! twice, and the backlog served first-in-first-out within a priority.

use std::collections::HashMap;
use std::time::Instant;

use switchboard_app::{App, Config};
use switchboard_core::ports::IngestItem;
use switchboard_core::routing::{AgentPresence, AgentSettings};
use switchboard_core::{
    ChannelKind, ChannelSettings, Content, ConversationState, Email, InboundMessage, NewChannel,
    NewUser, Role,
};

const CONVERSATIONS: usize = 3000;
const AGENTS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_conversations_and_hundreds_of_agents_route_within_the_rules() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: std::env::var("TEST_LOAD_DATABASE_URL").ok(),
        ..Config::default()
    };
    let app = App::open(config).await.expect("app");
    let store = app.store.clone();
    let now = switchboard_app::now();
    let tenant = store
        .create_tenant("load", "Load Co", now)
        .await
        .expect("tenant");
    let channel = store
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind: ChannelKind::Webchat,
                name: "chat".into(),
                credentials: serde_json::json!({}),
                settings: ChannelSettings::default(),
            },
            now,
        )
        .await
        .expect("channel");
    let (general, _) = store
        .save_queue(tenant.id, None, "general", &serde_json::json!({}), now)
        .await
        .expect("queue");
    let (spanish, _) = store
        .save_queue(
            tenant.id,
            None,
            "spanish",
            &serde_json::json!({"required_skills": {"spanish": 1}, "priority": 1}),
            now,
        )
        .await
        .expect("queue");

    // Agents: a tenth offline, a third speak Spanish, capacity 1 to 4.
    let mut expected: HashMap<switchboard_core::UserId, AgentSettings> = HashMap::new();
    for i in 0..AGENTS {
        let u = store
            .create_user(
                NewUser {
                    tenant_id: tenant.id,
                    email: Email::parse(&format!("a{i}@load.test")).expect("email"),
                    name: format!("Agent {i}"),
                    role: Role::Agent,
                    password_hash: "x".into(),
                },
                now,
            )
            .await
            .expect("user");
        let spanish_speaker = i % 3 == 0;
        let s = AgentSettings {
            presence: if i % 10 == 9 {
                AgentPresence::Offline
            } else {
                AgentPresence::Available
            },
            capacity: 1 + (i % 4) as u32,
            skills: if spanish_speaker {
                [("spanish".to_string(), 3u8)].into()
            } else {
                Default::default()
            },
            queues: if spanish_speaker {
                vec![general.id, spanish.id]
            } else {
                vec![general.id]
            },
            ..AgentSettings::default_for(u.id, now)
        };
        store
            .save_agent_settings(tenant.id, &s, now)
            .await
            .expect("settings");
        expected.insert(u.id, s);
    }
    let items: Vec<IngestItem> = (0..CONVERSATIONS)
        .map(|i| IngestItem {
            tenant_id: tenant.id,
            channel_id: channel.id,
            message: InboundMessage {
                external_contact_id: format!("c{i}"),
                contact_name: None,
                phone: None,
                provider_message_id: format!("m{i}"),
                provider_ts: None,
                content: Content::text("help"),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: now + time::Duration::milliseconds(i as i64),
        })
        .collect();
    for chunk in items.chunks(500) {
        store.ingest(chunk).await.expect("ingest");
    }

    // Act: the first round places everything and fills every slot; the second finds nothing.
    let started = Instant::now();
    app.route(tenant.id).await.expect("round");
    let first = started.elapsed();
    let started = Instant::now();
    app.route(tenant.id).await.expect("round");
    let steady = started.elapsed();
    println!(
        "{CONVERSATIONS} conversations, {AGENTS} agents ({}): first round {first:?}, steady round {steady:?}",
        app.backend
    );

    // Assert the invariants.
    let rows = store
        .desk_conversations(
            tenant.id,
            &switchboard_core::routing::DeskFilter {
                limit: 1000,
                states: vec![ConversationState::Assigned],
                ..Default::default()
            },
        )
        .await
        .expect("assigned");
    let slots: u32 = expected
        .values()
        .filter(|a| a.presence == AgentPresence::Available)
        .map(|a| a.capacity)
        .sum();
    let events = store
        .events_after(tenant.id, 0, 1_000_000)
        .await
        .expect("events");
    let mut assigned_events: HashMap<switchboard_core::ConversationId, u32> = HashMap::new();
    for e in &events {
        if let switchboard_core::EventKind::ConversationChanged { conversation } = &e.kind
            && conversation.conversation.state == ConversationState::Assigned
        {
            *assigned_events
                .entry(conversation.conversation.id)
                .or_default() += 1;
        }
    }
    assert_eq!(
        assigned_events.len() as u32,
        slots,
        "every available slot is filled"
    );
    assert!(
        assigned_events.values().all(|&n| n == 1),
        "nothing assigned twice"
    );
    let mut load: HashMap<switchboard_core::UserId, u32> = HashMap::new();
    for (_, r) in &rows {
        let agent = r.assignee.expect("assignee");
        *load.entry(agent).or_default() += 1;
        let s = &expected[&agent];
        assert_eq!(
            s.presence,
            AgentPresence::Available,
            "never an offline agent"
        );
        if r.queue == Some(spanish.id) {
            assert!(s.skills.contains_key("spanish"), "never an unskilled agent");
        }
    }
    for (agent, n) in load {
        assert!(n <= expected[&agent].capacity, "never over capacity");
    }
    // FIFO: the customers served are exactly the ones who wrote first (one a millisecond).
    let newest_served = rows
        .iter()
        .map(|(s, _)| s.conversation.created_at)
        .max()
        .expect("someone was served");
    assert!(
        newest_served < now + time::Duration::milliseconds(i64::from(slots)),
        "served first-in-first-out: the newest served came at {newest_served}"
    );
}
