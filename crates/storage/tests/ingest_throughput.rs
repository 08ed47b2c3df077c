//! A rough measurement of the inbound hot path on SQLite (ignored by default; the real
//! benchmark lives in `bench/`). Run it with
//! `cargo test -p switchboard-storage --release --test ingest_throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use switchboard_core::ports::{IngestItem, Store};
use switchboard_core::{
    ChannelKind, ChannelSettings, Content, ConversationState, InboundMessage, NewChannel, Timestamp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn sqlite_ingests_batches_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let master = switchboard_storage::MasterKeyring::new(
        switchboard_storage::MasterKey::from_bytes(&[7u8; 32]).unwrap(),
    );
    let store = switchboard_storage::open(dir.path().join("bench.db").to_str().unwrap(), master)
        .await
        .unwrap();
    let now = Timestamp::from_unix_timestamp(1_700_000_000).unwrap();
    let tenant = store.create_tenant("bench", "Bench", now).await.unwrap();
    let channel = store
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind: ChannelKind::Whatsapp,
                name: "wa".into(),
                credentials: serde_json::json!({}),
                settings: ChannelSettings::default(),
            },
            now,
        )
        .await
        .unwrap();
    let (batches, batch_size, contacts) = (100usize, 500usize, 5_000usize);
    let started = Instant::now();
    for b in 0..batches {
        let at = now + Duration::from_millis(b as u64);
        let items: Vec<IngestItem> = (0..batch_size)
            .map(|i| {
                let n = b * batch_size + i;
                IngestItem {
                    tenant_id: tenant.id,
                    channel_id: channel.id,
                    message: InboundMessage {
                        external_contact_id: format!("{}", n % contacts),
                        contact_name: Some(format!("Customer {}", n % contacts)),
                        phone: None,
                        provider_message_id: format!("wamid.{n}"),
                        provider_ts: Some(at),
                        content: Content::text("Hello, I need help with my order"),
                    },
                    new_conversation_state: ConversationState::Bot,
                    received_at: at,
                }
            })
            .collect();
        store.ingest(&items).await.unwrap();
    }
    let total = batches * batch_size;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingested {total} messages in {secs:.2} s: {:.0} msg/s",
        total as f64 / secs
    );
}
