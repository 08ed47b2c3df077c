//! Provider channels (WhatsApp, Telegram, Signal) wired into the runtime.
//!
//! The pure wire work (verify, parse, render, error classification) lives in the `channels`
//! crate; this module is the IO shell around it:
//! - [`ProviderTransport`]: the outbox [`Transport`] for the three provider kinds. It waits
//!   for its turn in the account's [`limiter::AccountLimiter`], refuses free-form WhatsApp
//!   messages outside the 24 h window and Signal bulk sends before any provider call, sends
//!   through [`switchboard_channels::adapter_for`], and maps [`SendError`] to
//!   [`AttemptError`] (pausing the account or recipient on back-off answers).
//! - [`App::receive_hook`] / [`App::whatsapp_handshake`]: webhook requests, verified on the
//!   raw bytes, parsed, and handed to [`App::accept_parsed`], which commits messages through
//!   `app::ingest` (200 only after commit), applies status reports and acts on notices.
//! - [`setup`]: `channels add` (CLI and admin API): credentials checked against the provider,
//!   the webhook URL to register, Telegram's `setWebhook`.
//! - [`signal_receiver`]: one background receiver per Signal channel (signal-cli has no
//!   webhook).

pub mod limiter;
pub mod setup;
pub mod signal_receiver;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_channels::{
    Adapter, Attachment, Notice, OutboundMessage, Parsed, RawRequest, SendError, adapter_for,
    telegram, whatsapp,
};
use switchboard_core::ports::{IngestItem, Lane, OutboxItem};
use switchboard_core::{
    Channel, ChannelId, ChannelKind, Content, ErrorClass, InboundEvent, SendFailure, Timestamp,
};

use crate::config::ChannelsConfig;
use crate::sender::{AttemptError, Transport};
use crate::{App, now};

use self::limiter::AccountLimiter;

/// Shared state of the provider channels: one HTTP client and the limiters per account.
pub struct ChannelRuntime {
    http: reqwest::Client,
    config: ChannelsConfig,
    limiters: Mutex<HashMap<ChannelId, Arc<AccountLimiter>>>,
    /// WhatsApp 131026 answers in a row per (channel, recipient).
    undeliverable: Mutex<HashMap<(ChannelId, String), u32>>,
    /// Longest a send waits for its turn before the row is rescheduled instead (half the
    /// outbox lease, so a waiting row never outlives its lease).
    max_wait: Duration,
}

impl ChannelRuntime {
    /// Builds the runtime. Installs the ring TLS provider if nobody did (reqwest is built
    /// without one; see dependencies.md).
    pub fn new(config: ChannelsConfig, lease: Duration) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with the ring TLS provider always builds");
        ChannelRuntime {
            http,
            config,
            limiters: Mutex::new(HashMap::new()),
            undeliverable: Mutex::new(HashMap::new()),
            max_wait: lease / 2,
        }
    }

    /// The HTTP client every provider call uses.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The channel settings this runtime was built with.
    pub fn config(&self) -> &ChannelsConfig {
        &self.config
    }

    /// The adapter of a channel row.
    pub fn adapter(&self, channel: &Channel) -> Result<Box<dyn Adapter>, String> {
        adapter_for(channel, self.http.clone()).map_err(|e| e.to_string())
    }

    /// Counts one more "undeliverable" answer for a recipient; returns the count in a row.
    fn undeliverable_again(&self, channel: ChannelId, recipient: &str) -> u32 {
        let mut map = self.undeliverable.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry((channel, recipient.to_string())).or_insert(0);
        *n += 1;
        *n
    }

    /// Forgets a recipient's undeliverable count (a message reached them, or they were marked).
    fn delivered(&self, channel: ChannelId, recipient: &str) {
        let mut map = self.undeliverable.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(channel, recipient.to_string()));
    }

    /// The limiters of a channel account (created on first use).
    pub fn limiter(&self, channel: &Channel) -> Arc<AccountLimiter> {
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(channel.id)
            .or_insert_with(|| {
                Arc::new(AccountLimiter::new(
                    channel.kind,
                    &self.config,
                    channel.settings.rate_per_second,
                ))
            })
            .clone()
    }
}

