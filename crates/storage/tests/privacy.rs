//! The privacy part of the storage contract (issue 6): settings, consent and the opt-out
//! rule, erasure requests, export, erasure across every table with a tombstone and the
//! media files it frees, retention purge steps, reports and timers. On SQLite and on
//! PostgreSQL (when `TEST_DATABASE_URL` is set; a fresh database per test, dropped after).
//!
//! Run: `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p switchboard-storage --test privacy`

use std::time::Duration;

use serde_json::json;
use switchboard_core::ports::{
    ConsentStatus, Decision, ErasureChange, IngestItem, IngestOutcome, JobKind, NewConsent,
    PrivacyEffects, Store, StoreError,
};
use switchboard_core::privacy::{ErasureStatus, PrivacySettings, RetentionPolicy, RetentionRun};
use switchboard_core::{
    Channel, ChannelKind, ChannelSettings, ContactId, Content, ConversationId, ConversationState,
    InboundMessage, JobId, MediaKind, MediaRef, Message, NewChannel, Tenant, Timestamp,
};
use switchboard_storage::SqlStore;

#[macro_use]
mod common;
use common::{PgDatabase, test_master};

both_backends!(
    privacy_settings_default_until_saved_and_stay_in_their_tenant,
    the_latest_consent_decides_and_an_opt_out_marks_the_conversation,
    erasure_requests_move_only_from_the_status_they_are_in,
    export_holds_everything_and_erasure_leaves_only_a_tombstone,
    erasure_frees_a_media_file_only_when_no_message_uses_it,
    retention_purges_in_bounded_steps_and_keeps_one_timer_per_tenant,
    commands_to_a_queued_conversation_get_a_job_and_yes_only_while_erasure_waits,
);

// ---------------------------------------------------------------- fixtures

const DAY: i64 = 86_400;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(1_700_000_000 + secs).expect("valid time")
}

struct World {
    tenant: Tenant,
    channel: Channel,
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
                kind: ChannelKind::Webchat,
                name: "Chat".into(),
                credentials: json!({}),
                settings: ChannelSettings::default(),
            },
            t(0),
        )
        .await
        .expect("channel");
    World { tenant, channel }
}

/// A customer message from `from` at `at` (conversation starts queued).
async fn says(
    s: &SqlStore,
    w: &World,
    from: &str,
    id: &str,
    content: Content,
    at: Timestamp,
) -> Message {
    let out = s
        .ingest(&[IngestItem {
            tenant_id: w.tenant.id,
            channel_id: w.channel.id,
            message: InboundMessage {
                external_contact_id: from.into(),
                contact_name: Some(format!("Customer {from}")),
                phone: None,
                provider_message_id: id.into(),
                provider_ts: Some(at),
                content,
            },
            new_conversation_state: ConversationState::Queued,
            received_at: at,
        }])
        .await
        .expect("ingest");
    match &out[0] {
        IngestOutcome::Stored { message, .. } => message.clone(),
        other => panic!("expected Stored, got {other:?}"),
    }
}

async fn contact_of(s: &SqlStore, w: &World, conv: ConversationId) -> ContactId {
    s.conversation(w.tenant.id, conv)
        .await
        .expect("read")
        .expect("conversation")
        .conversation
        .contact_id
}

fn picture() -> Content {
    Content::Media {
        kind: MediaKind::Image,
        media: MediaRef {
            provider_id: Some("wa-media-1".into()),
            url: None,
            stored_key: None,
            mime_type: Some("image/jpeg".into()),
            filename: None,
            size: None,
            sha256: None,
        },
        caption: None,
    }
}

/// Records the picture message's stored copy under `key` (what the download job does).
async fn store_file(s: &SqlStore, w: &World, m: &Message, key: &str, at: Timestamp) {
    let Content::Media { media, .. } = &m.content else {
        panic!("not a media message")
    };
    let mut media = media.clone();
    media.stored_key = Some(key.into());
    s.record_media(w.tenant.id, m.id, media, None, None, at)
        .await
        .expect("record media");
}

fn key(c: char) -> String {
    let hash: String = std::iter::repeat_n(c, 64).collect();
    format!("{}/{}/{hash}", &hash[0..2], &hash[2..4])
}

fn no_job_decision(w: &World, conv: ConversationId) -> Decision {
    Decision {
        job_id: JobId::new_at(0),
        tenant_id: w.tenant.id,
        conversation_id: conv,
        new_state: None,
        outbound: Vec::new(),
    }
}

