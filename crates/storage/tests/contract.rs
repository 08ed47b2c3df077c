//! The storage contract: every test runs against SQLite (a fresh file in a temp dir) and
//! against PostgreSQL (a fresh database per test, created from `TEST_DATABASE_URL` and
//! dropped afterwards). Without `TEST_DATABASE_URL` the PostgreSQL half prints a SKIPPED line
//! and passes; with it set, an unreachable server fails the tests.
//!
//! Run: `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p switchboard-storage`

use std::time::Duration;

use switchboard_core::ports::{
    ConversationFilter, Decision, IngestItem, IngestOutcome, JobKind, Lane, NewOutbound, Session,
    Store, StoreError,
};
use switchboard_core::{
    Channel, ChannelKind, ChannelSettings, Content, ConversationId, ConversationState,
    DeliveryStatus, Email, ErrorClass, EventKind, InboundMessage, NewChannel, NewUser, Role,
    SendFailure, Sender, StatusReport, Tenant, Timestamp, Transition, User,
};
use switchboard_storage::SqlStore;

// ---------------------------------------------------------------- harness

/// Runs each named test body against both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let path = dir.path().join("data/switchboard.db");
                    let store = switchboard_storage::open(path.to_str().expect("utf-8 path"), super::test_master())
                        .await
                        .expect("open sqlite");
                    assert_eq!(store.backend_name(), "sqlite");
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::PgDatabase::create().await else { return };
                    let store = switchboard_storage::open(&db.url, super::test_master()).await.expect("open postgres");
                    assert_eq!(store.backend_name(), "postgres");
                    let run = tokio::spawn(super::$name(store.clone())).await;
                    store.close().await;
                    db.drop_database().await;
                    if let Err(e) = run {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

#[macro_use]
mod common;
use common::{PgDatabase, test_master};

contract!(
    tenants_are_found_by_slug_and_id_and_a_taken_slug_is_a_conflict,
    users_are_listed_by_name_and_an_email_is_unique_across_tenants,
    login_finds_a_user_by_email_and_password_changes_stay_in_the_tenant,
    sessions_are_found_until_they_expire_and_deleted_ones_are_gone,
    channels_are_listed_per_tenant_and_found_by_id,
    a_first_message_opens_a_conversation_and_a_second_joins_it,
    a_provider_retry_in_a_later_batch_is_reported_as_a_duplicate,
    a_copy_within_the_same_batch_is_a_duplicate_of_the_first,
    a_message_after_resolution_opens_a_new_conversation,
    ingest_refuses_a_channel_of_another_tenant,
    events_are_gap_free_in_order_and_resume_after_a_sequence_number,
    concurrent_batches_share_one_conversation_and_number_events_without_gaps,
    delivery_status_only_moves_forward_and_a_failure_after_delivery_is_recorded,
    the_second_message_of_a_conversation_waits_until_the_first_is_sent,
    live_messages_are_claimed_before_bulk_ones,
    channels_of_one_kind_are_listed_across_tenants,
    an_expired_lease_is_claimed_again_but_a_live_lease_is_not,
    a_retry_delays_the_row_and_a_failure_finishes_it_with_the_reason,
    a_decision_changes_state_queues_replies_and_completes_the_job_together,
    jobs_of_one_conversation_are_claimed_one_at_a_time,
    another_tenants_conversation_is_invisible_to_every_read_and_write,
    invalid_transitions_are_refused_and_valid_ones_are_recorded,
    web_chat_visitors_find_their_latest_conversation,
    flows_are_versioned_per_tenant_and_the_same_source_adds_no_version,
    a_pinned_flow_version_is_read_back_by_number,
    a_campaign_opens_one_conversation_with_its_start_job,
    a_flow_decision_stores_session_records_consent_and_replies_together,
    a_stale_flow_session_write_changes_nothing,
    a_flow_timer_is_a_due_job_that_never_holds_back_the_conversation,
    channel_settings_are_replaced_within_the_tenant,
    a_status_report_before_the_provider_id_is_recorded_applies_when_it_is,
    equal_phone_numbers_on_whatsapp_and_signal_link_the_contacts,
    a_merge_moves_identities_and_conversations_and_stays_in_the_tenant,
    an_unreachable_identity_shows_its_reason_until_it_is_reachable_again,
    a_batch_of_decisions_commits_together_with_each_decisions_events,
    a_batch_with_one_stale_session_write_changes_nothing,
    sends_recorded_in_one_batch_are_all_recorded_or_none,
    messages_to_conversations_people_own_create_no_job,
    inbound_media_gets_a_download_job_and_its_stored_copy_is_recorded_in_the_tenant,
    a_named_lease_has_one_holder_until_it_expires_or_is_released,
    a_paused_channel_keeps_its_rows_queued_until_it_is_resumed,
    parts_a_provider_accepted_travel_with_the_row_to_the_next_claim,
    a_claimed_row_says_why_its_recipient_is_unreachable,
    cancelled_jobs_are_gone_and_only_the_tenants_own_are_cancelled,
    a_batch_of_jobs_reads_its_inputs_within_the_tenant,
);

// ---------------------------------------------------------------- fixtures

/// A point in time `secs` after a fixed origin.
fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(1_700_000_000 + secs).expect("valid time")
}

struct World {
    tenant: Tenant,
    channel: Channel,
    agent: User,
}

async fn world(s: &SqlStore, slug: &str) -> World {
    let tenant = s
        .create_tenant(slug, &format!("{slug} Inc"), t(0))
        .await
        .expect("tenant");
    let channel = s
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind: ChannelKind::Whatsapp,
                name: "Support WhatsApp".into(),
                credentials: serde_json::json!({"token": "secret"}),
                settings: ChannelSettings {
                    welcome_message: Some("Hi".into()),
                    ..Default::default()
                },
            },
            t(0),
        )
        .await
        .expect("channel");
    let agent = s
        .create_user(
            new_user(&tenant, &format!("agent@{slug}.test"), "Ann"),
            t(0),
        )
        .await
        .expect("user");
    World {
        tenant,
        channel,
        agent,
    }
}

fn new_user(tenant: &Tenant, email: &str, name: &str) -> NewUser {
    NewUser {
        tenant_id: tenant.id,
        email: Email::parse(email).expect("email"),
        name: name.into(),
        role: Role::Agent,
        password_hash: "$argon2id$hash".into(),
    }
}

fn inbound(w: &World, from: &str, provider_id: &str, text: &str, at: Timestamp) -> IngestItem {
    IngestItem {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        message: InboundMessage {
            external_contact_id: from.into(),
            contact_name: Some(format!("Customer {from}")),
            phone: Some(format!("+{from}")),
            provider_message_id: provider_id.into(),
            provider_ts: Some(at),
            content: Content::text(text),
        },
        new_conversation_state: ConversationState::Bot,
        received_at: at + Duration::from_millis(250),
    }
}

fn stored(
    o: &IngestOutcome,
) -> (
    &switchboard_core::Message,
    bool,
    &Vec<switchboard_core::Event>,
) {
    match o {
        IngestOutcome::Stored {
            message,
            new_conversation,
            events,
        } => (message, *new_conversation, events),
        other => panic!("expected Stored, got {other:?}"),
    }
}

/// Ingests one message and returns its conversation.
async fn customer_writes(
    s: &SqlStore,
    w: &World,
    from: &str,
    pid: &str,
    at: Timestamp,
) -> ConversationId {
    let out = s
        .ingest(&[inbound(w, from, pid, "hello", at)])
        .await
        .expect("ingest");
    stored(&out[0]).0.conversation_id
}

fn reply(text: &str, lane: Lane) -> NewOutbound {
    NewOutbound {
        sender: Sender::Bot,
        content: Content::text(text),
        lane,
    }
}

fn failure(class: ErrorClass, reason: &str) -> SendFailure {
    SendFailure {
        class,
        code: Some("131047".into()),
        reason: reason.into(),
    }
}

const LEASE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- tenants, users, sessions

