//! Signal outbound: pure rendering into signal-cli JSON-RPC requests or REST bodies, the send,
//! and error mapping (channels.md §3.2).
//!
//! Signal has no buttons, lists or templates: choices become a numbered text menu, locations a
//! map link, contacts a text block. Text is split at `max_text_len` (2000) counted in UTF-8
//! bytes, because signal-cli turns a longer body into a long-text attachment. Media with a URL
//! go as a link; our stored files go inline as a data URI (`base64_attachments` over REST,
//! `attachments` over JSON-RPC) on the first part, with the caption as its text.
//! Receipt ids are the send timestamp, which receipts, quotes and reactions reference.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::{Capabilities, Content, ErrorClass};

use super::{Credentials, Mode, Signal, wire};
use crate::degrade::{Unit, numbered_menu, split_text};
use crate::transport::{self, Answer};
use crate::{ApiCall, ErrorScope, OutboundMessage, RenderError, SendError, SendReceipt};

/// `author:timestamp` (a customer's message) or `timestamp` (ours) → (author, timestamp).
fn target(provider_id: &str, creds: &Credentials) -> Option<(String, i64)> {
    match provider_id.rsplit_once(':') {
        Some((author, ts)) => Some((author.to_string(), ts.parse().ok()?)),
        None => Some((creds.account.clone(), provider_id.parse().ok()?)),
    }
}

/// Renders one outbound message (pure). JSON-RPC calls carry the whole request object, with
/// `id` = `{idempotency_key}:{part}` so daemon logs can be matched to outbox rows.
pub fn render(
    msg: &OutboundMessage,
    creds: &Credentials,
    caps: &Capabilities,
) -> Result<Vec<ApiCall>, RenderError> {
    let mut attachment: Option<String> = None;
    let texts: Vec<String> = match &msg.content {
        Content::Text { body } | Content::System { body } => vec![body.clone()],
        Content::Choices { prompt, items, .. } => {
            if items.is_empty() {
                return Err(RenderError("a menu needs at least one choice".into()));
            }
            vec![numbered_menu(prompt, items)]
        }
        Content::Media { media, caption, .. } if media.url.is_none() => {
            let file = msg.attachment.as_ref().ok_or_else(|| {
                RenderError("Signal media needs the file to attach or a URL to link".into())
            })?;
            if file.bytes.len() as u64 > MAX_ATTACHMENT {
                return Err(RenderError(format!(
                    "the file is larger than the {MAX_ATTACHMENT} bytes signal-cli attaches"
                )));
            }
            attachment = Some(data_uri(file));
            vec![caption.clone().unwrap_or_default()]
        }
        Content::Media { media, caption, .. } => {
            let Some(url) = media.url.as_ref() else {
                return Err(RenderError("Signal media needs a URL to link".into()));
            };
            vec![match caption.as_deref().filter(|c| !c.trim().is_empty()) {
                Some(c) => format!("{c}\n{url}"),
                None => url.clone(),
            }]
        }
        Content::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            let mut lines: Vec<String> = [name, address].into_iter().flatten().cloned().collect();
            lines.push(format!(
                "https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}#map=17/{latitude}/{longitude}"
            ));
            vec![lines.join("\n")]
        }
        Content::Contacts { contacts } => contacts
            .iter()
            .map(|c| {
                let mut lines = vec![c.name.clone()];
                lines.extend(c.phones.iter().cloned());
                lines.extend(c.emails.iter().cloned());
                lines.extend(c.org.iter().cloned());
                lines.join("\n")
            })
            .collect(),
        Content::Reaction {
            target_provider_id,
            emoji,
        } => {
            let (author, ts) = target(target_provider_id, creds).ok_or_else(|| {
                RenderError(format!(
                    "`{target_provider_id}` is not a Signal author:timestamp id"
                ))
            })?;
            let emoji = emoji.clone().ok_or_else(|| {
                RenderError("removing a Signal reaction needs the emoji that was set".into())
            })?;
            return Ok(vec![reaction_call(msg, creds, &author, ts, &emoji)]);
        }
        Content::Template { .. } => {
            return Err(RenderError("Signal has no message templates".into()));
        }
        Content::ChoiceSelected { .. } | Content::Unsupported { .. } => {
            return Err(RenderError("this content can only be received".into()));
        }
    };
    let quote = msg.reply_to.as_deref().and_then(|r| target(r, creds));
    let parts: Vec<String> = texts
        .iter()
        .flat_map(|t| split_text(t, caps.max_text_len, Unit::Bytes))
        .collect();
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let quote = if i == 0 { quote.clone() } else { None };
            // The file rides on the first part, with the caption's beginning.
            let file = if i == 0 { attachment.clone() } else { None };
            match creds.mode {
                Mode::JsonRpc => {
                    let mut params = json!({"recipient": [msg.to], "message": text});
                    if let Some(uri) = file {
                        params["attachments"] = json!([uri]);
                    }
                    if let Some((author, ts)) = quote {
                        params["quoteTimestamp"] = json!(ts);
                        params["quoteAuthor"] = json!(author);
                    }
                    rpc(msg, creds, i, "send", params)
                }
                Mode::Rest => {
                    let mut body =
                        json!({"number": creds.account, "recipients": [msg.to], "message": text});
                    if let Some(uri) = file {
                        body["base64_attachments"] = json!([uri]);
                    }
                    if let Some((author, ts)) = quote {
                        body["quote_timestamp"] = json!(ts);
                        body["quote_author"] = json!(author);
                    }
                    ApiCall {
                        method: "v2/send".into(),
                        body,
                    }
                }
            }
        })
        .collect())
}