// ---------------------------------------------------------------- tests

async fn privacy_settings_default_until_saved_and_stay_in_their_tenant(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    assert_eq!(
        s.privacy_settings(a.tenant.id).await.expect("read"),
        PrivacySettings::default()
    );
    let mut wanted = PrivacySettings {
        self_service_erasure: true,
        retention: RetentionPolicy {
            messages_days: Some(90),
            ..RetentionPolicy::default()
        },
        ..PrivacySettings::default()
    };
    s.set_privacy_settings(a.tenant.id, &wanted, t(1))
        .await
        .expect("save");
    wanted.retention.media_days = Some(30);
    s.set_privacy_settings(a.tenant.id, &wanted, t(2))
        .await
        .expect("replace");
    assert_eq!(s.privacy_settings(a.tenant.id).await.expect("read"), wanted);
    assert_eq!(
        s.privacy_settings(b.tenant.id).await.expect("read"),
        PrivacySettings::default(),
        "another tenant keeps the defaults"
    );
    let unknown = switchboard_core::TenantId::new_at(5);
    assert!(matches!(
        s.set_privacy_settings(unknown, &wanted, t(3)).await,
        Err(StoreError::NotFound("tenant"))
    ));
}

async fn the_latest_consent_decides_and_an_opt_out_marks_the_conversation(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let m = says(&s, &a, "c1", "p1", Content::text("hi"), t(10)).await;
    let conv = m.conversation_id;
    let contact = contact_of(&s, &a, conv).await;
    assert!(
        s.opted_out_conversations(&[conv])
            .await
            .expect("q")
            .is_empty()
    );

    let out = s
        .record_consent(
            a.tenant.id,
            contact,
            a.channel.id,
            NewConsent {
                status: ConsentStatus::OptedOut,
                source: "staff:cli".into(),
                wording: Some("No offers, thanks".into()),
            },
            t(20),
        )
        .await
        .expect("opt out");
    assert_eq!(out.wording.as_deref(), Some("No offers, thanks"));
    assert_eq!(
        s.opted_out_conversations(&[conv]).await.expect("q"),
        vec![conv]
    );
    s.record_consent(
        a.tenant.id,
        contact,
        a.channel.id,
        NewConsent {
            status: ConsentStatus::OptedIn,
            source: "chat:webchat".into(),
            wording: Some("START".into()),
        },
        t(30),
    )
    .await
    .expect("opt in");
    assert!(
        s.opted_out_conversations(&[conv])
            .await
            .expect("q")
            .is_empty(),
        "the latest record decides"
    );
    let history = s.consents(a.tenant.id, contact).await.expect("history");
    let statuses: Vec<_> = history.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        vec![ConsentStatus::OptedOut, ConsentStatus::OptedIn]
    );
    assert_eq!(history[0].wording.as_deref(), Some("No offers, thanks"));

    // Another tenant's contact or channel is unknown, and nothing is written.
    let res = s
        .record_consent(
            b.tenant.id,
            contact,
            b.channel.id,
            NewConsent {
                status: ConsentStatus::OptedOut,
                source: "x".into(),
                wording: None,
            },
            t(40),
        )
        .await;
    assert!(
        matches!(res, Err(StoreError::NotFound("contact"))),
        "{res:?}"
    );
    let res = s
        .record_consent(
            a.tenant.id,
            contact,
            b.channel.id,
            NewConsent {
                status: ConsentStatus::OptedOut,
                source: "x".into(),
                wording: None,
            },
            t(40),
        )
        .await;
    assert!(
        matches!(res, Err(StoreError::NotFound("channel"))),
        "{res:?}"
    );
    assert_eq!(s.consents(a.tenant.id, contact).await.expect("h").len(), 2);
}