/// The outbox transport of WhatsApp, Telegram and Signal channels.
pub struct ProviderTransport {
    runtime: Arc<ChannelRuntime>,
    media: Option<crate::media::MediaStore>,
    store: Option<Arc<dyn switchboard_core::ports::Store>>,
}

impl ProviderTransport {
    /// A transport over the shared channel runtime.
    pub fn new(runtime: Arc<ChannelRuntime>) -> Self {
        Self {
            runtime,
            media: None,
            store: None,
        }
    }

    /// Records reachability in `store`: a WhatsApp customer answered "undeliverable" (131026)
    /// `channels.whatsapp_undeliverable_limit` times in a row is marked unreachable there.
    pub fn with_store(mut self, store: Arc<dyn switchboard_core::ports::Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Counts a WhatsApp 131026 and, at the configured limit, marks the recipient unreachable.
    async fn note_undeliverable(&self, item: &OutboxItem) {
        let limit = self.runtime.config.whatsapp_undeliverable_limit;
        let Some(store) = &self.store else { return };
        let n = self
            .runtime
            .undeliverable_again(item.channel.id, &item.recipient);
        if limit == 0 || n < limit {
            return;
        }
        let reason = format!(
            "WhatsApp reported {n} messages in a row as undeliverable (error 131026: not on WhatsApp, blocked us, or an old app); reach them on another channel"
        );
        match store
            .set_reachability(
                item.channel.tenant_id,
                item.channel.id,
                &item.recipient,
                Some(&reason),
                now(),
            )
            .await
        {
            Ok(_) => self.runtime.delivered(item.channel.id, &item.recipient),
            Err(e) => {
                tracing::warn!(channel_id = %item.channel.id, error = %e, "could not record reachability");
            }
        }
    }

    /// Reads the files of outbound media messages (staff attachments) from `media`, so the
    /// adapters can upload them.
    pub fn with_media(mut self, media: crate::media::MediaStore) -> Self {
        self.media = Some(media);
        self
    }

    /// The stored file of a media message that has no provider id or link yet, or `None`
    /// when the message needs no upload.
    async fn attachment(&self, item: &OutboxItem) -> Result<Option<Attachment>, AttemptError> {
        let Content::Media { media, .. } = &item.message.content else {
            return Ok(None);
        };
        let Some(key) = media.stored_key.as_deref() else {
            return Ok(None);
        };
        if media.provider_id.is_some() || media.url.is_some() {
            return Ok(None);
        }
        let store = self.media.as_ref().ok_or_else(|| {
            refuse(
                ErrorClass::Permanent,
                "media_unavailable",
                "this server runs without a media store, so attachments cannot be sent",
            )
        })?;
        let bytes = store
            .read(item.channel.tenant_id, key, media.sha256.as_deref())
            .await
            .map_err(|e| {
                refuse(
                    ErrorClass::Permanent,
                    "media_unreadable",
                    format!("the attached file cannot be read from the media store: {e}"),
                )
            })?;
        Ok(Some(Attachment {
            bytes: bytes.into(),
            mime_type: media
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            filename: media.filename.clone().unwrap_or_else(|| "file".into()),
        }))
    }
}

fn refuse(class: ErrorClass, code: &str, reason: impl Into<String>) -> AttemptError {
    AttemptError::new(
        SendFailure {
            class,
            code: Some(code.to_string()),
            reason: reason.into(),
        },
        None,
    )
}

/// Whether a free-form message may go to a customer whose last message was at `last_inbound`
/// (WhatsApp's customer service window, channels.md §1.2). Templates may always go.
pub fn window_allows(
    kind: ChannelKind,
    content: &Content,
    last_inbound: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let Some(hours) = kind.capabilities().session_window_hours else {
        return true;
    };
    if matches!(content, Content::Template { .. }) {
        return true;
    }
    last_inbound.is_some_and(|t| now - t < time::Duration::hours(i64::from(hours)))
}

/// The message an agent sees when the window is closed.
pub const WINDOW_CLOSED: &str = "the customer's last message is more than 24 hours old, so WhatsApp only accepts an approved template now: send {\"template\": {\"name\", \"language\", \"variables\"}} or wait for the customer to write";

/// Why an identity is unreachable after the provider said the customer blocked us.
pub const UNREACHABLE_BLOCKED: &str =
    "the customer blocked this channel (e.g. stopped the Telegram bot); they must write first";

/// A phone number in E.164, from WhatsApp's `wa_id` (digits without `+`) or Signal's
/// `+`-prefixed number; `None` when it is not one. The rules (separators, length, no national
/// formats) are `switchboard_crypto::normalize_phone`'s, which the blind index of #6 uses too;
/// only the missing `+` of a `wa_id` is added here.
pub fn normalise_e164(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.starts_with('+') {
        switchboard_crypto::normalize_phone(raw).ok()
    } else {
        switchboard_crypto::normalize_phone(&format!("+{raw}")).ok()
    }
}

/// Maps an adapter error to the sender's attempt error: parts accepted before the failure
/// travel with it, and a refusal of the account itself (channels.md: auth, permissions,
/// policy blocks; class permanent, scope channel) pauses the channel instead of failing the
/// message.
fn attempt_error(e: &SendError) -> AttemptError {
    AttemptError {
        failure: e.failure(),
        retry_after: e.retry_after,
        sent_parts: e.sent_part_ids.clone(),
        pause_channel: pauses_channel(e),
        deferred: false,
    }
}

/// Whether a send error means the channel account is unusable until an operator acts.
pub fn pauses_channel(e: &SendError) -> bool {
    e.scope == switchboard_channels::ErrorScope::Channel && !e.class.is_retryable()
}

#[async_trait]
impl Transport for ProviderTransport {
    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, AttemptError> {
        let channel = &item.channel;
        if let Some(pause) = &channel.paused {
            // Paused after this row was claimed: back to the queue until resumed.
            return Err(AttemptError {
                pause_channel: true,
                ..refuse(
                    ErrorClass::Permanent,
                    "channel_paused",
                    pause.reason.clone(),
                )
            });
        }
        if item.lane == Lane::Bulk
            && channel.kind == ChannelKind::Signal
            && !channel.settings.allow_bulk
        {
            return Err(refuse(
                ErrorClass::Permanent,
                "bulk_not_allowed",
                "bulk sends on Signal are refused unless the operator allows them (channel setting allow_bulk)",
            ));
        }
        if !window_allows(
            channel.kind,
            &item.message.content,
            item.last_inbound_at,
            now(),
        ) {
            return Err(refuse(
                ErrorClass::NeedsTemplate,
                "window_closed",
                WINDOW_CLOSED,
            ));
        }
        let adapter = self.runtime.adapter(channel).map_err(|e| {
            refuse(
                ErrorClass::Permanent,
                "channel_config",
                format!("channel is misconfigured: {e}"),
            )
        })?;
        let limiter = self.runtime.limiter(channel);
        let deadline = tokio::time::Instant::now() + self.runtime.max_wait;
        if let Err(wait) = limiter.acquire(item.lane, &item.recipient, deadline).await {
            // Our own limiter, not the provider: a wait, not a failed attempt.
            return Err(AttemptError::deferred(
                SendFailure {
                    class: ErrorClass::BackOff,
                    code: Some("rate_limited".into()),
                    reason: "waiting for this channel's send rate".into(),
                },
                wait,
            ));
        }
        let mut msg = OutboundMessage::new(
            item.recipient.clone(),
            item.message.content.clone(),
            item.idempotency_key.clone(),
        );
        // Parts an earlier attempt had accepted are not sent again.
        msg.skip_parts = usize::try_from(item.parts_sent).unwrap_or(usize::MAX);
        msg.attachment = self.attachment(item).await?;
        match adapter.send(&msg).await {
            // The message is known by its first part's id (status webhooks, quotes).
            Ok(receipt) => {
                if channel.kind == ChannelKind::Whatsapp {
                    self.runtime.delivered(channel.id, &item.recipient);
                }
                Ok(Some(
                    item.first_part_id.clone().unwrap_or(receipt.provider_id),
                ))
            }
            Err(e) => {
                if channel.kind == ChannelKind::Whatsapp && e.code.as_deref() == Some("131026") {
                    self.note_undeliverable(item).await;
                }
                if e.class == ErrorClass::BackOff {
                    // Meta suggests backing off 4^n s on a pair limit; the provider's own
                    // wait wins when it names one.
                    let attempt = u32::try_from(item.attempts).unwrap_or(0).min(4);
                    let wait = e
                        .retry_after
                        .unwrap_or(Duration::from_secs(4u64.pow(attempt + 1)));
                    match e.scope {
                        switchboard_channels::ErrorScope::Channel => limiter.pause_account(wait),
                        _ => limiter.pause_recipient(&item.recipient, wait),
                    }
                }
                Err(attempt_error(&e))
            }
        }
    }
}

/// Why a webhook request was not accepted. The HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// No such channel of that kind (404).
    #[error("channel not found")]
    NotFound,
    /// Signature, secret token or handshake refused (401 / 403); nothing was stored.
    #[error("{0}")]
    Rejected(String),
    /// The body is not a payload this provider sends (400).
    #[error("{0}")]
    BadPayload(String),
    /// Storage failed or the server is stopping: the provider should retry (503).
    #[error("{0}")]
    Unavailable(String),
    /// The channel's stored credentials are unusable (500, logged).
    #[error("{0}")]
    Misconfigured(String),
}

