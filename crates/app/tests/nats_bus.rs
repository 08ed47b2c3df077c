//! The NATS JetStream bus against the real server (`TEST_NATS_URL`, e.g. nats://127.0.0.1:4222;
//! CI sets it): an event committed on one node reaches the pages connected to another.

use std::time::Duration;

use switchboard_app::bus::EventBus;
use switchboard_app::bus_nats::NatsBus;
use switchboard_core::{ConversationId, DeliveryStatus, Event, EventKind, MessageId, TenantId};

fn nats_url() -> Option<String> {
    match std::env::var("TEST_NATS_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!("SKIPPED: NATS bus test (set TEST_NATS_URL=nats://127.0.0.1:4222)");
            None
        }
    }
}

fn event(tenant: TenantId, seq: i64) -> Event {
    Event {
        tenant_id: tenant,
        seq,
        at: time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap(),
        kind: EventKind::MessageStatus {
            message_id: MessageId::new_at(1_700_000_000_000),
            conversation_id: ConversationId::new_at(1_700_000_000_000),
            status: DeliveryStatus::Read,
            failure: None,
            provider_id: Some(format!("wamid.{seq}")),
        },
    }
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_subscribers_on_another_in_order() {
    let Some(url) = nats_url() else { return };
    let node_a = NatsBus::connect(&url).await.expect("node A connects");
    let node_b = NatsBus::connect(&url).await.expect("node B connects");
    let mut on_b = node_b.subscribe();
    let mut on_a = node_a.subscribe();
    // A tenant of our own, so parallel runs on the same server do not interfere.
    let tenant = TenantId::new_at(time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000);
    let sent: Vec<Event> = (1..=5).map(|s| event(tenant, s)).collect();
    node_a.publish(&sent);

    for rx in [&mut on_b, &mut on_a] {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("event within 5 s")
                .expect("bus open");
            if e.tenant_id == tenant {
                got.push((*e).clone());
            }
        }
        assert_eq!(
            got, sent,
            "every event arrives once, in commit order, unchanged"
        );
    }
}

#[tokio::test]
async fn an_unreachable_nats_server_is_a_clear_error() {
    let err = NatsBus::connect("nats://127.0.0.1:1")
        .await
        .err()
        .expect("no server on port 1");
    assert!(
        format!("{err:#}").contains("connecting to NATS at nats://127.0.0.1:1"),
        "{err:#}"
    );
}
