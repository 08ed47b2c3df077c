//! Signal adapter through a self-hosted signal-cli (channels.md §3): either the daemon's
//! JSON-RPC over HTTP (`daemon --http`: `POST /api/v1/rpc`, events on `GET /api/v1/events`) or
//! bbernhard/signal-cli-rest-api (`POST /v2/send`, frames on `GET /v1/receive/{number}`).
//!
//! - [`inbound`]: parsing of received frames (both shapes). There is no authenticity header:
//!   trust comes from binding signal-cli to loopback, so [`verify`] accepts everything.
//! - [`outbound`]: rendering (numbered menus, split text at 2000 bytes, quotes, reactions) and
//!   the send with result-type error mapping.
//! - [`wire`]: the JSON shapes.

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

/// Which signal-cli front end the operator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `signal-cli daemon --http`: JSON-RPC at `{api_base}/api/v1/rpc`.
    #[default]
    JsonRpc,
    /// signal-cli-rest-api: `{api_base}/v2/send`.
    Rest,
}

/// Credentials of one Signal account, read from the channel's `credentials` JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct Credentials {
    /// Our registered number, E.164 with `+`.
    pub account: String,
    /// Where signal-cli listens (loopback), e.g. `http://127.0.0.1:8080`.
    pub api_base: String,
    /// JSON-RPC daemon or REST wrapper.
    #[serde(default)]
    pub mode: Mode,
    /// The daemon serves several accounts: JSON-RPC calls then name ours in `account`.
    #[serde(default)]
    pub multi_account: bool,
}

/// A Signal account: credentials and HTTP client.
#[derive(Debug, Clone)]
pub struct Signal {
    pub(crate) http: reqwest::Client,
    pub(crate) creds: Credentials,
    pub(crate) api_base: String,
}

impl Signal {
    /// Binds credentials to a client; `api_base` overrides the credentials' own base (tests).
    pub fn new(http: reqwest::Client, creds: Credentials, api_base: Option<&str>) -> Self {
        let api_base = api_base
            .unwrap_or(&creds.api_base)
            .trim_end_matches('/')
            .to_string();
        Signal {
            http,
            creds,
            api_base,
        }
    }
}

#[async_trait]
impl Adapter for Signal {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Signal
    }

    fn verify(&self, req: &RawRequest) -> Result<(), Rejected> {
        verify(req)
    }

    fn parse(&self, req: &RawRequest) -> Result<Parsed, ParseError> {
        parse(req)
    }

    fn render(&self, msg: &OutboundMessage) -> Result<Vec<ApiCall>, RenderError> {
        render(msg, &self.creds, &ChannelKind::Signal.capabilities())
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        Signal::send(self, msg).await
    }

    async fn typing(&self, to: &str, _last_inbound: Option<&str>) -> Result<(), SendError> {
        Signal::typing(self, to).await
    }
}