/// What one accepted request contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HookReceipt {
    /// Messages stored now.
    pub stored: usize,
    /// Messages stored before (provider retries).
    pub duplicates: usize,
    /// Status reports that changed a message.
    pub statuses: usize,
}

impl App {
    /// A channel of `kind` by id, or `NotFound`.
    async fn hook_channel(&self, kind: ChannelKind, id: ChannelId) -> Result<Channel, HookError> {
        self.store
            .channel(id)
            .await
            .map_err(|e| HookError::Unavailable(e.to_string()))?
            .filter(|c| c.kind == kind)
            .ok_or(HookError::NotFound)
    }

    /// `GET /hooks/whatsapp/{id}`: Meta's subscription handshake; returns the challenge.
    pub async fn whatsapp_handshake(
        &self,
        id: ChannelId,
        req: &RawRequest,
    ) -> Result<String, HookError> {
        let channel = self.hook_channel(ChannelKind::Whatsapp, id).await?;
        let creds: whatsapp::Credentials = serde_json::from_value(channel.credentials.clone())
            .map_err(|e| HookError::Misconfigured(format!("WhatsApp credentials: {e}")))?;
        whatsapp::verify_subscription(req, &creds).map_err(|e| HookError::Rejected(e.to_string()))
    }

    /// `POST /hooks/{kind}/{id}`: verifies the request on its raw bytes, parses it and
    /// commits what it carries. Returns only after every message is committed.
    pub async fn receive_hook(
        &self,
        kind: ChannelKind,
        id: ChannelId,
        req: RawRequest,
    ) -> Result<HookReceipt, HookError> {
        if !matches!(kind, ChannelKind::Whatsapp | ChannelKind::Telegram) {
            // Signal has no authenticity check at all, so it is never reachable from outside:
            // its receiver task reads signal-cli on loopback instead.
            return Err(HookError::NotFound);
        }
        let channel = self.hook_channel(kind, id).await?;
        let adapter = self.channels.adapter(&channel).map_err(|e| {
            tracing::error!(channel_id = %id, error = %e, "channel credentials are unusable");
            HookError::Misconfigured(e)
        })?;
        adapter.verify(&req).map_err(|e| {
            tracing::warn!(channel_id = %id, kind = %kind, reason = %e, "webhook refused");
            HookError::Rejected(e.to_string())
        })?;
        let parsed = adapter
            .parse(&req)
            .map_err(|e| HookError::BadPayload(e.to_string()))?;
        self.accept_parsed(&channel, parsed).await
    }

