//! WhatsApp inbound: the subscription handshake, the body signature and the webhook parser.
//!
//! Mapping decisions (channels.md §1.1):
//! - Every `entry[] / changes[] / messages[] / statuses[]` is visited; changes whose `field` is
//!   not `messages` become [`Notice::Unhandled`].
//! - The customer key is `from` (wa_id), or `from_user_id` (BSUID) for username-only users; the
//!   dedupe key is the wamid.
//! - `interactive.button_reply` / `list_reply` and template `button` become
//!   [`Content::ChoiceSelected`]; Flow completions (`nfm_reply`), orders and unknown types become
//!   [`Content::Unsupported`] with the raw message (never dropped).
//! - `statuses[]` become [`StatusReport`]s keyed by our wamid (`played`/`deleted` ignored);
//!   `failed` carries the first error, classified by [`classify`].
//! - `value.errors[]` (out-of-band, not tied to a message) become [`Notice::ProviderError`]; when
//!   the same value holds messages, each message's raw payload also gets the errors, so a message
//!   Meta could not render (131000) shows up as unsupported *with* the reason.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_core::{
    ContactCard, Content, DeliveryStatus, InboundEvent, InboundMessage, MediaKind, MediaRef,
    SendFailure, StatusReport,
};

use super::Credentials;
use super::outbound::classify;
use super::wire;
use crate::{Notice, ParseError, Parsed, RawRequest, Rejected, secrets_equal, ts_from_secs};

const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Answers Meta's `GET` verification handshake: `Ok(challenge)` (send it as the plain 200
/// body) when `hub.mode=subscribe` and `hub.verify_token` matches; otherwise reject with 403.
/// <https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests>
pub fn verify_subscription(req: &RawRequest, creds: &Credentials) -> Result<String, Rejected> {
    if req.query_param("hub.mode") != Some("subscribe") {
        return Err(Rejected::Handshake("hub.mode is not subscribe"));
    }
    let token = req.query_param("hub.verify_token").unwrap_or("");
    if !secrets_equal(token, &creds.verify_token) {
        return Err(Rejected::Handshake("verify token does not match"));
    }
    req.query_param("hub.challenge")
        .map(str::to_string)
        .ok_or(Rejected::Handshake("hub.challenge is missing"))
}

/// Checks `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body keyed with the app
/// secret, compared in constant time (`Mac::verify_slice`).
/// <https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications>
pub fn verify(req: &RawRequest, creds: &Credentials) -> Result<(), Rejected> {
    let header = req
        .header(SIGNATURE_HEADER)
        .ok_or(Rejected::MissingHeader(SIGNATURE_HEADER))?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Rejected::MalformedHeader(SIGNATURE_HEADER))?;
    let sig = hex::decode(hex_sig).map_err(|_| Rejected::MalformedHeader(SIGNATURE_HEADER))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(creds.app_secret.as_bytes())
        .map_err(|_| Rejected::Mismatch)?;
    mac.update(&req.body);
    mac.verify_slice(&sig).map_err(|_| Rejected::Mismatch)
}

