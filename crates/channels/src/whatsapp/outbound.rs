//! WhatsApp outbound: pure rendering of one [`Content`] into `POST /{phone-number-id}/messages`
//! bodies, the send itself, error classification, mark-as-read and media download.
//!
//! Rendering by capability (channels.md §1.2, §6):
//! - text longer than `max_text_len` (4096) is split on word boundaries into several messages;
//! - choices become reply buttons (≤ 3 items, titles ≤ 20, unique), else a list (≤ 10 rows,
//!   titles ≤ 24, descriptions ≤ 72), else a numbered text menu; an interactive body above 1024
//!   characters sends its overflow first as plain text;
//! - a caption above 1024, or on audio/sticker, is sent as a text after the media;
//! - the idempotency key rides along as `biz_opaque_callback_data`, which Meta echoes in status
//!   webhooks, and `reply_to` becomes `context.message_id` on the first part.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::{
    Capabilities, Choice, ChoiceStyle, ContactCard, Content, ErrorClass, MediaKind,
};

use super::{WhatsApp, wire};
use crate::degrade::{Unit, numbered_menu, split_text};
use crate::transport::{self, Answer};
use crate::{ApiCall, ErrorScope, OutboundMessage, RenderError, SendError, SendReceipt};

/// Spec `ActionObject`/`SectionObject`/`BodyObject` limits (whatsapp-business-messaging-api
/// v23.0 `maxLength`/`maxItems`; channels.md §1.2). Provider facts, not tunables.
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_BUTTON_ID: usize = 256;
const MAX_LIST_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_ROW_ID: usize = 200;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_CAPTION: usize = 1024;
const MAX_CALLBACK_DATA: usize = 512;
/// The list's single button label (≤ 20 characters).
const LIST_BUTTON_LABEL: &str = "Options";
/// An interactive body must not be empty.
const DEFAULT_PROMPT: &str = "Please choose an option.";

/// One template component with its parameters as Meta's wire objects (`{type:"text", text}`,
/// `{type:"currency", currency:{…}}`, `{type:"image", image:{link}}`, …), for templates richer
/// than [`Content::Template`]'s body variables.
/// <https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates>
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateComponent {
    /// `header` | `body` | `button`.
    pub kind: String,
    /// Parameter objects, in order.
    pub parameters: Vec<Value>,
}

/// Renders one outbound message into request bodies (pure).
pub fn render(msg: &OutboundMessage, caps: &Capabilities) -> Result<Vec<ApiCall>, RenderError> {
    let bodies = match &msg.content {
        Content::Text { body } | Content::System { body } => text_parts(body, caps),
        Content::Media {
            kind,
            media,
            caption,
        } => {
            let kind_name = media_type(*kind);
            let mut obj = serde_json::Map::new();
            match (&media.provider_id, &media.url) {
                (Some(id), _) => obj.insert("id".into(), json!(id)),
                (None, Some(link)) => obj.insert("link".into(), json!(link)),
                (None, None) => {
                    return Err(RenderError(
                        "media has neither a WhatsApp media id nor a link".into(),
                    ));
                }
            };
            if *kind == MediaKind::Document
                && let Some(name) = &media.filename
            {
                obj.insert("filename".into(), json!(name));
            }
            let caption = caption.as_deref().filter(|c| !c.trim().is_empty());
            let captionable = matches!(
                kind,
                MediaKind::Image | MediaKind::Video | MediaKind::Document
            );
            let mut out = Vec::new();
            match caption {
                Some(c) if captionable && c.chars().count() <= MAX_CAPTION => {
                    obj.insert("caption".into(), json!(c));
                    out.push(json!({"type": kind_name, kind_name: obj}));
                }
                Some(c) => {
                    out.push(json!({"type": kind_name, kind_name: obj}));
                    out.extend(text_parts(c, caps));
                }
                None => out.push(json!({"type": kind_name, kind_name: obj})),
            }
            out
        }
        Content::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            let mut loc = json!({"latitude": latitude, "longitude": longitude});
            if let Some(n) = name {
                loc["name"] = json!(n);
            }
            if let Some(a) = address {
                loc["address"] = json!(a);
            }
            vec![json!({"type": "location", "location": loc})]
        }
        Content::Contacts { contacts } => {
            vec![
                json!({"type": "contacts", "contacts": contacts.iter().map(contact).collect::<Vec<_>>()}),
            ]
        }
        Content::Choices {
            prompt,
            items,
            style,
        } => choices(prompt, items, *style, caps)?,
        Content::Template {
            name,
            language,
            variables,
        } => {
            if !caps.templates {
                return Err(RenderError(
                    "templates are disabled for this channel".into(),
                ));
            }
            let components = if variables.is_empty() {
                Vec::new()
            } else {
                vec![TemplateComponent {
                    kind: "body".into(),
                    parameters: variables
                        .iter()
                        .map(|v| json!({"type": "text", "text": v}))
                        .collect(),
                }]
            };
            vec![template_body(name, language, &components)]
        }
        Content::Reaction {
            target_provider_id,
            emoji,
        } => vec![json!({
            "type": "reaction",
            "reaction": {"message_id": target_provider_id, "emoji": emoji.as_deref().unwrap_or("")}
        })],
        Content::ChoiceSelected { .. } | Content::Unsupported { .. } => {
            return Err(RenderError("this content can only be received".into()));
        }
    };
    Ok(finish(msg, bodies))
}

