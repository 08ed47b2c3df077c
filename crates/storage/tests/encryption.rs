//! Encryption at rest, checked from outside the store: what the raw database holds, which
//! master key opens it, rotation, and tampering. SQLite always; PostgreSQL too when
//! `TEST_DATABASE_URL` is set (a fresh database per test, dropped afterwards).

use sqlx::{Connection, Row};
use switchboard_core::ports::{IngestItem, IngestOutcome, NewOutbound, Store};
use switchboard_core::{
    ChannelKind, ChannelSettings, Content, ConversationState, InboundMessage, NewChannel, Sender,
    Timestamp,
};
use switchboard_storage::{MasterKey, MasterKeyring, OpenError, SqlStore};

const MARKER: &str = "Zebrafish-Quartz-4711";
const NAME: &str = "Wilhelmina Okonkwo-Barrett";
const PHONE: &str = "+4915112349876";
const TOKEN: &str = "EAAG-secret-token-93a7c1";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(1_700_000_000 + secs).expect("valid time")
}

fn ring(byte: u8) -> MasterKeyring {
    MasterKeyring::new(MasterKey::from_bytes(&[byte; 32]).expect("32 bytes"))
}

/// A database for one test: a SQLite file, or a fresh PostgreSQL database.
struct Db {
    url: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("switchboard.db").display().to_string();
        Db { url, dir, pg: None }
    }

    async fn postgres() -> Option<Db> {
        let admin = std::env::var("TEST_DATABASE_URL").ok()?;
        let name = format!("enc_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(Db {
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some((admin, name)),
        })
    }

    async fn drop_database(&self) {
        if let Some((admin, name)) = &self.pg {
            let mut conn = sqlx::PgConnection::connect(admin).await.expect("postgres");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }

    /// Scans the raw database (see `raw_text`): it must hold the tenant's slug (so the
    /// scan read the data at all) and none of `secrets`.
    async fn assert_holds_none_of(&self, secrets: &[&str]) {
        let raw = self.raw_text().await;
        assert!(raw.contains("acme"), "the scan reads the data at all");
        for secret in secrets {
            assert!(
                !raw.contains(secret),
                "{secret:?} found in the raw database"
            );
        }
    }

    /// Everything the database holds, as text: the SQLite file and its WAL as bytes, or
    /// every PostgreSQL table's rows as JSON.
    async fn raw_text(&self) -> String {
        match &self.pg {
            None => {
                let mut all = Vec::new();
                for suffix in ["", "-wal"] {
                    if let Ok(bytes) = std::fs::read(format!("{}{suffix}", self.url)) {
                        all.extend(bytes);
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Some(_) => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("pg");
                let tables: Vec<String> =
                    sqlx::query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                        .fetch_all(&mut conn)
                        .await
                        .expect("tables")
                        .iter()
                        .map(|r| r.get::<String, _>(0))
                        .collect();
                let mut out = String::new();
                for table in tables {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT row_to_json(t)::text FROM \"{table}\" t"
                    )))
                    .fetch_all(&mut conn)
                    .await
                    .expect("rows");
                    for r in rows {
                        out.push_str(&r.get::<String, _>(0));
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

/// Runs `body` on SQLite, then on PostgreSQL when configured.
async fn on_both<F, Fut>(body: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = Db>,
{
    let db = body(Db::sqlite()).await;
    drop(db.dir);
    if let Some(db) = Db::postgres().await {
        let db = body(db).await;
        db.drop_database().await;
    }
}

/// Writes a WhatsApp message, a reply and a contact with the markers; returns the tenant and
/// the stored message.
async fn write_markers(s: &SqlStore) -> (switchboard_core::Tenant, switchboard_core::Message) {
    let tenant = s.create_tenant("acme", "Acme", t(0)).await.expect("tenant");
    let channel = s
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind: ChannelKind::Whatsapp,
                name: "WhatsApp".into(),
                credentials: serde_json::json!({ "access_token": TOKEN }),
                settings: ChannelSettings::default(),
            },
            t(0),
        )
        .await
        .expect("channel");
    let item = IngestItem {
        tenant_id: tenant.id,
        channel_id: channel.id,
        message: InboundMessage {
            external_contact_id: PHONE.trim_start_matches('+').into(),
            contact_name: Some(NAME.into()),
            phone: Some(PHONE.into()),
            provider_message_id: "wamid.1".into(),
            provider_ts: Some(t(1)),
            content: Content::text(format!("my order {MARKER}")),
        },
        new_conversation_state: ConversationState::Queued,
        received_at: t(1),
    };
    let out = s.ingest(&[item]).await.expect("ingest");
    let IngestOutcome::Stored { message, .. } = &out[0] else {
        panic!("not stored: {out:?}")
    };
    s.enqueue_outbound(
        tenant.id,
        message.conversation_id,
        NewOutbound {
            sender: Sender::Bot,
            content: Content::text(format!("reply about {MARKER}")),
            lane: switchboard_core::ports::Lane::Live,
        },
        t(2),
    )
    .await
    .expect("reply");
    (tenant, message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_data_and_secrets_never_reach_the_database_in_clear() {
    on_both(|db| async move {
        // Arrange + Act
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let (tenant, message) = write_markers(&s).await;

        // Assert: the API reads plaintext back ...
        let messages = s
            .list_messages(tenant.id, message.conversation_id, 10)
            .await
            .unwrap();
        assert!(matches!(&messages[0].content, Content::Text { body } if body.contains(MARKER)));
        let conv = s
            .conversation(tenant.id, message.conversation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conv.contact_name.as_deref(), Some(NAME));
        let (_, ids) = s
            .contact(tenant.id, conv.conversation.contact_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ids[0].phone.as_deref(), Some(PHONE));
        assert_eq!(ids[0].external_id, PHONE.trim_start_matches('+'));
        let channels = s.list_channels(tenant.id).await.unwrap();
        assert_eq!(channels[0].credentials["access_token"], TOKEN);
        let events = s.events_after(tenant.id, 0, 100).await.unwrap();
        assert!(!events.is_empty());

        // ... while the raw database holds none of it.
        s.close().await;
        db.assert_holds_none_of(&[MARKER, NAME, PHONE, &PHONE[1..], &PHONE[3..], TOKEN])
            .await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_is_refused_and_creates_nothing() {
    on_both(|db| async move {
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        write_markers(&s).await;
        s.close().await;

        let err = switchboard_storage::open(&db.url, ring(2))
            .await
            .expect_err("a wrong key must be refused");
        assert!(matches!(err, OpenError::MasterKey(_)), "{err}");
        assert!(
            err.to_string().contains("SWITCHBOARD_MASTER_KEY"),
            "says how to fix: {err}"
        );

        // The right key still opens it: the refusal wrote nothing.
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("right key");
        s.close().await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_data_keys_so_only_the_new_master_key_opens_the_data() {
    on_both(|db| async move {
        // Arrange: a store that stays open through the rotation, like a running server.
        let running = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let (tenant, message) = write_markers(&running).await;

        // Act
        let both = ring(2).with_decrypt_only(MasterKey::from_bytes(&[1; 32]).unwrap());
        let mut progress = Vec::new();
        let report =
            switchboard_storage::rotate_master_key(&db.url, both, |d, n| progress.push((d, n)))
                .await
                .expect("rotate");

        // Assert
        assert_eq!(report.rewrapped, 1);
        assert_eq!(progress.last(), Some(&(1, 1)));
        let again = running.message(tenant.id, message.id).await.unwrap();
        assert!(again.is_some(), "the running store keeps working");
        running.close().await;
        assert!(matches!(
            switchboard_storage::open(&db.url, ring(1)).await,
            Err(OpenError::MasterKey(_))
        ));
        let s = switchboard_storage::open(&db.url, ring(2))
            .await
            .expect("new key opens");
        let m = s.message(tenant.id, message.id).await.unwrap().unwrap();
        assert!(matches!(&m.content, Content::Text { body } if body.contains(MARKER)));

        // A second data-key version: new values use it, old ones still open.
        let v = switchboard_storage::add_data_key_version(&db.url, ring(2), "acme", t(5))
            .await
            .expect("add version");
        assert_eq!(v, 2);
        s.close().await;
        let s = switchboard_storage::open(&db.url, ring(2))
            .await
            .expect("reopen");
        assert_eq!(s.data_keys(tenant.id).await.unwrap().current().version(), 2);
        let (reply, _) = s
            .enqueue_outbound(
                tenant.id,
                message.conversation_id,
                NewOutbound {
                    sender: Sender::Bot,
                    content: Content::text("under version 2"),
                    lane: switchboard_core::ports::Lane::Live,
                },
                t(6),
            )
            .await
            .unwrap();
        let all = s
            .list_messages(tenant.id, message.conversation_id, 10)
            .await
            .unwrap();
        assert!(all.iter().any(|m| m.id == message.id));
        assert!(all.iter().any(|m| m.id == reply.id));
        s.close().await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_value_copied_to_another_row_does_not_open() {
    on_both(|db| async move {
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let (tenant, message) = write_markers(&s).await;
        let messages = s
            .list_messages(tenant.id, message.conversation_id, 10)
            .await
            .unwrap();
        let reply = messages
            .iter()
            .find(|m| m.id != message.id)
            .expect("reply")
            .id;
        s.close().await;

        // An attacker with write access copies the customer's message over the reply.
        let sql = "UPDATE messages SET content = (SELECT content FROM messages WHERE id = $1) \
                   WHERE id = $2";
        match &db.pg {
            None => {
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.url))
                    .await
                    .unwrap();
                sqlx::query(sql)
                    .bind(message.id.to_string())
                    .bind(reply.to_string())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Some(_) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query(sql)
                    .bind(message.id.to_string())
                    .bind(reply.to_string())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }

        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let err = s.message(tenant.id, reply).await.expect_err("tampered");
        assert!(err.to_string().contains("failed authentication"), "{err}");
        assert!(s.message(tenant.id, message.id).await.unwrap().is_some());
        s.close().await;
        db
    })
    .await;
}

const NOTE: &str = "Customer said her ID is 8001015009087, Kestrel-Lagoon-2290";

/// Adds an internal note to `conversation` through a routing round.
async fn write_note(
    s: &SqlStore,
    tenant: switchboard_core::TenantId,
    conversation: switchboard_core::ConversationId,
    at: Timestamp,
) {
    use switchboard_core::routing::{NoteKind, RoutingChange, RoutingSnapshot};
    let plan = move |_: &RoutingSnapshot| {
        Ok(vec![RoutingChange::Note {
            conversation,
            author: None,
            kind: NoteKind::Note,
            body: NOTE.into(),
            data: serde_json::json!({ "said": NOTE }),
        }])
    };
    s.routing_round(tenant, Some(conversation), at, &plan)
        .await
        .expect("note");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_notes_are_sealed_and_read_back() {
    on_both(|db| async move {
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let (tenant, message) = write_markers(&s).await;
        write_note(&s, tenant.id, message.conversation_id, t(3)).await;

        let notes = s.notes(tenant.id, message.conversation_id).await.unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].body, NOTE);
        assert_eq!(notes[0].data["said"], NOTE);

        s.close().await;
        db.assert_holds_none_of(&[NOTE, "8001015009087", "Kestrel-Lagoon-2290"])
            .await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_the_web_chat_visitor_of_the_contact() {
    on_both(|db| async move {
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let tenant = s.create_tenant("acme", "Acme", t(0)).await.expect("tenant");
        let webchat = s
            .create_channel(
                NewChannel {
                    tenant_id: tenant.id,
                    kind: ChannelKind::Webchat,
                    name: "Site".into(),
                    credentials: serde_json::json!({}),
                    settings: ChannelSettings::default(),
                },
                t(0),
            )
            .await
            .expect("channel");
        let mut visitors = Vec::new();
        for (n, token) in ["token-hash-1", "token-hash-2"].into_iter().enumerate() {
            let visitor = s
                .create_webchat_visitor(webchat.id, token, t(1))
                .await
                .expect("visitor");
            let item = IngestItem {
                tenant_id: tenant.id,
                channel_id: webchat.id,
                message: InboundMessage {
                    external_contact_id: visitor.visitor_id.clone(),
                    contact_name: None,
                    phone: None,
                    provider_message_id: format!("client-{n}"),
                    provider_ts: None,
                    content: Content::text(format!("hello {MARKER}")),
                },
                new_conversation_state: ConversationState::Queued,
                received_at: t(2),
            };
            let out = s.ingest(&[item]).await.expect("ingest");
            let IngestOutcome::Stored { message, .. } = &out[0] else {
                panic!("not stored: {out:?}")
            };
            visitors.push((token, message.conversation_id));
        }
        let (erased_token, conv) = visitors[0];
        let contact = s
            .conversation(tenant.id, conv)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .contact_id;

        let erasure = s
            .erase_contact(tenant.id, contact, "admin", None, t(3))
            .await
            .expect("erase");

        assert_eq!(erasure.rows_deleted.get("webchat_visitors"), Some(&1));
        assert_eq!(
            s.webchat_visitor(webchat.id, erased_token).await.unwrap(),
            None,
            "the erased visitor's browser token no longer opens anything"
        );
        assert!(
            s.webchat_visitor(webchat.id, visitors[1].0)
                .await
                .unwrap()
                .is_some(),
            "another visitor is untouched"
        );
        s.close().await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_on_another_node_is_usable_by_every_store_method() {
    use switchboard_core::routing::DeskFilter;
    use switchboard_storage::keys::forget_cached;
    on_both(|db| async move {
        // Arrange: node A creates the tenant and its data; node B opened before.
        let b = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open b");
        let a = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open a");
        let (tenant, message) = write_markers(&a).await;
        write_note(&a, tenant.id, message.conversation_id, t(3)).await;
        let conv = message.conversation_id;
        let channel = message.channel_id;
        let contact = a
            .conversation(tenant.id, conv)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .contact_id;

        // Act + Assert: each call on B starts without the tenant's keys in memory (the
        // cache is process-wide, so it is emptied to play a node that never saw them).
        forget_cached(tenant.id);
        assert_eq!(
            b.list_channels(tenant.id).await.expect("list_channels")[0].credentials
                ["access_token"],
            TOKEN
        );
        forget_cached(tenant.id);
        assert!(b.channel(channel).await.expect("channel").is_some());
        forget_cached(tenant.id);
        let listed = b
            .list_conversations(tenant.id, &Default::default())
            .await
            .expect("list_conversations");
        assert_eq!(listed[0].contact_name.as_deref(), Some(NAME));
        forget_cached(tenant.id);
        assert!(b.conversation(tenant.id, conv).await.expect("conversation").is_some());
        forget_cached(tenant.id);
        let messages = b.list_messages(tenant.id, conv, 10).await.expect("messages");
        assert!(matches!(&messages[0].content, Content::Text { body } if body.contains(MARKER)));
        forget_cached(tenant.id);
        assert!(b.message(tenant.id, message.id).await.expect("message").is_some());
        forget_cached(tenant.id);
        let (_, ids) = b.contact(tenant.id, contact).await.expect("contact").unwrap();
        assert_eq!(ids[0].phone.as_deref(), Some(PHONE));
        forget_cached(tenant.id);
        assert_eq!(
            b.contact_conversations(tenant.id, contact)
                .await
                .expect("contact_conversations")
                .len(),
            1
        );
        forget_cached(tenant.id);
        assert!(!b.events_after(tenant.id, 0, 100).await.expect("events").is_empty());
        forget_cached(tenant.id);
        assert_eq!(b.notes(tenant.id, conv).await.expect("notes")[0].body, NOTE);
        forget_cached(tenant.id);
        assert_eq!(
            b.desk_conversations(tenant.id, &DeskFilter::default())
                .await
                .expect("desk")
                .len(),
            1
        );
        forget_cached(tenant.id);
        write_note(&b, tenant.id, conv, t(4)).await;
        forget_cached(tenant.id);
        let item = IngestItem {
            tenant_id: tenant.id,
            channel_id: channel,
            message: InboundMessage {
                external_contact_id: PHONE.trim_start_matches('+').into(),
                contact_name: Some(NAME.into()),
                phone: Some(PHONE.into()),
                provider_message_id: "wamid.2".into(),
                provider_ts: Some(t(5)),
                content: Content::text("again"),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: t(5),
        };
        let out = b.ingest(&[item]).await.expect("ingest");
        assert!(
            matches!(&out[0], IngestOutcome::Stored { message, .. } if message.conversation_id == conv),
            "B finds the identity A made (same blind index): {out:?}"
        );
        forget_cached(tenant.id);
        b.export_contact(tenant.id, contact, t(6))
            .await
            .expect("export");
        forget_cached(tenant.id);
        b.erase_contact(tenant.id, contact, "admin", None, t(7))
            .await
            .expect("erase");
        a.close().await;
        b.close().await;
        db
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_key_version_added_meanwhile_is_loaded_when_a_value_needs_it() {
    use switchboard_storage::keys::forget_cached;
    on_both(|db| async move {
        let s = switchboard_storage::open(&db.url, ring(1))
            .await
            .expect("open");
        let (tenant, message) = write_markers(&s).await;
        let conv = message.conversation_id;
        // The CLI adds version 2 while this node runs with version 1 cached ...
        let version = switchboard_storage::add_data_key_version(&db.url, ring(1), "acme", t(3))
            .await
            .expect("add version");
        assert_eq!(version, 2);
        // ... and another node (one that loaded version 2) seals a note with it. Played here
        // by loading the keys afresh, writing, then putting this node's stale view back.
        let stale = s.data_keys(tenant.id).await.expect("keys");
        assert!(stale.version(2).is_none(), "this node has only version 1");
        forget_cached(tenant.id);
        write_note(&s, tenant.id, conv, t(4)).await;
        assert!(s.data_keys(tenant.id).await.unwrap().version(2).is_some());
        switchboard_storage::keys::put_cached(stale);

        // The first read meets the unknown version and reloads; no restart needed.
        let first = s.notes(tenant.id, conv).await;
        let notes = match first {
            Ok(notes) => notes,
            Err(e) => {
                assert!(e.to_string().contains("retry"), "{e}");
                s.notes(tenant.id, conv).await.expect("reloaded")
            }
        };
        assert_eq!(notes[0].body, NOTE);
        s.close().await;
        db
    })
    .await;
}
