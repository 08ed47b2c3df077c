//! Table tests of the pure round planner and the canned-response renderer.

use std::collections::HashMap;

use super::*;
use switchboard_core::ChannelKind;
use switchboard_core::ContactId;
use time::macros::datetime;
use uuid::Uuid;

fn queue(n: u128, name: &str, settings: QueueSettings) -> QueueRecord {
    QueueRecord {
        id: QueueId::from_uuid(Uuid::from_u128(n)),
        tenant_id: TenantId::from_uuid(Uuid::from_u128(99)),
        name: name.into(),
        settings: serde_json::to_value(settings).expect("settings encode"),
        round_robin_after: None,
        created_at: datetime!(2026-01-05 9:00 UTC),
        updated_at: datetime!(2026-01-05 9:00 UTC),
    }
}

fn agent(n: u128, presence: AgentPresence, queues: &[QueueId], skills: &[&str]) -> AgentSettings {
    AgentSettings {
        queues: queues.to_vec(),
        presence,
        skills: skills.iter().map(|s| (s.to_string(), 5u8)).collect(),
        ..AgentSettings::default_for(
            UserId::from_uuid(Uuid::from_u128(n)),
            datetime!(2026-01-05 9:00 UTC),
        )
    }
}

fn waiting(n: u128, queue: Option<QueueId>) -> RoutedConversation {
    let at = datetime!(2026-01-05 10:00 UTC);
    RoutedConversation {
        id: ConversationId::from_uuid(Uuid::from_u128(n)),
        contact_id: ContactId::from_uuid(Uuid::from_u128(n + 1000)),
        channel_kind: ChannelKind::Webchat,
        state: ConversationState::Queued,
        assignee: None,
        queue,
        priority: 0,
        required_skills: BTreeMap::new(),
        enqueued_at: queue.map(|_| at),
        in_queue_since: queue.map(|_| at),
        opened_at: Some(at),
        last_agent: None,
        first_response_at: None,
        assigned_at: None,
        marks: RoutingMarks::default(),
        timer_due: None,
        wrap_up_code: None,
        created_at: at,
    }
}

