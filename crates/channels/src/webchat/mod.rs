//! Built-in web chat: our own websocket protocol between the customer page (`/chat/<id>`)
//! and the server (docs/api.md, "Web chat").
//!
//! This module owns the wire frames and their validation only; the socket handling lives in
//! the `http` crate and delivery in the `app` crate's sender. Web chat is the one channel whose
//! protocol we control, so the frames map one to one onto the content model.

use serde::{Deserialize, Serialize};
use switchboard_core::{Content, Direction, InboundMessage, Message, MessageId, Sender, Timestamp};

/// Longest text a customer may send in one web chat message (characters).
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest client message id accepted (characters).
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// A frame sent by the customer's page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// First frame: the stored visitor token, if any.
    Hello {
        /// Token from a previous visit.
        #[serde(default)]
        token: Option<String>,
    },
    /// The customer typed something.
    Message {
        /// Client-generated id: the dedupe key for resends after a reconnect.
        client_msg_id: String,
        /// The text.
        text: String,
    },
    /// The customer picked an option of a menu.
    Choice {
        /// Client-generated id.
        client_msg_id: String,
        /// The option id.
        id: String,
        /// The option label.
        title: String,
    },
    /// The customer is typing (best effort: shown on the desk, never stored).
    Typing,
    /// Keep-alive.
    Ping,
}

/// Who wrote a message, as the customer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatSender {
    /// `customer`, `agent`, `bot` or `system`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The agent's name, or the assistant's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A message as the customer's page shows it (no internal ids besides the message id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Message id.
    pub id: MessageId,
    /// `inbound` = from the customer.
    pub direction: Direction,
    /// Who wrote it.
    pub sender: ChatSender,
    /// What it says.
    pub content: Content,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

impl From<&Message> for ChatMessage {
    fn from(m: &Message) -> Self {
        let sender = match &m.sender {
            Sender::Customer => ChatSender {
                kind: "customer",
                name: None,
            },
            Sender::Agent { name, .. } => ChatSender {
                kind: "agent",
                name: Some(name.clone()),
            },
            Sender::Bot => ChatSender {
                kind: "bot",
                name: Some("Assistant (automated)".to_string()),
            },
            Sender::System => ChatSender {
                kind: "system",
                name: None,
            },
        };
        ChatMessage {
            id: m.id,
            direction: m.direction,
            sender,
            content: m.content.clone(),
            created_at: m.created_at,
        }
    }
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`: the (possibly new) token and the conversation so far.
    Welcome {
        /// Token to store for the next visit.
        token: String,
        /// Page title.
        title: String,
        /// The business's name (customers always see who they talk to).
        business: String,
        /// History, oldest first.
        messages: Vec<ChatMessage>,
    },
    /// A customer message was committed.
    Accepted {
        /// The client's id, echoed.
        client_msg_id: String,
        /// Stored message id.
        message_id: MessageId,
        /// True when this was a resend of an already stored message.
        duplicate: bool,
    },
    /// A message of this conversation (either direction).
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// A frame was rejected.
    Error {
        /// Stable code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An agent is typing (best effort; the page shows it for a few seconds).
    Typing {
        /// The agent's name.
        name: String,
    },
    /// Keep-alive answer.
    Pong,
}

/// Why a client frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    /// Stable code for the page.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

fn frame_error(code: &'static str, message: impl Into<String>) -> FrameError {
    FrameError {
        code,
        message: message.into(),
    }
}

/// Parses and validates one frame from the page.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let frame: ClientFrame = serde_json::from_str(text)
        .map_err(|e| frame_error("invalid_frame", format!("frame is not valid: {e}")))?;
    match &frame {
        ClientFrame::Message {
            client_msg_id,
            text,
        } => {
            check_client_id(client_msg_id)?;
            check_text(text)?;
        }
        ClientFrame::Choice {
            client_msg_id,
            id,
            title,
        } => {
            check_client_id(client_msg_id)?;
            if id.is_empty() || id.len() > 256 {
                return Err(frame_error(
                    "invalid_choice",
                    "choice id must be 1-256 bytes",
                ));
            }
            check_text(title)?;
        }
        ClientFrame::Hello { token: Some(t) } if t.len() > 256 => {
            return Err(frame_error("invalid_token", "token is too long"));
        }
        _ => {}
    }
    Ok(frame)
}

/// Checks a client message id: 1-64 printable ASCII characters.
pub fn check_client_id(id: &str) -> Result<(), FrameError> {
    if id.is_empty()
        || id.chars().count() > MAX_CLIENT_ID_CHARS
        || !id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(frame_error(
            "invalid_client_msg_id",
            "client_msg_id must be 1-64 printable ASCII characters (a UUID works)",
        ));
    }
    Ok(())
}

/// Checks customer text: not blank, at most [`MAX_TEXT_CHARS`].
pub fn check_text(text: &str) -> Result<(), FrameError> {
    if text.trim().is_empty() {
        return Err(frame_error("empty_message", "message text is empty"));
    }
    let n = text.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(frame_error(
            "message_too_long",
            format!("message is {n} characters; the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// Turns a validated message or choice frame into an inbound message from `visitor_id`.
/// Returns `None` for frames that carry no message.
pub fn to_inbound(visitor_id: &str, frame: ClientFrame, now: Timestamp) -> Option<InboundMessage> {
    let (client_msg_id, content) = match frame {
        ClientFrame::Message {
            client_msg_id,
            text,
        } => (client_msg_id, Content::Text { body: text }),
        ClientFrame::Choice {
            client_msg_id,
            id,
            title,
        } => (client_msg_id, Content::ChoiceSelected { id, title }),
        ClientFrame::Hello { .. } | ClientFrame::Typing | ClientFrame::Ping => return None,
    };
    Some(InboundMessage {
        external_contact_id: visitor_id.to_string(),
        contact_name: None,
        phone: None,
        // Scoped by visitor so two visitors can never collide on a client-chosen id.
        provider_message_id: format!("{visitor_id}:{client_msg_id}"),
        provider_ts: Some(now),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_bad_ones_are_named() {
        let ok = parse_client_frame(r#"{"type":"message","client_msg_id":"a1","text":"hi"}"#);
        assert!(matches!(ok, Ok(ClientFrame::Message { .. })));
        let cases = [
            ("{", "invalid_frame", "not JSON"),
            (
                r#"{"type":"message","text":"hi"}"#,
                "invalid_frame",
                "missing client id",
            ),
            (
                r#"{"type":"message","client_msg_id":"","text":"hi"}"#,
                "invalid_client_msg_id",
                "empty id",
            ),
            (
                r#"{"type":"message","client_msg_id":"a","text":"  "}"#,
                "empty_message",
                "blank text",
            ),
            (r#"{"type":"shout"}"#, "invalid_frame", "unknown type"),
        ];
        for (input, code, why) in cases {
            assert_eq!(parse_client_frame(input).unwrap_err().code, code, "{why}");
        }
        let long = format!(
            r#"{{"type":"message","client_msg_id":"a","text":"{}"}}"#,
            "x".repeat(MAX_TEXT_CHARS + 1)
        );
        assert_eq!(
            parse_client_frame(&long).unwrap_err().code,
            "message_too_long"
        );
    }

    #[test]
    fn provider_id_is_scoped_by_visitor() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let f = ClientFrame::Message {
            client_msg_id: "1".into(),
            text: "hi".into(),
        };
        let a = to_inbound("visitor-a", f.clone(), now).unwrap();
        let b = to_inbound("visitor-b", f, now).unwrap();
        assert_ne!(a.provider_message_id, b.provider_message_id);
    }
}
