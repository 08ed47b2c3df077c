//! Telegram Bot API adapter (channels.md §2).
//!
//! - [`inbound`]: `X-Telegram-Bot-Api-Secret-Token` check and `Update` parsing.
//! - [`outbound`]: rendering (inline keyboards, split text, media by `file_id` or URL), the
//!   send with 429 / `retry_after` handling and error mapping, `answerCallbackQuery`, `getFile`.
//! - [`wire`]: the provider's JSON shapes.

use async_trait::async_trait;
use serde::Deserialize;
use switchboard_core::ChannelKind;

use crate::{
    Adapter, ApiCall, OutboundMessage, ParseError, Parsed, RawRequest, Rejected, RenderError,
    SendError, SendReceipt,
};

pub mod inbound;
pub mod outbound;
pub mod wire;

#[cfg(test)]
mod tests;

pub use inbound::{parse, verify};
pub use outbound::render;

/// The real Bot API base.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Credentials of one bot, read from the channel's `credentials` JSON.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    /// Bot token from @BotFather (it is the URL path: keep it out of logs).
    pub bot_token: String,
    /// The `secret_token` given to `setWebhook` (1–256 of `[A-Za-z0-9_-]`).
    pub webhook_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// A Telegram bot: credentials, API base and HTTP client.
#[derive(Debug, Clone)]
pub struct Telegram {
    pub(crate) http: reqwest::Client,
    pub(crate) creds: Credentials,
    pub(crate) api_base: String,
}

impl Telegram {
    /// Binds credentials to a client; `api_base` defaults to [`DEFAULT_API_BASE`] (a local
    /// `telegram-bot-api` server also works).
    pub fn new(http: reqwest::Client, creds: Credentials, api_base: Option<&str>) -> Self {
        let api_base = api_base
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_string();
        Telegram {
            http,
            creds,
            api_base,
        }
    }
}

#[async_trait]
impl Adapter for Telegram {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn verify(&self, req: &RawRequest) -> Result<(), Rejected> {
        verify(req, &self.creds)
    }

    fn parse(&self, req: &RawRequest) -> Result<Parsed, ParseError> {
        parse(req)
    }

    fn render(&self, msg: &OutboundMessage) -> Result<Vec<ApiCall>, RenderError> {
        render(msg, &ChannelKind::Telegram.capabilities())
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        Telegram::send(self, msg).await
    }

    async fn typing(&self, to: &str, _last_inbound: Option<&str>) -> Result<(), SendError> {
        Telegram::typing(self, to).await
    }
}
