//! The routing part of the storage contract (queues, agents' settings, routing rounds and
//! their timers, notes, canned responses, desk lists), on SQLite and on PostgreSQL (when
//! `TEST_DATABASE_URL` is set; a fresh database per test, dropped afterwards).
//!
//! Run: `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p switchboard-storage --test routing`

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use switchboard_core::ports::{IngestItem, IngestOutcome, Store, StoreError};
use switchboard_core::routing::{
    AgentPresence, AgentSettings, DeskFilter, NoteKind, RoutingChange, RoutingMarks,
    RoutingSnapshot,
};
use switchboard_core::{
    ChannelKind, Content, ConversationId, ConversationState, EventKind, InboundMessage, Timestamp,
};
use switchboard_storage::SqlStore;

#[macro_use]
mod common;
use common::{PgDatabase, World, t, test_master, world};

both_backends!(
    queues_are_saved_renamed_listed_and_deleted_with_clear_conflicts,
    agent_settings_default_to_offline_and_are_saved_per_tenant,
    a_round_applies_its_changes_and_events_together_or_not_at_all,
    routing_timers_make_a_tenant_due_until_a_round_clears_them,
    notes_and_canned_responses_stay_in_their_tenant,
    desk_lists_filter_by_queue_assignee_and_text,
    a_customer_message_reopens_a_conversation_resolved_within_its_window,
    unplaced_conversations_page_oldest_first,
);

// ---------------------------------------------------------------- fixtures

/// A customer's first message; the conversation starts `queued` (no bot).
async fn queued(s: &SqlStore, w: &World, from: &str, name: &str, at: Timestamp) -> ConversationId {
    let out = s
        .ingest(&[IngestItem {
            tenant_id: w.tenant.id,
            channel_id: w.channel.id,
            message: InboundMessage {
                external_contact_id: from.into(),
                contact_name: Some(name.into()),
                phone: None,
                provider_message_id: format!("p-{from}"),
                provider_ts: Some(at),
                content: Content::text(format!("hello from {name}")),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: at + Duration::from_millis(10),
        }])
        .await
        .expect("ingest");
    match &out[0] {
        IngestOutcome::Stored { message, .. } => message.conversation_id,
        other => panic!("expected Stored, got {other:?}"),
    }
}

fn place(conv: ConversationId, queue: switchboard_core::QueueId) -> RoutingChange {
    RoutingChange::Place {
        conversation: conv,
        queue,
        priority: 2,
        required_skills: BTreeMap::from([("lending".to_string(), 1)]),
        last_agent: None,
    }
}

// ---------------------------------------------------------------- tests

async fn queues_are_saved_renamed_listed_and_deleted_with_clear_conflicts(s: SqlStore) {
    let w = world(&s, "acme").await;
    let other = world(&s, "other").await;
    let (loans, events) = s
        .save_queue(w.tenant.id, None, "loans", &json!({"priority": 5}), t(1))
        .await
        .expect("create");
    assert!(matches!(
        &events[0].kind,
        EventKind::QueueChanged { deleted: false, .. }
    ));
    let (general, _) = s
        .save_queue(w.tenant.id, None, "general", &json!({}), t(1))
        .await
        .expect("create");
    let err = s
        .save_queue(w.tenant.id, None, "loans", &json!({}), t(2))
        .await
        .expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(m) if m.contains("loans")));
    // Another tenant may use the name, and cannot touch ours.
    s.save_queue(other.tenant.id, None, "loans", &json!({}), t(2))
        .await
        .expect("other tenant's own loans");
    let err = s
        .save_queue(other.tenant.id, Some(loans.id), "x", &json!({}), t(2))
        .await
        .expect_err("foreign id");
    assert!(matches!(err, StoreError::NotFound(_)));

    let (renamed, _) = s
        .save_queue(
            w.tenant.id,
            Some(loans.id),
            "lending",
            &json!({"priority": 6}),
            t(3),
        )
        .await
        .expect("rename");
    assert_eq!(
        (renamed.name.as_str(), renamed.settings["priority"].as_i64()),
        ("lending", Some(6))
    );
    assert_eq!(renamed.created_at, loans.created_at);
    let names: Vec<String> = s
        .queues(w.tenant.id)
        .await
        .expect("list")
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["general", "lending"], "by name, own tenant only");

    // A queue with a waiting conversation is not deleted.
    let conv = queued(&s, &w, "1", "Thandi", t(4)).await;
    let plan = move |_: &RoutingSnapshot| Ok(vec![place(conv, general.id)]);
    s.routing_round(w.tenant.id, None, t(5), &plan)
        .await
        .expect("place");
    let err = s
        .delete_queue(w.tenant.id, general.id, t(6))
        .await
        .expect_err("busy");
    assert!(matches!(err, StoreError::Conflict(m) if m.contains("1 conversation")));
    s.delete_queue(w.tenant.id, renamed.id, t(6))
        .await
        .expect("delete");
    assert_eq!(s.queues(w.tenant.id).await.expect("list").len(), 1);
}