async fn erasure_requests_move_only_from_the_status_they_are_in(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let m = says(&s, &a, "c1", "p1", Content::text("forget me"), t(10)).await;
    let conv = m.conversation_id;
    let contact = contact_of(&s, &a, conv).await;
    let open = |status| PrivacyEffects {
        erasure: Some(ErasureChange::Open {
            status,
            source: "chat:webchat".into(),
        }),
        ..PrivacyEffects::default()
    };
    s.apply_privacy_decision(
        no_job_decision(&a, conv),
        open(ErasureStatus::Confirming),
        t(11),
    )
    .await
    .expect("open");
    let r = s
        .open_erasure_request(a.tenant.id, contact)
        .await
        .expect("read")
        .expect("open request");
    assert_eq!(r.status, ErasureStatus::Confirming);
    // One open request per contact.
    let again = s
        .apply_privacy_decision(
            no_job_decision(&a, conv),
            open(ErasureStatus::Confirming),
            t(12),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // A move from a status it is not in changes nothing.
    let set = |from, to| PrivacyEffects {
        erasure: Some(ErasureChange::Set {
            id: r.id.clone(),
            from,
            to,
            by: None,
            note: None,
        }),
        ..PrivacyEffects::default()
    };
    let wrong = s
        .apply_privacy_decision(
            no_job_decision(&a, conv),
            set(ErasureStatus::Pending, ErasureStatus::Approved),
            t(13),
        )
        .await;
    assert!(matches!(wrong, Err(StoreError::Conflict(_))), "{wrong:?}");
    s.apply_privacy_decision(
        no_job_decision(&a, conv),
        set(ErasureStatus::Confirming, ErasureStatus::Pending),
        t(14),
    )
    .await
    .expect("confirmed");
    let pending = s
        .erasure_requests(a.tenant.id, Some(ErasureStatus::Pending), 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 1);
    assert!(
        s.erasure_requests(a.tenant.id, Some(ErasureStatus::Approved), 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        s.erasure_requests(b.tenant.id, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        s.erasure_request(b.tenant.id, &r.id)
            .await
            .expect("read")
            .is_none(),
        "another tenant cannot see it"
    );
    assert_eq!(
        s.erasure_request(a.tenant.id, &r.id)
            .await
            .expect("read")
            .expect("found")
            .status,
        ErasureStatus::Pending
    );
}

async fn export_holds_everything_and_erasure_leaves_only_a_tombstone(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let first = says(
        &s,
        &a,
        "c1",
        "p1",
        Content::text("my account number is 42"),
        t(10),
    )
    .await;
    says(&s, &a, "c1", "p2", Content::text("second"), t(20)).await;
    let keeper = says(&s, &a, "c2", "p3", Content::text("someone else"), t(30)).await;
    let conv = first.conversation_id;
    let contact = contact_of(&s, &a, conv).await;
    s.record_consent(
        a.tenant.id,
        contact,
        a.channel.id,
        NewConsent {
            status: ConsentStatus::OptedOut,
            source: "chat:webchat".into(),
            wording: Some("STOP".into()),
        },
        t(40),
    )
    .await
    .expect("consent");

    let export = s
        .export_contact(a.tenant.id, contact, t(50))
        .await
        .expect("export");
    assert_eq!(export.contact.id, contact);
    assert_eq!(export.conversations.len(), 1);
    assert_eq!(export.messages.len(), 2);
    assert_eq!(export.consents.len(), 1);
    assert!(
        serde_json::to_string(&export)
            .expect("json")
            .contains("account number is 42")
    );
    assert!(matches!(
        s.export_contact(b.tenant.id, contact, t(50)).await,
        Err(StoreError::NotFound("contact"))
    ));
    assert!(matches!(
        s.erase_contact(b.tenant.id, contact, "admin", None, t(60))
            .await,
        Err(StoreError::NotFound("contact"))
    ));

    let erased = s
        .erase_contact(a.tenant.id, contact, "admin", None, t(60))
        .await
        .expect("erase");
    assert_eq!(erased.tombstone.messages_inbound, 2);
    assert_eq!(erased.tombstone.conversations, 1);
    assert_eq!(erased.tombstone.channel_kinds, vec!["webchat".to_string()]);
    assert_eq!(erased.tombstone.reason, "admin");
    assert_eq!(erased.rows_deleted.get("messages"), Some(&2));
    assert_eq!(erased.rows_deleted.get("consents"), Some(&1));
    assert!(erased.media_keys.is_empty());

    assert!(
        s.contact(a.tenant.id, contact)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        s.conversation(a.tenant.id, conv)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        s.message(a.tenant.id, first.id)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        s.consents(a.tenant.id, contact)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        s.message(a.tenant.id, keeper.id)
            .await
            .expect("read")
            .is_some(),
        "the other customer is untouched"
    );
    let tombs = s.tombstones(a.tenant.id, 10).await.expect("tombstones");
    assert_eq!(tombs, vec![erased.tombstone.clone()]);
    assert!(s.tombstones(b.tenant.id, 10).await.expect("t").is_empty());
    assert!(matches!(
        s.erase_contact(a.tenant.id, contact, "admin", None, t(70))
            .await,
        Err(StoreError::NotFound("contact"))
    ));
}

async fn erasure_frees_a_media_file_only_when_no_message_uses_it(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let shared = key('a');
    let m1 = says(&s, &a, "c1", "p1", picture(), t(10)).await;
    let m2 = says(&s, &a, "c2", "p2", picture(), t(20)).await;
    // Another tenant's message with the same key name does not keep tenant a's file.
    let m3 = says(&s, &b, "c3", "p3", picture(), t(20)).await;
    store_file(&s, &a, &m1, &shared, t(11)).await;
    store_file(&s, &a, &m2, &shared, t(21)).await;
    store_file(&s, &b, &m3, &shared, t(21)).await;
    let c1 = contact_of(&s, &a, m1.conversation_id).await;
    let c2 = contact_of(&s, &a, m2.conversation_id).await;

    let first = s
        .erase_contact(a.tenant.id, c1, "admin", None, t(30))
        .await
        .expect("erase 1");
    assert!(first.media_keys.is_empty(), "still used by c2's message");
    let second = s
        .erase_contact(a.tenant.id, c2, "admin", None, t(31))
        .await
        .expect("erase 2");
    assert_eq!(second.media_keys, vec![shared]);
}

async fn retention_purges_in_bounded_steps_and_keeps_one_timer_per_tenant(s: SqlStore) {
    let a = world(&s, "a").await;
    let b = world(&s, "b").await;
    let now = t(40 * DAY);
    // Three old texts and a picture 20 days old; one recent text; tenant b's old text.
    for i in 0..3 {
        says(
            &s,
            &a,
            "c1",
            &format!("old-{i}"),
            Content::text("old"),
            t(i),
        )
        .await;
    }
    let pic = says(&s, &a, "c2", "pic", picture(), t(20 * DAY)).await;
    store_file(&s, &a, &pic, &key('b'), t(20 * DAY)).await;
    let recent = says(&s, &a, "c1", "new", Content::text("new"), t(39 * DAY)).await;
    let foreign = says(&s, &b, "c9", "old-b", Content::text("old"), t(0)).await;
    let policy = RetentionPolicy {
        messages_days: Some(30),
        media_days: Some(7),
        closed_conversations_days: None,
    };

    // Bounded: two rows per step, so the first step says there is more.
    let step = s
        .purge_step(a.tenant.id, &policy, now, 2)
        .await
        .expect("step 1");
    assert_eq!(step.messages_deleted, 2);
    assert!(step.more);
    let mut deleted = step.messages_deleted;
    let mut keys = step.media_keys;
    let mut expired = step.media_expired;
    for _ in 0..5 {
        let step = s
            .purge_step(a.tenant.id, &policy, now, 2)
            .await
            .expect("step");
        deleted += step.messages_deleted;
        expired += step.media_expired;
        keys.extend(step.media_keys);
        if !step.more {
            break;
        }
    }
    assert_eq!(deleted, 3, "only the texts older than 30 days");
    assert_eq!(expired, 1, "the 20-day-old picture's file expired");
    assert_eq!(keys, vec![key('b')]);
    let kept = s
        .message(a.tenant.id, pic.id)
        .await
        .expect("read")
        .expect("kept");
    match kept.content {
        Content::Media { media, .. } => {
            assert!(media.stored_key.is_none());
            assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
        }
        other => panic!("still a picture: {other:?}"),
    }
    assert!(
        s.message(a.tenant.id, recent.id)
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        s.message(b.tenant.id, foreign.id)
            .await
            .expect("read")
            .is_some(),
        "another tenant's policy is its own"
    );

    // Timers: one per tenant, armed once; a tenant created later gets one on the next arm.
    let armed = s.arm_retention_timers(now).await.expect("arm");
    assert_eq!(armed, 2);
    assert_eq!(s.arm_retention_timers(now).await.expect("arm again"), 0);
    world(&s, "c").await;
    assert_eq!(s.arm_retention_timers(now).await.expect("new tenant"), 1);

    // A report replaces the job that ran with the next one, in one transaction.
    let jobs = s
        .claim_jobs(
            "node-1",
            now + Duration::from_secs(1),
            Duration::from_secs(60),
            100,
        )
        .await
        .expect("claim");
    let job = jobs
        .iter()
        .find(|j| j.tenant_id == a.tenant.id && matches!(j.kind, JobKind::RetentionPurge))
        .expect("tenant a's timer is due");
    let run = RetentionRun {
        id: "run-1".into(),
        tenant_id: a.tenant.id,
        started_at: now,
        finished_at: now,
        policy,
        messages_deleted: deleted,
        media_deleted: 1,
        conversations_deleted: 0,
        batches: 3,
    };
    let next = now + Duration::from_secs(3600);
    s.finish_retention_run(&run, Some(job.id), next)
        .await
        .expect("finish");
    assert_eq!(
        s.retention_runs(a.tenant.id, 10).await.expect("runs"),
        vec![run]
    );
    assert!(
        s.retention_runs(b.tenant.id, 10)
            .await
            .expect("runs")
            .is_empty()
    );
    assert_eq!(
        s.arm_retention_timers(now).await.expect("arm"),
        0,
        "the finished run re-armed tenant a's timer"
    );
}

/// Messages of the process-inbound jobs due by `now`, each finished with no effect (a
/// conversation's next job is claimable only after its earlier one).
async fn inbound_jobs(s: &SqlStore, w: &World, now: Timestamp) -> Vec<switchboard_core::MessageId> {
    let mut out = Vec::new();
    for job in s
        .claim_jobs("node", now, Duration::from_secs(3600), 100)
        .await
        .expect("claim")
    {
        if let JobKind::ProcessInbound {
            message_id,
            conversation_id,
            ..
        } = job.kind
        {
            out.push(message_id);
            let mut done = no_job_decision(w, conversation_id);
            done.job_id = job.id;
            s.apply_decision(done, now).await.expect("finish the job");
        }
    }
    out
}

/// Ingest gives a message to a conversation people own (queued) a job only when it is a
/// privacy command: the tenant's own words count, and yes/no only while a "forget me"
/// awaits the answer (the inbound hot path reads the settings with the channel and the
/// open erasure requests only for yes/no words).
async fn commands_to_a_queued_conversation_get_a_job_and_yes_only_while_erasure_waits(s: SqlStore) {
    let a = world(&s, "a").await;
    let first = says(&s, &a, "c1", "p1", Content::text("hello"), t(10)).await;
    assert_eq!(
        inbound_jobs(&s, &a, t(11)).await,
        vec![first.id],
        "new conversation"
    );
    let plain = says(&s, &a, "c1", "p2", Content::text("ok thanks"), t(20)).await;
    let early_yes = says(&s, &a, "c1", "p3", Content::text("Yes!"), t(21)).await;
    assert_eq!(
        inbound_jobs(&s, &a, t(22)).await,
        vec![],
        "{plain:?} {early_yes:?}"
    );
    let stop = says(&s, &a, "c1", "p4", Content::text("STOP"), t(30)).await;
    assert_eq!(inbound_jobs(&s, &a, t(31)).await, vec![stop.id]);

    let mut settings = PrivacySettings::default();
    let mut en = switchboard_core::privacy::PrivacyWords::english();
    en.opt_out.push("leave me alone".into());
    settings.commands.insert("en".into(), en);
    s.set_privacy_settings(a.tenant.id, &settings, t(40))
        .await
        .expect("save");
    let custom = says(&s, &a, "c1", "p5", Content::text("Leave me alone"), t(41)).await;
    assert_eq!(
        inbound_jobs(&s, &a, t(42)).await,
        vec![custom.id],
        "the tenant's own word"
    );

    s.apply_privacy_decision(
        no_job_decision(&a, first.conversation_id),
        PrivacyEffects {
            erasure: Some(ErasureChange::Open {
                status: ErasureStatus::Confirming,
                source: "chat:webchat".into(),
            }),
            ..PrivacyEffects::default()
        },
        t(50),
    )
    .await
    .expect("open erasure");
    let yes = says(&s, &a, "c1", "p6", Content::text("yes"), t(51)).await;
    let other = says(&s, &a, "c2", "p7", Content::text("yes"), t(52)).await;
    let jobs = inbound_jobs(&s, &a, t(53)).await;
    assert!(jobs.contains(&yes.id), "the awaited answer: {jobs:?}");
    assert!(
        jobs.contains(&other.id),
        "c2's first message starts a conversation: {jobs:?}"
    );
    let later = says(&s, &a, "c2", "p8", Content::text("yes"), t(60)).await;
    assert_eq!(
        inbound_jobs(&s, &a, t(61)).await,
        vec![],
        "no erasure awaits c2's answer: {later:?}"
    );
}