/// Renders a template with explicit components (headers with media, currency or date
/// parameters, button payloads). [`render`] uses it for [`Content::Template`] body variables.
pub fn render_template(
    msg: &OutboundMessage,
    name: &str,
    language: &str,
    components: &[TemplateComponent],
) -> Vec<ApiCall> {
    finish(msg, vec![template_body(name, language, components)])
}

fn template_body(name: &str, language: &str, components: &[TemplateComponent]) -> Value {
    let mut template = json!({"name": name, "language": {"code": language}});
    if !components.is_empty() {
        template["components"] = components
            .iter()
            .map(|c| json!({"type": c.kind, "parameters": c.parameters}))
            .collect();
    }
    json!({"type": "template", "template": template})
}

/// Adds the envelope every body shares: product, recipient, reply context (first part only) and
/// the correlation key.
fn finish(msg: &OutboundMessage, bodies: Vec<Value>) -> Vec<ApiCall> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, mut body)| {
            body["messaging_product"] = json!("whatsapp");
            body["recipient_type"] = json!("individual");
            // Username-only users have no phone number: they are addressed by BSUID in
            // `recipient` (channels.md §1.4). A BSUID has a country prefix and dots
            // (`US.1349…`); a wa_id is digits only.
            if msg.to.contains('.') {
                body["recipient"] = json!(msg.to);
            } else {
                body["to"] = json!(msg.to);
            }
            if i == 0
                && let Some(reply) = &msg.reply_to
            {
                body["context"] = json!({"message_id": reply});
            }
            let key = &msg.idempotency_key;
            if !key.is_empty() && key.chars().count() <= MAX_CALLBACK_DATA {
                body["biz_opaque_callback_data"] = json!(key);
            }
            ApiCall {
                method: "messages".into(),
                body,
            }
        })
        .collect()
}

fn text_parts(body: &str, caps: &Capabilities) -> Vec<Value> {
    split_text(body, caps.max_text_len, Unit::Chars)
        .into_iter()
        .map(|part| json!({"type": "text", "text": {"body": part, "preview_url": false}}))
        .collect()
}

/// Largest document WhatsApp accepts (channels.md §1.3).
pub const MAX_DOCUMENT_BYTES: u64 = 100 * 1024 * 1024;

