//! Telegram outbound: pure rendering into Bot API method calls, the send, error mapping
//! (channels.md §2.2), `answerCallbackQuery` and `getFile`.
//!
//! Rendering: text split at `max_text_len` counted in UTF-16 units; choices become an inline
//! keyboard (one button per row, `callback_data` = choice id) when every id fits the 1–64 byte
//! limit and the count fits `reply_buttons`, otherwise a numbered text menu; media go by
//! `file_id` or URL, or, for our stored files, as a multipart upload (photos over 10 MB as a
//! document, files over 50 MB refused); captions over 1024 follow as text; templates do not exist on Telegram.
//! Receipt ids are `{chat_id}:{message_id}`, the same shape inbound parsing uses.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::{Capabilities, Choice, Content, MediaKind};

use super::{Telegram, wire};
use crate::degrade::{Unit, numbered_menu, split_text};
use crate::transport::{self, Answer};
use crate::{ApiCall, ErrorScope, OutboundMessage, RenderError, SendError, SendReceipt};

/// `InlineKeyboardButton.callback_data` is 1–64 bytes.
const MAX_CALLBACK_DATA: usize = 64;
/// Captions are 0–1024 characters after entity parsing.
const MAX_CAPTION: usize = 1024;
/// Largest photo a bot may upload (channels.md §2.3).
pub const MAX_UPLOAD_PHOTO: u64 = 10 * 1024 * 1024;
/// Largest other file a bot may upload.
pub const MAX_UPLOAD_FILE: u64 = 50 * 1024 * 1024;
/// The rendered value of a file field whose bytes go as a multipart part at send time.
pub const ATTACH_MARK: &str = "attach://upload";
/// The text of a keyboard message must not be empty.
const DEFAULT_PROMPT: &str = "Please choose an option.";

fn call(method: &str, body: Value) -> ApiCall {
    ApiCall {
        method: method.into(),
        body,
    }
}

/// The field of a rendered call that carries [`ATTACH_MARK`] (the file to upload).
fn upload_field(body: &Value) -> Option<String> {
    body.as_object()?
        .iter()
        .find(|(_, v)| v.as_str() == Some(ATTACH_MARK))
        .map(|(k, _)| k.clone())
}

/// `chat_id` is an integer, or a string for `@channelusername`.
fn chat_id(to: &str) -> Value {
    to.parse::<i64>().map_or_else(|_| json!(to), |id| json!(id))
}

/// The message id inside a `{chat_id}:{message_id}[:…]` provider id.
fn message_id(provider_id: &str) -> Option<i64> {
    provider_id.split(':').nth(1)?.parse().ok()
}

