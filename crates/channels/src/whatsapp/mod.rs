//! WhatsApp Business Cloud API adapter (channels.md §1).
//!
//! - [`inbound`]: `hub.challenge` handshake, `X-Hub-Signature-256` check, webhook parsing.
//! - [`outbound`]: rendering by capability (reply buttons, lists, numbered menus, templates,
//!   split text), sending to `POST /{phone-number-id}/messages`, error classification, media
//!   lookup and download.
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

pub use inbound::{parse, verify, verify_subscription};
pub use outbound::{TemplateComponent, classify, render, render_template};

/// The real Graph API base (version pinned with the spec we follow).
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v23.0";

/// Credentials of one WhatsApp business number, read from the channel's `credentials` JSON.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    /// System-user access token (Bearer).
    pub access_token: String,
    /// The business phone number's id (`metadata.phone_number_id`; path of every send).
    pub phone_number_id: String,
    /// App secret: HMAC key of `X-Hub-Signature-256`.
    pub app_secret: String,
    /// Our verify token for the `hub.challenge` handshake.
    pub verify_token: String,
    /// The WhatsApp Business Account id (WABA), optional: only the template catalogue
    /// (`GET /{WABA-ID}/message_templates`) needs it.
    #[serde(default)]
    pub business_account_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("phone_number_id", &self.phone_number_id)
            .finish_non_exhaustive()
    }
}

/// A WhatsApp business number: credentials, API base and HTTP client.
#[derive(Debug, Clone)]
pub struct WhatsApp {
    pub(crate) http: reqwest::Client,
    pub(crate) creds: Credentials,
    pub(crate) api_base: String,
}

impl WhatsApp {
    /// Binds credentials to a client; `api_base` defaults to [`DEFAULT_API_BASE`].
    pub fn new(http: reqwest::Client, creds: Credentials, api_base: Option<&str>) -> Self {
        let api_base = api_base
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_string();
        WhatsApp {
            http,
            creds,
            api_base,
        }
    }

    /// The credentials (for the webhook handshake).
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }
}

#[async_trait]
impl Adapter for WhatsApp {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn verify(&self, req: &RawRequest) -> Result<(), Rejected> {
        verify(req, &self.creds)
    }

    fn parse(&self, req: &RawRequest) -> Result<Parsed, ParseError> {
        parse(req)
    }

    fn render(&self, msg: &OutboundMessage) -> Result<Vec<ApiCall>, RenderError> {
        render(msg, &ChannelKind::Whatsapp.capabilities())
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        WhatsApp::send(self, msg).await
    }

    async fn typing(&self, _to: &str, last_inbound: Option<&str>) -> Result<(), SendError> {
        WhatsApp::typing(self, last_inbound).await
    }

    async fn templates(&self) -> Result<Vec<crate::TemplateInfo>, SendError> {
        WhatsApp::templates(self).await
    }
}
