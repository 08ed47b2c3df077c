//! Telegram inbound: the webhook secret token and `Update` parsing.
//!
//! Mapping decisions (channels.md §2.1):
//! - Customer key: `from.id` (private chats: `chat.id == from.id`, so replies go to the same id).
//! - Dedupe keys (`provider_message_id`): `{chat_id}:{message_id}` for messages (the id replies
//!   and reactions reference; unique per bot like `update_id`), `{chat_id}:{message_id}:edit:{edit_date}`
//!   for edits (a new event per edit), `callback:{id}` for button taps, `update:{update_id}` for
//!   reactions and block/unblock notes. Each is stable across Telegram's webhook retries.
//! - `callback_query` → [`Content::ChoiceSelected`] (id = `callback_data`, title = the tapped
//!   button's label when the keyboard message is present) plus [`Notice::AnswerCallback`].
//! - `my_chat_member` in a private chat → [`Notice::ReachabilityChanged`] plus a
//!   [`Content::System`] line so the agent sees "blocked" in the conversation.
//! - Group and channel chats are not contact-centre conversations: their messages become
//!   [`Content::Unsupported`] with the raw update. Unknown update kinds become
//!   [`Notice::Unhandled`].
//! - A shared contact whose `user_id == from.id` is the customer's own verified number and fills
//!   [`InboundMessage::phone`].

use serde_json::Value;
use switchboard_core::{ContactCard, Content, InboundEvent, InboundMessage, MediaKind, MediaRef};

use super::{Credentials, wire};
use crate::{Notice, ParseError, Parsed, RawRequest, Rejected, secrets_equal, ts_from_secs};

const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// Checks `X-Telegram-Bot-Api-Secret-Token` against the webhook secret, in constant time.
/// <https://core.telegram.org/bots/api#setwebhook>
pub fn verify(req: &RawRequest, creds: &Credentials) -> Result<(), Rejected> {
    let got = req
        .header(SECRET_HEADER)
        .ok_or(Rejected::MissingHeader(SECRET_HEADER))?;
    if creds.webhook_secret.is_empty() || !secrets_equal(got, &creds.webhook_secret) {
        return Err(Rejected::Mismatch);
    }
    Ok(())
}