async fn tenants_are_found_by_slug_and_id_and_a_taken_slug_is_a_conflict(s: SqlStore) {
    let acme = s.create_tenant("acme", "ACME", t(0)).await.unwrap();
    assert_eq!(s.tenant_by_slug("acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(s.tenant(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(s.tenant_by_slug("nobody").await.unwrap(), None);
    let err = s.create_tenant("acme", "Other", t(1)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("slug")),
        "{err:?}"
    );
    let err = s.create_tenant("Not A Slug", "x", t(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    s.ping().await.unwrap();
}

async fn users_are_listed_by_name_and_an_email_is_unique_across_tenants(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let zed = s
        .create_user(new_user(&a.tenant, "zed@a.test", "Zed"), t(1))
        .await
        .unwrap();
    let bob = s
        .create_user(new_user(&a.tenant, "bob@a.test", "Bob"), t(1))
        .await
        .unwrap();
    let names: Vec<String> = s
        .list_users(a.tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Ann", "Bob", "Zed"]);
    assert_eq!(s.user(a.tenant.id, zed.id).await.unwrap(), Some(zed));
    assert_eq!(
        s.user(b.tenant.id, bob.id).await.unwrap(),
        None,
        "another tenant's user"
    );
    let ghost = Tenant {
        id: switchboard_core::TenantId::new_at(1),
        ..b.tenant.clone()
    };
    let err = s
        .create_user(new_user(&ghost, "ghost@a.test", "Ghost"), t(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)),
        "unknown tenant: {err:?}"
    );
    let err = s
        .create_user(new_user(&b.tenant, "BOB@a.test", "Bob again"), t(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("e-mail")),
        "{err:?}"
    );
}

async fn login_finds_a_user_by_email_and_password_changes_stay_in_the_tenant(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let (user, hash) = s
        .user_for_login(" Agent@A.test ")
        .await
        .unwrap()
        .expect("found");
    assert_eq!((user.id, hash.as_str()), (a.agent.id, "$argon2id$hash"));
    assert!(s.user_for_login("nobody@a.test").await.unwrap().is_none());
    s.set_password(a.tenant.id, a.agent.id, "$argon2id$new")
        .await
        .unwrap();
    assert_eq!(
        s.user_for_login("agent@a.test").await.unwrap().unwrap().1,
        "$argon2id$new"
    );
    let err = s
        .set_password(b.tenant.id, a.agent.id, "$stolen")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        s.user_for_login("agent@a.test").await.unwrap().unwrap().1,
        "$argon2id$new"
    );
}

async fn sessions_are_found_until_they_expire_and_deleted_ones_are_gone(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let session = Session {
        token_hash: "ab".repeat(32),
        user_id: a.agent.id,
        tenant_id: a.tenant.id,
        csrf_token: "csrf".into(),
        expires_at: t(3600),
    };
    s.create_session(&session).await.unwrap();
    let (found, user) = s
        .session(&session.token_hash, t(10))
        .await
        .unwrap()
        .expect("live");
    assert_eq!(
        (found.user_id, found.csrf_token.as_str(), found.expires_at),
        (a.agent.id, "csrf", t(3600))
    );
    assert_eq!(user, a.agent);
    assert!(
        s.session(&session.token_hash, t(3600))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let err = s.create_session(&session).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let forged = Session {
        token_hash: "cd".repeat(32),
        tenant_id: b.tenant.id,
        ..session.clone()
    };
    assert!(
        matches!(
            s.create_session(&forged).await,
            Err(StoreError::NotFound(_))
        ),
        "user of another tenant"
    );
    s.delete_session(&session.token_hash).await.unwrap();
    assert!(
        s.session(&session.token_hash, t(10))
            .await
            .unwrap()
            .is_none()
    );
}

async fn channels_are_listed_per_tenant_and_found_by_id(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    assert_eq!(
        s.channel(a.channel.id).await.unwrap(),
        Some(a.channel.clone())
    );
    assert_eq!(
        s.list_channels(a.tenant.id).await.unwrap(),
        vec![a.channel.clone()]
    );
    assert_eq!(
        s.list_channels(b.tenant.id).await.unwrap(),
        vec![b.channel.clone()]
    );
    assert_eq!(
        s.channel(switchboard_core::ChannelId::new_at(1))
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------- ingest

async fn a_first_message_opens_a_conversation_and_a_second_joins_it(s: SqlStore) {
    let w = world(&s, "a").await;
    let first = s
        .ingest(&[inbound(&w, "4915", "wamid.1", "hi", t(100))])
        .await
        .unwrap();
    let (m1, new1, events1) = stored(&first[0]);
    assert!(new1);
    assert_eq!(m1.provider_id.as_deref(), Some("wamid.1"));
    assert_eq!(m1.sender, Sender::Customer);
    let kinds: Vec<&str> = events1.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["message_created", "conversation_changed"]);

    let second = s
        .ingest(&[inbound(&w, "4915", "wamid.2", "still there?", t(200))])
        .await
        .unwrap();
    let (m2, new2, _) = stored(&second[0]);
    assert!(!new2);
    assert_eq!(m2.conversation_id, m1.conversation_id);

    let conv = s
        .conversation(w.tenant.id, m1.conversation_id)
        .await
        .unwrap()
        .expect("conversation");
    assert_eq!(conv.conversation.state, ConversationState::Bot);
    assert_eq!(
        conv.conversation.last_inbound_at,
        Some(t(200)),
        "provider time"
    );
    assert_eq!(conv.conversation.last_message_at, t(200));
    assert_eq!(conv.last_message_preview.as_deref(), Some("still there?"));
    assert_eq!(conv.contact_name.as_deref(), Some("Customer 4915"));
    assert_eq!(conv.channel_kind, ChannelKind::Whatsapp);

    let messages = s
        .list_messages(w.tenant.id, m1.conversation_id, 50)
        .await
        .unwrap();
    assert_eq!(messages, vec![m1.clone(), m2.clone()]);
    assert_eq!(
        s.list_messages(w.tenant.id, m1.conversation_id, 1)
            .await
            .unwrap(),
        vec![m2.clone()]
    );

    let (contact, identities) = s
        .contact(w.tenant.id, conv.conversation.contact_id)
        .await
        .unwrap()
        .expect("contact");
    assert_eq!(contact.display_name.as_deref(), Some("Customer 4915"));
    assert_eq!(identities.len(), 1);
    assert_eq!(
        (
            identities[0].external_id.as_str(),
            identities[0].phone.as_deref()
        ),
        ("4915", Some("+4915"))
    );
    assert_eq!(identities[0].kind, ChannelKind::Whatsapp);

    let jobs = s.claim_jobs("node", t(300), LEASE, 10).await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "one conversation: its jobs run one at a time"
    );
    assert_eq!(
        jobs[0].kind,
        JobKind::ProcessInbound {
            conversation_id: m1.conversation_id,
            message_id: m1.id,
            new_conversation: true
        }
    );
    assert_eq!(jobs[0].attempts, 0);
}

async fn a_provider_retry_in_a_later_batch_is_reported_as_a_duplicate(s: SqlStore) {
    let w = world(&s, "a").await;
    let first = s
        .ingest(&[inbound(&w, "1", "wamid.X", "hi", t(1))])
        .await
        .unwrap();
    let (m, _, _) = stored(&first[0]);
    let seq = s.last_event_seq(w.tenant.id).await.unwrap();
    let again = s
        .ingest(&[inbound(&w, "1", "wamid.X", "hi", t(1))])
        .await
        .unwrap();
    match &again[0] {
        IngestOutcome::Duplicate {
            message_id,
            conversation_id,
        } => {
            assert_eq!((*message_id, *conversation_id), (m.id, m.conversation_id));
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(
        s.last_event_seq(w.tenant.id).await.unwrap(),
        seq,
        "a duplicate records nothing"
    );
    assert_eq!(
        s.list_messages(w.tenant.id, m.conversation_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_copy_within_the_same_batch_is_a_duplicate_of_the_first(s: SqlStore) {
    let w = world(&s, "a").await;
    let batch = [
        inbound(&w, "1", "p1", "one", t(1)),
        inbound(&w, "2", "p2", "from someone else", t(1)),
        inbound(&w, "1", "p1", "one", t(1)),
        inbound(&w, "1", "p3", "two", t(2)),
    ];
    let out = s.ingest(&batch).await.unwrap();
    let (m1, new1, _) = stored(&out[0]);
    let (m2, new2, _) = stored(&out[1]);
    let (m4, new4, _) = stored(&out[3]);
    assert!(new1 && new2 && !new4);
    assert_ne!(
        m1.conversation_id, m2.conversation_id,
        "two customers, two conversations"
    );
    assert_eq!(m4.conversation_id, m1.conversation_id);
    assert!(matches!(out[2], IngestOutcome::Duplicate { message_id, .. } if message_id == m1.id));
    assert_eq!(
        s.list_messages(w.tenant.id, m1.conversation_id, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.last_event_seq(w.tenant.id).await.unwrap(),
        6,
        "two events for each stored message"
    );
}

async fn a_message_after_resolution_opens_a_new_conversation(s: SqlStore) {
    let w = world(&s, "a").await;
    let first = customer_writes(&s, &w, "1", "p1", t(1)).await;
    s.transition(w.tenant.id, first, Transition::Resolve, t(2))
        .await
        .unwrap();
    let mut item = inbound(&w, "1", "p2", "me again", t(3));
    item.new_conversation_state = ConversationState::Queued;
    let out = s.ingest(&[item]).await.unwrap();
    let (m, new, _) = stored(&out[0]);
    assert!(new);
    assert_ne!(m.conversation_id, first);
    let conv = s
        .conversation(w.tenant.id, m.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.conversation.state, ConversationState::Queued);
    let open = s
        .list_conversations(w.tenant.id, &ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|c| c.conversation.id).collect::<Vec<_>>(),
        [m.conversation_id]
    );
    let err = s
        .transition(w.tenant.id, first, Transition::Reopen, t(4))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "one open conversation per contact: {err:?}"
    );
}

async fn ingest_refuses_a_channel_of_another_tenant(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let mut item = inbound(&a, "1", "p1", "hi", t(1));
    item.channel_id = b.channel.id;
    assert!(matches!(
        s.ingest(&[item]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.last_event_seq(a.tenant.id).await.unwrap(), 0);
    assert_eq!(s.last_event_seq(b.tenant.id).await.unwrap(), 0);
}

// ---------------------------------------------------------------- events

async fn events_are_gap_free_in_order_and_resume_after_a_sequence_number(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let conv = customer_writes(&s, &a, "1", "p1", t(1)).await;
    customer_writes(&s, &b, "1", "p1", t(1)).await;
    s.enqueue_outbound(a.tenant.id, conv, reply("hello", Lane::Live), t(2))
        .await
        .unwrap();
    s.assign(a.tenant.id, conv, a.agent.id, t(3)).await.unwrap();
    let all = s.events_after(a.tenant.id, 0, 100).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert!(all.iter().all(|e| e.tenant_id == a.tenant.id));
    assert_eq!(s.last_event_seq(a.tenant.id).await.unwrap(), 5);
    let rest = s.events_after(a.tenant.id, 3, 100).await.unwrap();
    assert_eq!(
        rest,
        all[3..].to_vec(),
        "resume returns exactly what followed"
    );
    assert_eq!(
        s.events_after(a.tenant.id, 1, 2).await.unwrap(),
        all[1..3].to_vec()
    );
    assert!(
        s.events_after(a.tenant.id, 5, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.events_after(b.tenant.id, 0, 100).await.unwrap().len(),
        2,
        "numbered per tenant"
    );
    match &all[4].kind {
        EventKind::ConversationChanged { conversation } => {
            assert_eq!(conversation.conversation.assignee, Some(a.agent.id));
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn concurrent_batches_share_one_conversation_and_number_events_without_gaps(s: SqlStore) {
    let w = std::sync::Arc::new(world(&s, "a").await);
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (s, w) = (s.clone(), w.clone());
        tasks.push(tokio::spawn(async move {
            for batch in 0..5 {
                let items: Vec<IngestItem> = (0..10)
                    .map(|i| {
                        let from = if i % 2 == 0 { "shared" } else { "other" };
                        inbound(&w, from, &format!("p-{task}-{batch}-{i}"), "hi", t(batch))
                    })
                    .collect();
                s.ingest(&items).await.expect("ingest");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = s.events_after(w.tenant.id, 0, 10_000).await.unwrap();
    assert_eq!(events.len(), 400);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as i64 + 1),
        "gap-free"
    );
    let open = s
        .list_conversations(w.tenant.id, &ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(open.len(), 2, "one conversation per customer");
}

// ---------------------------------------------------------------- delivery status

async fn delivery_status_only_moves_forward_and_a_failure_after_delivery_is_recorded(s: SqlStore) {
    let w = world(&s, "a").await;
    let b = world(&s, "b").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let (msg, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("hello", Lane::Live), t(2))
        .await
        .unwrap();
    let claimed = s.claim_outbox("node", t(3), LEASE, 10).await.unwrap();
    let event = s
        .outbox_sent(claimed[0].id, Some("wamid.out"), t(4))
        .await
        .unwrap();
    assert!(matches!(
        event.kind,
        EventKind::MessageStatus {
            status: DeliveryStatus::Sent,
            ..
        }
    ));
    let report = |status, secs, fail: Option<SendFailure>| StatusReport {
        provider_message_id: "wamid.out".into(),
        status,
        at: t(secs),
        failure: fail,
    };
    let status_of = |s: SqlStore| async move {
        let list = s.list_messages(w.tenant.id, conv, 10).await.unwrap();
        let m = list.into_iter().find(|m| m.id == msg.id).unwrap();
        (m.status, m.failure)
    };
    assert!(
        s.apply_status(
            b.tenant.id,
            b.channel.id,
            &report(DeliveryStatus::Read, 5, None)
        )
        .await
        .unwrap()
        .is_none(),
        "another tenant"
    );
    assert!(
        s.apply_status(
            w.tenant.id,
            w.channel.id,
            &report(DeliveryStatus::Read, 6, None)
        )
        .await
        .unwrap()
        .is_some()
    );
    assert!(
        s.apply_status(
            w.tenant.id,
            w.channel.id,
            &report(DeliveryStatus::Delivered, 5, None)
        )
        .await
        .unwrap()
        .is_none(),
        "late delivered"
    );
    assert!(
        s.apply_status(
            w.tenant.id,
            w.channel.id,
            &report(DeliveryStatus::Sent, 4, None)
        )
        .await
        .unwrap()
        .is_none(),
        "late sent"
    );
    assert_eq!(status_of(s.clone()).await.0, DeliveryStatus::Read);
    let why = failure(ErrorClass::Permanent, "Message undeliverable");
    let failed = s
        .apply_status(
            w.tenant.id,
            w.channel.id,
            &report(DeliveryStatus::Failed, 7, Some(why.clone())),
        )
        .await
        .unwrap()
        .expect("failure is recorded after read");
    assert!(
        matches!(&failed.kind, EventKind::MessageStatus { status: DeliveryStatus::Failed, failure: Some(f), .. } if *f == why)
    );
    assert_eq!(
        status_of(s.clone()).await,
        (DeliveryStatus::Failed, Some(why))
    );
    assert!(
        s.apply_status(
            w.tenant.id,
            w.channel.id,
            &report(DeliveryStatus::Read, 8, None)
        )
        .await
        .unwrap()
        .is_none(),
        "failed is final"
    );
    assert!(
        s.apply_status(
            w.tenant.id,
            w.channel.id,
            &StatusReport {
                provider_message_id: "unknown".into(),
                ..report(DeliveryStatus::Read, 8, None)
            }
        )
        .await
        .unwrap()
        .is_none()
    );
}

// ---------------------------------------------------------------- outbox

async fn the_second_message_of_a_conversation_waits_until_the_first_is_sent(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let other = customer_writes(&s, &w, "2", "p2", t(1)).await;
    let (first, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("one", Lane::Live), t(2))
        .await
        .unwrap();
    let (second, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("two", Lane::Live), t(2))
        .await
        .unwrap();
    let (third, _) = s
        .enqueue_outbound(w.tenant.id, other, reply("other", Lane::Live), t(2))
        .await
        .unwrap();
    let claimed = s.claim_outbox("node", t(3), LEASE, 10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.message.id).collect();
    assert_eq!(ids, [first.id, third.id]);
    assert_eq!(claimed[0].recipient, "1");
    assert_eq!(claimed[0].idempotency_key, first.id.to_string());
    assert_eq!(claimed[0].channel, w.channel);
    assert!(
        s.claim_outbox("node", t(4), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased, and the second waits"
    );
    s.outbox_sent(claimed[0].id, Some("wamid.1"), t(5))
        .await
        .unwrap();
    let next = s.claim_outbox("node", t(6), LEASE, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.message.id).collect::<Vec<_>>(),
        [second.id]
    );
    assert!(
        matches!(
            s.outbox_sent(claimed[0].id, None, t(7)).await,
            Err(StoreError::Invalid(_))
        ),
        "already sent"
    );
}

async fn live_messages_are_claimed_before_bulk_ones(s: SqlStore) {
    let w = world(&s, "a").await;
    let c1 = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let c2 = customer_writes(&s, &w, "2", "p2", t(1)).await;
    let (bulk, _) = s
        .enqueue_outbound(w.tenant.id, c1, reply("promo", Lane::Bulk), t(2))
        .await
        .unwrap();
    let (live, _) = s
        .enqueue_outbound(w.tenant.id, c2, reply("answer", Lane::Live), t(3))
        .await
        .unwrap();
    let one = s.claim_outbox("node", t(4), LEASE, 1).await.unwrap();
    assert_eq!(one[0].message.id, live.id);
    assert_eq!(one[0].lane, Lane::Live, "the claimed row says its lane");
    assert_eq!(
        one[0].last_inbound_at,
        Some(t(1)),
        "the customer's last message time travels with the row (24 h window)"
    );
    let two = s.claim_outbox("node", t(4), LEASE, 1).await.unwrap();
    assert_eq!(two[0].message.id, bulk.id);
    assert_eq!(two[0].lane, Lane::Bulk);
}

async fn channels_of_one_kind_are_listed_across_tenants(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let found = s.channels_of_kind(ChannelKind::Whatsapp).await.unwrap();
    assert_eq!(found, vec![a.channel.clone(), b.channel.clone()]);
    assert!(
        s.channels_of_kind(ChannelKind::Signal)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_expired_lease_is_claimed_again_but_a_live_lease_is_not(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let (msg, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("one", Lane::Live), t(2))
        .await
        .unwrap();
    let first = s
        .claim_outbox("node-a", t(3), Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        s.claim_outbox("node-b", t(32), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.claim_outbox("node-b", t(33), LEASE, 10).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|c| (c.id, c.message.id))
            .collect::<Vec<_>>(),
        [(first[0].id, msg.id)]
    );
}

async fn a_retry_delays_the_row_and_a_failure_finishes_it_with_the_reason(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let (msg, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("one", Lane::Live), t(2))
        .await
        .unwrap();
    let (next, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("two", Lane::Live), t(2))
        .await
        .unwrap();
    let row = s
        .claim_outbox("node", t(3), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    s.outbox_retry(row.id, t(60), &failure(ErrorClass::RetryLater, "timeout"))
        .await
        .unwrap();
    assert!(
        s.claim_outbox("node", t(59), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due, and it still blocks the next"
    );
    let retried = s.claim_outbox("node", t(60), LEASE, 10).await.unwrap();
    assert_eq!((retried[0].id, retried[0].attempts), (row.id, 1));
    let why = failure(ErrorClass::Permanent, "recipient blocked us");
    let event = s.outbox_failed(row.id, &why, t(61)).await.unwrap();
    assert!(
        matches!(&event.kind, EventKind::MessageStatus { status: DeliveryStatus::Failed, message_id, .. } if *message_id == msg.id)
    );
    let stored = s.list_messages(w.tenant.id, conv, 10).await.unwrap();
    let failed = stored.iter().find(|m| m.id == msg.id).unwrap();
    assert_eq!(
        (failed.status, failed.failure.clone()),
        (DeliveryStatus::Failed, Some(why.clone()))
    );
    let after = s.claim_outbox("node", t(62), LEASE, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|c| c.message.id).collect::<Vec<_>>(),
        [next.id],
        "a failed row no longer blocks"
    );
    assert!(matches!(
        s.outbox_retry(row.id, t(70), &why).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.outbox_failed(row.id, &why, t(70)).await,
        Err(StoreError::Invalid(_))
    ));
}

// ---------------------------------------------------------------- jobs

async fn a_decision_changes_state_queues_replies_and_completes_the_job_together(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let job = s
        .claim_jobs("node", t(2), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    let bad = Decision {
        job_id: job.id,
        tenant_id: w.tenant.id,
        conversation_id: conv,
        new_state: Some(ConversationState::Bot),
        outbound: vec![],
    };
    let reopened = Decision {
        new_state: Some(ConversationState::Resolved),
        ..bad.clone()
    };
    s.apply_decision(reopened, t(3)).await.unwrap();
    // The job is gone: applying again fails and nothing more is claimable.
    let err = s.apply_decision(bad.clone(), t(4)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        s.claim_jobs("node", t(100), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A new conversation: bot hands off to the queue with a notice, in one step.
    let conv = customer_writes(&s, &w, "1", "p2", t(10)).await;
    let job = s
        .claim_jobs("node", t(11), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    let before = s.last_event_seq(w.tenant.id).await.unwrap();
    let events = s
        .apply_decision(
            Decision {
                job_id: job.id,
                tenant_id: w.tenant.id,
                conversation_id: conv,
                new_state: Some(ConversationState::Queued),
                outbound: vec![
                    reply("An agent will join shortly", Lane::Live),
                    reply("Meanwhile…", Lane::Live),
                ],
            },
            t(12),
        )
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [before + 1, before + 2, before + 3]
    );
    let summary = s.conversation(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!(summary.conversation.state, ConversationState::Queued);
    assert_eq!(summary.last_message_preview.as_deref(), Some("Meanwhile…"));
    let outbox = s.claim_outbox("node", t(13), LEASE, 10).await.unwrap();
    assert_eq!(outbox.len(), 1, "two replies, sent in order");
    assert_eq!(
        outbox[0].message.content,
        Content::text("An agent will join shortly")
    );

    // An impossible state change is refused and leaves the job in place: a decision may move
    // a `queued` conversation to the bot (a keyword), never one an agent has taken meanwhile.
    let conv3 = customer_writes(&s, &w, "2", "p3", t(20)).await;
    let job3 = s
        .claim_jobs("node", t(21), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    s.transition(w.tenant.id, conv3, Transition::Handoff, t(22))
        .await
        .unwrap();
    s.assign(w.tenant.id, conv3, w.agent.id, t(22))
        .await
        .unwrap();
    let err = s
        .apply_decision(
            Decision {
                job_id: job3.id,
                tenant_id: w.tenant.id,
                conversation_id: conv3,
                new_state: Some(ConversationState::Bot),
                outbound: vec![],
            },
            t(23),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    s.retry_job(job3.id, t(30), "boom").await.unwrap();
    let again = s.claim_jobs("node", t(30), LEASE, 10).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (job3.id, 1));
}

async fn jobs_of_one_conversation_are_claimed_one_at_a_time(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    customer_writes(&s, &w, "1", "p2", t(2)).await;
    let first = s.claim_jobs("node", t(3), LEASE, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        s.claim_jobs("node", t(4), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.apply_decision(
        Decision {
            job_id: first[0].id,
            tenant_id: w.tenant.id,
            conversation_id: conv,
            new_state: None,
            outbound: vec![],
        },
        t(5),
    )
    .await
    .unwrap();
    let second = s.claim_jobs("node", t(6), LEASE, 10).await.unwrap();
    assert!(matches!(
        &second[0].kind,
        JobKind::ProcessInbound {
            new_conversation: false,
            ..
        }
    ));
    let expired = s
        .claim_jobs("other", t(6) + LEASE, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(
        expired[0].id, second[0].id,
        "an expired lease is claimed again"
    );
}

// ---------------------------------------------------------------- isolation and transitions

async fn another_tenants_conversation_is_invisible_to_every_read_and_write(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let conv = customer_writes(&s, &a, "1", "p1", t(1)).await;
    let summary = s.conversation(a.tenant.id, conv).await.unwrap().unwrap();
    let before = s.last_event_seq(a.tenant.id).await.unwrap();
    let job = s
        .claim_jobs("node", t(2), LEASE, 10)
        .await
        .unwrap()
        .remove(0);

    assert!(s.conversation(b.tenant.id, conv).await.unwrap().is_none());
    assert!(
        s.list_messages(b.tenant.id, conv, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.contact(b.tenant.id, summary.conversation.contact_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.list_conversations(b.tenant.id, &ConversationFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.assign(b.tenant.id, conv, b.agent.id, t(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        matches!(
            s.assign(a.tenant.id, conv, b.agent.id, t(3)).await,
            Err(StoreError::NotFound(_))
        ),
        "agent of another tenant"
    );
    assert!(matches!(
        s.transition(b.tenant.id, conv, Transition::Resolve, t(3))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.enqueue_outbound(b.tenant.id, conv, reply("x", Lane::Live), t(3))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let decision = Decision {
        job_id: job.id,
        tenant_id: b.tenant.id,
        conversation_id: conv,
        new_state: None,
        outbound: vec![reply("x", Lane::Live)],
    };
    assert!(matches!(
        s.apply_decision(decision, t(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        s.events_after(b.tenant.id, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.last_event_seq(a.tenant.id).await.unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(
        s.conversation(a.tenant.id, conv).await.unwrap().unwrap(),
        summary
    );
    assert!(
        s.claim_outbox("node", t(4), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn invalid_transitions_are_refused_and_valid_ones_are_recorded(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let refuse = |tr: Transition| {
        let s = s.clone();
        let tenant = w.tenant.id;
        async move {
            let err = s.transition(tenant, conv, tr, t(9)).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{tr:?}: {err:?}");
        }
    };
    refuse(Transition::ToQueue).await;
    refuse(Transition::Reopen).await;
    s.transition(w.tenant.id, conv, Transition::Handoff, t(2))
        .await
        .unwrap();
    refuse(Transition::Handoff).await;
    s.assign(w.tenant.id, conv, w.agent.id, t(3)).await.unwrap();
    let mine = ConversationFilter {
        assignee: Some(w.agent.id),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.list_conversations(w.tenant.id, &mine)
            .await
            .unwrap()
            .len(),
        1
    );
    let event = s
        .transition(w.tenant.id, conv, Transition::ToQueue, t(4))
        .await
        .unwrap();
    match event.kind {
        EventKind::ConversationChanged { conversation } => {
            assert_eq!(conversation.conversation.state, ConversationState::Queued);
            assert_eq!(conversation.conversation.assignee, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    s.transition(w.tenant.id, conv, Transition::Resolve, t(5))
        .await
        .unwrap();
    refuse(Transition::Resolve).await;
    let resolved = ConversationFilter {
        states: vec![ConversationState::Resolved],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.list_conversations(w.tenant.id, &resolved)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.list_conversations(w.tenant.id, &ConversationFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    s.transition(w.tenant.id, conv, Transition::Reopen, t(6))
        .await
        .unwrap();
    assert_eq!(
        s.conversation(w.tenant.id, conv)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .state,
        ConversationState::Queued
    );
}

async fn web_chat_visitors_find_their_latest_conversation(s: SqlStore) {
    let w = world(&s, "a").await;
    let webchat = s
        .create_channel(
            NewChannel {
                tenant_id: w.tenant.id,
                kind: ChannelKind::Webchat,
                name: "Site".into(),
                credentials: serde_json::json!({}),
                settings: ChannelSettings::default(),
            },
            t(1),
        )
        .await
        .unwrap();
    let visitor = s
        .create_webchat_visitor(webchat.id, "hash-1", t(2))
        .await
        .unwrap();
    assert_eq!(
        s.webchat_visitor(webchat.id, "hash-1").await.unwrap(),
        Some(visitor.clone())
    );
    assert_eq!(s.webchat_visitor(webchat.id, "hash-2").await.unwrap(), None);
    assert!(matches!(
        s.create_webchat_visitor(webchat.id, "hash-1", t(3)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            s.create_webchat_visitor(w.channel.id, "hash-9", t(3)).await,
            Err(StoreError::NotFound(_))
        ),
        "not a web chat channel"
    );
    assert!(
        s.webchat_conversation(webchat.id, &visitor.visitor_id)
            .await
            .unwrap()
            .is_none()
    );
    let item = IngestItem {
        tenant_id: w.tenant.id,
        channel_id: webchat.id,
        message: InboundMessage {
            external_contact_id: visitor.visitor_id.clone(),
            contact_name: None,
            phone: None,
            provider_message_id: "client-1".into(),
            provider_ts: None,
            content: Content::text("hello from the site"),
        },
        new_conversation_state: ConversationState::Bot,
        received_at: t(4),
    };
    let out = s.ingest(&[item]).await.unwrap();
    let (m, _, _) = stored(&out[0]);
    assert_eq!(m.provider_ts, None);
    let conv = s
        .webchat_conversation(webchat.id, &visitor.visitor_id)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(conv.id, m.conversation_id);
    assert_eq!(
        conv.last_inbound_at,
        Some(t(4)),
        "receive time when the provider gives none"
    );
}

// ---------------------------------------------------------------- flows

async fn flows_are_versioned_per_tenant_and_the_same_source_adds_no_version(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let v1 = s
        .save_flow(a.tenant.id, "menu", "id: menu\n", t(1))
        .await
        .unwrap();
    assert_eq!((v1.flow.version, v1.created), (1, true));
    let same = s
        .save_flow(a.tenant.id, "menu", "id: menu\n", t(2))
        .await
        .unwrap();
    assert_eq!(
        (same.flow.version, same.created),
        (1, false),
        "same source: no new version"
    );
    assert_eq!(same.flow.loaded_at, v1.flow.loaded_at);
    let v2 = s
        .save_flow(a.tenant.id, "menu", "id: menu\nname: Menu\n", t(3))
        .await
        .unwrap();
    assert_eq!((v2.flow.version, v2.created), (2, true));
    s.save_flow(a.tenant.id, "other", "id: other\n", t(4))
        .await
        .unwrap();
    let other_tenant = s
        .save_flow(b.tenant.id, "menu", "id: menu\n", t(5))
        .await
        .unwrap();
    assert_eq!(other_tenant.flow.version, 1, "versions count per tenant");

    let latest = s.flows(a.tenant.id).await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|f| (f.flow_id.as_str(), f.version, f.source.as_str()))
            .collect::<Vec<_>>(),
        [
            ("menu", 2, "id: menu\nname: Menu\n"),
            ("other", 1, "id: other\n")
        ],
        "only the latest version of each flow"
    );
    assert_eq!(s.flows(b.tenant.id).await.unwrap().len(), 1);
    assert!(matches!(
        s.save_flow(a.tenant.id, "  ", "x", t(6)).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn a_pinned_flow_version_is_read_back_by_number(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    s.save_flow(a.tenant.id, "menu", "id: menu\n", t(1))
        .await
        .unwrap();
    s.save_flow(a.tenant.id, "menu", "id: menu\nname: Menu\n", t(2))
        .await
        .unwrap();
    let cases = [
        (
            a.tenant.id,
            "menu",
            1,
            Some("id: menu\n"),
            "an older version",
        ),
        (
            a.tenant.id,
            "menu",
            2,
            Some("id: menu\nname: Menu\n"),
            "the latest",
        ),
        (a.tenant.id, "menu", 3, None, "a version never loaded"),
        (a.tenant.id, "other", 1, None, "an unknown flow"),
        (b.tenant.id, "menu", 1, None, "another tenant's flow"),
    ];
    for (tenant, flow, version, want, why) in cases {
        let got = s.flow_version(tenant, flow, version).await.unwrap();
        assert_eq!(got.as_ref().map(|f| f.source.as_str()), want, "{why}");
        if let Some(f) = got {
            assert_eq!((f.flow_id.as_str(), f.version), (flow, version), "{why}");
        }
    }
}

async fn a_campaign_opens_one_conversation_with_its_start_job(s: SqlStore) {
    use switchboard_core::ports::CampaignStart;
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let old = customer_writes(&s, &a, "27820000001", "p1", t(10)).await;
    let old_summary = s.conversation(a.tenant.id, old).await.unwrap().unwrap();
    let contact = old_summary.conversation.contact_id;
    let campaign = CampaignStart {
        opening_template: Some(Content::Template {
            name: "account_update".into(),
            language: "en_US".into(),
            variables: vec![],
        }),
    };

    // An open conversation is returned as it is, and nothing is enqueued for it.
    let opened = s
        .open_conversation(
            a.tenant.id,
            contact,
            a.channel.id,
            "menu",
            campaign.clone(),
            t(20),
        )
        .await
        .unwrap();
    assert!(!opened.created);
    assert_eq!(opened.conversation.conversation.id, old);
    assert!(opened.events.is_empty());

    // Resolved: a new conversation in `bot`, the customer's window carried over, one event.
    s.transition(a.tenant.id, old, Transition::Resolve, t(30))
        .await
        .unwrap();
    let opened = s
        .open_conversation(
            a.tenant.id,
            contact,
            a.channel.id,
            "menu",
            campaign.clone(),
            t(40),
        )
        .await
        .unwrap();
    assert!(opened.created);
    let new = opened.conversation.conversation.clone();
    assert_ne!(new.id, old);
    assert_eq!(new.state, ConversationState::Bot);
    assert_eq!(new.contact_id, contact);
    assert_eq!(
        new.last_inbound_at, old_summary.conversation.last_inbound_at,
        "WhatsApp's window is the customer's, not the conversation's"
    );
    assert_eq!(opened.events.len(), 1);
    assert!(matches!(
        &opened.events[0].kind,
        EventKind::ConversationChanged { conversation } if conversation.conversation.id == new.id
    ));
    let jobs = s.claim_jobs("node", t(50), LEASE, 10).await.unwrap();
    let start: Vec<_> = jobs
        .iter()
        .filter(|j| matches!(&j.kind, JobKind::StartFlow { conversation_id, .. } if *conversation_id == new.id))
        .collect();
    assert_eq!(start.len(), 1, "{jobs:?}");
    assert_eq!(
        start[0].kind,
        JobKind::StartFlow {
            conversation_id: new.id,
            flow_id: "menu".into(),
            campaign: Some(campaign.clone()),
        }
    );

    // Refused: another tenant, or a channel where the contact has no address.
    for (tenant, channel, why) in [
        (b.tenant.id, a.channel.id, "another tenant"),
        (a.tenant.id, b.channel.id, "another tenant's channel"),
    ] {
        assert!(
            matches!(
                s.open_conversation(tenant, contact, channel, "menu", campaign.clone(), t(60))
                    .await,
                Err(StoreError::NotFound(_))
            ),
            "{why}"
        );
    }
}

async fn claim_one(s: &SqlStore, at: Timestamp) -> switchboard_core::ports::Job {
    let mut jobs = s.claim_jobs("node", at, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.remove(0)
}

fn decide(w: &World, job: &switchboard_core::ports::Job, conv: ConversationId) -> Decision {
    Decision {
        job_id: job.id,
        tenant_id: w.tenant.id,
        conversation_id: conv,
        new_state: None,
        outbound: vec![],
    }
}

async fn a_flow_decision_stores_session_records_consent_and_replies_together(s: SqlStore) {
    use switchboard_core::ports::{
        ConsentStatus, FlowEffects, FlowSessionWrite, NewConsent, NewRecord, TimerChange,
    };
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    assert!(s.flow_session(w.tenant.id, conv).await.unwrap().is_none());
    let job = claim_one(&s, t(2)).await;
    let events = s
        .apply_flow_decision(
            Decision {
                new_state: Some(ConversationState::Queued),
                outbound: vec![reply("A person is joining", Lane::Live)],
                ..decide(&w, &job, conv)
            },
            FlowEffects {
                session: Some(FlowSessionWrite {
                    session: serde_json::json!({"root": "main_menu", "state": "handed_off"}),
                    expected_version: None,
                    timer: TimerChange::Keep,
                }),
                records: vec![
                    NewRecord {
                        kind: "loan_application".into(),
                        data: serde_json::json!({"amount": "5000.00"}),
                    },
                    NewRecord {
                        kind: "handoff".into(),
                        data: serde_json::json!({"queue": "loans", "summary": "R5000"}),
                    },
                ],
                consents: vec![NewConsent {
                    status: ConsentStatus::OptedOut,
                    source: "flow:main_menu".into(),
                    wording: Some("stop".into()),
                }],
                contact_attributes: vec![("language".into(), serde_json::json!("af"))],
            },
            t(3),
        )
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::MessageCreated { .. }))
    );
    let stored = s.flow_session(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.version,
            stored.session["root"].as_str(),
            stored.timer_job
        ),
        (1, Some("main_menu"), None)
    );
    let summary = s.conversation(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!(summary.conversation.state, ConversationState::Queued);
    let records = s.records(w.tenant.id, conv).await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["loan_application", "handoff"]
    );
    assert_eq!(records[0].data["amount"], "5000.00");
    assert_eq!(records[0].contact_id, summary.conversation.contact_id);
    let consents = s
        .consents(w.tenant.id, summary.conversation.contact_id)
        .await
        .unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(
        (
            consents[0].status,
            consents[0].channel_id,
            consents[0].source.as_str()
        ),
        (ConsentStatus::OptedOut, w.channel.id, "flow:main_menu")
    );
    let (contact, _) = s
        .contact(w.tenant.id, summary.conversation.contact_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.attributes["language"], "af");
    assert_eq!(
        s.claim_outbox("node", t(4), LEASE, 10).await.unwrap().len(),
        1
    );

    // Another tenant sees none of it.
    let b = world(&s, "b").await;
    assert!(s.flow_session(b.tenant.id, conv).await.unwrap().is_none());
    assert!(s.records(b.tenant.id, conv).await.unwrap().is_empty());
    assert!(
        s.consents(b.tenant.id, summary.conversation.contact_id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_stale_flow_session_write_changes_nothing(s: SqlStore) {
    use switchboard_core::ports::{FlowEffects, FlowSessionWrite, NewRecord, TimerChange};
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let job = claim_one(&s, t(2)).await;
    let write = |v: Option<i64>, n: i64| FlowEffects {
        session: Some(FlowSessionWrite {
            session: serde_json::json!({"n": n}),
            expected_version: v,
            timer: TimerChange::Keep,
        }),
        records: vec![NewRecord {
            kind: "order".into(),
            data: serde_json::json!({"n": n}),
        }],
        ..FlowEffects::default()
    };
    s.apply_flow_decision(decide(&w, &job, conv), write(None, 1), t(3))
        .await
        .unwrap();
    customer_writes(&s, &w, "1", "p2", t(4)).await;
    let job = claim_one(&s, t(5)).await;
    // Written by someone who read no session (or an old version): refused, job kept.
    for stale in [None, Some(7)] {
        let err = s
            .apply_flow_decision(
                Decision {
                    outbound: vec![reply("never sent", Lane::Live)],
                    ..decide(&w, &job, conv)
                },
                write(stale, 2),
                t(6),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    assert_eq!(s.records(w.tenant.id, conv).await.unwrap().len(), 1);
    assert!(
        s.claim_outbox("node", t(7), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stored = s.flow_session(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, &stored.session),
        (1, &serde_json::json!({"n": 1}))
    );
    // With the version read, it goes through.
    s.apply_flow_decision(decide(&w, &job, conv), write(Some(1), 2), t(8))
        .await
        .unwrap();
    let stored = s.flow_session(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, &stored.session),
        (2, &serde_json::json!({"n": 2}))
    );
}

async fn a_flow_timer_is_a_due_job_that_never_holds_back_the_conversation(s: SqlStore) {
    use switchboard_core::ports::{FlowEffects, FlowSessionWrite, JobKind, TimerChange};
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let job = claim_one(&s, t(2)).await;
    let arm = |v: Option<i64>, timer| FlowEffects {
        session: Some(FlowSessionWrite {
            session: serde_json::json!({}),
            expected_version: v,
            timer,
        }),
        ..FlowEffects::default()
    };
    s.apply_flow_decision(
        decide(&w, &job, conv),
        arm(None, TimerChange::Set(t(1000))),
        t(3),
    )
    .await
    .unwrap();
    let first_timer = s
        .flow_session(w.tenant.id, conv)
        .await
        .unwrap()
        .unwrap()
        .timer_job
        .expect("timer armed");

    // A later customer message is processed while the timer waits.
    customer_writes(&s, &w, "1", "p2", t(10)).await;
    let job = claim_one(&s, t(11)).await;
    assert!(matches!(job.kind, JobKind::ProcessInbound { .. }));
    // Re-arming replaces the timer: the old job is gone.
    s.apply_flow_decision(
        decide(&w, &job, conv),
        arm(Some(1), TimerChange::Set(t(2000))),
        t(12),
    )
    .await
    .unwrap();
    let session = s.flow_session(w.tenant.id, conv).await.unwrap().unwrap();
    let timer = session.timer_job.expect("timer armed");
    assert_ne!(timer, first_timer);
    assert!(
        s.claim_jobs("node", t(1500), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // When due, the timer is claimed; completing it with no new timer leaves none.
    let fired = claim_one(&s, t(2000)).await;
    assert_eq!(fired.id, timer);
    assert_eq!(
        fired.kind,
        JobKind::FlowTimeout {
            conversation_id: conv
        }
    );
    s.apply_flow_decision(
        decide(&w, &fired, conv),
        arm(Some(2), TimerChange::Cancel),
        t(2001),
    )
    .await
    .unwrap();
    let session = s.flow_session(w.tenant.id, conv).await.unwrap().unwrap();
    assert_eq!((session.version, session.timer_job), (3, None));
    assert!(
        s.claim_jobs("node", t(9999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Jobs can be queued for later (API-started flows).
    let id = s
        .enqueue_job(
            w.tenant.id,
            JobKind::StartFlow {
                conversation_id: conv,
                flow_id: "collections".into(),
                campaign: None,
            },
            t(3000),
        )
        .await
        .unwrap();
    assert!(
        s.claim_jobs("node", t(2999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(claim_one(&s, t(3000)).await.id, id);
}

async fn channel_settings_are_replaced_within_the_tenant(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let settings = ChannelSettings {
        default_flow: Some("main_menu".into()),
        ..a.channel.settings.clone()
    };
    let changed = s
        .set_channel_settings(a.tenant.id, a.channel.id, &settings)
        .await
        .unwrap();
    assert_eq!(changed.settings.default_flow.as_deref(), Some("main_menu"));
    let read = s.channel(a.channel.id).await.unwrap().unwrap();
    assert_eq!(read.settings, settings);
    assert!(matches!(
        s.set_channel_settings(b.tenant.id, a.channel.id, &settings)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

// ---------------------------------------------------------------- issue 3: status race, identity

async fn a_status_report_before_the_provider_id_is_recorded_applies_when_it_is(s: SqlStore) {
    // Arrange: a reply is claimed but its send result is not recorded yet.
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let (msg, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("hello", Lane::Live), t(2))
        .await
        .unwrap();
    let claimed = s.claim_outbox("node", t(3), LEASE, 10).await.unwrap();

    // Act: the provider's "delivered" and "read" beat our own commit.
    for (status, secs) in [(DeliveryStatus::Delivered, 4), (DeliveryStatus::Read, 5)] {
        let r = s
            .apply_status(
                w.tenant.id,
                w.channel.id,
                &StatusReport {
                    provider_message_id: "wamid.early".into(),
                    status,
                    at: t(secs),
                    failure: None,
                },
            )
            .await
            .unwrap();
        assert!(r.is_none(), "no message carries the id yet");
    }
    let event = s
        .outbox_sent(claimed[0].id, Some("wamid.early"), t(6))
        .await
        .unwrap();

    // Assert: the kept reports applied in the same transaction, and only once.
    assert!(
        matches!(
            event.kind,
            EventKind::MessageStatus {
                status: DeliveryStatus::Read,
                ..
            }
        ),
        "{:?}",
        event.kind
    );
    let list = s.list_messages(w.tenant.id, conv, 10).await.unwrap();
    let m = list.into_iter().find(|m| m.id == msg.id).unwrap();
    assert_eq!(m.status, DeliveryStatus::Read);
    let (msg2, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("again", Lane::Live), t(7))
        .await
        .unwrap();
    let claimed = s.claim_outbox("node", t(8), LEASE, 10).await.unwrap();
    let event = s
        .outbox_sent(claimed[0].id, Some("wamid.other"), t(9))
        .await
        .unwrap();
    assert!(matches!(
        event.kind,
        EventKind::MessageStatus {
            status: DeliveryStatus::Sent,
            ..
        }
    ));
    let list = s.list_messages(w.tenant.id, conv, 10).await.unwrap();
    assert_eq!(
        list.iter().find(|m| m.id == msg2.id).unwrap().status,
        DeliveryStatus::Sent
    );
}

/// A Signal channel in the world's tenant.
async fn signal_channel(s: &SqlStore, w: &World) -> Channel {
    s.create_channel(
        NewChannel {
            tenant_id: w.tenant.id,
            kind: ChannelKind::Signal,
            name: "Signal".into(),
            credentials: serde_json::json!({}),
            settings: ChannelSettings::default(),
        },
        t(0),
    )
    .await
    .expect("signal channel")
}

/// A message from `from` on `channel`, and its contact.
async fn writes_on(
    s: &SqlStore,
    w: &World,
    channel: &Channel,
    from: &str,
    pid: &str,
) -> (switchboard_core::ContactId, ConversationId) {
    let mut item = inbound(w, from, pid, "hi", t(1));
    item.channel_id = channel.id;
    let out = s.ingest(&[item]).await.expect("ingest");
    let conv = stored(&out[0]).0.conversation_id;
    let summary = s.conversation(w.tenant.id, conv).await.unwrap().unwrap();
    (summary.conversation.contact_id, conv)
}

async fn equal_phone_numbers_on_whatsapp_and_signal_link_the_contacts(s: SqlStore) {
    // Arrange
    let w = world(&s, "a").await;
    let signal = signal_channel(&s, &w).await;
    let (wa_contact, wa_conv) = writes_on(&s, &w, &w.channel, "491511", "wa1").await;
    let (sig_contact, sig_conv) = writes_on(&s, &w, &signal, "uuid-1", "sig1").await;
    assert_ne!(wa_contact, sig_contact);

    // Act
    let first = s
        .link_by_phone(w.tenant.id, w.channel.id, "491511", "+49 151 1234567", t(2))
        .await
        .unwrap();
    let linked = s
        .link_by_phone(w.tenant.id, signal.id, "uuid-1", "0049151-1234567", t(3))
        .await
        .unwrap()
        .expect("linked");
    let other = s
        .link_by_phone(w.tenant.id, signal.id, "uuid-1", "+4915199999999", t(4))
        .await
        .unwrap();

    // Assert
    assert!(first.is_none(), "nothing to link with yet");
    assert!(other.is_none(), "a different number links nothing");
    assert_eq!(linked.survivor, wa_contact, "the earlier contact survives");
    assert_eq!(linked.merged, sig_contact);
    let (_, ids) = s.contact(w.tenant.id, wa_contact).await.unwrap().unwrap();
    assert_eq!(ids.len(), 2);
    let sig = ids.iter().find(|i| i.channel_id == signal.id).unwrap();
    assert_eq!(sig.linked_by.as_deref(), Some("phone_e164"));
    let convs = s
        .contact_conversations(w.tenant.id, wa_contact)
        .await
        .unwrap();
    let ids: Vec<ConversationId> = convs.iter().map(|c| c.conversation.id).collect();
    assert!(ids.contains(&wa_conv) && ids.contains(&sig_conv), "{ids:?}");
    assert!(matches!(
        s.link_by_phone(w.tenant.id, signal.id, "nobody", "+491511234567", t(5))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_merge_moves_identities_and_conversations_and_stays_in_the_tenant(s: SqlStore) {
    // Arrange
    let w = world(&s, "a").await;
    let b = world(&s, "b").await;
    let signal = signal_channel(&s, &w).await;
    let (keep, _) = writes_on(&s, &w, &w.channel, "491511", "wa1").await;
    let (gone, conv) = writes_on(&s, &w, &signal, "uuid-1", "sig1").await;
    let (foreign, _) = writes_on(&s, &b, &b.channel, "491511", "wa1").await;

    // Act / Assert: foreign and unknown ids change nothing.
    for (x, y) in [(keep, foreign), (foreign, gone)] {
        assert!(matches!(
            s.merge_contacts(w.tenant.id, x, y, Some(w.agent.id), t(2))
                .await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(matches!(
        s.merge_contacts(w.tenant.id, keep, keep, None, t(2)).await,
        Err(StoreError::Invalid(_))
    ));
    let (_, ids) = s.contact(w.tenant.id, gone).await.unwrap().unwrap();
    assert_eq!(ids.len(), 1, "nothing moved");

    let merged = s
        .merge_contacts(w.tenant.id, keep, gone, Some(w.agent.id), t(3))
        .await
        .unwrap();
    assert_eq!(merged.conversations, vec![conv]);
    assert_eq!(merged.events.len(), 1);
    let (_, ids) = s.contact(w.tenant.id, keep).await.unwrap().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        s.conversation(w.tenant.id, conv)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .contact_id,
        keep
    );
    assert!(
        matches!(
            s.merge_contacts(w.tenant.id, keep, gone, None, t(4)).await,
            Err(StoreError::NotFound(_))
        ),
        "a merged contact cannot be merged again"
    );
}

async fn an_unreachable_identity_shows_its_reason_until_it_is_reachable_again(s: SqlStore) {
    let w = world(&s, "a").await;
    let b = world(&s, "b").await;
    let (contact, _) = writes_on(&s, &w, &w.channel, "491511", "wa1").await;
    assert!(
        !s.set_reachability(b.tenant.id, w.channel.id, "491511", Some("x"), t(2))
            .await
            .unwrap(),
        "another tenant"
    );
    assert!(
        s.set_reachability(w.tenant.id, w.channel.id, "491511", Some("blocked"), t(2))
            .await
            .unwrap()
    );
    let (_, ids) = s.contact(w.tenant.id, contact).await.unwrap().unwrap();
    assert_eq!(ids[0].unreachable.as_deref(), Some("blocked"));
    s.set_reachability(w.tenant.id, w.channel.id, "491511", None, t(3))
        .await
        .unwrap();
    let (_, ids) = s.contact(w.tenant.id, contact).await.unwrap().unwrap();
    assert_eq!(ids[0].unreachable, None);
}

// ---------------------------------------------------------------- group commit

async fn a_batch_of_decisions_commits_together_with_each_decisions_events(s: SqlStore) {
    use switchboard_core::ports::{FlowEffects, FlowSessionWrite, TimerChange};
    let w = world(&s, "a").await;
    let c1 = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let c2 = customer_writes(&s, &w, "2", "p2", t(1)).await;
    let c3 = customer_writes(&s, &w, "3", "p3", t(1)).await;
    let jobs = s.claim_jobs("node", t(2), LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 3);
    let job_of = |c: ConversationId| {
        jobs.iter()
            .find(|j| j.kind.ordering_key() == Some(c))
            .expect("a job per conversation")
    };
    let session = FlowEffects {
        session: Some(FlowSessionWrite {
            session: serde_json::json!({"root": "main_menu"}),
            expected_version: None,
            timer: TimerChange::Keep,
        }),
        ..FlowEffects::default()
    };
    let before = s.last_event_seq(w.tenant.id).await.unwrap();
    // Input order differs from conversation order on purpose: events come back per input.
    let events = s
        .apply_decisions(
            vec![
                (
                    Decision {
                        outbound: vec![reply("menu for 3", Lane::Live)],
                        ..decide(&w, job_of(c3), c3)
                    },
                    session.clone(),
                ),
                (decide(&w, job_of(c1), c1), FlowEffects::default()),
                (
                    Decision {
                        new_state: Some(ConversationState::Queued),
                        outbound: vec![reply("a person joins", Lane::Live)],
                        ..decide(&w, job_of(c2), c2)
                    },
                    FlowEffects::default(),
                ),
            ],
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[1].is_empty(), "a decision that changes nothing");
    for (list, conv) in [(&events[0], c3), (&events[2], c2)] {
        assert_eq!(list.len(), 2, "message created + conversation changed");
        assert!(list.iter().all(|e| e.kind.conversation_id() == Some(conv)));
    }
    let mut seqs: Vec<i64> = events.iter().flatten().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (before + 1..=before + 4).collect::<Vec<_>>(),
        "gap-free"
    );
    assert_eq!(
        s.conversation(w.tenant.id, c2)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .state,
        ConversationState::Queued
    );
    assert_eq!(
        s.flow_session(w.tenant.id, c3)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        s.claim_outbox("node", t(4), LEASE, 10).await.unwrap().len(),
        2
    );
    assert!(
        s.claim_jobs("node", t(100), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "every job completed"
    );
    assert!(s.apply_decisions(vec![], t(5)).await.unwrap().is_empty());

    // A second round updates the session (version checked) and arms its timer, in a batch.
    customer_writes(&s, &w, "3", "p4", t(6)).await;
    customer_writes(&s, &w, "1", "p5", t(6)).await;
    let jobs = s.claim_jobs("node", t(7), LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let batch = jobs
        .iter()
        .map(|j| {
            let conv = j.kind.ordering_key().expect("a conversation job");
            let effects = if conv == c3 {
                FlowEffects {
                    session: Some(FlowSessionWrite {
                        session: serde_json::json!({"root": "main_menu", "n": 2}),
                        expected_version: Some(1),
                        timer: TimerChange::Set(t(100)),
                    }),
                    ..FlowEffects::default()
                }
            } else {
                FlowEffects::default()
            };
            (decide(&w, j, conv), effects)
        })
        .collect();
    s.apply_decisions(batch, t(8)).await.unwrap();
    let stored = s.flow_session(w.tenant.id, c3).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.session["n"], 2);
    let timer = stored.timer_job.expect("timer armed");
    let due = s.claim_jobs("node", t(100), LEASE, 10).await.unwrap();
    assert_eq!(due.iter().map(|j| j.id).collect::<Vec<_>>(), [timer]);
}

async fn a_batch_with_one_stale_session_write_changes_nothing(s: SqlStore) {
    use switchboard_core::ports::{FlowEffects, FlowSessionWrite, NewRecord, TimerChange};
    let w = world(&s, "a").await;
    let c1 = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let c2 = customer_writes(&s, &w, "2", "p2", t(1)).await;
    let first = s.claim_jobs("node", t(2), LEASE, 10).await.unwrap();
    let job_of = |c: ConversationId| {
        first
            .iter()
            .find(|j| j.kind.ordering_key() == Some(c))
            .expect("a job per conversation")
            .clone()
    };
    let (j1, j2) = (job_of(c1), job_of(c2));
    s.apply_flow_decision(
        decide(&w, &j1, c1),
        FlowEffects {
            session: Some(FlowSessionWrite {
                session: serde_json::json!({"n": 1}),
                expected_version: None,
                timer: TimerChange::Keep,
            }),
            ..FlowEffects::default()
        },
        t(3),
    )
    .await
    .unwrap();
    customer_writes(&s, &w, "1", "p3", t(4)).await;
    let j3 = claim_one(&s, t(5)).await;
    let good = (
        Decision {
            outbound: vec![reply("fine", Lane::Live)],
            ..decide(&w, &j2, c2)
        },
        FlowEffects {
            records: vec![NewRecord {
                kind: "order".into(),
                data: serde_json::json!({}),
            }],
            ..FlowEffects::default()
        },
    );
    let stale = (
        Decision {
            outbound: vec![reply("never sent", Lane::Live)],
            ..decide(&w, &j3, c1)
        },
        FlowEffects {
            session: Some(FlowSessionWrite {
                session: serde_json::json!({"n": 2}),
                expected_version: None,
                timer: TimerChange::Keep,
            }),
            ..FlowEffects::default()
        },
    );
    let before = s.last_event_seq(w.tenant.id).await.unwrap();
    let err = s
        .apply_decisions(vec![good.clone(), stale], t(6))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Nothing of the batch happened: no replies, records, events; both jobs still there.
    assert!(
        s.claim_outbox("node", t(7), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.records(w.tenant.id, c2).await.unwrap().is_empty());
    assert_eq!(s.last_event_seq(w.tenant.id).await.unwrap(), before);
    assert_eq!(
        s.flow_session(w.tenant.id, c1)
            .await
            .unwrap()
            .unwrap()
            .session,
        serde_json::json!({"n": 1})
    );
    // The good decision alone still goes through (what the worker does on a failed batch).
    s.apply_flow_decision(good.0, good.1, t(8)).await.unwrap();
    assert_eq!(s.records(w.tenant.id, c2).await.unwrap().len(), 1);
    let again = s.claim_jobs("node", t(6) + LEASE, LEASE, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|j| j.id).collect::<Vec<_>>(),
        [j3.id],
        "the stale job is left to run again"
    );
}

async fn sends_recorded_in_one_batch_are_all_recorded_or_none(s: SqlStore) {
    let w = world(&s, "a").await;
    let mut rows = Vec::new();
    for (from, pid) in [("1", "p1"), ("2", "p2"), ("3", "p3")] {
        let conv = customer_writes(&s, &w, from, pid, t(1)).await;
        s.enqueue_outbound(w.tenant.id, conv, reply("hi", Lane::Live), t(2))
            .await
            .unwrap();
    }
    rows.extend(s.claim_outbox("node", t(3), LEASE, 10).await.unwrap());
    assert_eq!(rows.len(), 3);
    let before = s.last_event_seq(w.tenant.id).await.unwrap();
    let events = s
        .outbox_sent_many(
            &[
                (rows[0].id, Some("wamid.1".to_string())),
                (rows[1].id, None),
            ],
            t(4),
        )
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [before + 1, before + 2]
    );
    for (e, row) in events.iter().zip(&rows) {
        match &e.kind {
            EventKind::MessageStatus {
                message_id, status, ..
            } => assert_eq!(
                (message_id, *status),
                (&row.message.id, DeliveryStatus::Sent)
            ),
            other => panic!("expected a status event, got {other:?}"),
        }
    }
    let sent = s
        .list_messages(w.tenant.id, rows[0].message.conversation_id, 10)
        .await
        .unwrap();
    let out = sent.iter().find(|m| m.id == rows[0].message.id).unwrap();
    assert_eq!(
        (out.status, out.provider_id.as_deref()),
        (DeliveryStatus::Sent, Some("wamid.1"))
    );
    // One row already recorded: the whole batch is refused, the other row stays pending.
    let err = s
        .outbox_sent_many(&[(rows[2].id, None), (rows[0].id, None)], t(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(s.last_event_seq(w.tenant.id).await.unwrap(), before + 2);
    s.outbox_sent(rows[2].id, None, t(6)).await.unwrap();
    assert!(s.outbox_sent_many(&[], t(7)).await.unwrap().is_empty());
}

async fn messages_to_conversations_people_own_create_no_job(s: SqlStore) {
    let w = world(&s, "a").await;
    // A bot conversation: every message is a job.
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let job = claim_one(&s, t(2)).await;
    s.apply_decision(decide(&w, &job, conv), t(3))
        .await
        .unwrap();
    customer_writes(&s, &w, "1", "p2", t(4)).await;
    let job = claim_one(&s, t(5)).await;
    s.apply_decision(
        Decision {
            new_state: Some(ConversationState::Queued),
            ..decide(&w, &job, conv)
        },
        t(6),
    )
    .await
    .unwrap();
    // Queued, then assigned: stored and announced, but nothing to decide.
    for (pid, at) in [("p3", 7), ("p4", 9)] {
        let out = s
            .ingest(&[inbound(&w, "1", pid, "still there?", t(at))])
            .await
            .unwrap();
        let (message, new_conversation, events) = stored(&out[0]);
        assert_eq!((message.conversation_id, new_conversation), (conv, false));
        assert!(
            events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::MessageCreated { message: m } if m.id == message.id)),
            "the agent is told by the event"
        );
        let jobs = s.claim_jobs("node", t(at + 1), LEASE, 10).await.unwrap();
        assert!(jobs.is_empty(), "{jobs:?}");
        assert_eq!(
            s.message(w.tenant.id, message.id).await.unwrap().as_ref(),
            Some(message),
            "a message is read by id"
        );
        if pid == "p3" {
            s.assign(w.tenant.id, conv, w.agent.id, t(8)).await.unwrap();
        }
    }
    let other = world(&s, "b").await;
    let mine = s.list_messages(w.tenant.id, conv, 1).await.unwrap();
    assert!(
        s.message(other.tenant.id, mine[0].id)
            .await
            .unwrap()
            .is_none(),
        "not across tenants"
    );
    // A new conversation that starts queued still gets its job (the welcome message).
    let mut item = inbound(&w, "2", "p5", "hello", t(10));
    item.new_conversation_state = ConversationState::Queued;
    s.ingest(&[item]).await.unwrap();
    let job = claim_one(&s, t(11)).await;
    assert!(matches!(
        job.kind,
        JobKind::ProcessInbound {
            new_conversation: true,
            ..
        }
    ));
}

// ---------------------------------------------------------------- inbound media

async fn inbound_media_gets_a_download_job_and_its_stored_copy_is_recorded_in_the_tenant(
    s: SqlStore,
) {
    use switchboard_core::{MediaKind, MediaRef};
    let w = world(&s, "a").await;
    let other = world(&s, "b").await;
    let mut item = inbound(&w, "1", "wamid.media", "", t(1));
    item.message.content = Content::Media {
        kind: MediaKind::Image,
        media: MediaRef {
            provider_id: Some("1003383421387256".into()),
            mime_type: Some("image/jpeg".into()),
            ..Default::default()
        },
        caption: Some("Taj Mahal".into()),
    };
    let out = s.ingest(&[item]).await.expect("ingest");
    let message = stored(&out[0]).0.clone();
    let text_conv = customer_writes(&s, &w, "2", "wamid.text", t(1)).await;

    // The download job is committed with the message and due at once, beside the decision.
    let jobs = s.claim_jobs("node", t(2), LEASE, 10).await.unwrap();
    let download = jobs
        .iter()
        .find(|j| {
            j.kind
                == JobKind::DownloadMedia {
                    message_id: message.id,
                }
        })
        .expect("a download job for the media message");
    assert_eq!(
        jobs.iter()
            .filter(|j| matches!(j.kind, JobKind::DownloadMedia { .. }))
            .count(),
        1,
        "a text message gets no download job"
    );
    assert_eq!(download.kind.ordering_key(), None);

    let done = MediaRef {
        provider_id: Some("1003383421387256".into()),
        stored_key: Some(format!("ab/cd/abcd{}", "0".repeat(60))),
        mime_type: Some("image/jpeg".into()),
        size: Some(4),
        sha256: Some(format!("abcd{}", "0".repeat(60))),
        ..Default::default()
    };

    // Another tenant can neither see nor change it.
    let foreign = s
        .record_media(other.tenant.id, message.id, done.clone(), None, None, t(3))
        .await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound(_))),
        "{foreign:?}"
    );

    // A message without media is refused.
    let text = s
        .list_messages(w.tenant.id, text_conv, 10)
        .await
        .unwrap()
        .remove(0);
    let refused = s
        .record_media(w.tenant.id, text.id, done.clone(), None, None, t(3))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );

    // The owner records it: content updated, job gone, one event with the new message.
    let events = s
        .record_media(
            w.tenant.id,
            message.id,
            done.clone(),
            None,
            Some(download.id),
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let EventKind::MessageCreated { message: updated } = &events[0].kind else {
        panic!("expected message_created, got {:?}", events[0].kind);
    };
    let reread = s.message(w.tenant.id, message.id).await.unwrap().unwrap();
    assert_eq!(&reread, updated);
    match &reread.content {
        Content::Media { media, caption, .. } => {
            assert_eq!(media, &done);
            assert_eq!(
                caption.as_deref(),
                Some("Taj Mahal"),
                "only the media ref changes"
            );
        }
        other => panic!("expected media, got {other:?}"),
    }
    assert_eq!(reread.failure, None);
    let left = s.claim_jobs("node", t(3) + LEASE, LEASE, 10).await.unwrap();
    assert!(
        left.iter().all(|j| j.id != download.id),
        "the download job is completed"
    );

    // A refusal keeps the message and says why.
    let why = failure(ErrorClass::Permanent, "the file is too large");
    s.record_media(w.tenant.id, message.id, done, Some(why.clone()), None, t(4))
        .await
        .unwrap();
    let reread = s.message(w.tenant.id, message.id).await.unwrap().unwrap();
    assert_eq!(reread.failure, Some(why));
}

async fn a_named_lease_has_one_holder_until_it_expires_or_is_released(s: SqlStore) {
    let ttl = Duration::from_secs(10);
    let name = "signal:channel-1";
    assert_eq!(
        s.lease_holder(name, t(0)).await.unwrap(),
        None,
        "free at first"
    );
    assert!(
        s.take_lease(name, "node-a", t(0), ttl).await.unwrap(),
        "a free lease is taken"
    );
    assert!(
        !s.take_lease(name, "node-b", t(5), ttl).await.unwrap(),
        "a running lease of another node is not"
    );
    assert!(
        s.take_lease(name, "node-a", t(9), ttl).await.unwrap(),
        "the holder renews it"
    );
    assert!(
        !s.take_lease(name, "node-b", t(15), ttl).await.unwrap(),
        "the renewal moved the expiry to 19 s"
    );
    assert_eq!(
        s.lease_holder(name, t(15)).await.unwrap().as_deref(),
        Some("node-a")
    );
    assert!(
        s.take_lease("signal:channel-2", "node-b", t(15), ttl)
            .await
            .unwrap(),
        "leases of other names are independent"
    );

    // The holder dies: after expiry another node takes over, and the old holder cannot.
    assert_eq!(s.lease_holder(name, t(19)).await.unwrap(), None, "expired");
    assert!(
        s.take_lease(name, "node-b", t(19), ttl).await.unwrap(),
        "taken over"
    );
    assert!(
        !s.take_lease(name, "node-a", t(20), ttl).await.unwrap(),
        "the old holder lost it"
    );

    // Releasing frees it at once; releasing someone else's lease changes nothing.
    s.release_lease(name, "node-a").await.unwrap();
    assert_eq!(
        s.lease_holder(name, t(20)).await.unwrap().as_deref(),
        Some("node-b")
    );
    s.release_lease(name, "node-b").await.unwrap();
    assert_eq!(s.lease_holder(name, t(20)).await.unwrap(), None);
    assert!(s.take_lease(name, "node-a", t(20), ttl).await.unwrap());

    // Two nodes racing for a free lease: exactly one wins.
    let (a, b) = tokio::join!(
        s.take_lease("race", "node-a", t(30), ttl),
        s.take_lease("race", "node-b", t(30), ttl)
    );
    assert!(
        a.unwrap() ^ b.unwrap(),
        "exactly one of two racing nodes holds it"
    );
}

// ---------------------------------------------------------------- channel pause, parts, jobs

async fn a_paused_channel_keeps_its_rows_queued_until_it_is_resumed(s: SqlStore) {
    let w = world(&s, "a").await;
    let other = world(&s, "b").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    let (msg, _) = s
        .enqueue_outbound(w.tenant.id, conv, reply("one", Lane::Live), t(2))
        .await
        .unwrap();
    let paused = s
        .set_channel_pause(w.tenant.id, w.channel.id, Some("token expired"), t(3))
        .await
        .unwrap();
    let pause = paused.paused.clone().expect("paused");
    assert_eq!(
        (pause.reason.as_str(), pause.since),
        ("token expired", t(3))
    );
    // A second report keeps the first time; another tenant cannot touch the channel.
    let again = s
        .set_channel_pause(w.tenant.id, w.channel.id, Some("token expired"), t(9))
        .await
        .unwrap();
    assert_eq!(again.paused.map(|p| p.since), Some(t(3)));
    assert!(matches!(
        s.set_channel_pause(other.tenant.id, w.channel.id, None, t(4))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.channel(w.channel.id)
            .await
            .unwrap()
            .and_then(|c| c.paused),
        Some(pause)
    );
    assert!(
        s.claim_outbox("node", t(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is claimed on a paused channel"
    );
    let msgs = s.list_messages(w.tenant.id, conv, 10).await.unwrap();
    let queued = msgs.iter().find(|m| m.id == msg.id).unwrap();
    assert_eq!(queued.status, DeliveryStatus::Queued, "the message waits");

    let resumed = s
        .set_channel_pause(w.tenant.id, w.channel.id, None, t(11))
        .await
        .unwrap();
    assert_eq!(resumed.paused, None);
    let claimed = s.claim_outbox("node", t(12), LEASE, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.message.id).collect::<Vec<_>>(),
        [msg.id]
    );
}

async fn parts_a_provider_accepted_travel_with_the_row_to_the_next_claim(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    s.enqueue_outbound(w.tenant.id, conv, reply("long", Lane::Live), t(2))
        .await
        .unwrap();
    let row = s
        .claim_outbox("node", t(3), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((row.parts_sent, row.first_part_id.clone()), (0, None));
    s.outbox_parts_sent(row.id, &["wamid.1".into()])
        .await
        .unwrap();
    s.outbox_retry(row.id, t(4), &failure(ErrorClass::RetryLater, "500"))
        .await
        .unwrap();
    let again = s
        .claim_outbox("node", t(5), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (again.parts_sent, again.first_part_id.as_deref()),
        (1, Some("wamid.1"))
    );
    s.outbox_parts_sent(row.id, &["wamid.2".into(), "wamid.3".into()])
        .await
        .unwrap();
    s.outbox_retry(row.id, t(6), &failure(ErrorClass::RetryLater, "500"))
        .await
        .unwrap();
    let third = s
        .claim_outbox("node", t(7), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (third.parts_sent, third.first_part_id.as_deref()),
        (3, Some("wamid.1")),
        "the first accepted part stays the message's id"
    );
    s.outbox_sent(row.id, Some("wamid.1"), t(8)).await.unwrap();
    assert!(matches!(
        s.outbox_parts_sent(row.id, &["late".into()]).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_claimed_row_says_why_its_recipient_is_unreachable(s: SqlStore) {
    let w = world(&s, "a").await;
    let conv = customer_writes(&s, &w, "1", "p1", t(1)).await;
    assert!(
        s.set_reachability(
            w.tenant.id,
            w.channel.id,
            "1",
            Some("blocked the bot"),
            t(2)
        )
        .await
        .unwrap()
    );
    s.enqueue_outbound(w.tenant.id, conv, reply("promo", Lane::Bulk), t(3))
        .await
        .unwrap();
    let row = s
        .claim_outbox("node", t(4), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        row.recipient_unreachable.as_deref(),
        Some("blocked the bot")
    );
}

async fn cancelled_jobs_are_gone_and_only_the_tenants_own_are_cancelled(s: SqlStore) {
    use switchboard_core::{MediaKind, MediaRef};
    let w = world(&s, "a").await;
    let other = world(&s, "b").await;
    let mut item = inbound(&w, "1", "wamid.media", "", t(1));
    item.message.content = Content::Media {
        kind: MediaKind::Image,
        media: MediaRef {
            provider_id: Some("1003383421387256".into()),
            ..Default::default()
        },
        caption: None,
    };
    let out = s.ingest(&[item]).await.expect("ingest");
    let message = stored(&out[0]).0.clone();
    assert_eq!(
        s.cancel_media_downloads(other.tenant.id, message.id)
            .await
            .unwrap(),
        0,
        "another tenant cancels nothing"
    );
    assert_eq!(
        s.cancel_media_downloads(w.tenant.id, message.id)
            .await
            .unwrap(),
        1
    );
    let jobs = s.claim_jobs("node", t(2), LEASE, 10).await.unwrap();
    assert!(
        !jobs
            .iter()
            .any(|j| matches!(j.kind, JobKind::DownloadMedia { .. })),
        "the download job is gone"
    );
    let job = jobs.first().expect("the message's decision job").clone();
    assert!(!s.cancel_job(other.tenant.id, job.id).await.unwrap());
    assert!(s.cancel_job(w.tenant.id, job.id).await.unwrap());
    assert!(!s.cancel_job(w.tenant.id, job.id).await.unwrap(), "gone");
    assert!(
        s.claim_jobs("node", t(100), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_batch_of_jobs_reads_its_inputs_within_the_tenant(s: SqlStore) {
    use switchboard_core::MessageId;
    use switchboard_core::ports::{FlowEffects, FlowSessionWrite, TimerChange};
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let out = s
        .ingest(&[
            inbound(&a, "1", "p1", "hello", t(1)),
            inbound(&a, "2", "p2", "menu", t(1)),
        ])
        .await
        .unwrap();
    let (m1, m2) = (stored(&out[0]).0.clone(), stored(&out[1]).0.clone());
    let (c1, c2) = (m1.conversation_id, m2.conversation_id);
    let theirs = customer_writes(&s, &b, "1", "q1", t(1)).await;
    let their_message = s.list_messages(b.tenant.id, theirs, 1).await.unwrap()[0].id;
    // Conversation 1 gets a bot session.
    let job = s
        .claim_jobs("node", t(2), LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.tenant_id == a.tenant.id && job_is_about(j, c1))
        .expect("conversation 1's job");
    s.apply_flow_decision(
        decide(&a, &job, c1),
        FlowEffects {
            session: Some(FlowSessionWrite {
                session: serde_json::json!({"root": "main_menu"}),
                expected_version: None,
                timer: TimerChange::Keep,
            }),
            ..FlowEffects::default()
        },
        t(3),
    )
    .await
    .unwrap();

    let unknown = MessageId::from_uuid(uuid::Uuid::now_v7());
    let read = s
        .decision_inputs(
            a.tenant.id,
            &[c1, c2, c1, theirs],
            &[m1.id, m2.id, unknown, their_message],
        )
        .await
        .unwrap();
    // Each conversation once, with its channel; another tenant's rows are absent.
    let mut convs: Vec<ConversationId> = read.conversations.keys().copied().collect();
    convs.sort();
    let mut want = vec![c1, c2];
    want.sort();
    assert_eq!(convs, want);
    assert_eq!(
        read.conversations[&c2].contact_name.as_deref(),
        Some("Customer 2")
    );
    assert_eq!(read.channels.len(), 1);
    assert_eq!(
        read.channels[&a.channel.id]
            .settings
            .welcome_message
            .as_deref(),
        Some("Hi")
    );
    assert_eq!(read.channels[&a.channel.id].credentials["token"], "secret");
    // Sessions only where one was stored, decrypted, with its version.
    assert_eq!(read.sessions.len(), 1);
    assert_eq!(
        (read.sessions[&c1].version, &read.sessions[&c1].session),
        (1, &serde_json::json!({"root": "main_menu"}))
    );
    // Messages by id, decrypted; unknown and foreign ids are absent.
    assert_eq!(read.messages.len(), 2);
    assert_eq!(read.messages[&m1.id].content, Content::text("hello"));
    assert_eq!(read.messages[&m2.id].content, Content::text("menu"));
    // Nothing asked, nothing read.
    let none = s.decision_inputs(a.tenant.id, &[], &[]).await.unwrap();
    assert!(none.conversations.is_empty() && none.messages.is_empty());
}

fn job_is_about(job: &switchboard_core::ports::Job, conv: ConversationId) -> bool {
    matches!(&job.kind, JobKind::ProcessInbound { conversation_id, .. } if *conversation_id == conv)
}