    /// Commits parsed provider input: messages through `app::ingest` (all submitted together,
    /// so they share one group commit), status reports through `Store::apply_status`, and
    /// notices acted on. Shared by webhooks and the Signal receiver.
    pub async fn accept_parsed(
        &self,
        channel: &Channel,
        parsed: Parsed,
    ) -> Result<HookReceipt, HookError> {
        let ingestor = self
            .ingestor()
            .ok_or_else(|| HookError::Unavailable("the server is starting".into()))?;
        let received_at = now();
        let mut items = Vec::new();
        let mut statuses = Vec::new();
        for event in parsed.events {
            match event {
                InboundEvent::Message(message) => items.push(IngestItem {
                    tenant_id: channel.tenant_id,
                    channel_id: channel.id,
                    message,
                    // A channel with a default flow answers new conversations with its bot,
                    // exactly like the web chat.
                    new_conversation_state: crate::flows_runtime::initial_state(channel),
                    received_at,
                }),
                InboundEvent::Status(report) => statuses.push(report),
            }
        }
        let mut receipt = HookReceipt::default();
        // Numbers to match across channels: the sender's verified phone, once per new
        // conversation (a later change of number arrives with a new conversation too).
        let phones: Vec<Option<(String, String)>> = items
            .iter()
            .map(|i| {
                i.message
                    .phone
                    .clone()
                    .map(|p| (i.message.external_contact_id.clone(), p))
            })
            .collect();
        let outcomes =
            futures::future::join_all(items.into_iter().map(|i| ingestor.ingest(i))).await;
        let mut to_link = Vec::new();
        for (outcome, phone) in outcomes.into_iter().zip(phones) {
            match outcome.map_err(|e| HookError::Unavailable(e.to_string()))? {
                switchboard_core::ports::IngestOutcome::Stored {
                    new_conversation, ..
                } => {
                    receipt.stored += 1;
                    if new_conversation && let Some(p) = phone {
                        to_link.push(p);
                    }
                }
                switchboard_core::ports::IngestOutcome::Duplicate { .. } => receipt.duplicates += 1,
            }
        }
        for (external_id, phone) in to_link {
            self.link_by_phone(channel, &external_id, &phone).await;
        }
        for report in &statuses {
            let event = self
                .store
                .apply_status(channel.tenant_id, channel.id, report)
                .await
                .map_err(|e| HookError::Unavailable(e.to_string()))?;
            if let Some(event) = event {
                self.bus.publish(std::slice::from_ref(&event));
                receipt.statuses += 1;
            }
        }
        for notice in parsed.notices {
            self.act_on_notice(channel, notice).await;
        }
        Ok(receipt)
    }