/// Parses a webhook `Update`, or a `getUpdates` answer (`{ok, result: [Update…]}`) for long
/// polling. Pure; never panics on any input.
pub fn parse(req: &RawRequest) -> Result<Parsed, ParseError> {
    let value: Value =
        serde_json::from_slice(&req.body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let mut out = Parsed::default();
    match value.get("result") {
        Some(Value::Array(updates)) => {
            for u in updates {
                parse_update(u.clone(), &mut out);
            }
        }
        _ if value.get("update_id").is_some() => parse_update(value, &mut out),
        _ => return Err(ParseError::Unexpected("not a Telegram Update".into())),
    }
    Ok(out)
}

fn parse_update(raw: Value, out: &mut Parsed) {
    let update: wire::Update = match serde_json::from_value(raw.clone()) {
        Ok(u) => u,
        Err(e) => {
            out.notices.push(Notice::Unhandled {
                reason: format!("malformed telegram update: {e}"),
                raw,
            });
            return;
        }
    };
    let unhandled = |reason: String| Notice::Unhandled {
        reason,
        raw: raw.clone(),
    };
    if let Some(m) = update.message {
        push(out, message(&m, &raw, false), || {
            unhandled("malformed telegram message".into())
        });
    } else if let Some(m) = update.edited_message {
        push(out, message(&m, &raw, true), || {
            unhandled("malformed telegram edited_message".into())
        });
    } else if let Some(cb) = update.callback_query {
        match serde_json::from_value::<wire::CallbackQuery>(cb) {
            Ok(cb) => {
                out.notices.push(Notice::AnswerCallback {
                    callback_query_id: cb.id.clone(),
                });
                out.events.push(InboundEvent::Message(callback(cb, &raw)));
            }
            Err(e) => out
                .notices
                .push(unhandled(format!("malformed telegram callback_query: {e}"))),
        }
    } else if let Some(r) = update.message_reaction {
        match serde_json::from_value::<wire::MessageReactionUpdated>(r) {
            Ok(r) => match reaction(&r, update.update_id, &raw) {
                Some(m) => out.events.push(InboundEvent::Message(m)),
                None => out
                    .notices
                    .push(unhandled("anonymous telegram reaction".into())),
            },
            Err(e) => out.notices.push(unhandled(format!(
                "malformed telegram message_reaction: {e}"
            ))),
        }
    } else if let Some(m) = update.my_chat_member {
        match serde_json::from_value::<wire::ChatMemberUpdated>(m) {
            Ok(m) if m.chat.kind == "private" => member_change(&m, update.update_id, out),
            Ok(m) => out.notices.push(unhandled(format!(
                "telegram bot membership in a {}",
                m.chat.kind
            ))),
            Err(e) => out
                .notices
                .push(unhandled(format!("malformed telegram my_chat_member: {e}"))),
        }
    } else {
        out.notices
            .push(unhandled("telegram update kind we do not handle".into()));
    }
}

fn push(out: &mut Parsed, m: Option<InboundMessage>, otherwise: impl FnOnce() -> Notice) {
    match m {
        Some(m) => out.events.push(InboundEvent::Message(m)),
        None => out.notices.push(otherwise()),
    }
}

fn message(raw_msg: &Value, raw_update: &Value, edited: bool) -> Option<InboundMessage> {
    let m: wire::Message = serde_json::from_value(raw_msg.clone()).ok()?;
    let from = m.from.as_ref()?;
    let mut phone = None;
    let content = if m.chat.kind != "private" {
        Content::Unsupported {
            reason: format!("telegram {} chat message", m.chat.kind),
            raw: raw_update.clone(),
        }
    } else {
        if let Some(c) = &m.contact
            && c.user_id == Some(from.id)
        {
            phone = Some(c.phone_number.clone())
                .filter(|p| !p.is_empty())
                .map(|p| {
                    if p.starts_with('+') {
                        p
                    } else {
                        format!("+{p}")
                    }
                });
        }
        content(&m, raw_update)
    };
    let (id, ts) = match (edited, m.edit_date) {
        (true, Some(edit)) => (format!("{}:{}:edit:{edit}", m.chat.id, m.message_id), edit),
        _ => (format!("{}:{}", m.chat.id, m.message_id), m.date),
    };
    Some(InboundMessage {
        external_contact_id: from.id.to_string(),
        contact_name: from.display_name(),
        phone,
        provider_message_id: id,
        provider_ts: ts_from_secs(ts),
        content,
    })
}

fn file(f: &wire::File) -> MediaRef {
    MediaRef {
        provider_id: Some(f.file_id.clone()),
        mime_type: f.mime_type.clone(),
        filename: f.file_name.clone(),
        size: f.file_size,
        ..MediaRef::default()
    }
}

fn content(m: &wire::Message, raw: &Value) -> Content {
    let caption = m.caption.clone().filter(|c| !c.is_empty());
    let media = |kind, media| Content::Media {
        kind,
        media,
        caption: caption.clone(),
    };
    if let Some(text) = &m.text {
        Content::Text { body: text.clone() }
    } else if let Some(sizes) = &m.photo {
        // The largest size is the original; pick by pixels, not by position.
        match sizes
            .iter()
            // Saturating: the sizes come from the payload and must not overflow.
            .max_by_key(|s| s.width.unwrap_or(0).saturating_mul(s.height.unwrap_or(0)))
        {
            Some(best) => media(MediaKind::Image, file(best)),
            None => Content::Unsupported {
                reason: "telegram photo without sizes".into(),
                raw: raw.clone(),
            },
        }
    } else if let Some(f) = &m.voice {
        media(MediaKind::Voice, file(f))
    } else if let Some(f) = &m.audio {
        media(MediaKind::Audio, file(f))
    } else if let Some(f) = m
        .video
        .as_ref()
        .or(m.video_note.as_ref())
        .or(m.animation.as_ref())
    {
        media(MediaKind::Video, file(f))
    } else if let Some(f) = &m.document {
        media(MediaKind::Document, file(f))
    } else if let Some(s) = &m.sticker {
        let mime = if s.is_animated {
            "application/x-tgsticker"
        } else if s.is_video {
            "video/webm"
        } else {
            "image/webp"
        };
        Content::Media {
            kind: MediaKind::Sticker,
            media: MediaRef {
                provider_id: Some(s.file_id.clone()),
                mime_type: Some(mime.into()),
                size: s.file_size,
                ..MediaRef::default()
            },
            caption: s.emoji.clone(),
        }
    } else if let Some(v) = &m.venue {
        Content::Location {
            latitude: v.location.latitude,
            longitude: v.location.longitude,
            name: Some(v.title.clone()),
            address: Some(v.address.clone()),
        }
    } else if let Some(l) = &m.location {
        Content::Location {
            latitude: l.latitude,
            longitude: l.longitude,
            name: None,
            address: None,
        }
    } else if let Some(c) = &m.contact {
        let name = [Some(c.first_name.as_str()), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Content::Contacts {
            contacts: vec![ContactCard {
                name,
                phones: vec![c.phone_number.clone()],
                emails: vec![],
                org: None,
            }],
        }
    } else {
        Content::Unsupported {
            reason: "telegram message without supported content".into(),
            raw: raw.clone(),
        }
    }
}

fn callback(cb: wire::CallbackQuery, raw: &Value) -> InboundMessage {
    let keyboard_msg = cb
        .message
        .as_ref()
        .and_then(|m| serde_json::from_value::<wire::Message>(m.clone()).ok());
    let content = match &cb.data {
        Some(data) => {
            let label = keyboard_msg
                .as_ref()
                .and_then(|m| m.reply_markup.as_ref())
                .and_then(|k| {
                    k.inline_keyboard
                        .iter()
                        .flatten()
                        .find(|b| b.callback_data.as_ref() == Some(data))
                })
                .map(|b| b.text.clone());
            Content::ChoiceSelected {
                id: data.clone(),
                title: label.unwrap_or_else(|| data.clone()),
            }
        }
        None => Content::Unsupported {
            reason: "telegram callback_query without data".into(),
            raw: raw.clone(),
        },
    };
    InboundMessage {
        external_contact_id: cb.from.id.to_string(),
        contact_name: cb.from.display_name(),
        phone: None,
        provider_message_id: format!("callback:{}", cb.id),
        // A callback query carries no time of its own; the keyboard message's date would be
        // the time we sent the menu, not the tap.
        provider_ts: None,
        content,
    }
}

fn reaction(
    r: &wire::MessageReactionUpdated,
    update_id: i64,
    raw: &Value,
) -> Option<InboundMessage> {
    let user = r.user.as_ref()?;
    let content = if r.chat.kind != "private" {
        Content::Unsupported {
            reason: format!("telegram reaction in a {} chat", r.chat.kind),
            raw: raw.clone(),
        }
    } else {
        // Telegram sends the whole new set; the emoji last added is the one to show, and an
        // empty set means the reaction was removed.
        let emoji = r
            .new_reaction
            .iter()
            .rev()
            .find_map(|t| match t.kind.as_str() {
                "emoji" => t.emoji.clone(),
                other => Some(format!("[{other}]")),
            });
        Content::Reaction {
            target_provider_id: format!("{}:{}", r.chat.id, r.message_id),
            emoji,
        }
    };
    Some(InboundMessage {
        external_contact_id: user.id.to_string(),
        contact_name: user.display_name(),
        phone: None,
        provider_message_id: format!("update:{update_id}"),
        provider_ts: ts_from_secs(r.date),
        content,
    })
}

fn member_change(m: &wire::ChatMemberUpdated, update_id: i64, out: &mut Parsed) {
    let blocked = m.new_chat_member.status == "kicked";
    let unblocked = m.old_chat_member.status == "kicked" && m.new_chat_member.status == "member";
    if !blocked && !unblocked {
        return;
    }
    let Some(at) = ts_from_secs(m.date) else {
        return;
    };
    let external = m.from.id.to_string();
    out.notices.push(Notice::ReachabilityChanged {
        external_contact_id: external.clone(),
        reachable: unblocked,
        at,
    });
    let body = if blocked {
        "The customer blocked the Telegram bot; messages to them will fail."
    } else {
        "The customer unblocked the Telegram bot."
    };
    out.events.push(InboundEvent::Message(InboundMessage {
        external_contact_id: external,
        contact_name: m.from.display_name(),
        phone: None,
        provider_message_id: format!("update:{update_id}"),
        provider_ts: Some(at),
        content: Content::System { body: body.into() },
    }));
}