/// Largest attachment signal-cli sends (`ServiceConfig.MAX_ATTACHMENT_SIZE`, 150 MiB).
pub const MAX_ATTACHMENT: u64 = 150 * 1024 * 1024;

/// An RFC 2397 data URI with signal-cli's `filename=` parameter:
/// `data:<mime>;filename=<name>;base64,<data>` (both the REST `base64_attachments` and the
/// JSON-RPC `attachments` take it). `;` and `,` would end the parameter, so they leave the name.
fn data_uri(file: &crate::Attachment) -> String {
    use base64::Engine as _;
    let name: String = file
        .filename
        .chars()
        .map(|c| {
            if matches!(c, ';' | ',') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!(
        "data:{};filename={};base64,{}",
        file.mime_type,
        name,
        base64::engine::general_purpose::STANDARD.encode(&file.bytes)
    )
}

fn rpc(
    msg: &OutboundMessage,
    creds: &Credentials,
    part: usize,
    method: &str,
    mut params: Value,
) -> ApiCall {
    if creds.multi_account {
        params["account"] = json!(creds.account);
    }
    ApiCall {
        method: method.into(),
        body: json!({"jsonrpc": "2.0", "method": method, "params": params, "id": format!("{}:{part}", msg.idempotency_key)}),
    }
}

fn reaction_call(
    msg: &OutboundMessage,
    creds: &Credentials,
    author: &str,
    ts: i64,
    emoji: &str,
) -> ApiCall {
    match creds.mode {
        Mode::JsonRpc => rpc(
            msg,
            creds,
            0,
            "sendReaction",
            json!({"recipient": [msg.to], "emoji": emoji, "targetAuthor": author, "targetTimestamp": ts}),
        ),
        Mode::Rest => ApiCall {
            method: format!("v1/reactions/{}", creds.account),
            body: json!({"recipient": msg.to, "reaction": emoji, "target_author": author, "timestamp": ts}),
        },
    }
}

/// Classifies a signal-cli JSON-RPC error code (`SignalJsonRpcCommandHandler.java`).
pub fn classify_rpc(code: i64) -> (ErrorClass, ErrorScope) {
    match code {
        // IO error talking to the Signal servers.
        -3 => (ErrorClass::RetryLater, ErrorScope::Message),
        // Rate limited.
        -5 => (ErrorClass::BackOff, ErrorScope::Channel),
        // Untrusted identity (safety number changed): hold for the trust policy.
        -4 => (ErrorClass::Permanent, ErrorScope::Recipient),
        // Captcha rejected: a human must solve a new challenge.
        -6 => (ErrorClass::Permanent, ErrorScope::Channel),
        _ => (ErrorClass::Permanent, ErrorScope::Message),
    }
}

/// Maps a per-recipient result type (`SendMessageResultUtils.java`).
fn classify_result(r: &wire::RecipientResult) -> Option<SendError> {
    let kind = r.kind.as_deref().unwrap_or("SUCCESS");
    let code = Some(kind.to_string());
    Some(match kind {
        "SUCCESS" => return None,
        "NETWORK_FAILURE" => SendError::retry_later(code, "network failure reaching Signal"),
        "UNREGISTERED_FAILURE" => {
            SendError::unreachable(code, "the recipient is not a Signal user")
        }
        "IDENTITY_FAILURE" => SendError::permanent(code, "the recipient's safety number changed")
            .with_scope(ErrorScope::Recipient),
        "RATE_LIMIT_FAILURE" if r.token.is_some() => SendError::permanent(
            code,
            "Signal requires a captcha proof (submitRateLimitChallenge) before sending more",
        )
        .with_scope(ErrorScope::Channel),
        "RATE_LIMIT_FAILURE" => SendError::back_off(
            ErrorScope::Channel,
            code,
            "rate limited by Signal",
            r.retry_after_seconds.map(Duration::from_secs),
        ),
        other => SendError::permanent(code, format!("Signal send result {other}")),
    })
}

fn rpc_outcome(ans: &Answer) -> Result<String, SendError> {
    if !ans.status.is_success() {
        return Err(transport::status_error(ans));
    }
    let resp: wire::RpcResponse = serde_json::from_slice(&ans.body).map_err(|_| {
        SendError::permanent(
            None,
            format!(
                "unreadable JSON-RPC answer: {}",
                transport::excerpt(&ans.body)
            ),
        )
    })?;
    if let Some(err) = resp.error {
        let (class, scope) = classify_rpc(err.code);
        let message = err.message.unwrap_or_else(|| "signal-cli error".into());
        return Err(SendError {
            class,
            scope,
            code: Some(err.code.to_string()),
            message,
            retry_after: None,
            sent_part_ids: Vec::new(),
        });
    }
    let result = resp
        .result
        .ok_or_else(|| SendError::permanent(None, "JSON-RPC answer without result"))?;
    if let Some(e) = result.results.iter().find_map(classify_result) {
        return Err(e);
    }
    result
        .timestamp
        .map(|t| t.to_string())
        .ok_or_else(|| SendError::permanent(None, "accepted without a timestamp"))
}

fn rest_outcome(ans: &Answer) -> Result<String, SendError> {
    if ans.status.is_success() {
        let ts = serde_json::from_slice::<wire::RestSendResponse>(&ans.body)
            .ok()
            .and_then(|r| match r.timestamp {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        // Reactions answer 204 with no body: there is no new message id to record.
        return Ok(ts.unwrap_or_default());
    }
    let text = serde_json::from_slice::<wire::RestError>(&ans.body)
        .ok()
        .and_then(|e| e.error)
        .unwrap_or_else(|| transport::excerpt(&ans.body));
    let code = Some(ans.status.as_u16().to_string());
    // The REST wrapper forwards signal-cli's exception text with no error code, so an
    // unregistered recipient can only be recognised by its wording (api.go `SendV2`).
    if ans.status.as_u16() == 400 && text.to_ascii_lowercase().contains("unregistered") {
        return Err(SendError::unreachable(
            Some("UNREGISTERED_FAILURE".into()),
            text,
        ));
    }
    Err(match ans.status.as_u16() {
        429 => SendError::back_off(ErrorScope::Channel, code, text, ans.retry_after),
        s if s >= 500 => SendError::retry_later(code, text),
        _ => SendError::permanent(code, text),
    })
}

impl Signal {
    /// Shows "typing" to `to`: JSON-RPC `sendTyping` (signal-cli), or the REST wrapper's
    /// `PUT /v1/typing-indicator/{number}`.
    pub async fn typing(&self, to: &str) -> Result<(), SendError> {
        let ans = match self.creds.mode {
            Mode::JsonRpc => {
                let mut params = json!({"recipient": [to]});
                if self.creds.multi_account {
                    params["account"] = json!(self.creds.account);
                }
                let body = json!({"jsonrpc": "2.0", "method": "sendTyping", "params": params,
                    "id": format!("typing:{to}")});
                let url = format!("{}/api/v1/rpc", self.api_base);
                transport::post_json(&self.http, &url, None, &body).await?
            }
            Mode::Rest => {
                let url = format!(
                    "{}/v1/typing-indicator/{}",
                    self.api_base, self.creds.account
                );
                transport::put_json(&self.http, &url, &json!({"recipient": to})).await?
            }
        };
        if !ans.status.is_success() {
            return Err(transport::status_error(&ans));
        }
        if self.creds.mode == Mode::JsonRpc
            && let Ok(resp) = serde_json::from_slice::<Value>(&ans.body)
            && let Some(err) = resp.get("error").filter(|e| !e.is_null())
        {
            let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
            let (class, scope) = classify_rpc(code);
            return Err(SendError {
                class,
                scope,
                code: Some(code.to_string()),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("signal-cli error")
                    .to_string(),
                retry_after: None,
                sent_part_ids: Vec::new(),
            });
        }
        Ok(())
    }

    /// Renders and sends `msg`. Receipt ids are send timestamps (ms, decimal).
    pub async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let calls = render(
            msg,
            &self.creds,
            &switchboard_core::ChannelKind::Signal.capabilities(),
        )?;
        // A reaction creates no message of its own: its receipt id is the target's.
        let fallback = match &msg.content {
            Content::Reaction {
                target_provider_id, ..
            } => target_provider_id.clone(),
            _ => String::new(),
        };
        transport::send_parts(calls, msg.skip_parts, |call| {
            let fallback = fallback.clone();
            async move {
                let id = match self.creds.mode {
                    Mode::JsonRpc => {
                        let url = format!("{}/api/v1/rpc", self.api_base);
                        rpc_outcome(
                            &transport::post_json(&self.http, &url, None, &call.body).await?,
                        )?
                    }
                    Mode::Rest => {
                        let url = format!("{}/{}", self.api_base, call.method);
                        rest_outcome(
                            &transport::post_json(&self.http, &url, None, &call.body).await?,
                        )?
                    }
                };
                Ok(if id.is_empty() { fallback } else { id })
            }
        })
        .await
    }
}