/// The signature header value Meta would send for `body` (tests and local tools).
pub fn sign(body: &[u8], app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Parses a verified webhook body. Pure; never panics on any input.
pub fn parse(req: &RawRequest) -> Result<Parsed, ParseError> {
    let hook: wire::Webhook =
        serde_json::from_slice(&req.body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    if hook.object != "whatsapp_business_account" {
        return Err(ParseError::Unexpected(format!(
            "object is `{}`",
            hook.object
        )));
    }
    let mut out = Parsed::default();
    for entry in hook.entry {
        for change in entry.changes {
            if change.field != "messages" {
                out.notices.push(Notice::Unhandled {
                    reason: format!("whatsapp webhook field `{}`", change.field),
                    raw: change.value,
                });
                continue;
            }
            parse_value(change.value, &mut out);
        }
    }
    Ok(out)
}

fn parse_value(raw: serde_json::Value, out: &mut Parsed) {
    let value: wire::Value = match serde_json::from_value(raw.clone()) {
        Ok(v) => v,
        Err(e) => {
            out.notices.push(Notice::Unhandled {
                reason: format!("malformed whatsapp change value: {e}"),
                raw,
            });
            return;
        }
    };
    let value_errors = raw.get("errors").cloned();
    for err in &value.errors {
        out.notices.push(Notice::ProviderError {
            failure: failure_of(err),
        });
    }
    for msg in value.messages {
        let msg = match &value_errors {
            Some(errors) if !value.errors.is_empty() => with_value_errors(msg, errors.clone()),
            _ => msg,
        };
        let parsed = message(msg.clone(), &value.contacts);
        if parsed.external_contact_id.is_empty() || parsed.provider_message_id.is_empty() {
            out.notices.push(Notice::Unhandled {
                reason: "whatsapp message without sender or id".into(),
                raw: msg,
            });
        } else {
            out.events.push(InboundEvent::Message(parsed));
        }
    }
    for status in value.statuses {
        match serde_json::from_value::<wire::Status>(status.clone()) {
            Ok(s) => {
                if let Some(report) = status_report(&s) {
                    // Dedupe key for the runtime: (provider_message_id, status).
                    out.events.push(InboundEvent::Status(report));
                } else if !matches!(s.status.as_str(), "played" | "deleted") {
                    out.notices.push(Notice::Unhandled {
                        reason: format!(
                            "whatsapp status `{}` (unknown or bad timestamp)",
                            s.status
                        ),
                        raw: status,
                    });
                }
            }
            Err(e) => out.notices.push(Notice::Unhandled {
                reason: format!("malformed whatsapp status: {e}"),
                raw: status,
            }),
        }
    }
}

/// Attaches the change-level `errors` to a message's raw payload (kept on Unsupported content).
fn with_value_errors(mut msg: serde_json::Value, errors: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = msg.as_object_mut() {
        obj.entry("errors").or_insert(errors);
    }
    msg
}

fn message(raw: serde_json::Value, contacts: &[wire::WaContact]) -> InboundMessage {
    let parsed = serde_json::from_value::<wire::Message>(raw.clone());
    let (external, id, ts, content, phone) = match parsed {
        Ok(m) => {
            let external = m
                .from
                .clone()
                .or_else(|| m.from_user_id.clone())
                .unwrap_or_default();
            let phone = m
                .from
                .as_deref()
                .filter(|f| is_digits(f))
                .map(|f| format!("+{f}"));
            let ts = m.timestamp.parse::<i64>().ok().and_then(ts_from_secs);
            let content = content(&m, &raw);
            (external, m.id, ts, content, phone)
        }
        Err(e) => {
            // Keep whatever identifies it; the raw payload carries the rest.
            let s = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let external = s("from").or_else(|| s("from_user_id")).unwrap_or_default();
            let ts = s("timestamp")
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(ts_from_secs);
            let content = Content::Unsupported {
                reason: format!("malformed whatsapp message: {e}"),
                raw: raw.clone(),
            };
            (external, s("id").unwrap_or_default(), ts, content, None)
        }
    };
    let contact_name = contacts
        .iter()
        .find(|c| {
            c.wa_id.as_deref() == Some(external.as_str())
                || c.user_id.as_deref() == Some(external.as_str())
        })
        .or(if contacts.len() == 1 {
            contacts.first()
        } else {
            None
        })
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone());
    InboundMessage {
        external_contact_id: external,
        contact_name,
        phone,
        provider_message_id: id,
        provider_ts: ts,
        content,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn content(m: &wire::Message, raw: &serde_json::Value) -> Content {
    let unsupported = |reason: String| Content::Unsupported {
        reason,
        raw: raw.clone(),
    };
    match m.kind.as_str() {
        "text" => match &m.text {
            Some(t) => Content::Text {
                body: t.body.clone(),
            },
            None => unsupported("whatsapp text without a body".into()),
        },
        "image" => media(MediaKind::Image, m.image.as_ref(), raw),
        "video" => media(MediaKind::Video, m.video.as_ref(), raw),
        "document" => media(MediaKind::Document, m.document.as_ref(), raw),
        "sticker" => media(MediaKind::Sticker, m.sticker.as_ref(), raw),
        "audio" => {
            let voice = m.audio.as_ref().and_then(|a| a.voice).unwrap_or(false);
            media(
                if voice {
                    MediaKind::Voice
                } else {
                    MediaKind::Audio
                },
                m.audio.as_ref(),
                raw,
            )
        }
        "location" => match &m.location {
            Some(l) => Content::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            },
            None => unsupported("whatsapp location without coordinates".into()),
        },
        "contacts" => Content::Contacts {
            contacts: m.contacts.iter().flatten().map(contact_card).collect(),
        },
        "interactive" => match &m.interactive {
            Some(i) => match (i.kind.as_str(), &i.button_reply, &i.list_reply) {
                ("button_reply", Some(r), _) | ("list_reply", _, Some(r)) => {
                    Content::ChoiceSelected {
                        id: r.id.clone(),
                        title: r.title.clone(),
                    }
                }
                (kind, _, _) => unsupported(format!("whatsapp interactive `{kind}`")),
            },
            None => unsupported(match m.errors.first() {
                Some(e) => format!(
                    "whatsapp interactive message Meta could not deliver ({})",
                    e.code
                ),
                None => "whatsapp interactive message without content".into(),
            }),
        },
        "button" => match &m.button {
            Some(b) => Content::ChoiceSelected {
                id: b.payload.clone(),
                title: b.text.clone(),
            },
            None => unsupported("whatsapp button without payload".into()),
        },
        "reaction" => match &m.reaction {
            Some(r) => Content::Reaction {
                target_provider_id: r.message_id.clone(),
                emoji: r.emoji.clone().filter(|e| !e.is_empty()),
            },
            None => unsupported("whatsapp reaction without target".into()),
        },
        "system" => {
            let sys = m.system.as_ref();
            let body = sys.and_then(|s| s.body.clone()).unwrap_or_else(|| {
                format!(
                    "WhatsApp system event {}",
                    sys.and_then(|s| s.kind.as_deref()).unwrap_or("")
                )
            });
            Content::System { body }
        }
        "unsupported" => unsupported(match m.errors.first() {
            Some(e) => format!(
                "whatsapp unsupported message ({}: {})",
                e.code,
                e.title.as_deref().unwrap_or("unknown")
            ),
            None => "whatsapp unsupported message".into(),
        }),
        other => unsupported(format!("whatsapp message type `{other}`")),
    }
}

fn media(kind: MediaKind, m: Option<&wire::Media>, raw: &serde_json::Value) -> Content {
    match m {
        Some(m) => Content::Media {
            kind,
            media: MediaRef {
                provider_id: Some(m.id.clone()),
                url: m.url.clone(),
                mime_type: m.mime_type.clone(),
                filename: m.filename.clone(),
                sha256: m.sha256.clone(),
                ..MediaRef::default()
            },
            caption: m.caption.clone().filter(|c| !c.is_empty()),
        },
        None => Content::Unsupported {
            reason: format!("whatsapp {kind:?} without a media object"),
            raw: raw.clone(),
        },
    }
}

fn contact_card(c: &wire::SharedContact) -> ContactCard {
    let name = c
        .name
        .as_ref()
        .and_then(|n| {
            n.formatted_name.clone().or_else(|| {
                let parts: Vec<&str> = [n.first_name.as_deref(), n.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
        })
        .unwrap_or_default();
    ContactCard {
        name,
        phones: c.phones.iter().filter_map(|p| p.phone.clone()).collect(),
        emails: c.emails.iter().filter_map(|e| e.email.clone()).collect(),
        org: c.org.as_ref().and_then(|o| o.company.clone()),
    }
}

fn status_report(s: &wire::Status) -> Option<StatusReport> {
    let status = match s.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    };
    let at = s.timestamp.parse::<i64>().ok().and_then(ts_from_secs)?;
    let failure = (status == DeliveryStatus::Failed).then(|| match s.errors.first() {
        Some(e) => failure_of(e),
        None => SendFailure {
            class: switchboard_core::ErrorClass::Permanent,
            code: None,
            reason: "WhatsApp reported the message as failed without a reason".into(),
        },
    });
    Some(StatusReport {
        provider_message_id: s.id.clone(),
        status,
        at,
        failure,
    })
}

/// A webhook error as the agent sees it: class from the numeric code, reason from the text.
pub(crate) fn failure_of(e: &wire::WaError) -> SendFailure {
    let (class, _) = classify(e.code);
    let details = e.error_data.as_ref().and_then(|d| d.details.clone());
    let title = e.title.clone().or_else(|| e.message.clone());
    let reason = match (title, details) {
        (Some(t), Some(d)) if t != d => format!("{t}: {d}"),
        (Some(t), _) => t,
        (None, Some(d)) => d,
        (None, None) => format!("WhatsApp error {}", e.code),
    };
    SendFailure {
        class,
        code: Some(e.code.to_string()),
        reason,
    }
}
