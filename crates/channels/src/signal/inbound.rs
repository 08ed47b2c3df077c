//! Signal inbound: one received frame (JSON-RPC `receive` notification in auto or manual mode, a
//! REST WebSocket frame, or a REST poll answer holding an array of them) into events.
//!
//! Mapping decisions (channels.md §3.1):
//! - Customer key: `sourceUuid` (ACI; number as fallback); `phone` = `sourceNumber` when shown.
//! - Dedupe key of a customer message: `{sourceUuid}:{timestamp}`; a message with several
//!   attachments yields one event per attachment, the second onwards suffixed `#2`, `#3`…
//! - Our own messages are identified by their send timestamp alone (the `send` result); receipts
//!   (`isDelivery` → delivered, `isRead`/`isViewed` → read) report one status per timestamp.
//!   A reaction or quote whose target author is our account therefore targets `{timestamp}`.
//! - Group messages (`groupInfo.type = DELIVER`) become [`Content::Unsupported`] with the raw
//!   envelope: a group is not a one-to-one conversation. Group updates, sync messages (our own
//!   linked devices), calls, stories and empty messages become [`Notice::Unhandled`].
//! - A customer's `typingMessage` with action `STARTED` outside a group becomes
//!   [`Notice::Typing`] (the desk shows it; nothing is stored). `STOPPED` and group typing are
//!   dropped: the desk hides the notice by itself after a few seconds.
//! - Error frames (`{"error": …}`, JSON-RPC errors) become [`Notice::ProviderError`].

use serde_json::Value;
use switchboard_core::{
    ContactCard, Content, DeliveryStatus, ErrorClass, InboundEvent, InboundMessage, MediaKind,
    MediaRef, SendFailure, StatusReport,
};

use super::wire;
use crate::{Notice, ParseError, Parsed, RawRequest, Rejected, ts_from_millis};

/// signal-cli has no authenticity header or signature: it must listen on loopback only, where
/// every frame is trusted (channels.md §3.1). Always `Ok`.
pub fn verify(_req: &RawRequest) -> Result<(), Rejected> {
    Ok(())
}

