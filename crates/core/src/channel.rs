//! Channel instances and what each kind of channel can show.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ChannelId, TenantId, Timestamp};

/// The kind of messaging endpoint a channel instance talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Our own browser widget (`/chat/<channel-id>`).
    Webchat,
    /// WhatsApp Business Cloud API.
    Whatsapp,
    /// Telegram Bot API.
    Telegram,
    /// Signal through a self-hosted signal-cli.
    Signal,
}

impl ChannelKind {
    /// Stable lowercase name (storage, URLs `/hooks/<kind>/<id>`, CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webchat => "webchat",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Signal => "signal",
        }
    }

    /// What this kind of channel can render natively (channels.md §5).
    pub fn capabilities(self) -> Capabilities {
        match self {
            ChannelKind::Webchat => Capabilities {
                max_text_len: 16_000,
                reply_buttons: usize::MAX,
                list_rows: usize::MAX,
                templates: false,
                session_window_hours: None,
                delivery_receipts: true,
                typing: true,
            },
            ChannelKind::Whatsapp => Capabilities {
                max_text_len: 4096,
                reply_buttons: 3,
                list_rows: 10,
                templates: true,
                session_window_hours: Some(24),
                delivery_receipts: true,
                typing: true,
            },
            ChannelKind::Telegram => Capabilities {
                max_text_len: 4096,
                reply_buttons: 100,
                list_rows: 100,
                templates: false,
                session_window_hours: None,
                delivery_receipts: false,
                typing: true,
            },
            ChannelKind::Signal => Capabilities {
                max_text_len: 2000,
                reply_buttons: 0,
                list_rows: 0,
                templates: false,
                session_window_hours: None,
                delivery_receipts: true,
                typing: true,
            },
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "webchat" | "web" => Ok(ChannelKind::Webchat),
            "whatsapp" => Ok(ChannelKind::Whatsapp),
            "telegram" => Ok(ChannelKind::Telegram),
            "signal" => Ok(ChannelKind::Signal),
            other => Err(format!(
                "unknown channel kind `{other}`: use one of webchat, whatsapp, telegram, signal"
            )),
        }
    }
}

/// What a channel can show; used to degrade content gracefully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Longest text in one message (characters); longer text is split.
    pub max_text_len: usize,
    /// How many reply buttons fit in one message (0 = none: numbered text menu).
    pub reply_buttons: usize,
    /// How many rows a list picker can hold (0 = none).
    pub list_rows: usize,
    /// Whether pre-approved templates exist (WhatsApp).
    pub templates: bool,
    /// Free-form messages are allowed only this long after the customer's last message.
    pub session_window_hours: Option<u32>,
    /// Whether the provider reports delivered/read.
    pub delivery_receipts: bool,
    /// Whether a typing indicator can be shown.
    pub typing: bool,
}

/// Non-secret settings of a channel instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelSettings {
    /// Sent as the first message of every new conversation, so the customer knows which
    /// business they reached and that an automated assistant answers first.
    pub welcome_message: Option<String>,
    /// Title shown on the web chat page.
    pub title: Option<String>,
    /// Provider API base URL override (tests, proxies, regional endpoints).
    pub api_base: Option<String>,
    /// Flow id that answers new conversations on this channel (they start in state `bot`).
    /// `None`: new conversations go straight to the queue. When a flow answers, the flow's
    /// own first message introduces the business and the assistant, so `welcome_message`
    /// is not sent as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_flow: Option<String>,
    /// Flow the customer's `menu` command opens inside a flow a keyword started (the
    /// channel's main menu). `None`: `default_flow`; with neither, `menu` restarts the
    /// keyword's flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub menu_flow: Option<String>,
    /// What the customer is told when the bot hands them to people on this channel
    /// (transparency: a person is joining). Replaces the flow's default hand-off wording and
    /// the built-in notice; a hand-off node with its own `message` still says that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_message: Option<String>,
    /// Messages per second this account may send; overrides the kind's configured default
    /// (e.g. a WhatsApp number upgraded to 1,000 msg/s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// Whether bulk (campaign) sends may use this channel. Signal refuses them unless the
    /// operator allows it: an unofficial client sending in bulk risks the number being banned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_bulk: bool,
}

/// A configured channel instance belonging to one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Its id; also the path segment of its webhook (`/hooks/<kind>/<id>`).
    pub id: ChannelId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Which provider.
    pub kind: ChannelKind,
    /// Name shown to staff ("Support WhatsApp").
    pub name: String,
    /// Provider credentials (tokens, app secret). Never sent to browsers or logs.
    #[serde(skip_serializing)]
    pub credentials: serde_json::Value,
    /// Non-secret settings.
    pub settings: ChannelSettings,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// Set while sending is paused because the provider refused the account itself (token
    /// revoked or expired, account locked). Its queued messages wait; updating or re-testing
    /// the credentials resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<ChannelPause>,
}

/// Why and since when a channel's sending is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPause {
    /// The provider's refusal, as the operator must read it (never contains secrets).
    pub reason: String,
    /// When sending stopped.
    #[serde(with = "time::serde::rfc3339")]
    pub since: Timestamp,
}

/// What is needed to create a channel instance.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Owner.
    pub tenant_id: TenantId,
    /// Which provider.
    pub kind: ChannelKind,
    /// Staff-facing name.
    pub name: String,
    /// Provider credentials.
    pub credentials: serde_json::Value,
    /// Settings.
    pub settings: ChannelSettings,
}