async fn agent_settings_default_to_offline_and_are_saved_per_tenant(s: SqlStore) {
    let w = world(&s, "acme").await;
    let other = world(&s, "other").await;
    let all = s.agent_settings(w.tenant.id, t(1)).await.expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].presence, all[0].capacity),
        (AgentPresence::Offline, 3)
    );
    let (q, _) = s
        .save_queue(w.tenant.id, None, "general", &json!({}), t(1))
        .await
        .expect("queue");
    let mut settings = AgentSettings {
        presence: AgentPresence::Available,
        capacity: 4,
        skills: BTreeMap::from([("spanish".to_string(), 7)]),
        queues: vec![q.id],
        ..AgentSettings::default_for(w.agent.id, t(2))
    };
    settings
        .capacity_per_channel
        .insert(ChannelKind::Whatsapp, 2);
    let events = s
        .save_agent_settings(w.tenant.id, &settings, t(2))
        .await
        .expect("save");
    assert!(matches!(&events[0].kind, EventKind::AgentChanged { agent } if agent == &settings));
    assert_eq!(
        s.agent_settings(w.tenant.id, t(3)).await.expect("list"),
        vec![settings.clone()]
    );

    let err = s
        .save_agent_settings(other.tenant.id, &settings, t(3))
        .await
        .expect_err("another tenant's user");
    assert!(matches!(err, StoreError::NotFound(_)));
    let foreign_queue = s
        .save_queue(other.tenant.id, None, "theirs", &json!({}), t(3))
        .await
        .expect("queue")
        .0;
    let bad = AgentSettings {
        queues: vec![foreign_queue.id],
        ..settings.clone()
    };
    let err = s
        .save_agent_settings(w.tenant.id, &bad, t(3))
        .await
        .expect_err("foreign queue");
    assert!(matches!(err, StoreError::Invalid(m) if m.contains("unknown queue")));
    assert_eq!(
        s.agent_settings(w.tenant.id, t(3)).await.expect("list"),
        vec![settings]
    );
}

