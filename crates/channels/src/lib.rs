//! Channel adapters: the only code that speaks a provider's wire format.
//!
//! Layout (every provider folder has the same files, see `docs/style.md` §1):
//! - [`whatsapp`], [`telegram`], [`signal`]: `wire.rs` (provider types, linked to their docs),
//!   `inbound.rs` (verify + parse, pure), `outbound.rs` (render, pure; send + error mapping, IO),
//!   `tests.rs` (fed by `../shared/fixtures`).
//! - [`webchat`]: our own protocol (written by the lead; not an [`Adapter`]).
//! - [`degrade`]: how content degrades when a channel lacks a feature (text splitting, numbered
//!   menus), shared by all adapters.
//! - this file: the types every adapter shares ([`RawRequest`], [`Rejected`], [`ParseError`],
//!   [`Parsed`], [`Notice`], [`OutboundMessage`], [`ApiCall`], [`SendReceipt`], [`SendError`]) and
//!   the [`Adapter`] trait the runtime dispatches through.
//!
//! What stays outside: storing, deduplicating and answering the webhook (`app`, `http`), the
//! outbox and its limiters (`app::sender`), matching a numbered-menu reply back to a choice
//! (`flows::parse_choice_reply`), and downloading media into our store (a later step; the
//! provider calls for it are [`whatsapp::WhatsApp::media_info`] and
//! [`telegram::Telegram::get_file`]).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchboard_core::{ChannelKind, Content, ErrorClass, InboundEvent, SendFailure, Timestamp};

pub mod degrade;
pub mod signal;
pub mod telegram;
mod transport;
pub mod webchat;
pub mod whatsapp;

#[cfg(test)]
mod testkit;

/// An inbound HTTP request (or, for Signal, one received frame) exactly as it arrived.
///
/// Verification must run over these raw bytes: WhatsApp signs its own escaped-unicode JSON, so a
/// re-serialised body would not match (channels.md §1.1).
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    /// Header names (any case) and values. Non-UTF-8 values may be passed lossily converted.
    pub headers: Vec<(String, String)>,
    /// Decoded query-string pairs, in order.
    pub query: Vec<(String, String)>,
    /// The body bytes, untouched.
    pub body: bytes::Bytes,
}

impl RawRequest {
    /// A request with only a body (tests, Signal frames, long polling).
    pub fn from_body(body: impl Into<bytes::Bytes>) -> Self {
        RawRequest {
            body: body.into(),
            ..RawRequest::default()
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a query pair (builder style).
    pub fn with_query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an inbound request failed verification. The HTTP layer answers 403 and stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The authenticity header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The header is present but not in the provider's format.
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    /// The signature or secret does not match.
    #[error("signature or secret token does not match")]
    Mismatch,
    /// A subscription handshake with a wrong mode or verify token.
    #[error("subscription handshake refused: {0}")]
    Handshake(&'static str),
}

/// A body that could not be read at all. Individual malformed items inside a readable batch do
/// not fail the batch; they become [`Content::Unsupported`] messages or [`Notice::Unhandled`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a payload this provider sends.
    #[error("unexpected payload: {0}")]
    Unexpected(String),
}

/// What a parser produced from one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Customer messages and status reports, in payload order.
    pub events: Vec<InboundEvent>,
    /// Things the runtime must see that are not messages or statuses of one message.
    pub notices: Vec<Notice>,
}

/// Side information from an inbound payload that `core::InboundEvent` cannot carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// The provider reported an error not tied to one of our messages (WhatsApp `value.errors[]`,
    /// a Signal error frame). Show it to supervisors; `failure.class` says what to do.
    ProviderError {
        /// The classified error.
        failure: SendFailure,
    },
    /// The customer blocked (`reachable: false`) or unblocked us (Telegram `my_chat_member`).
    ReachabilityChanged {
        /// The customer's external id on this channel.
        external_contact_id: String,
        /// Whether we can message them now.
        reachable: bool,
        /// Provider time.
        #[serde(with = "time::serde::rfc3339")]
        at: Timestamp,
    },
    /// A Telegram callback query that must be answered (`answerCallbackQuery`) right away, or the
    /// customer's client keeps spinning (channels.md §2.1).
    AnswerCallback {
        /// The callback query id.
        callback_query_id: String,
    },
    /// The customer started typing to us (Signal `typingMessage` STARTED, one-to-one): shown on
    /// the desk, never stored and not a message.
    Typing {
        /// The customer's external id on this channel.
        external_contact_id: String,
    },
    /// Something we neither show nor act on (unknown update kinds, sync messages, group admin
    /// events, malformed status items). Kept with its raw payload so nothing vanishes silently.
    Unhandled {
        /// What it was.
        reason: String,
        /// The raw item.
        raw: serde_json::Value,
    },
}

