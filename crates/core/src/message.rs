//! Messages: the channel-agnostic [`Content`] model, directions, senders and the
//! delivery status timeline (`queued → sent → delivered → read`, or `failed` with a reason).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ContactCard, ConversationId, MessageId, TenantId, Timestamp, UserId};

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the business.
    Inbound,
    /// From the business (agent, bot, system) to the customer.
    Outbound,
}

impl Direction {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inbound" => Ok(Direction::Inbound),
            "outbound" => Ok(Direction::Outbound),
            other => Err(format!("unknown direction `{other}`")),
        }
    }
}

/// Who wrote a message. Customers always see whether a bot or a person talks to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sender {
    /// The customer.
    Customer,
    /// A staff member.
    Agent {
        /// Who.
        user_id: UserId,
        /// Name shown to the customer.
        name: String,
    },
    /// An automated flow.
    Bot,
    /// Switchboard itself (notices such as "an agent will join shortly").
    System,
}

/// The kind of a media attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Picture.
    Image,
    /// Video clip.
    Video,
    /// Audio file.
    Audio,
    /// Recorded voice note.
    Voice,
    /// Any file.
    Document,
    /// Sticker.
    Sticker,
}

/// Where media lives: a provider reference to download later, or our own stored copy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaRef {
    /// Provider's media id (WhatsApp media id, Telegram file_id, Signal attachment id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// A URL (provider-hosted link or, outbound, a public link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Key of our stored copy in the media store, once downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_key: Option<String>,
    /// MIME type as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Original file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Size in bytes when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256 (hex or provider's base64) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// How choices should preferably be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceStyle {
    /// Let the channel decide (buttons when few, a list when more).
    #[default]
    Auto,
    /// Prefer buttons.
    Buttons,
    /// Prefer a list picker.
    List,
}

/// One option of a menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Stable id, returned when the customer picks it.
    pub id: String,
    /// Label.
    pub title: String,
    /// Longer description (lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a message says, independent of the channel it travels on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text.
        body: String,
    },
    /// A picture, file, clip or voice note with an optional caption.
    Media {
        /// What kind.
        kind: MediaKind,
        /// Where it is.
        media: MediaRef,
        /// Caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// A shared location.
    Location {
        /// Latitude in degrees.
        latitude: f64,
        /// Longitude in degrees.
        longitude: f64,
        /// Place name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Street address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// Shared contact cards.
    Contacts {
        /// The cards.
        contacts: Vec<ContactCard>,
    },
    /// A menu: a prompt and options (rendered as buttons, a list or a numbered text menu).
    Choices {
        /// The question.
        prompt: String,
        /// The options.
        items: Vec<Choice>,
        /// Rendering preference.
        #[serde(default)]
        style: ChoiceStyle,
    },
    /// The customer picked an option of a menu.
    ChoiceSelected {
        /// Id of the picked option.
        id: String,
        /// Its label as the customer saw it.
        title: String,
    },
    /// A pre-approved template (WhatsApp) with its variables.
    Template {
        /// Template name.
        name: String,
        /// Language code (`en_US`).
        language: String,
        /// Body variables in order.
        #[serde(default)]
        variables: Vec<String>,
    },
    /// A reaction to another message (`emoji: None` removes it).
    Reaction {
        /// Provider id of the message reacted to.
        target_provider_id: String,
        /// The emoji, or none when the reaction was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// A notice from the system or provider (number changed, agent joined, ...).
    System {
        /// Human-readable text.
        body: String,
    },
    /// Something we cannot show. The raw provider payload is kept, never dropped.
    Unsupported {
        /// Why it is unsupported (provider type name).
        reason: String,
        /// The raw payload as received.
        raw: serde_json::Value,
    },
}

impl Content {
    /// Convenience constructor for text.
    pub fn text(body: impl Into<String>) -> Self {
        Content::Text { body: body.into() }
    }

    /// A short plain-text preview for inbox lists and notifications (at most 120 chars).
    pub fn preview(&self) -> String {
        let full = match self {
            Content::Text { body } | Content::System { body } => body.clone(),
            Content::Media { kind, caption, .. } => match caption {
                Some(c) => format!("[{kind:?}] {c}"),
                None => format!("[{kind:?}]"),
            },
            Content::Location { name, .. } => {
                format!("[Location] {}", name.as_deref().unwrap_or(""))
            }
            Content::Contacts { contacts } => format!("[Contact] {}", contacts.len()),
            Content::Choices { prompt, .. } => prompt.clone(),
            Content::ChoiceSelected { title, .. } => title.clone(),
            Content::Template { name, .. } => format!("[Template] {name}"),
            Content::Reaction { emoji, .. } => {
                format!("[Reaction] {}", emoji.as_deref().unwrap_or("removed"))
            }
            Content::Unsupported { reason, .. } => format!("[Unsupported: {reason}]"),
        };
        let trimmed = full.trim();
        if trimmed.chars().count() > 120 {
            let mut s: String = trimmed.chars().take(119).collect();
            s.push('…');
            s
        } else {
            trimmed.to_string()
        }
    }

    /// Checks content written by staff or flows before it enters the outbox.
    pub fn validate_outbound(&self) -> Result<(), String> {
        match self {
            Content::Text { body } if body.trim().is_empty() => {
                Err("message text is empty".to_string())
            }
            Content::Text { body } if body.chars().count() > 16_000 => Err(format!(
                "message text is {} characters long; the limit is 16000",
                body.chars().count()
            )),
            Content::Choices { items, .. } if items.is_empty() => {
                Err("a menu needs at least one choice".to_string())
            }
            Content::Unsupported { .. } | Content::ChoiceSelected { .. } => {
                Err("this content type can only be received, not sent".to_string())
            }
            _ => Ok(()),
        }
    }
}

/// Delivery state of a message. The rank only moves forward, except `Failed`,
/// which is always recorded (it carries the reason the agent needs to see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in the outbox (outbound) or stored (inbound).
    Queued,
    /// Accepted by the provider.
    Sent,
    /// Reached the customer's device.
    Delivered,
    /// Seen by the customer.
    Read,
    /// Will not be delivered; see the failure reason.
    Failed,
}

impl DeliveryStatus {
    /// Order along the happy path.
    fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Failed => 4,
        }
    }

    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Decides whether a reported status `new` replaces the current one.
    ///
    /// Providers deliver status callbacks out of order (channels.md rule 0.3): a late
    /// `sent` must never overwrite `read`. `failed` is recorded from any state, because a
    /// failure after `delivered` (WhatsApp does this) must still be shown to the agent;
    /// nothing replaces `failed` except a retry, which goes through the outbox instead.
    pub fn should_advance(self, new: DeliveryStatus) -> bool {
        match (self, new) {
            (DeliveryStatus::Failed, _) => false,
            (_, DeliveryStatus::Failed) => true,
            (cur, new) => new.rank() > cur.rank(),
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(Self::Queued),
            "sent" => Ok(Self::Sent),
            "delivered" => Ok(Self::Delivered),
            "read" => Ok(Self::Read),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown delivery status `{other}`")),
        }
    }
}