/// Parses one received frame. Pure; never panics on any input.
pub fn parse(req: &RawRequest) -> Result<Parsed, ParseError> {
    let value: Value =
        serde_json::from_slice(&req.body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let mut out = Parsed::default();
    match value {
        Value::Array(frames) => frames.into_iter().try_for_each(|f| frame(f, &mut out))?,
        v => frame(v, &mut out)?,
    }
    Ok(out)
}

fn frame(v: Value, out: &mut Parsed) -> Result<(), ParseError> {
    if let Some(err) = v.get("error") {
        out.notices.push(Notice::ProviderError {
            failure: error_frame(err),
        });
        return Ok(());
    }
    let received = match (v.get("method").and_then(Value::as_str), v.get("params")) {
        (Some("receive"), Some(params)) => params.get("result").unwrap_or(params),
        (Some(method), _) => {
            out.notices.push(Notice::Unhandled {
                reason: format!("signal-cli notification `{method}`"),
                raw: v,
            });
            return Ok(());
        }
        (None, _) if v.get("envelope").is_some() => &v,
        _ => {
            return Err(ParseError::Unexpected(
                "not a signal-cli receive frame".into(),
            ));
        }
    };
    match serde_json::from_value::<wire::Received>(received.clone()) {
        Ok(r) => envelope(r, received, out),
        Err(e) => out.notices.push(Notice::Unhandled {
            reason: format!("malformed signal envelope: {e}"),
            raw: received.clone(),
        }),
    }
    Ok(())
}

fn error_frame(err: &Value) -> SendFailure {
    match err {
        Value::String(s) => SendFailure {
            class: ErrorClass::RetryLater,
            code: None,
            reason: s.clone(),
        },
        other => {
            let code = other.get("code").and_then(Value::as_i64);
            let reason = other
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("signal-cli error")
                .to_string();
            let class = code.map_or(ErrorClass::RetryLater, |c| {
                super::outbound::classify_rpc(c).0
            });
            SendFailure {
                class,
                code: code.map(|c| c.to_string()),
                reason,
            }
        }
    }
}

fn envelope(r: wire::Received, raw: &Value, out: &mut Parsed) {
    let env = r.envelope;
    let unhandled = |reason: &str| Notice::Unhandled {
        reason: reason.into(),
        raw: raw.clone(),
    };
    let Some(sender) = env
        .source_uuid
        .clone()
        .or(env.source_number.clone())
        .or(env.source.clone())
    else {
        out.notices
            .push(unhandled("signal envelope without a sender"));
        return;
    };
    if let Some(receipt) = &env.receipt_message {
        let status = if receipt.is_read || receipt.is_viewed {
            DeliveryStatus::Read
        } else if receipt.is_delivery {
            DeliveryStatus::Delivered
        } else {
            out.notices
                .push(unhandled("signal receipt of unknown kind"));
            return;
        };
        let Some(at) = ts_from_millis(receipt.when) else {
            out.notices
                .push(unhandled("signal receipt with a bad time"));
            return;
        };
        for ts in &receipt.timestamps {
            out.events.push(InboundEvent::Status(StatusReport {
                provider_message_id: ts.to_string(),
                status,
                at,
                failure: None,
            }));
        }
        return;
    }
    if let Some(typing) = &env.typing_message {
        let started = typing.get("action").and_then(Value::as_str) == Some("STARTED");
        let in_group = typing.get("groupId").is_some_and(|g| !g.is_null());
        if started && !in_group {
            out.notices.push(Notice::Typing {
                external_contact_id: sender,
            });
        }
        return;
    }
    if env.sync_message.is_some() {
        out.notices
            .push(unhandled("signal sync message from our own linked device"));
        return;
    }
    let data = match (&env.data_message, &env.edit_message) {
        (Some(d), _) => d.clone(),
        (None, Some(edit)) => edit.data_message.clone(),
        (None, None) => {
            out.notices.push(unhandled(
                "signal envelope without a message (call, story, …)",
            ));
            return;
        }
    };
    let Ok(dm) = serde_json::from_value::<wire::DataMessage>(data) else {
        out.notices.push(unhandled("malformed signal dataMessage"));
        return;
    };
    let base_id = format!("{sender}:{}", env.timestamp);
    let msg = |id: String, content: Content| InboundMessage {
        external_contact_id: sender.clone(),
        contact_name: env.source_name.clone().filter(|n| !n.is_empty()),
        phone: env.source_number.clone().filter(|n| n.starts_with('+')),
        provider_message_id: id,
        provider_ts: ts_from_millis(env.timestamp),
        content,
    };
    let mut items: Vec<(String, Content)> = Vec::new();
    let mut push = |id: String, content: Content| items.push((id, content));

    'content: {
        if let Some(group) = &dm.group_info {
            if group.kind.as_deref() == Some("UPDATE") {
                out.notices.push(unhandled("signal group update"));
            } else {
                push(
                    base_id,
                    Content::Unsupported {
                        reason: "signal group message".into(),
                        raw: raw.clone(),
                    },
                );
            }
            break 'content;
        }
        if let Some(reaction) = &dm.reaction {
            let target_ts = reaction.target_sent_timestamp.unwrap_or_default();
            let author = reaction
                .target_author_uuid
                .clone()
                .or(reaction.target_author_number.clone())
                .or(reaction.target_author.clone())
                .unwrap_or_default();
            let ours = r.account.is_some()
                && [&reaction.target_author_number, &reaction.target_author]
                    .iter()
                    .any(|a| a.as_ref() == r.account.as_ref());
            let target = if ours {
                target_ts.to_string()
            } else {
                format!("{author}:{target_ts}")
            };
            let emoji = if reaction.is_remove {
                None
            } else {
                reaction.emoji.clone()
            };
            push(
                base_id,
                Content::Reaction {
                    target_provider_id: target,
                    emoji,
                },
            );
            break 'content;
        }
        if !dm.attachments.is_empty() {
            let text = dm.message.clone().filter(|m| !m.is_empty());
            for (i, a) in dm.attachments.iter().enumerate() {
                let id = if i == 0 {
                    base_id.clone()
                } else {
                    format!("{base_id}#{}", i + 1)
                };
                let mime = a.content_type.clone().unwrap_or_default();
                let kind = match mime.split('/').next() {
                    Some("image") => MediaKind::Image,
                    Some("video") => MediaKind::Video,
                    Some("audio") => MediaKind::Audio,
                    _ => MediaKind::Document,
                };
                // The message text captions the first attachment; later ones keep their own.
                let caption = if i == 0 {
                    text.clone().or(a.caption.clone())
                } else {
                    a.caption.clone()
                };
                let media = MediaRef {
                    provider_id: a.id.clone(),
                    mime_type: a.content_type.clone(),
                    filename: a.filename.clone(),
                    size: a.size,
                    ..MediaRef::default()
                };
                push(
                    id,
                    Content::Media {
                        kind,
                        media,
                        caption,
                    },
                );
            }
            break 'content;
        }
        if !dm.contacts.is_empty() {
            let contacts = dm.contacts.iter().map(contact_card).collect();
            push(base_id, Content::Contacts { contacts });
            break 'content;
        }
        if dm.sticker.is_some() {
            push(
                base_id,
                Content::Unsupported {
                    reason: "signal sticker".into(),
                    raw: raw.clone(),
                },
            );
            break 'content;
        }
        if dm.remote_delete.is_some() {
            push(
                base_id,
                Content::System {
                    body: "The customer deleted a message they had sent.".into(),
                },
            );
            break 'content;
        }
        match dm.message.filter(|m| !m.is_empty()) {
            Some(text) => push(base_id, Content::Text { body: text }),
            None => out.notices.push(unhandled(
                "signal dataMessage without content (timer or profile update)",
            )),
        }
    }
    for (id, content) in items {
        out.events.push(InboundEvent::Message(msg(id, content)));
    }
}

fn contact_card(c: &wire::SharedContact) -> ContactCard {
    let name = c.name.as_ref().and_then(|n| {
        n.display.clone().or_else(|| {
            let parts: Vec<&str> = [n.given.as_deref(), n.family.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    ContactCard {
        name: name.unwrap_or_default(),
        phones: c.phone.iter().filter_map(|p| p.value.clone()).collect(),
        emails: c.email.iter().filter_map(|e| e.value.clone()).collect(),
        org: c.organization.clone(),
    }
}