/// One message the sender hands to an adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// The recipient's external id on this channel (WhatsApp `wa_id` or BSUID, Telegram chat id,
    /// Signal ACI / number).
    pub to: String,
    /// What to send.
    pub content: Content,
    /// Provider id of the message this one replies to (quote), when any.
    pub reply_to: Option<String>,
    /// The outbox row's idempotency key. WhatsApp echoes it back in status webhooks
    /// (`biz_opaque_callback_data`); other providers ignore it.
    pub idempotency_key: String,
    /// How many rendered parts an earlier attempt already had accepted (the length of
    /// [`SendError::sent_part_ids`]); those parts are not sent again. Rendering is
    /// deterministic, so part numbers are stable across attempts.
    pub skip_parts: usize,
    /// The file of a [`Content::Media`] that has no provider id or link yet: our stored
    /// copy, read by the sender, which the adapter uploads the way its API wants.
    pub attachment: Option<Attachment>,
}

/// The bytes of an outbound file with its declared type and name.
#[derive(Clone, PartialEq)]
pub struct Attachment {
    /// The file.
    pub bytes: bytes::Bytes,
    /// Its MIME type (`image/png`).
    pub mime_type: String,
    /// The name the customer sees.
    pub filename: String,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("size", &self.bytes.len())
            .field("mime_type", &self.mime_type)
            .field("filename", &self.filename)
            .finish()
    }
}

impl OutboundMessage {
    /// A message with no reply context that starts at the first part.
    pub fn new(
        to: impl Into<String>,
        content: Content,
        idempotency_key: impl Into<String>,
    ) -> Self {
        OutboundMessage {
            to: to.into(),
            content,
            reply_to: None,
            idempotency_key: idempotency_key.into(),
            skip_parts: 0,
            attachment: None,
        }
    }
}

/// One provider API request produced by a pure `render`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The provider method: WhatsApp `messages`, a Telegram method (`sendMessage`), a signal-cli
    /// JSON-RPC method (`send`) or a REST path (`v2/send`).
    pub method: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// Content that cannot be rendered for a channel at all (the sender marks it failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render for this channel: {0}")]
pub struct RenderError(pub String);

impl From<RenderError> for SendError {
    fn from(e: RenderError) -> Self {
        SendError::permanent(None, e.0)
    }
}

/// What a provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// Provider id of the first part sent in this attempt (wamid, `chat_id:message_id`, Signal
    /// timestamp). Status webhooks and replies reference it.
    pub provider_id: String,
    /// Provider ids of every part sent in this attempt, in order (first = `provider_id`).
    pub part_ids: Vec<String>,
}

/// Who an error affects, so the sender can pause the right limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorScope {
    /// Only this message.
    Message,
    /// This recipient (pair rate limit, blocked user): other recipients continue.
    Recipient,
    /// The whole channel account (throughput limit, bad token, policy block): pause it.
    Channel,
}

/// A failed send, classified so the sender decides from the value alone (no string matching).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class:?} ({}): {message}", code.as_deref().unwrap_or("-"))]
pub struct SendError {
    /// What to do about it.
    pub class: ErrorClass,
    /// Which limiter to pause.
    pub scope: ErrorScope,
    /// Provider error code, verbatim (`131047`, `429`, `UNREGISTERED_FAILURE`).
    pub code: Option<String>,
    /// A sentence for the agent (provider text; never contains tokens).
    pub message: String,
    /// How long the provider asked us to wait (Telegram `retry_after`, `Retry-After`, Signal
    /// `retryAfterSeconds`).
    pub retry_after: Option<Duration>,
    /// Parts of a multi-part message that were accepted before this failure. Pass their count
    /// back as [`OutboundMessage::skip_parts`] so a retry does not send them twice.
    pub sent_part_ids: Vec<String>,
}

impl SendError {
    fn new(class: ErrorClass, scope: ErrorScope, code: Option<String>, message: String) -> Self {
        SendError {
            class,
            scope,
            code,
            message,
            retry_after: None,
            sent_part_ids: Vec::new(),
        }
    }

    /// Transient failure (network, 5xx): retry with backoff.
    pub fn retry_later(code: Option<String>, message: impl Into<String>) -> Self {
        Self::new(
            ErrorClass::RetryLater,
            ErrorScope::Message,
            code,
            message.into(),
        )
    }

    /// Rate limited: pause `scope`'s limiter (for `retry_after` when given), then retry.
    pub fn back_off(
        scope: ErrorScope,
        code: Option<String>,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        SendError {
            retry_after,
            ..Self::new(ErrorClass::BackOff, scope, code, message.into())
        }
    }

    /// Outside the WhatsApp 24 h window: only a template can be sent.
    pub fn needs_template(code: Option<String>, message: impl Into<String>) -> Self {
        Self::new(
            ErrorClass::NeedsTemplate,
            ErrorScope::Message,
            code,
            message.into(),
        )
    }

    /// The recipient cannot be reached on this channel (blocked us, not registered).
    pub fn unreachable(code: Option<String>, message: impl Into<String>) -> Self {
        Self::new(
            ErrorClass::Unreachable,
            ErrorScope::Recipient,
            code,
            message.into(),
        )
    }

