//! A restart in the middle loses nothing: work committed before the stop is finished after.

use serde_json::json;
use switchboard_core::ports::IngestItem;
use switchboard_core::{Content, ConversationState, InboundMessage};

use crate::helpers::{eventually, spawn_app, spawn_app_in, test_config};

#[tokio::test]
async fn pending_jobs_and_outbox_rows_are_processed_after_a_restart() {
    // Arrange: a server runs once (creating the demo data), then stops.
    let first = spawn_app().await;
    let demo = first.demo.clone();
    let dir = first.stop().await;

    // A message is committed while no worker runs (as if the process died right after the
    // commit): its job is pending.
    let app = switchboard_app::App::open(test_config(dir.path()))
        .await
        .unwrap();
    let tenant = demo.tenant_id.parse().unwrap();
    let outcome = app
        .store
        .ingest(&[IngestItem {
            tenant_id: tenant,
            channel_id: demo.webchat_channel_id.parse().unwrap(),
            message: InboundMessage {
                external_contact_id: "visitor-restart".into(),
                contact_name: None,
                phone: None,
                provider_message_id: "visitor-restart:1".into(),
                provider_ts: None,
                content: Content::text("are you there?"),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: switchboard_app::now(),
        }])
        .await
        .unwrap();
    let conv = match &outcome[0] {
        switchboard_core::ports::IngestOutcome::Stored { message, .. } => message.conversation_id,
        other => panic!("expected a stored message, got {other:?}"),
    };
    drop(app);

    // Act: the server starts again on the same data.
    let mut again = spawn_app_in(dir, None).await;
    again.login("ann@demo.example").await;
    again.set_presence("available").await;

    // Assert: the pending job ran (the welcome message was created) and the outbox sent it.
    let again_ref = &again;
    let msgs = eventually(10, "welcome message sent after restart", || async move {
        let (_, m) = again_ref
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        let list = m["messages"].as_array()?.clone();
        list.iter()
            .any(|x| x["sender"]["type"] == "bot" && x["status"] == "sent")
            .then_some(list)
    })
    .await;
    assert_eq!(
        msgs.len(),
        2,
        "the customer's message once, and one welcome"
    );
    assert_eq!(msgs[0]["content"]["body"], "are you there?");

    // And the conversation still takes replies.
    let (s, _) = again
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "yes!"}),
        )
        .await;
    assert_eq!(s, 201);
}