/// The kind a file of `mime` and `size` bytes can go as on WhatsApp (channels.md §1.3 types
/// and sizes; degrade rule 5): images only jpeg/png up to 5 MB, audio and video up to 16 MB
/// in their types, stickers webp up to 500 KB; anything else goes as a document. `None`
/// when even a document is too large (over 100 MB).
pub fn fit_media_kind(kind: MediaKind, mime: &str, size: u64) -> Option<MediaKind> {
    const MB: u64 = 1024 * 1024;
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let fits = match kind {
        MediaKind::Image => matches!(mime.as_str(), "image/jpeg" | "image/png") && size <= 5 * MB,
        MediaKind::Video => matches!(mime.as_str(), "video/mp4" | "video/3gpp") && size <= 16 * MB,
        MediaKind::Audio | MediaKind::Voice => {
            matches!(
                mime.as_str(),
                "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg"
            ) && size <= 16 * MB
        }
        MediaKind::Sticker => mime == "image/webp" && size <= 500 * 1024,
        MediaKind::Document => size <= MAX_DOCUMENT_BYTES,
    };
    if fits {
        Some(kind)
    } else if size <= MAX_DOCUMENT_BYTES {
        Some(MediaKind::Document)
    } else {
        None
    }
}

fn media_type(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Audio | MediaKind::Voice => "audio",
        MediaKind::Document => "document",
        MediaKind::Sticker => "sticker",
    }
}

