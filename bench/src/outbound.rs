//! `outbound`: a campaign-sized burst of bulk messages to one mocked WhatsApp number and to
//! one mocked Telegram bot. Each mock enforces the provider's rate with a token bucket
//! (capacity = one second of sends) and answers 429 past it; the report is the achieved
//! send rate over the configured one, and the number of 429s (the budget is zero).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_app::{App, Config};
use switchboard_core::ports::{IngestItem, IngestOutcome, Lane, NewOutbound};
use switchboard_core::{
    ChannelKind, ChannelSettings, Content, ConversationState, InboundMessage, NewChannel, Sender,
};
use tokio_util::sync::CancellationToken;

/// What the mock provider saw.
struct Mock {
    per_second: f64,
    tokens: f64,
    last: Instant,
    accepted: u64,
    rejected: u64,
    first: Option<Instant>,
    last_accept: Option<Instant>,
    kind: ChannelKind,
}

type Shared = Arc<Mutex<Mock>>;

async fn send(State(m): State<Shared>, body: axum::Json<Value>) -> impl IntoResponse {
    let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    m.tokens =
        (m.tokens + now.duration_since(m.last).as_secs_f64() * m.per_second).min(m.per_second);
    m.last = now;
    if m.tokens < 1.0 {
        m.rejected += 1;
        let body = match m.kind {
            ChannelKind::Telegram => json!({"ok": false, "error_code": 429,
                "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
            _ => json!({"error": {"message": "(#130429) Rate limit hit", "code": 130429}}),
        };
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body));
    }
    m.tokens -= 1.0;
    m.accepted += 1;
    m.first.get_or_insert(now);
    m.last_accept = Some(now);
    let n = m.accepted;
    let body = match m.kind {
        ChannelKind::Telegram => json!({"ok": true, "result": {"message_id": n,
            "chat": {"id": body.0["chat_id"]}, "date": 0}}),
        _ => {
            json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.bench.{n}")}]})
        }
    };
    (StatusCode::OK, axum::Json(body))
}

async fn start_mock(kind: ChannelKind, per_second: u32) -> anyhow::Result<(String, Shared)> {
    let state = Arc::new(Mutex::new(Mock {
        per_second: f64::from(per_second),
        tokens: f64::from(per_second),
        last: Instant::now(),
        accepted: 0,
        rejected: 0,
        first: None,
        last_accept: None,
        kind,
    }));
    let app = Router::new()
        .route("/{a}/{b}", post(send))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), state))
}

/// Runs the outbound benchmark: `messages` per provider.
pub async fn outbound(messages: u64) -> anyhow::Result<()> {
    println!("outbound: {messages} bulk messages per provider, mocks enforce the configured rate");
    println!("| provider | configured msg/s | achieved msg/s | ratio | 429s |");
    println!("|---|---|---|---|---|");
    for (kind, rate) in [(ChannelKind::Whatsapp, 80), (ChannelKind::Telegram, 30)] {
        let (achieved, rejected) = run(kind, rate, messages).await?;
        println!(
            "| {kind} | {rate} | {achieved:.1} | {:.3} | {rejected} |",
            achieved / f64::from(rate)
        );
    }
    Ok(())
}

async fn run(kind: ChannelKind, rate: u32, messages: u64) -> anyhow::Result<(f64, u64)> {
    let (base, mock) = start_mock(kind, rate).await?;
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.channels.whatsapp_per_second = 80;
    config.channels.telegram_per_second = 30;
    config.keys.master_key = Some(switchboard_app::config::KeyText::new("42".repeat(32)));
    let app = App::open(config).await.context("opening the store")?;
    let now = switchboard_app::now();
    let tenant = app.store.create_tenant("bench", "Bench", now).await?;
    let credentials = match kind {
        ChannelKind::Telegram => json!({"bot_token": "1:bench", "webhook_secret": "s"}),
        _ => {
            json!({"access_token": "t", "phone_number_id": "1", "app_secret": "s", "verify_token": "v"})
        }
    };
    let channel = app
        .store
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind,
                name: "bench".into(),
                credentials,
                settings: ChannelSettings {
                    api_base: Some(base),
                    ..ChannelSettings::default()
                },
            },
            now,
        )
        .await?;
    // One conversation per recipient (a campaign reaches many customers once each).
    let items: Vec<IngestItem> = (0..messages)
        .map(|i| IngestItem {
            tenant_id: tenant.id,
            channel_id: channel.id,
            message: InboundMessage {
                external_contact_id: format!("{}", 4_915_000_000_000u64 + i),
                contact_name: None,
                phone: None,
                provider_message_id: format!("in-{i}"),
                provider_ts: None,
                content: Content::text("hi"),
            },
            new_conversation_state: ConversationState::Queued,
            received_at: now,
        })
        .collect();
    let mut conversations = Vec::new();
    for chunk in items.chunks(500) {
        for o in app.store.ingest(chunk).await? {
            if let IngestOutcome::Stored { message, .. } = o {
                conversations.push(message.conversation_id);
            }
        }
    }
    for c in &conversations {
        app.store
            .enqueue_outbound(
                tenant.id,
                *c,
                NewOutbound {
                    sender: Sender::Bot,
                    content: Content::text("Our new savings account is here."),
                    lane: Lane::Bulk,
                },
                now,
            )
            .await?;
    }
    let shutdown = CancellationToken::new();
    let workers = app.start_workers(shutdown.clone());
    let deadline = Instant::now() + Duration::from_secs(messages / u64::from(rate) * 3 + 30);
    loop {
        let done = mock.lock().map(|m| m.accepted >= messages).unwrap_or(true);
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    workers.join().await;
    let m = mock.lock().map_err(|_| anyhow::anyhow!("mock poisoned"))?;
    anyhow::ensure!(
        m.accepted >= messages,
        "only {} of {messages} were sent",
        m.accepted
    );
    let span = match (m.first, m.last_accept) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    // n sends spaced 1/rate apart span (n - 1) intervals.
    let achieved = if span > 0.0 {
        (m.accepted.saturating_sub(1)) as f64 / span
    } else {
        0.0
    };
    Ok((achieved, m.rejected))
}
