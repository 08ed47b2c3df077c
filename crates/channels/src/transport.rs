//! The thin HTTP layer every adapter's `send` uses: one JSON POST, the `Retry-After` header, and
//! turning transport failures into retryable [`SendError`]s without leaking secrets.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::{ErrorScope, SendError};

/// A provider answer: status, headers and the raw body (parsed by the adapter's error mapping).
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

/// POSTs `body` as JSON to `url`, with a bearer token when given.
///
/// Network errors and timeouts become `RetryLater`. The URL is stripped from the error text
/// because Telegram carries the bot token in it.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Result<Answer, SendError> {
    let mut req = http.post(url).json(body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(transport_error)?;
    read(resp).await
}

/// PUTs `body` as JSON to `url` (signal-cli-rest-api's typing indicator); errors are mapped
/// like [`post_json`]'s.
pub(crate) async fn put_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<Answer, SendError> {
    let resp = http
        .put(url)
        .json(body)
        .send()
        .await
        .map_err(transport_error)?;
    read(resp).await
}

/// POSTs a multipart form (a file upload) to `url`, with a bearer token when given. Errors
/// are mapped like [`post_json`]'s.
pub(crate) async fn post_multipart(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    form: reqwest::multipart::Form,
) -> Result<Answer, SendError> {
    let mut req = http.post(url).multipart(form);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(transport_error)?;
    read(resp).await
}

/// The multipart part of an outbound file, with its name and MIME type.
pub(crate) fn file_part(file: &crate::Attachment) -> Result<reqwest::multipart::Part, SendError> {
    reqwest::multipart::Part::bytes(file.bytes.to_vec())
        .file_name(file.filename.clone())
        .mime_str(&file.mime_type)
        .map_err(|_| {
            SendError::permanent(
                Some("invalid_mime".into()),
                format!("`{}` is not a valid MIME type", file.mime_type),
            )
        })
}

/// GETs `url` with a bearer token when given.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<Answer, SendError> {
    let mut req = http.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(transport_error)?;
    read(resp).await
}

async fn read(resp: reqwest::Response) -> Result<Answer, SendError> {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = resp.bytes().await.map_err(transport_error)?;
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// A failure before any HTTP answer (DNS, connect, timeout, reset): retry later.
pub(crate) fn transport_error(e: reqwest::Error) -> SendError {
    let code = if e.is_timeout() { "timeout" } else { "network" };
    SendError::retry_later(Some(code.to_string()), e.without_url().to_string())
}

/// `Retry-After` in delta-seconds form. The HTTP-date form needs a clock; providers here send
/// seconds, so a date is ignored rather than guessed.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A short, single-line excerpt of an unexpected body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
    if s.is_empty() {
        "(empty body)".to_string()
    } else {
        s
    }
}

/// Sends rendered parts in order, skipping the first `skip` (accepted by an earlier attempt).
///
/// On a failure the ids of the parts accepted so far in this attempt travel in
/// [`SendError::sent_part_ids`], so the sender can resume instead of sending them twice.
pub(crate) async fn send_parts<F, Fut>(
    calls: Vec<crate::ApiCall>,
    skip: usize,
    mut send_one: F,
) -> Result<crate::SendReceipt, SendError>
where
    F: FnMut(crate::ApiCall) -> Fut,
    Fut: std::future::Future<Output = Result<String, SendError>>,
{
    let mut ids: Vec<String> = Vec::new();
    for call in calls.into_iter().skip(skip) {
        match send_one(call).await {
            Ok(id) => ids.push(id),
            Err(mut e) => {
                e.sent_part_ids = ids;
                return Err(e);
            }
        }
    }
    match ids.first() {
        Some(first) => Ok(crate::SendReceipt {
            provider_id: first.clone(),
            part_ids: ids,
        }),
        None => Err(SendError::permanent(
            None,
            format!("nothing to send: all parts were accepted before (skip_parts = {skip})"),
        )),
    }
}

/// Classifies an answer whose body we cannot read, by HTTP status alone.
pub(crate) fn status_error(ans: &Answer) -> SendError {
    let code = Some(ans.status.as_u16().to_string());
    let text = excerpt(&ans.body);
    match ans.status.as_u16() {
        429 => SendError::back_off(ErrorScope::Channel, code, text, ans.retry_after),
        401 | 403 => SendError::channel_disabled(code, text),
        s if s >= 500 || s == 408 => SendError::retry_later(code, text),
        _ => SendError::permanent(code, text),
    }
}