/// Renders one outbound message into Bot API calls (pure).
pub fn render(msg: &OutboundMessage, caps: &Capabilities) -> Result<Vec<ApiCall>, RenderError> {
    let chat = chat_id(&msg.to);
    let texts = |text: &str| -> Vec<ApiCall> {
        split_text(text, caps.max_text_len, Unit::Utf16)
            .into_iter()
            .map(|t| call("sendMessage", json!({"chat_id": chat, "text": t})))
            .collect()
    };
    let mut calls = match &msg.content {
        Content::Text { body } | Content::System { body } => texts(body),
        Content::Media {
            kind,
            media,
            caption,
        } => {
            let upload = media.provider_id.is_none() && media.url.is_none();
            let upload_size = msg
                .attachment
                .as_ref()
                .filter(|_| upload)
                .map(|a| a.bytes.len() as u64);
            if upload_size.is_some_and(|n| n > MAX_UPLOAD_FILE) {
                return Err(RenderError(format!(
                    "the file is larger than the {MAX_UPLOAD_FILE} bytes Telegram accepts in an upload"
                )));
            }
            // Photos up to 10 MB; a larger picture goes as a document (degrade rule 5).
            let kind = match (kind, upload_size) {
                (MediaKind::Image, Some(n)) if n > MAX_UPLOAD_PHOTO => &MediaKind::Document,
                _ => kind,
            };
            let (method, field) = match kind {
                MediaKind::Image => ("sendPhoto", "photo"),
                MediaKind::Video => ("sendVideo", "video"),
                MediaKind::Audio => ("sendAudio", "audio"),
                MediaKind::Voice => ("sendVoice", "voice"),
                MediaKind::Document => ("sendDocument", "document"),
                MediaKind::Sticker => ("sendSticker", "sticker"),
            };
            let source = match (
                media.provider_id.as_ref().or(media.url.as_ref()),
                upload_size,
            ) {
                (Some(s), _) => s.as_str(),
                (None, Some(_)) => ATTACH_MARK,
                (None, None) => {
                    return Err(RenderError(
                        "media has neither a Telegram file_id, a URL nor a file to upload".into(),
                    ));
                }
            };
            let mut body = json!({"chat_id": chat, field: source});
            let caption = caption.as_deref().filter(|c| !c.trim().is_empty());
            let mut out = Vec::new();
            match caption {
                Some(c) if *kind != MediaKind::Sticker && Unit::Utf16.measure(c) <= MAX_CAPTION => {
                    body["caption"] = json!(c);
                    out.push(call(method, body));
                }
                Some(c) => {
                    out.push(call(method, body));
                    out.extend(texts(c));
                }
                None => out.push(call(method, body)),
            }
            out
        }
        Content::Location {
            latitude,
            longitude,
            name,
            address,
        } => match (name, address) {
            (Some(title), Some(address)) => vec![call(
                "sendVenue",
                json!({"chat_id": chat, "latitude": latitude, "longitude": longitude, "title": title, "address": address}),
            )],
            _ => vec![call(
                "sendLocation",
                json!({"chat_id": chat, "latitude": latitude, "longitude": longitude}),
            )],
        },
        Content::Contacts { contacts } => contacts
            .iter()
            .flat_map(|c| match c.phones.first() {
                Some(phone) => vec![call(
                    "sendContact",
                    json!({"chat_id": chat, "phone_number": phone, "first_name": c.name}),
                )],
                None => texts(&format!("{}\n{}", c.name, c.emails.join("\n"))),
            })
            .collect(),
        Content::Choices { prompt, items, .. } => choices(&chat, prompt, items, caps, &texts)?,
        Content::Template { .. } => {
            return Err(RenderError("Telegram has no message templates".into()));
        }
        Content::Reaction {
            target_provider_id,
            emoji,
        } => {
            let mid = message_id(target_provider_id).ok_or_else(|| {
                RenderError(format!(
                    "`{target_provider_id}` is not a Telegram chat:message id"
                ))
            })?;
            let reaction: Vec<Value> = emoji
                .iter()
                .map(|e| json!({"type": "emoji", "emoji": e}))
                .collect();
            vec![call(
                "setMessageReaction",
                json!({"chat_id": chat, "message_id": mid, "reaction": reaction}),
            )]
        }
        Content::ChoiceSelected { .. } | Content::Unsupported { .. } => {
            return Err(RenderError("this content can only be received".into()));
        }
    };
    if let (Some(first), Some(mid)) = (
        calls.first_mut(),
        msg.reply_to.as_deref().and_then(message_id),
    ) && first.method != "setMessageReaction"
    {
        // `allow_sending_without_reply`: a deleted original must not fail the send
        // (quotes are a best-effort extra, channels.md §6.8).
        first.body["reply_parameters"] =
            json!({"message_id": mid, "allow_sending_without_reply": true});
    }
    Ok(calls)
}

fn choices(
    chat: &Value,
    prompt: &str,
    items: &[Choice],
    caps: &Capabilities,
    texts: &dyn Fn(&str) -> Vec<ApiCall>,
) -> Result<Vec<ApiCall>, RenderError> {
    if items.is_empty() {
        return Err(RenderError("a menu needs at least one choice".into()));
    }
    let keyboard_fits = items.len() <= caps.reply_buttons
        && items.iter().all(|c| {
            !c.title.trim().is_empty() && !c.id.is_empty() && c.id.len() <= MAX_CALLBACK_DATA
        });
    if !keyboard_fits {
        return Ok(texts(&numbered_menu(prompt, items)));
    }
    let prompt = if prompt.trim().is_empty() {
        DEFAULT_PROMPT
    } else {
        prompt
    };
    let mut calls = texts(prompt);
    let keyboard: Vec<Value> = items
        .iter()
        .map(|c| json!([{"text": c.title, "callback_data": c.id}]))
        .collect();
    if let Some(last) = calls.last_mut() {
        last.body["reply_markup"] = json!({"inline_keyboard": keyboard});
    } else {
        calls.push(call(
            "sendMessage",
            json!({"chat_id": chat, "text": DEFAULT_PROMPT, "reply_markup": {"inline_keyboard": keyboard}}),
        ));
    }
    Ok(calls)
}

/// Maps a failed Bot API answer (channels.md §2.2 error table). Only `error_code` and
/// `parameters` are structured; 403 reasons are all "this user cannot be reached by this bot"
/// (blocked, deactivated, never started), so no description matching is needed.
fn error_from(ans: &Answer) -> SendError {
    let Ok(resp) = serde_json::from_slice::<wire::Response>(&ans.body) else {
        return transport::status_error(ans);
    };
    let code = resp
        .error_code
        .unwrap_or_else(|| i64::from(ans.status.as_u16()));
    let text = resp
        .description
        .unwrap_or_else(|| transport::excerpt(&ans.body));
    let params = resp.parameters.as_ref();
    let code_s = Some(code.to_string());
    match code {
        429 => {
            let wait = params
                .and_then(|p| p.retry_after)
                .map(Duration::from_secs)
                .or(ans.retry_after);
            SendError::back_off(ErrorScope::Channel, code_s, text, wait)
        }
        403 => SendError::unreachable(code_s, text),
        // Token revoked or wrong (Telegram answers 404 to an unknown token), or a webhook /
        // poller conflict: the bot itself is unusable.
        401 | 404 | 409 => SendError::channel_disabled(code_s, text),
        400 => match params.and_then(|p| p.migrate_to_chat_id) {
            Some(new_id) => SendError::permanent(
                Some("migrate_to_chat_id".into()),
                format!("{text} (the chat is now {new_id})"),
            ),
            None => SendError::permanent(code_s, text),
        },
        c if c >= 500 => SendError::retry_later(code_s, text),
        _ => SendError::permanent(code_s, text),
    }
}