async fn a_round_applies_its_changes_and_events_together_or_not_at_all(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (q, _) = s
        .save_queue(w.tenant.id, None, "loans", &json!({}), t(1))
        .await
        .expect("queue");
    let conv = queued(&s, &w, "1", "Thandi", t(2)).await;
    let agent = w.agent.id;

    // The snapshot shows the unplaced conversation; the plan places and assigns it.
    let seen = std::sync::Mutex::new(None);
    let plan = |snap: &RoutingSnapshot| {
        *seen.lock().expect("lock") = Some(snap.clone());
        Ok(vec![
            place(conv, q.id),
            RoutingChange::Assign {
                conversation: conv,
                agent,
            },
            RoutingChange::Note {
                conversation: conv,
                author: None,
                kind: NoteKind::System,
                body: "routed".into(),
                data: json!({}),
            },
            RoutingChange::Notice {
                conversation: conv,
                text: "An agent is here.".into(),
            },
        ])
    };
    let outcome = s
        .routing_round(w.tenant.id, Some(conv), t(3), &plan)
        .await
        .expect("round");
    let snap = seen.lock().expect("lock").clone().expect("plan ran");
    assert_eq!(snap.waiting.len(), 1);
    assert_eq!(snap.waiting[0].queue, None, "not yet placed");
    assert_eq!(snap.focus.as_ref().map(|f| f.id), Some(conv));
    assert_eq!(snap.agents.len(), 1);
    let names: Vec<&str> = outcome.events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        ["note_added", "message_created", "conversation_changed"]
    );

    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.assignee, r.queue),
        (ConversationState::Assigned, Some(agent), Some(q.id))
    );
    assert_eq!(
        (r.priority, r.last_agent, r.enqueued_at, r.assigned_at),
        (2, Some(agent), Some(t(3)), Some(t(3)))
    );
    assert_eq!(r.required_skills.get("lending"), Some(&1));
    let loads = s.agent_settings(w.tenant.id, t(4)).await.expect("agents");
    assert_eq!(
        loads[0].last_assigned_at, None,
        "no stored row: nothing to update"
    );
    assert_eq!(s.notes(w.tenant.id, conv).await.expect("notes").len(), 1);
    let messages = s
        .list_messages(w.tenant.id, conv, 10)
        .await
        .expect("messages");
    assert_eq!(messages.len(), 2, "the customer's message and the notice");

    // A failing change (resolving twice) writes nothing of the round.
    let plan = |_: &RoutingSnapshot| {
        Ok(vec![
            RoutingChange::Resolve {
                conversation: conv,
                wrap_up_code: Some("done".into()),
                reopen_until: None,
            },
            RoutingChange::Note {
                conversation: conv,
                author: None,
                kind: NoteKind::System,
                body: "second".into(),
                data: json!({}),
            },
            RoutingChange::Resolve {
                conversation: conv,
                wrap_up_code: None,
                reopen_until: None,
            },
        ])
    };
    let err = s
        .routing_round(w.tenant.id, None, t(5), &plan)
        .await
        .expect_err("invalid");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.wrap_up_code),
        (ConversationState::Assigned, None)
    );
    assert_eq!(s.notes(w.tenant.id, conv).await.expect("notes").len(), 1);

    // A plan's refusal writes nothing either; a focus of another tenant is not found.
    let plan = |_: &RoutingSnapshot| Err(StoreError::Conflict("no".into()));
    assert!(matches!(
        s.routing_round(w.tenant.id, None, t(6), &plan).await,
        Err(StoreError::Conflict(_))
    ));
    let other = world(&s, "other").await;
    let plan = |_: &RoutingSnapshot| Ok(vec![]);
    assert!(matches!(
        s.routing_round(other.tenant.id, Some(conv), t(6), &plan)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Resolve with a code, then reopen into the queue with fresh clocks.
    let plan = |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Resolve {
            conversation: conv,
            wrap_up_code: Some("done".into()),
            reopen_until: None,
        }])
    };
    s.routing_round(w.tenant.id, None, t(7), &plan)
        .await
        .expect("resolve");
    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.wrap_up_code.as_deref()),
        (ConversationState::Resolved, Some("done"))
    );
    let plan = |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Reopen {
            conversation: conv,
            queue: None,
        }])
    };
    s.routing_round(w.tenant.id, None, t(8), &plan)
        .await
        .expect("reopen");
    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.queue, r.enqueued_at, r.wrap_up_code),
        (ConversationState::Queued, Some(q.id), Some(t(8)), None)
    );
    assert_eq!(r.last_agent, Some(agent), "kept for the returning customer");
    let visits = s.queue_visits(w.tenant.id, t(0)).await.expect("visits");
    assert_eq!(visits.len(), 1);
}

async fn routing_timers_make_a_tenant_due_until_a_round_clears_them(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (q, _) = s
        .save_queue(w.tenant.id, None, "general", &json!({}), t(1))
        .await
        .expect("queue");
    let conv = queued(&s, &w, "1", "Thandi", t(2)).await;
    assert_eq!(
        s.routing_due(t(2), 10).await.expect("due"),
        vec![w.tenant.id],
        "unplaced"
    );
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![
            place(conv, q.id),
            RoutingChange::Timer {
                conversation: conv,
                due_at: Some(t(60)),
            },
            RoutingChange::Marks {
                conversation: conv,
                marks: RoutingMarks {
                    first_response_warning: true,
                    ..Default::default()
                },
            },
        ])
    };
    s.routing_round(w.tenant.id, None, t(3), &plan)
        .await
        .expect("round");
    assert!(
        s.routing_due(t(59), 10).await.expect("due").is_empty(),
        "placed, timer ahead"
    );
    assert_eq!(
        s.routing_due(t(60), 10).await.expect("due"),
        vec![w.tenant.id]
    );
    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(r.timer_due, Some(t(60)));
    assert!(r.marks.first_response_warning);
    // Moving the timer replaces it; an assignment clears it.
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Timer {
            conversation: conv,
            due_at: Some(t(120)),
        }])
    };
    s.routing_round(w.tenant.id, None, t(61), &plan)
        .await
        .expect("round");
    assert!(s.routing_due(t(61), 10).await.expect("due").is_empty());
    let agent = w.agent.id;
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Assign {
            conversation: conv,
            agent,
        }])
    };
    s.routing_round(w.tenant.id, None, t(62), &plan)
        .await
        .expect("round");
    assert!(s.routing_due(t(500), 10).await.expect("due").is_empty());
}