fn assigned(changes: &[RoutingChange]) -> Vec<(ConversationId, UserId)> {
    changes
        .iter()
        .filter_map(|c| match c {
            RoutingChange::Assign {
                conversation,
                agent,
            } => Some((*conversation, *agent)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_handed_off_conversation_is_placed_by_its_record_and_goes_to_a_skilled_agent() {
    let general = queue(1, "general", QueueSettings::default());
    let loans = queue(2, "loans", QueueSettings::default());
    let now = datetime!(2026-01-05 10:00:05 UTC);
    let plain = agent(10, AgentPresence::Available, &[loans.id], &[]);
    let lender = agent(11, AgentPresence::Available, &[loans.id], &["lending"]);
    let c = waiting(1, None);
    let snap = RoutingSnapshot {
        queues: vec![general.clone(), loans.clone()],
        agents: vec![plain, lender.clone()],
        waiting: vec![c.clone()],
        ..Default::default()
    };
    let mut inputs = RoundInputs::default();
    inputs.placements.insert(
        c.id,
        Placement {
            queue: Some("Loans".into()),
            skill: Some("lending".into()),
            priority: 5,
        },
    );
    let changes = plan_round(&snap, &inputs, now);
    assert!(
        matches!(&changes[0], RoutingChange::Place { queue, priority: 5, required_skills, .. }
            if *queue == loans.id && required_skills.contains_key("lending")),
        "placed in the named queue with the flow's skill: {changes:?}"
    );
    assert_eq!(
        assigned(&changes),
        vec![(c.id, lender.user_id)],
        "only the skilled agent"
    );
}

#[test]
fn offline_away_and_full_agents_get_nothing_and_the_conversation_keeps_a_timer() {
    let q = queue(1, "general", QueueSettings::default());
    let now = datetime!(2026-01-05 10:00:05 UTC);
    let mut full = agent(12, AgentPresence::Available, &[q.id], &[]);
    full.capacity = 1;
    let cases = [
        (
            agent(10, AgentPresence::Offline, &[q.id], &[]),
            None,
            "offline",
        ),
        (agent(11, AgentPresence::Away, &[q.id], &[]), None, "away"),
        (
            full.clone(),
            Some(HashMap::from([(
                full.user_id,
                HashMap::from([(ChannelKind::Webchat, 1u32)]),
            )])),
            "at capacity",
        ),
    ];
    for (a, loads, why) in cases {
        let snap = RoutingSnapshot {
            queues: vec![q.clone()],
            agents: vec![a],
            loads: loads.unwrap_or_default(),
            waiting: vec![waiting(1, Some(q.id))],
            ..Default::default()
        };
        let changes = plan_round(&snap, &RoundInputs::default(), now);
        assert!(assigned(&changes).is_empty(), "{why}: {changes:?}");
        let timer = changes.iter().find_map(|c| match c {
            RoutingChange::Timer { due_at, .. } => *due_at,
            _ => None,
        });
        assert_eq!(
            timer,
            Some(datetime!(2026-01-05 10:04 UTC)),
            "{why}: the next look is the first-response warning (5 min − 1 min)"
        );
    }
}

#[test]
fn a_missed_first_response_target_raises_one_breach_and_marks_it() {
    let q = queue(1, "general", QueueSettings::default());
    let now = datetime!(2026-01-05 10:06 UTC);
    let snap = RoutingSnapshot {
        queues: vec![q.clone()],
        waiting: vec![waiting(1, Some(q.id))],
        ..Default::default()
    };
    let changes = plan_round(&snap, &RoundInputs::default(), now);
    let breaches: Vec<_> = changes
        .iter()
        .filter(|c| matches!(c, RoutingChange::SlaAlert { breach: true, .. }))
        .collect();
    assert_eq!(breaches.len(), 1, "{changes:?}");
    assert!(
        changes.iter().any(
            |c| matches!(c, RoutingChange::Marks { marks, .. } if marks.first_response_breach)
        )
    );

    // Once marked, the next round raises nothing again.
    let mut marked = waiting(1, Some(q.id));
    marked.marks.first_response_breach = true;
    let snap = RoutingSnapshot {
        queues: vec![q],
        waiting: vec![marked],
        ..Default::default()
    };
    let changes = plan_round(&snap, &RoundInputs::default(), now);
    assert!(
        !changes
            .iter()
            .any(|c| matches!(c, RoutingChange::SlaAlert { .. })),
        "{changes:?}"
    );
}

#[test]
fn position_updates_go_to_the_customer_with_the_expected_wait() {
    let q = queue(
        1,
        "general",
        QueueSettings {
            position_update_secs: Some(60),
            ..QueueSettings::default()
        },
    );
    let a = agent(10, AgentPresence::Available, &[q.id], &[]);
    let mut busy = HashMap::new();
    busy.insert(a.user_id, HashMap::from([(ChannelKind::Webchat, 3u32)]));
    let snap = RoutingSnapshot {
        queues: vec![q.clone()],
        agents: vec![a],
        loads: busy,
        waiting: vec![waiting(1, Some(q.id))],
        ..Default::default()
    };
    let mut inputs = RoundInputs::default();
    inputs.handle_times.insert(q.id, Duration::minutes(6));
    let changes = plan_round(&snap, &inputs, datetime!(2026-01-05 10:00:10 UTC));
    let notice = changes.iter().find_map(|c| match c {
        RoutingChange::Notice { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(
        notice.as_deref(),
        Some("You are number 1 in the queue. Expected wait: about 2 minute(s)."),
        "6 min × 1 ÷ 3 slots: {changes:?}"
    );
}

#[test]
fn canned_responses_fill_known_variables_and_report_unknown_ones() {
    let vars = HashMap::from([("contact.name", "Thandi".to_string())]);
    let cases = [
        ("Hi {{contact.name}}!", "Hi Thandi!", vec![], "filled"),
        (
            "Hi {{ contact.name }}",
            "Hi Thandi",
            vec![],
            "spaces inside the braces",
        ),
        ("{{nope}} x", "{{nope}} x", vec!["nope"], "unknown kept"),
        (
            "open {{ never closed",
            "open {{ never closed",
            vec![],
            "unclosed kept",
        ),
    ];
    for (body, text, missing, why) in cases {
        let r = desk::render_template(body, &vars);
        assert_eq!(
            (r.text.as_str(), r.missing),
            (
                text,
                missing.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            ),
            "{why}"
        );
    }
}

#[test]
fn queue_settings_are_checked_with_the_routing_rules() {
    let id = QueueId::from_uuid(Uuid::from_u128(1));
    let cases = [
        (QueueSettings::default(), true, "defaults are fine"),
        (
            QueueSettings {
                wrap_up_required: true,
                ..QueueSettings::default()
            },
            false,
            "required wrap-up without codes",
        ),
        (
            QueueSettings {
                warn_before_secs: 400,
                ..QueueSettings::default()
            },
            false,
            "warning before the start",
        ),
        (
            QueueSettings {
                overflow: Some(OverflowSettings {
                    to_queue: QueueId::from_uuid(Uuid::from_u128(77)),
                    after_secs: 60,
                }),
                ..QueueSettings::default()
            },
            false,
            "overflow to a queue that does not exist",
        ),
        (
            QueueSettings {
                business_hours: Some(HoursSettings {
                    time_zone: "Mars/Olympus".into(),
                    weekly: vec![],
                    closed_dates: vec![],
                }),
                ..QueueSettings::default()
            },
            false,
            "unknown time zone",
        ),
    ];
    for (settings, ok, why) in cases {
        assert_eq!(
            check_queue("support", id, &settings, &[]).is_ok(),
            ok,
            "{why}"
        );
    }
}

fn changed(n: u128, state: ConversationState, assignee: Option<u128>) -> EventKind {
    let at = datetime!(2026-01-05 9:00 UTC);
    EventKind::ConversationChanged {
        conversation: switchboard_core::ConversationSummary {
            conversation: switchboard_core::Conversation {
                id: ConversationId::from_uuid(Uuid::from_u128(n)),
                tenant_id: TenantId::from_uuid(Uuid::from_u128(99)),
                channel_id: switchboard_core::ChannelId::from_uuid(Uuid::from_u128(7)),
                contact_id: ContactId::from_uuid(Uuid::from_u128(n + 1000)),
                state,
                assignee: assignee.map(|a| UserId::from_uuid(Uuid::from_u128(a))),
                last_inbound_at: Some(at),
                last_message_at: at,
                created_at: at,
            },
            channel_kind: ChannelKind::Webchat,
            contact_name: None,
            last_message_preview: None,
        },
    }
}

#[test]
fn a_message_into_a_conversation_already_waiting_needs_no_round() {
    use ConversationState::{Assigned, Bot, Queued, Resolved};
    let mut t = RoundTrigger::default();
    let steps = [
        (
            changed(1, Queued, None),
            true,
            "first seen waiting: place it",
        ),
        (
            changed(1, Queued, None),
            false,
            "another message while it waits",
        ),
        (
            changed(2, Queued, None),
            true,
            "another conversation waiting",
        ),
        (
            changed(1, Assigned, Some(5)),
            false,
            "assigned: nothing to place",
        ),
        (changed(1, Queued, None), true, "released back to the queue"),
        (
            changed(1, Queued, Some(5)),
            true,
            "queued with an assignee (returning customer)",
        ),
        (
            changed(1, Bot, None),
            false,
            "in the bot (out-of-hours flow)",
        ),
        (changed(1, Queued, None), true, "handed back by the bot"),
        (changed(1, Resolved, None), true, "resolved: capacity frees"),
        (changed(1, Queued, None), true, "reopened"),
    ];
    for (kind, want, why) in steps {
        assert_eq!(t.needs_round(&kind), want, "{why}");
    }
    t.forget();
    assert!(
        t.needs_round(&changed(2, Queued, None)),
        "after missed events every waiting conversation triggers again"
    );
}
