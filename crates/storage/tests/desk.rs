//! The desk part of the storage contract: a failed message put back in the outbox (the same
//! row, for an agent's retry) and the inbox view counts, on SQLite and on PostgreSQL (when
//! `TEST_DATABASE_URL` is set; a fresh database per test, dropped afterwards).
//!
//! Run: `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p switchboard-storage --test desk`

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use switchboard_core::ports::{
    DeskCounts, IngestItem, IngestOutcome, Lane, NewOutbound, Store, StoreError,
};
use switchboard_core::routing::{RoutingChange, RoutingSnapshot};
use switchboard_core::{
    Content, ConversationId, ConversationState, DeliveryStatus, ErrorClass, EventKind,
    InboundMessage, MessageId, SendFailure, Sender, StatusReport,
};
use switchboard_storage::SqlStore;

#[macro_use]
mod common;
use common::{PgDatabase, World, t, test_master, world};

both_backends!(
    a_failed_message_goes_back_to_the_outbox_as_the_same_row,
    a_message_failed_after_the_provider_accepted_it_is_resent_whole,
    the_counts_are_the_sizes_of_the_desk_views,
);

const LEASE: Duration = Duration::from_secs(30);

/// A customer's first message in state `state`; returns (conversation, message).
async fn customer(
    s: &SqlStore,
    w: &World,
    from: &str,
    state: ConversationState,
) -> (ConversationId, MessageId) {
    let out = s
        .ingest(&[IngestItem {
            tenant_id: w.tenant.id,
            channel_id: w.channel.id,
            message: InboundMessage {
                external_contact_id: from.into(),
                contact_name: Some(from.into()),
                phone: None,
                provider_message_id: format!("p-{from}"),
                provider_ts: Some(t(1)),
                content: Content::text("hello"),
            },
            new_conversation_state: state,
            received_at: t(1),
        }])
        .await
        .expect("ingest");
    match &out[0] {
        IngestOutcome::Stored { message, .. } => (message.conversation_id, message.id),
        other => panic!("expected Stored, got {other:?}"),
    }
}

async fn reply(s: &SqlStore, w: &World, conv: ConversationId, text: &str) -> MessageId {
    let (m, _) = s
        .enqueue_outbound(
            w.tenant.id,
            conv,
            NewOutbound {
                sender: Sender::Agent {
                    user_id: w.agent.id,
                    name: "Ann".into(),
                },
                content: Content::text(text),
                lane: Lane::Live,
            },
            t(2),
        )
        .await
        .expect("enqueue");
    m.id
}

fn refused() -> SendFailure {
    SendFailure {
        class: ErrorClass::Permanent,
        code: Some("131026".into()),
        reason: "Message Undeliverable.".into(),
    }
}

// ---------------------------------------------------------------- tests

async fn a_failed_message_goes_back_to_the_outbox_as_the_same_row(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (conv, inbound) = customer(&s, &w, "c1", ConversationState::Assigned).await;
    let id = reply(&s, &w, conv, "your card").await;
    let claimed = s.claim_outbox("node", t(3), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let row = claimed[0].id;
    s.outbox_retry(row, t(3), &refused()).await.unwrap();
    let claimed = s.claim_outbox("node", t(4), LEASE, 10).await.unwrap();
    s.outbox_failed(claimed[0].id, &refused(), t(4))
        .await
        .unwrap();

    // Only a failed outbound message of this tenant can go again.
    let other = world(&s, "other").await;
    assert!(matches!(
        s.outbox_requeue(other.tenant.id, id, t(5)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.outbox_requeue(w.tenant.id, inbound, t(5)).await,
        Err(StoreError::Conflict(_))
    ));

    let event = s.outbox_requeue(w.tenant.id, id, t(5)).await.unwrap();
    assert!(
        matches!(
            &event.kind,
            EventKind::MessageStatus { message_id, status: DeliveryStatus::Queued, failure: None, .. }
                if *message_id == id
        ),
        "{event:?}"
    );
    let m = s.message(w.tenant.id, id).await.unwrap().unwrap();
    assert_eq!((m.status, m.failure), (DeliveryStatus::Queued, None));
    // Queued twice is refused: it is already waiting.
    assert!(matches!(
        s.outbox_requeue(w.tenant.id, id, t(5)).await,
        Err(StoreError::Conflict(_))
    ));

    // The same row is claimable again, its attempts reset; it then goes out.
    let claimed = s.claim_outbox("node", t(6), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].message.id), (row, id));
    assert_eq!(claimed[0].attempts, 0);
    s.outbox_sent(row, Some("wamid.2"), t(6)).await.unwrap();
    let m = s.message(w.tenant.id, id).await.unwrap().unwrap();
    assert_eq!(m.status, DeliveryStatus::Sent);
    assert_eq!(m.provider_id.as_deref(), Some("wamid.2"));
    // A second failure is recorded like the first.
    let report = StatusReport {
        provider_message_id: "wamid.2".into(),
        status: DeliveryStatus::Failed,
        at: t(7),
        failure: Some(refused()),
    };
    s.apply_status(w.tenant.id, w.channel.id, &report)
        .await
        .unwrap();
    let m = s.message(w.tenant.id, id).await.unwrap().unwrap();
    assert_eq!(m.status, DeliveryStatus::Failed);
    assert_eq!(m.failure, Some(refused()));
}