async fn notes_and_canned_responses_stay_in_their_tenant(s: SqlStore) {
    let w = world(&s, "acme").await;
    let other = world(&s, "other").await;
    let conv = queued(&s, &w, "1", "Thandi", t(2)).await;
    let author = w.agent.id;
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Note {
            conversation: conv,
            author: Some(author),
            kind: NoteKind::Note,
            body: "VIP".into(),
            data: json!({"x": 1}),
        }])
    };
    // Another tenant cannot write a note on our conversation, nor read ours.
    assert!(
        s.routing_round(other.tenant.id, None, t(3), &plan)
            .await
            .is_err()
    );
    s.routing_round(w.tenant.id, None, t(3), &plan)
        .await
        .expect("note");
    assert!(
        s.notes(other.tenant.id, conv)
            .await
            .expect("notes")
            .is_empty()
    );
    let notes = s.notes(w.tenant.id, conv).await.expect("notes");
    assert_eq!(
        (notes[0].body.as_str(), notes[0].author, notes[0].kind),
        ("VIP", Some(author), NoteKind::Note)
    );

    let c = s
        .save_canned(
            w.tenant.id,
            None,
            "hello",
            "Hello",
            "Hi {{contact.name}}",
            t(4),
        )
        .await
        .expect("canned");
    let err = s
        .save_canned(w.tenant.id, None, "hello", "Again", "x", t(4))
        .await
        .expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(m) if m.contains("hello")));
    s.save_canned(other.tenant.id, None, "hello", "Theirs", "x", t(4))
        .await
        .expect("other tenant's own");
    assert!(matches!(
        s.delete_canned(other.tenant.id, c.id).await,
        Err(StoreError::NotFound(_))
    ));
    let updated = s
        .save_canned(w.tenant.id, Some(c.id), "hi", "Hi", "Hey", t(5))
        .await
        .expect("update");
    assert_eq!(
        s.canned_responses(w.tenant.id).await.expect("list"),
        vec![updated]
    );
    s.delete_canned(w.tenant.id, c.id).await.expect("delete");
    assert!(
        s.canned_responses(w.tenant.id)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn desk_lists_filter_by_queue_assignee_and_text(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (q1, _) = s
        .save_queue(w.tenant.id, None, "a", &json!({}), t(1))
        .await
        .expect("q");
    let (q2, _) = s
        .save_queue(w.tenant.id, None, "b", &json!({}), t(1))
        .await
        .expect("q");
    let c1 = queued(&s, &w, "1", "Thandi Nkosi", t(2)).await;
    let c2 = queued(&s, &w, "2", "Pieter", t(3)).await;
    let c3 = queued(&s, &w, "3", "Lerato", t(4)).await;
    let agent = w.agent.id;
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![
            place(c1, q1.id),
            place(c2, q2.id),
            place(c3, q2.id),
            RoutingChange::Assign {
                conversation: c3,
                agent,
            },
        ])
    };
    s.routing_round(w.tenant.id, None, t(5), &plan)
        .await
        .expect("round");
    let ids = |rows: Vec<(
        switchboard_core::ConversationSummary,
        switchboard_core::routing::RoutedConversation,
    )>| {
        rows.into_iter()
            .map(|(s, _)| s.conversation.id)
            .collect::<Vec<_>>()
    };
    let list = |f: DeskFilter| {
        let s = s.clone();
        let tenant = w.tenant.id;
        async move { s.desk_conversations(tenant, &f).await.expect("list") }
    };
    let cases = [
        (
            DeskFilter {
                queues: vec![q2.id],
                ..Default::default()
            },
            vec![c3, c2],
            "queue b, newest first",
        ),
        (
            DeskFilter {
                queues: vec![q2.id],
                unassigned: true,
                ..Default::default()
            },
            vec![c2],
            "unassigned",
        ),
        (
            DeskFilter {
                assignee: Some(agent),
                ..Default::default()
            },
            vec![c3],
            "mine",
        ),
        (
            DeskFilter {
                search: Some("nkosi".into()),
                ..Default::default()
            },
            vec![c1],
            "by name",
        ),
        (
            DeskFilter {
                search: Some("FROM PIETER".into()),
                ..Default::default()
            },
            vec![c2],
            "by last message",
        ),
        (
            DeskFilter {
                states: vec![ConversationState::Resolved],
                ..Default::default()
            },
            vec![],
            "resolved",
        ),
    ];
    for (filter, expected, why) in cases {
        assert_eq!(ids(list(filter).await), expected, "{why}");
    }
}