fn contact(c: &ContactCard) -> Value {
    // `name.formatted_name` plus at least one other name field is required by the API.
    let mut v = json!({"name": {"formatted_name": c.name, "first_name": c.name}});
    if !c.phones.is_empty() {
        v["phones"] = c.phones.iter().map(|p| json!({"phone": p})).collect();
    }
    if !c.emails.is_empty() {
        v["emails"] = c.emails.iter().map(|e| json!({"email": e})).collect();
    }
    if let Some(org) = &c.org {
        v["org"] = json!({"company": org});
    }
    v
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn choices(
    prompt: &str,
    items: &[Choice],
    style: ChoiceStyle,
    caps: &Capabilities,
) -> Result<Vec<Value>, RenderError> {
    if items.is_empty() {
        return Err(RenderError("a menu needs at least one choice".into()));
    }
    let mut titles: Vec<&str> = items.iter().map(|c| c.title.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    let unique = titles.len() == items.len();
    let fit_buttons = unique
        && items.len() <= caps.reply_buttons.min(MAX_BUTTONS)
        && items.iter().all(|c| {
            !c.title.trim().is_empty()
                && chars(&c.title) <= MAX_BUTTON_TITLE
                && !c.id.is_empty()
                && chars(&c.id) <= MAX_BUTTON_ID
        });
    let fit_list = items.len() <= caps.list_rows.min(MAX_LIST_ROWS)
        && items.iter().all(|c| {
            !c.title.trim().is_empty()
                && chars(&c.title) <= MAX_ROW_TITLE
                && !c.id.is_empty()
                && chars(&c.id) <= MAX_ROW_ID
                && c.description
                    .as_deref()
                    .is_none_or(|d| chars(d) <= MAX_ROW_DESCRIPTION)
        });
    let has_descriptions = items.iter().any(|c| c.description.is_some());
    let use_list = match style {
        ChoiceStyle::List => fit_list,
        // Buttons cannot show descriptions; a list can.
        ChoiceStyle::Auto if has_descriptions => fit_list,
        ChoiceStyle::Auto | ChoiceStyle::Buttons => fit_list && !fit_buttons,
    };
    let use_buttons = !use_list && fit_buttons;
    if !use_list && !use_buttons {
        return Ok(text_parts(&numbered_menu(prompt, items), caps));
    }
    let prompt = if prompt.trim().is_empty() {
        DEFAULT_PROMPT
    } else {
        prompt
    };
    let mut parts = split_text(prompt, MAX_INTERACTIVE_BODY, Unit::Chars);
    let body = parts.pop().unwrap_or_else(|| DEFAULT_PROMPT.to_string());
    let mut out: Vec<Value> = parts
        .into_iter()
        .map(|p| json!({"type": "text", "text": {"body": p, "preview_url": false}}))
        .collect();
    let action = if use_buttons {
        json!({"buttons": items.iter().map(|c| json!({
            "type": "reply", "reply": {"id": c.id, "title": c.title}
        })).collect::<Vec<_>>()})
    } else {
        json!({"button": LIST_BUTTON_LABEL, "sections": [{"rows": items.iter().map(|c| {
            let mut row = json!({"id": c.id, "title": c.title});
            if let Some(d) = &c.description {
                row["description"] = json!(d);
            }
            row
        }).collect::<Vec<_>>()}]})
    };
    out.push(json!({
        "type": "interactive",
        "interactive": {
            "type": if use_buttons { "button" } else { "list" },
            "body": {"text": body},
            "action": action,
        }
    }));
    Ok(out)
}

/// Classifies a WhatsApp error code (channels.md §1.2 "Errors that matter"); the same table
/// serves synchronous API errors and `failed` status webhooks. Unknown codes are permanent:
/// retrying something we do not understand risks duplicates and spam flags.
pub fn classify(code: i64) -> (ErrorClass, ErrorScope) {
    use ErrorClass::*;
    use ErrorScope::*;
    match code {
        // Throughput per number; app / WABA call limits; spam-rate (quality) limit: slow the
        // whole number down.
        130429 | 4 | 80007 | 131048 => (BackOff, Channel),
        // Pair rate limit: only this recipient waits (4^n s).
        131056 => (BackOff, Recipient),
        // Number being upgraded to a higher tier: unusable for about a minute.
        131057 => (BackOff, Channel),
        131047 => (NeedsTemplate, Message),
        131026 => (Unreachable, Recipient),
        // Marketing cap per user / user stopped marketing: fail, do not resend now.
        131049 | 131050 => (Permanent, Recipient),
        // Generic / service unavailable; media fetch failure (often transient).
        131000 | 1 | 2 | 131016 | 131053 => (RetryLater, Message),
        // Auth, permissions, policy blocks, payment: pause the number and alert.
        0 | 190 | 10 | 200..=299 | 368 | 131031 | 130497 | 131042 => (Permanent, Channel),
        // Bad parameters (our bug), templates, experiment, BSUID not allowed, inbound-only.
        _ => (Permanent, Message),
    }
}

/// Most pages of templates read for one catalogue (100 per page).
pub const MAX_TEMPLATE_PAGES: usize = 10;

/// One page of `message_templates` (pure): the APPROVED templates (only those can be sent)
/// and the cursor of the next page, if any.
pub fn parse_templates(
    body: &[u8],
) -> Result<(Vec<crate::TemplateInfo>, Option<String>), serde_json::Error> {
    let page: wire::TemplatePage = serde_json::from_slice(body)?;
    let next = page
        .paging
        .filter(|p| p.next.is_some())
        .and_then(|p| p.cursors)
        .and_then(|c| c.after);
    let templates = page
        .data
        .into_iter()
        .filter(|t| t.status.eq_ignore_ascii_case("APPROVED"))
        .map(|t| {
            let body = t
                .components
                .iter()
                .find(|c| c.kind.eq_ignore_ascii_case("BODY"))
                .and_then(|c| c.text.clone());
            crate::TemplateInfo {
                variables: body.as_deref().map_or(0, count_placeholders),
                name: t.name,
                language: t.language,
                category: t.category,
                body,
            }
        })
        .collect();
    Ok((templates, next))
}

/// Distinct `{{…}}` placeholders of a template body (`{{1}}`, `{{2}}` or named ones).
fn count_placeholders(text: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        if !name.is_empty() {
            seen.insert(name.to_string());
        }
        rest = &after[close + 2..];
    }
    seen.len()
}

/// Maps a non-2xx Graph answer to a [`SendError`].
fn error_from(ans: &Answer) -> SendError {
    match serde_json::from_slice::<wire::ErrorResponse>(&ans.body) {
        Ok(resp) => {
            let failure = super::inbound::failure_of(&resp.error);
            let (class, scope) = classify(resp.error.code);
            let retry_after = ans.retry_after.or(match resp.error.code {
                131057 => Some(Duration::from_secs(60)),
                _ => None,
            });
            SendError {
                class,
                scope,
                code: failure.code,
                message: failure.reason,
                retry_after,
                sent_part_ids: Vec::new(),
            }
        }
        Err(_) => transport::status_error(ans),
    }
}

impl WhatsApp {
    /// Renders and sends `msg`; each part is one `POST /{phone-number-id}/messages`.
    /// The receipt's ids are wamids.
    ///
    /// A media message carrying an [`crate::Attachment`] (no media id or link yet) is
    /// uploaded first (`POST /{phone-number-id}/media`) and sent by the returned id, as the
    /// kind WhatsApp accepts for its type and size ([`fit_media_kind`]).
    pub async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let uploaded;
        let msg = match self.upload_attachment(msg).await? {
            Some(m) => {
                uploaded = m;
                &uploaded
            }
            None => msg,
        };
        let calls = render(msg, &switchboard_core::ChannelKind::Whatsapp.capabilities())?;
        self.send_calls(calls, msg.skip_parts).await
    }

    /// Uploads the attachment of a media message that has neither a media id nor a link, and
    /// returns the message to render (media id set, kind fitted). `None`: nothing to upload.
    async fn upload_attachment(
        &self,
        msg: &OutboundMessage,
    ) -> Result<Option<OutboundMessage>, SendError> {
        let (
            Content::Media {
                kind,
                media,
                caption,
            },
            Some(file),
        ) = (&msg.content, &msg.attachment)
        else {
            return Ok(None);
        };
        if media.provider_id.is_some() || media.url.is_some() {
            return Ok(None);
        }
        let size = file.bytes.len() as u64;
        let kind = fit_media_kind(*kind, &file.mime_type, size).ok_or_else(|| {
            SendError::permanent(
                Some("media_too_large".into()),
                format!(
                    "the file is {size} bytes; WhatsApp accepts documents up to {MAX_DOCUMENT_BYTES} bytes"
                ),
            )
        })?;
        // The media part went out in an earlier attempt: only the parts after it are sent,
        // so no second upload.
        let id = if msg.skip_parts > 0 {
            "already-sent".to_string()
        } else {
            self.upload_media(file).await?
        };
        let mut media = media.clone();
        media.provider_id = Some(id);
        if media.filename.is_none() {
            media.filename = Some(file.filename.clone());
        }
        Ok(Some(OutboundMessage {
            content: Content::Media {
                kind,
                media,
                caption: caption.clone(),
            },
            attachment: None,
            ..msg.clone()
        }))
    }

    /// Uploads a file: `POST /{phone-number-id}/media`, multipart `file`, `type` (its MIME type)
    /// and `messaging_product=whatsapp`; answers the media id (valid 30 days).
    /// <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#upload-media>
    pub async fn upload_media(&self, file: &crate::Attachment) -> Result<String, SendError> {
        let url = format!("{}/{}/media", self.api_base, self.creds.phone_number_id);
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", file.mime_type.clone())
            .part("file", transport::file_part(file)?);
        let ans = transport::post_multipart(&self.http, &url, Some(&self.creds.access_token), form)
            .await?;
        if !ans.status.is_success() {
            return Err(error_from(&ans));
        }
        serde_json::from_slice::<Value>(&ans.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| {
                SendError::retry_later(
                    None,
                    format!(
                        "the media upload answered without an id: {}",
                        transport::excerpt(&ans.body)
                    ),
                )
            })
    }

    /// Sends already rendered calls (e.g. from [`render_template`]).
    pub async fn send_calls(
        &self,
        calls: Vec<ApiCall>,
        skip: usize,
    ) -> Result<SendReceipt, SendError> {
        let url = format!("{}/{}/messages", self.api_base, self.creds.phone_number_id);
        transport::send_parts(calls, skip, |call| {
            let url = url.clone();
            async move {
                let ans = transport::post_json(
                    &self.http,
                    &url,
                    Some(&self.creds.access_token),
                    &call.body,
                )
                .await?;
                if !ans.status.is_success() {
                    return Err(error_from(&ans));
                }
                serde_json::from_slice::<wire::SendResponse>(&ans.body)
                    .ok()
                    .and_then(|r| r.messages.into_iter().next())
                    .map(|m| m.id)
                    // Accepted but unreadable: do not retry (it would send twice).
                    .ok_or_else(|| {
                        SendError::permanent(
                            None,
                            format!(
                                "accepted without a message id: {}",
                                transport::excerpt(&ans.body)
                            ),
                        )
                    })
            }
        })
        .await
    }

    /// Marks an inbound message read and shows the typing indicator (best effort extra).
    pub async fn mark_read(&self, inbound_wamid: &str, typing: bool) -> Result<(), SendError> {
        let url = format!("{}/{}/messages", self.api_base, self.creds.phone_number_id);
        let mut body =
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound_wamid});
        if typing {
            body["typing_indicator"] = json!({"type": "text"});
        }
        let ans =
            transport::post_json(&self.http, &url, Some(&self.creds.access_token), &body).await?;
        if ans.status.is_success() {
            Ok(())
        } else {
            Err(error_from(&ans))
        }
    }

    /// Shows the typing indicator. WhatsApp sends it with a read mark of the customer's
    /// latest message (channels.md §1.1), so without one there is nothing to send.
    pub async fn typing(&self, last_inbound: Option<&str>) -> Result<(), SendError> {
        match last_inbound {
            Some(wamid) => self.mark_read(wamid, true).await,
            None => Ok(()),
        }
    }

    /// `GET /{WABA-ID}/message_templates`: the approved templates, following the paging
    /// cursor (at most [`MAX_TEMPLATE_PAGES`] pages of 100). Needs `business_account_id`
    /// in the channel's credentials.
    pub async fn templates(&self) -> Result<Vec<crate::TemplateInfo>, SendError> {
        let waba = self
            .creds
            .business_account_id
            .as_deref()
            .filter(|w| !w.trim().is_empty())
            .ok_or_else(|| {
                SendError::permanent(
                    Some("business_account_id_missing".into()),
                    "this WhatsApp channel's credentials have no business_account_id (the WABA id), so its templates cannot be listed",
                )
            })?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let mut url = reqwest::Url::parse(&format!(
                "{}/{}/message_templates",
                self.api_base,
                waba.trim()
            ))
            .map_err(|e| SendError::permanent(None, format!("bad template list URL: {e}")))?;
            url.query_pairs_mut()
                .append_pair("fields", "name,language,status,category,components")
                .append_pair("limit", "100");
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let ans =
                transport::get(&self.http, url.as_str(), Some(&self.creds.access_token)).await?;
            if !ans.status.is_success() {
                return Err(error_from(&ans));
            }
            let (page, next) = parse_templates(&ans.body).map_err(|e| {
                SendError::permanent(None, format!("unreadable template list: {e}"))
            })?;
            out.extend(page);
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        Ok(out)
    }

    /// Looks up an inbound media id: `GET /{media-id}` gives a URL valid for 5 minutes.
    /// <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#retrieve-media-url>
    pub async fn media_info(&self, media_id: &str) -> Result<wire::MediaInfo, SendError> {
        let url = format!("{}/{}", self.api_base, media_id);
        let ans = transport::get(&self.http, &url, Some(&self.creds.access_token)).await?;
        if !ans.status.is_success() {
            return Err(error_from(&ans));
        }
        serde_json::from_slice(&ans.body)
            .map_err(|e| SendError::permanent(None, format!("unreadable media info: {e}")))
    }

    /// Downloads media from a [`wire::MediaInfo::url`]; the URL needs the same bearer token.
    pub async fn download_media(&self, url: &str) -> Result<bytes::Bytes, SendError> {
        let ans = transport::get(&self.http, url, Some(&self.creds.access_token)).await?;
        if ans.status.is_success() {
            Ok(ans.body)
        } else {
            Err(error_from(&ans))
        }
    }
}