/// Why a send failed, in terms the platform acts on (channels.md §6.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient (network, 5xx): retry with backoff.
    RetryLater,
    /// Rate limited: slow down this sender or recipient, then retry.
    BackOff,
    /// Outside the WhatsApp 24 h window: a template is needed.
    NeedsTemplate,
    /// The recipient cannot be reached on this channel (blocked, not registered).
    Unreachable,
    /// Will never succeed as is (bad request, bad credentials, policy).
    Permanent,
}

impl ErrorClass {
    /// Whether the sender should try again.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::RetryLater | ErrorClass::BackOff)
    }
}

/// A failure as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFailure {
    /// What to do about it.
    pub class: ErrorClass,
    /// Provider error code, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A sentence the agent can read.
    pub reason: String,
}

/// One entry of a message's status timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The new status.
    pub status: DeliveryStatus,
    /// When it happened (provider time when the provider said so).
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// Failure details, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<SendFailure>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Its id (time-ordered).
    pub id: MessageId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Channel it travelled on.
    pub channel_id: ChannelId,
    /// Which way.
    pub direction: Direction,
    /// Who wrote it.
    pub sender: Sender,
    /// What it says.
    pub content: Content,
    /// Provider's id (wamid, Telegram chat:message, Signal author:timestamp, web chat client id).
    pub provider_id: Option<String>,
    /// Current delivery status.
    pub status: DeliveryStatus,
    /// Why it failed, when it did.
    pub failure: Option<SendFailure>,
    /// The provider's own timestamp (ordering and the 24 h window use it).
    #[serde(with = "time::serde::rfc3339::option")]
    pub provider_ts: Option<Timestamp>,
    /// When we stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// A customer message as parsed from a channel, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The customer's stable key on this channel.
    pub external_contact_id: String,
    /// The customer's name as the provider reports it.
    pub contact_name: Option<String>,
    /// Verified E.164 phone number, when the channel provides one.
    pub phone: Option<String>,
    /// Provider message id; the dedupe key.
    pub provider_message_id: String,
    /// Provider timestamp.
    #[serde(with = "time::serde::rfc3339::option")]
    pub provider_ts: Option<Timestamp>,
    /// What the customer sent.
    pub content: Content,
}

/// A delivery report from a provider about one of our messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Provider id of our message.
    pub provider_message_id: String,
    /// Reported status.
    pub status: DeliveryStatus,
    /// Provider time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// Failure details.
    pub failure: Option<SendFailure>,
}

/// Everything a channel's inbound parser can produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundEvent {
    /// A customer message.
    Message(InboundMessage),
    /// A status report on one of our messages.
    Status(StatusReport),
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::*;

    #[test]
    fn status_only_moves_forward_but_failure_is_always_recorded() {
        let cases = [
            (Queued, Sent, true, "normal progress"),
            (Sent, Read, true, "read can arrive without delivered"),
            (Read, Sent, false, "a late sent never overwrites read"),
            (
                Read,
                Delivered,
                false,
                "a late delivered never overwrites read",
            ),
            (Delivered, Delivered, false, "duplicate report"),
            (
                Delivered,
                Failed,
                true,
                "failed after delivered is still recorded",
            ),
            (Failed, Read, false, "failed is terminal"),
            (Failed, Failed, false, "duplicate failure"),
        ];
        for (cur, new, expected, why) in cases {
            assert_eq!(cur.should_advance(new), expected, "{cur} -> {new}: {why}");
        }
    }

    #[test]
    fn content_round_trips_through_json_with_a_type_tag() {
        let c = Content::Choices {
            prompt: "Pick".into(),
            items: vec![Choice {
                id: "a".into(),
                title: "A".into(),
                description: None,
            }],
            style: ChoiceStyle::Auto,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "choices");
        assert_eq!(serde_json::from_value::<Content>(v).unwrap(), c);
    }

    #[test]
    fn preview_is_short_and_plain() {
        let long = Content::text("x".repeat(500));
        assert_eq!(long.preview().chars().count(), 120);
        assert_eq!(Content::text("  hi ").preview(), "hi");
    }

    #[test]
    fn outbound_validation_names_the_problem() {
        assert!(
            Content::text("   ")
                .validate_outbound()
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            Content::text("x".repeat(16_001))
                .validate_outbound()
                .is_err()
        );
        assert!(Content::text("hello").validate_outbound().is_ok());
    }
}