/// A customer message with its own provider id; returns the conversation it joined.
async fn says(s: &SqlStore, w: &World, from: &str, id: &str, at: Timestamp) -> ConversationId {
    let out = s
        .ingest(&[IngestItem {
            tenant_id: w.tenant.id,
            channel_id: w.channel.id,
            message: InboundMessage {
                external_contact_id: from.into(),
                contact_name: None,
                phone: None,
                provider_message_id: id.into(),
                provider_ts: Some(at),
                content: Content::text("me again"),
            },
            new_conversation_state: ConversationState::Bot,
            received_at: at,
        }])
        .await
        .expect("ingest");
    match &out[0] {
        IngestOutcome::Stored { message, .. } => message.conversation_id,
        other => panic!("expected Stored, got {other:?}"),
    }
}

async fn a_customer_message_reopens_a_conversation_resolved_within_its_window(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (q, _) = s
        .save_queue(w.tenant.id, None, "general", &json!({}), t(1))
        .await
        .expect("queue");
    let conv = queued(&s, &w, "1", "Thandi", t(2)).await;
    let agent = w.agent.id;
    let resolve = |until: Option<Timestamp>| {
        move |_: &RoutingSnapshot| {
            Ok(vec![RoutingChange::Resolve {
                conversation: conv,
                wrap_up_code: Some("done".into()),
                reopen_until: until,
            }])
        }
    };
    let plan = |_: &RoutingSnapshot| {
        Ok(vec![
            place(conv, q.id),
            RoutingChange::Assign {
                conversation: conv,
                agent,
            },
        ])
    };
    s.routing_round(w.tenant.id, None, t(3), &plan)
        .await
        .expect("assign");
    s.routing_round(w.tenant.id, None, t(4), &resolve(Some(t(100))))
        .await
        .expect("resolve");

    // Within the window: the same conversation, queued again with fresh clocks.
    assert_eq!(says(&s, &w, "1", "again-1", t(50)).await, conv);
    let r = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.assignee, r.queue, r.last_agent),
        (ConversationState::Queued, None, Some(q.id), Some(agent))
    );
    assert_eq!((r.enqueued_at, r.opened_at), (Some(t(50)), Some(t(50))));
    assert_eq!((r.wrap_up_code, r.first_response_at), (None, None));
    // Another contact of the same channel is not touched, and starts anew.
    assert_ne!(says(&s, &w, "2", "other-1", t(51)).await, conv);

    // Past the window (or with none): a new conversation; the old one stays resolved.
    let plan = |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Assign {
            conversation: conv,
            agent,
        }])
    };
    s.routing_round(w.tenant.id, None, t(52), &plan)
        .await
        .expect("assign");
    s.routing_round(w.tenant.id, None, t(53), &resolve(Some(t(60))))
        .await
        .expect("resolve");
    let fresh = says(&s, &w, "1", "again-2", t(61)).await;
    assert_ne!(fresh, conv);
    let old = s
        .routed_conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(old.state, ConversationState::Resolved);
}

async fn unplaced_conversations_page_oldest_first(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (q, _) = s
        .save_queue(w.tenant.id, None, "general", &json!({}), t(1))
        .await
        .expect("queue");
    let c1 = queued(&s, &w, "1", "One", t(2)).await;
    let c2 = queued(&s, &w, "2", "Two", t(3)).await;
    let c3 = queued(&s, &w, "3", "Three", t(4)).await;
    let page = |after: Option<ConversationId>| DeskFilter {
        states: vec![ConversationState::Queued],
        unplaced: true,
        after,
        limit: 2,
        ..Default::default()
    };
    let ids = |rows: Vec<(switchboard_core::ConversationSummary, _)>| -> Vec<ConversationId> {
        rows.into_iter().map(|(s, _)| s.conversation.id).collect()
    };
    let first = s
        .desk_conversations(w.tenant.id, &page(None))
        .await
        .expect("page");
    assert_eq!(ids(first), [c1, c2], "oldest first");
    let next = s
        .desk_conversations(w.tenant.id, &page(Some(c2)))
        .await
        .expect("page");
    assert_eq!(ids(next), [c3]);
    let plan = |_: &RoutingSnapshot| Ok(vec![place(c1, q.id)]);
    s.routing_round(w.tenant.id, None, t(5), &plan)
        .await
        .expect("place");
    let left = s
        .desk_conversations(w.tenant.id, &page(None))
        .await
        .expect("page");
    assert_eq!(ids(left), [c2, c3], "a placed conversation is not listed");
}