    /// Will never succeed as is (bad payload, policy).
    pub fn permanent(code: Option<String>, message: impl Into<String>) -> Self {
        Self::new(
            ErrorClass::Permanent,
            ErrorScope::Message,
            code,
            message.into(),
        )
    }

    /// The channel account itself is unusable (token revoked, account locked): pause it and alert.
    pub fn channel_disabled(code: Option<String>, message: impl Into<String>) -> Self {
        Self::new(
            ErrorClass::Permanent,
            ErrorScope::Channel,
            code,
            message.into(),
        )
    }

    /// Sets the scope (builder style).
    pub fn with_scope(mut self, scope: ErrorScope) -> Self {
        self.scope = scope;
        self
    }

    /// The failure as stored on the message and shown to the agent.
    pub fn failure(&self) -> SendFailure {
        SendFailure {
            class: self.class,
            code: self.code.clone(),
            reason: self.message.clone(),
        }
    }
}

/// An adapter bound to one channel account: its credentials, API base and HTTP client.
///
/// The runtime builds one per channel row with [`adapter_for`] and dispatches through it.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Which provider.
    fn kind(&self) -> ChannelKind;
    /// Checks that an inbound request really comes from the provider.
    fn verify(&self, req: &RawRequest) -> Result<(), Rejected>;
    /// Turns a verified request into events (pure).
    fn parse(&self, req: &RawRequest) -> Result<Parsed, ParseError>;
    /// The provider requests one message becomes (pure).
    fn render(&self, msg: &OutboundMessage) -> Result<Vec<ApiCall>, RenderError>;
    /// Renders and sends, mapping provider errors to classified [`SendError`]s.
    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError>;
    /// Shows the customer `to` (the address sends use) that someone is typing, where the
    /// provider has a typing state; `last_inbound` is the provider id of the customer's
    /// latest message (WhatsApp shows the indicator with a read mark of it). Best effort:
    /// never queued or retried. The default does nothing (no typing state).
    async fn typing(&self, _to: &str, _last_inbound: Option<&str>) -> Result<(), SendError> {
        Ok(())
    }
    /// The approved message templates this account may send (WhatsApp). Providers without
    /// templates list none.
    async fn templates(&self) -> Result<Vec<TemplateInfo>, SendError> {
        Ok(Vec::new())
    }
}

/// A message template the business may send, as the provider lists it (WhatsApp's
/// `message_templates`): addressed by `name` + `language`; `variables` is how many
/// `{{n}}` placeholders its body has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    /// Template name.
    pub name: String,
    /// Language code (`en_US`).
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// The body text with its `{{1}}`… placeholders, when it has a body.
    pub body: Option<String>,
    /// Number of distinct body placeholders.
    pub variables: usize,
}

/// Channel credentials that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `credentials` JSON does not have the fields this provider needs.
    #[error("invalid {kind} credentials: {source}")]
    Credentials {
        /// Which provider.
        kind: ChannelKind,
        /// The serde error (names the missing field; never echoes secret values).
        source: serde_json::Error,
    },
    /// This kind has no external adapter (web chat is served by our own socket).
    #[error("{0} has no provider adapter")]
    NoAdapter(ChannelKind),
}

/// Builds the adapter for a channel row: reads its `credentials` JSON into the provider's typed
/// credentials and uses `settings.api_base` (or the real provider) as the base URL.
pub fn adapter_for(
    channel: &switchboard_core::Channel,
    http: reqwest::Client,
) -> Result<Box<dyn Adapter>, ConfigError> {
    let base = channel.settings.api_base.as_deref();
    let creds = |kind| move |source| ConfigError::Credentials { kind, source };
    Ok(match channel.kind {
        ChannelKind::Whatsapp => {
            let c = serde_json::from_value(channel.credentials.clone())
                .map_err(creds(ChannelKind::Whatsapp))?;
            Box::new(whatsapp::WhatsApp::new(http, c, base))
        }
        ChannelKind::Telegram => {
            let c = serde_json::from_value(channel.credentials.clone())
                .map_err(creds(ChannelKind::Telegram))?;
            Box::new(telegram::Telegram::new(http, c, base))
        }
        ChannelKind::Signal => {
            let c = serde_json::from_value(channel.credentials.clone())
                .map_err(creds(ChannelKind::Signal))?;
            Box::new(signal::Signal::new(http, c, base))
        }
        ChannelKind::Webchat => return Err(ConfigError::NoAdapter(ChannelKind::Webchat)),
    })
}

/// Converts provider seconds to a timestamp; `None` when out of range.
pub(crate) fn ts_from_secs(secs: i64) -> Option<Timestamp> {
    Timestamp::from_unix_timestamp(secs).ok()
}

/// Converts provider milliseconds to a timestamp; `None` when out of range.
pub(crate) fn ts_from_millis(ms: i64) -> Option<Timestamp> {
    Timestamp::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Constant-time equality for secrets (verify tokens, Telegram secret tokens). Only the length
/// can leak through timing, which the provider's format fixes anyway.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