async fn a_message_failed_after_the_provider_accepted_it_is_resent_whole(s: SqlStore) {
    let w = world(&s, "acme").await;
    let (conv, _) = customer(&s, &w, "c1", ConversationState::Assigned).await;
    let id = reply(&s, &w, conv, "a long answer").await;
    let claimed = s.claim_outbox("node", t(3), LEASE, 10).await.unwrap();
    let row = claimed[0].id;
    // Two parts were accepted, then the whole message was reported failed.
    s.outbox_parts_sent(row, &["wamid.1".into(), "wamid.1b".into()])
        .await
        .unwrap();
    s.outbox_sent(row, Some("wamid.1"), t(3)).await.unwrap();
    let report = StatusReport {
        provider_message_id: "wamid.1".into(),
        status: DeliveryStatus::Failed,
        at: t(4),
        failure: Some(refused()),
    };
    s.apply_status(w.tenant.id, w.channel.id, &report)
        .await
        .unwrap();

    s.outbox_requeue(w.tenant.id, id, t(5)).await.unwrap();

    let m = s.message(w.tenant.id, id).await.unwrap().unwrap();
    assert_eq!(
        m.provider_id, None,
        "a late report about wamid.1 finds nothing"
    );
    let claimed = s.claim_outbox("node", t(6), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, row);
    assert_eq!(claimed[0].parts_sent, 0, "every part goes again");
    assert_eq!(claimed[0].first_part_id, None);
}

async fn the_counts_are_the_sizes_of_the_desk_views(s: SqlStore) {
    let w = world(&s, "acme").await;
    let other = world(&s, "other").await;
    let (q1, _) = s
        .save_queue(w.tenant.id, None, "loans", &json!({}), t(1))
        .await
        .unwrap();
    let (q2, _) = s
        .save_queue(w.tenant.id, None, "cards", &json!({}), t(1))
        .await
        .unwrap();
    let (bot, _) = customer(&s, &w, "bot", ConversationState::Bot).await;
    let (a, _) = customer(&s, &w, "a", ConversationState::Queued).await;
    let (b, _) = customer(&s, &w, "b", ConversationState::Queued).await;
    let (c, _) = customer(&s, &w, "c", ConversationState::Queued).await;
    let (done, _) = customer(&s, &w, "done", ConversationState::Queued).await;
    customer(&s, &other, "x", ConversationState::Queued).await;
    let agent = w.agent.id;
    let place = |conv, queue: &switchboard_core::routing::QueueRecord| RoutingChange::Place {
        conversation: conv,
        queue: queue.id,
        priority: 2,
        required_skills: BTreeMap::new(),
        last_agent: None,
    };
    let changes = vec![
        place(a, &q1),
        place(b, &q1),
        place(c, &q2),
        place(done, &q2),
        RoutingChange::Assign {
            conversation: b,
            agent,
        },
        RoutingChange::Resolve {
            conversation: done,
            wrap_up_code: None,
            reopen_until: None,
        },
    ];
    let plan = move |_: &RoutingSnapshot| Ok(changes.clone());
    s.routing_round(w.tenant.id, None, t(5), &plan)
        .await
        .expect("round");
    let _ = bot;

    // mine: b; loans waiting: a; unassigned: bot, a, c; open: bot, a, b, c.
    assert_eq!(
        s.desk_counts(w.tenant.id, agent, &[q1.id]).await.unwrap(),
        DeskCounts {
            mine: 1,
            my_queues: 1,
            unassigned: 3,
            all: 4
        }
    );
    assert_eq!(
        s.desk_counts(w.tenant.id, agent, &[q1.id, q2.id])
            .await
            .unwrap()
            .my_queues,
        2
    );
    assert_eq!(
        s.desk_counts(w.tenant.id, agent, &[])
            .await
            .unwrap()
            .my_queues,
        0
    );
    assert_eq!(
        s.desk_counts(other.tenant.id, other.agent.id, &[])
            .await
            .unwrap(),
        DeskCounts {
            mine: 0,
            my_queues: 0,
            unassigned: 1,
            all: 1
        }
    );
}