impl Telegram {
    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{}", self.api_base, self.creds.bot_token, method)
    }

    async fn call_method(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        let ans = transport::post_json(&self.http, &self.method_url(method), None, body).await?;
        match serde_json::from_slice::<wire::Response>(&ans.body) {
            Ok(wire::Response {
                ok: true, result, ..
            }) if ans.status.is_success() => Ok(result.unwrap_or(Value::Null)),
            _ => Err(error_from(&ans)),
        }
    }

    /// A method call whose `field` is a file upload: multipart, every other body field as a
    /// text part (JSON values as their JSON text, strings as they are).
    /// <https://core.telegram.org/bots/api#sending-files>
    async fn call_multipart(
        &self,
        method: &str,
        body: &Value,
        field: &str,
        file: &crate::Attachment,
    ) -> Result<Value, SendError> {
        let mut form = reqwest::multipart::Form::new();
        if let Some(obj) = body.as_object() {
            for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != field) {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                form = form.text(k.clone(), text);
            }
        }
        form = form.part(field.to_string(), transport::file_part(file)?);
        let ans =
            transport::post_multipart(&self.http, &self.method_url(method), None, form).await?;
        match serde_json::from_slice::<wire::Response>(&ans.body) {
            Ok(wire::Response {
                ok: true, result, ..
            }) if ans.status.is_success() => Ok(result.unwrap_or(Value::Null)),
            _ => Err(error_from(&ans)),
        }
    }

    /// Renders and sends `msg`. Receipt ids are `{chat_id}:{message_id}`; for a reaction (which
    /// returns no message) the id is the target's.
    pub async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let calls = render(msg, &switchboard_core::ChannelKind::Telegram.capabilities())?;
        let fallback = match &msg.content {
            Content::Reaction {
                target_provider_id, ..
            } => target_provider_id.clone(),
            _ => format!("{}:sent", msg.to),
        };
        transport::send_parts(calls, msg.skip_parts, |call| {
            let fallback = fallback.clone();
            async move {
                let result = match upload_field(&call.body) {
                    Some(field) => {
                        let file = msg.attachment.as_ref().ok_or_else(|| {
                            SendError::permanent(None, "the file to upload is missing")
                        })?;
                        self.call_multipart(&call.method, &call.body, &field, file)
                            .await?
                    }
                    None => self.call_method(&call.method, &call.body).await?,
                };
                let chat = result.pointer("/chat/id").and_then(Value::as_i64);
                let mid = result.get("message_id").and_then(Value::as_i64);
                Ok(match (chat, mid) {
                    (Some(c), Some(m)) => format!("{c}:{m}"),
                    _ => fallback,
                })
            }
        })
        .await
    }

    /// `sendChatAction` with `typing`: the chat shows "typing…" for up to 5 s or until a
    /// message arrives. <https://core.telegram.org/bots/api#sendchataction>
    pub async fn typing(&self, chat_id: &str) -> Result<(), SendError> {
        self.call_method(
            "sendChatAction",
            &json!({"chat_id": chat_id, "action": "typing"}),
        )
        .await
        .map(|_| ())
    }

    /// Answers a callback query (stops the client's spinner). Call right after parsing; an
    /// error for a query that is too old can be ignored.
    pub async fn answer_callback_query(
        &self,
        callback_query_id: &str,
        text: Option<&str>,
    ) -> Result<(), SendError> {
        let mut body = json!({"callback_query_id": callback_query_id});
        if let Some(t) = text {
            body["text"] = json!(t);
        }
        self.call_method("answerCallbackQuery", &body)
            .await
            .map(|_| ())
    }

    /// `getFile`: the path to download a `file_id` from (valid ≥ 1 h; bots may fetch ≤ 20 MB).
    /// <https://core.telegram.org/bots/api#getfile>
    pub async fn get_file(&self, file_id: &str) -> Result<wire::FileInfo, SendError> {
        let result = self
            .call_method("getFile", &json!({"file_id": file_id}))
            .await?;
        serde_json::from_value(result)
            .map_err(|e| SendError::permanent(None, format!("unreadable getFile result: {e}")))
    }

    /// Downloads `https://api.telegram.org/file/bot<token>/<file_path>`.
    pub async fn download_file(&self, file_path: &str) -> Result<bytes::Bytes, SendError> {
        let url = format!(
            "{}/file/bot{}/{}",
            self.api_base, self.creds.bot_token, file_path
        );
        let ans = transport::get(&self.http, &url, None).await?;
        if ans.status.is_success() {
            Ok(ans.body)
        } else {
            Err(error_from(&ans))
        }
    }
}
