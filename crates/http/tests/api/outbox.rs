//! The outbound pipeline: ordering per conversation, retries with backoff, and permanent
//! failures with a reason the agent can read. A scripted transport stands in for a provider.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::sender::{AttemptError, Transport};
use switchboard_core::ports::{IngestItem, IngestOutcome, OutboxItem};
use switchboard_core::{
    ChannelKind, ChannelSettings, Content, ConversationId, ConversationState, ErrorClass,
    InboundMessage, NewChannel, SendFailure,
};
use switchboard_http::Server;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEMO_PASSWORD, TestApp, eventually, init, test_config};

/// Answers each send with the next scripted result (success once the script runs out) and
/// records the order of the texts it was asked to send.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<(), ErrorClass>>>,
    sent: Mutex<Vec<String>>,
    attempts: Mutex<Vec<String>>,
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, AttemptError> {
        let text = match &item.message.content {
            Content::Text { body } => body.clone(),
            other => format!("{other:?}"),
        };
        self.attempts.lock().unwrap().push(text.clone());
        let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        match next {
            Ok(()) => {
                self.sent.lock().unwrap().push(text.clone());
                Ok(Some(format!("provider-{text}")))
            }
            Err(class) => Err(AttemptError::new(
                SendFailure {
                    class,
                    code: Some("42".into()),
                    reason: format!("scripted {class:?}"),
                },
                None,
            )),
        }
    }
}

async fn app_with(transport: Arc<Scripted>) -> (TestApp, ConversationId) {
    init();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    config.sender.max_attempts = 3;
    let app = App::open(config).await.unwrap();
    app.set_transport(ChannelKind::Telegram, transport);
    let demo = app.seed_demo(Some(DEMO_PASSWORD)).await.unwrap();
    let tenant = demo.tenant_id.parse().unwrap();
    let channel = app
        .store
        .create_channel(
            NewChannel {
                tenant_id: tenant,
                kind: ChannelKind::Telegram,
                name: "Bot".into(),
                credentials: json!({}),
                settings: ChannelSettings::default(),
            },
            switchboard_app::now(),
        )
        .await
        .unwrap();
    let out = app
        .store
        .ingest(&[IngestItem {
            tenant_id: tenant,
            channel_id: channel.id,
            message: InboundMessage {
                external_contact_id: "12345".into(),
                contact_name: Some("Tom".into()),
                phone: None,
                provider_message_id: "12345:1".into(),
                provider_ts: None,
                content: Content::text("hi"),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: switchboard_app::now(),
        }])
        .await
        .unwrap();
    let conv = match &out[0] {
        IngestOutcome::Stored { message, .. } => message.conversation_id,
        other => panic!("{other:?}"),
    };
    let server = Server::with_app(app.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let mut t = TestApp::from_parts(addr, app, client, demo, shutdown, dir);
    t.login("ann@demo.example").await;
    t.set_presence("available").await;
    (t, conv)
}

async fn statuses(app: &TestApp, conv: ConversationId) -> Vec<(String, String, String)> {
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    m["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["direction"] == "outbound")
        .map(|x| {
            (
                x["content"]["body"].as_str().unwrap_or("").to_string(),
                x["status"].as_str().unwrap().to_string(),
                x["failure"]["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_retryable_failure_is_retried_and_later_replies_wait_their_turn() {
    let t = Arc::new(Scripted::default());
    t.script
        .lock()
        .unwrap()
        .extend([Err(ErrorClass::RetryLater), Err(ErrorClass::BackOff)]);
    let (app, conv) = app_with(t.clone()).await;
    for text in ["one", "two", "three"] {
        let (s, _) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({"text": text}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let app_ref = &app;
    eventually(10, "all three sent", || async move {
        let st = statuses(app_ref, conv).await;
        (st.len() == 3 && st.iter().all(|(_, s, _)| s == "sent")).then_some(())
    })
    .await;
    assert_eq!(
        *t.sent.lock().unwrap(),
        ["one", "two", "three"],
        "order per conversation holds"
    );
    assert_eq!(
        *t.attempts.lock().unwrap(),
        ["one", "one", "one", "two", "three"],
        "only the failing message was retried"
    );
}

#[tokio::test]
async fn a_permanent_failure_is_shown_with_its_reason_and_does_not_block_the_next_reply() {
    let t = Arc::new(Scripted::default());
    t.script
        .lock()
        .unwrap()
        .push_back(Err(ErrorClass::Unreachable));
    let (app, conv) = app_with(t.clone()).await;
    for text in ["lost", "next"] {
        let (s, b) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({"text": text}),
            )
            .await;
        assert_eq!(s, 201, "{text}: {b}");
    }
    let app_ref = &app;
    let st = eventually(10, "\"lost\" failed, \"next\" sent", || async move {
        let st = statuses(app_ref, conv).await;
        (st.len() == 2
            && (st[0].0.as_str(), st[0].1.as_str()) == ("lost", "failed")
            && (st[1].0.as_str(), st[1].1.as_str()) == ("next", "sent"))
            .then_some(st)
    })
    .await;
    assert_eq!(st[0].2, "scripted Unreachable", "the agent sees why");
    assert_eq!(
        t.attempts.lock().unwrap().len(),
        2,
        "a permanent failure is not retried"
    );
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts_with_a_readable_reason() {
    let t = Arc::new(Scripted::default());
    t.script
        .lock()
        .unwrap()
        .extend([Err(ErrorClass::RetryLater); 5]);
    let (app, conv) = app_with(t.clone()).await;
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": "doomed"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let app_ref = &app;
    let st = eventually(10, "\"doomed\" given up", || async move {
        let st = statuses(app_ref, conv).await;
        (st.len() == 1 && (st[0].0.as_str(), st[0].1.as_str()) == ("doomed", "failed"))
            .then_some(st)
    })
    .await;
    assert!(
        st[0].2.starts_with("gave up after 3 attempts"),
        "{}",
        st[0].2
    );
    assert_eq!(t.attempts.lock().unwrap().len(), 3);
}