    /// Records the blind index of a sender's verified number (the store keys it per tenant)
    /// and links their contact to one with the same number on the other channel kind
    /// (channels.md §7: WhatsApp and Signal numbers are verified by the provider). Runs after the message is committed and never
    /// fails the webhook: a failure is logged, and the next new conversation tries again.
    async fn link_by_phone(&self, channel: &Channel, external_id: &str, phone: &str) {
        if !matches!(channel.kind, ChannelKind::Whatsapp | ChannelKind::Signal) {
            return;
        }
        if !self.config.channels.link_by_phone {
            return;
        }
        let Some(e164) = normalise_e164(phone) else {
            tracing::debug!(channel_id = %channel.id, "phone number is not E.164; not linked");
            return;
        };
        match self
            .store
            .link_by_phone(channel.tenant_id, channel.id, external_id, &e164, now())
            .await
        {
            Ok(Some(merge)) => {
                tracing::info!(tenant_id = %channel.tenant_id, survivor = %merge.survivor, merged = %merge.merged, proof = "phone_e164", "contacts linked by verified phone number");
                self.bus.publish(&merge.events);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(channel_id = %channel.id, error = %e, "linking by phone number failed");
            }
        }
    }

    async fn act_on_notice(&self, channel: &Channel, notice: Notice) {
        match notice {
            Notice::AnswerCallback { callback_query_id } => {
                // Answered right away but off the request path: the customer's spinner stops
                // and a slow Bot API never delays our 200.
                let creds =
                    serde_json::from_value::<telegram::Credentials>(channel.credentials.clone());
                let Ok(creds) = creds else { return };
                let bot = telegram::Telegram::new(
                    self.channels.http().clone(),
                    creds,
                    channel.settings.api_base.as_deref(),
                );
                let channel_id = channel.id;
                tokio::spawn(async move {
                    if let Err(e) = bot.answer_callback_query(&callback_query_id, None).await {
                        // Late answers are refused by Telegram; nothing to do about it.
                        tracing::debug!(%channel_id, error = %e, "answerCallbackQuery failed");
                    }
                });
            }
            Notice::ReachabilityChanged {
                external_contact_id,
                reachable,
                ..
            } => {
                tracing::info!(channel_id = %channel.id, contact = %external_contact_id, reachable, "customer reachability changed");
                let reason = (!reachable).then_some(UNREACHABLE_BLOCKED);
                if let Err(e) = self
                    .store
                    .set_reachability(
                        channel.tenant_id,
                        channel.id,
                        &external_contact_id,
                        reason,
                        now(),
                    )
                    .await
                {
                    tracing::warn!(channel_id = %channel.id, error = %e, "could not record reachability");
                }
            }
            Notice::ProviderError { failure } => {
                tracing::warn!(channel_id = %channel.id, kind = %channel.kind, code = ?failure.code, class = ?failure.class, reason = %failure.reason, "provider reported an error");
            }
            Notice::Unhandled { reason, .. } => {
                tracing::debug!(channel_id = %channel.id, %reason, "ignored provider item");
            }
            Notice::Typing {
                external_contact_id,
            } => {
                // The customer's latest conversation on the channel (the lookup is not
                // web-chat specific), while it is open; best effort like all typing.
                match self
                    .store
                    .webchat_conversation(channel.id, &external_contact_id)
                    .await
                {
                    Ok(Some(c)) if c.state != switchboard_core::ConversationState::Resolved => {
                        self.customer_typing(channel.tenant_id, c.id);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(channel_id = %channel.id, error = %e, "customer typing dropped");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164_from_every_channel_spelling() {
        let cases = [
            ("4915112345678", Some("+4915112345678"), "WhatsApp wa_id"),
            ("+4915112345678", Some("+4915112345678"), "Signal number"),
            (
                "+49 151-1234 5678",
                Some("+4915112345678"),
                "spaces and dashes",
            ),
            ("12345", None, "too short"),
            ("+49abc12345678", None, "letters"),
            ("0151123456789", None, "national format"),
        ];
        for (raw, expected, why) in cases {
            assert_eq!(normalise_e164(raw).as_deref(), expected, "{why}");
        }
    }

    #[test]
    fn the_whatsapp_window_is_24_hours_from_the_last_customer_message_and_templates_pass() {
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        let text = Content::text("hi");
        let template = Content::Template {
            name: "t".into(),
            language: "en".into(),
            variables: vec![],
        };
        let h = |n: i64| Some(now - time::Duration::hours(n));
        let cases = [
            (
                ChannelKind::Whatsapp,
                &text,
                h(23),
                true,
                "inside the window",
            ),
            (ChannelKind::Whatsapp, &text, h(25), false, "window closed"),
            (
                ChannelKind::Whatsapp,
                &text,
                None,
                false,
                "customer never wrote",
            ),
            (
                ChannelKind::Whatsapp,
                &template,
                h(25),
                true,
                "templates always go",
            ),
            (
                ChannelKind::Telegram,
                &text,
                h(25),
                true,
                "no window on Telegram",
            ),
        ];
        for (kind, content, last, expected, why) in cases {
            assert_eq!(window_allows(kind, content, last, now), expected, "{why}");
        }
    }
}
