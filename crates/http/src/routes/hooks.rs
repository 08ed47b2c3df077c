//! Provider webhooks: `/hooks/{kind}/{channel_id}`.
//!
//! The body is read raw (never re-serialised: WhatsApp signs its own bytes) up to
//! `limits.max_webhook_body_bytes`, then handed with headers and query to
//! [`App::receive_hook`], which verifies, parses and commits before we answer. Signal has no
//! webhook (its receiver task reads signal-cli on loopback), so `/hooks/signal/…` is 404.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use switchboard_app::App;
use switchboard_app::channels::HookError;
use switchboard_channels::RawRequest;
use switchboard_core::{ChannelId, ChannelKind};

use crate::error::ApiError;

/// Webhook routes.
pub fn router() -> Router<App> {
    Router::new().route("/hooks/{kind}/{id}", get(handshake).post(receive))
}

fn target(kind: &str, id: &str) -> Result<(ChannelKind, ChannelId), ApiError> {
    let kind: ChannelKind = kind.parse().map_err(|_| ApiError::not_found("channel"))?;
    let id: ChannelId = id.parse().map_err(|_| ApiError::not_found("channel"))?;
    Ok((kind, id))
}

fn hook_error(e: HookError, refused: StatusCode) -> ApiError {
    match e {
        HookError::NotFound => ApiError::not_found("channel"),
        HookError::Rejected(m) => ApiError::new(refused, "signature_invalid", m),
        HookError::BadPayload(m) => ApiError::bad_request("invalid_payload", m),
        HookError::Unavailable(m) => {
            tracing::warn!(error = %m, "webhook not stored; the provider will retry");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "not stored; retry later",
            )
        }
        HookError::Misconfigured(m) => {
            tracing::error!(error = %m, "webhook for a misconfigured channel");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "channel_misconfigured",
                "this channel's credentials are unusable; see the server log",
            )
        }
    }
}

fn raw_request(
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    body: bytes::Bytes,
) -> RawRequest {
    RawRequest {
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        query,
        body,
    }
}

/// `GET /hooks/whatsapp/{id}?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
/// - Answers the challenge as plain text when the mode and verify token match; 403 otherwise.
/// - Other kinds have no handshake: 404.
async fn handshake(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let (kind, id) = target(&kind, &id)?;
    if kind != ChannelKind::Whatsapp {
        return Err(ApiError::not_found("channel"));
    }
    let req = raw_request(&headers, query, bytes::Bytes::new());
    let challenge = app
        .whatsapp_handshake(id, &req)
        .await
        .map_err(|e| hook_error(e, StatusCode::FORBIDDEN))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge,
    )
        .into_response())
}

/// `POST /hooks/{whatsapp|telegram}/{id}`
/// - 401 and nothing stored when the signature (`X-Hub-Signature-256`) or secret token
///   (`X-Telegram-Bot-Api-Secret-Token`) is missing or wrong.
/// - 404 for an unknown channel (or one of another kind); 413 above
///   `limits.max_webhook_body_bytes`.
/// - 200 only after every message of the payload is committed (a duplicate is a no-op);
///   status reports move their message's timeline forward.
/// - 503 when storage fails, so the provider retries.
async fn receive(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let (kind, id) = target(&kind, &id)?;
    let limit = app.config.limits.max_webhook_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("webhook bodies are limited to {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Errors here are the limit, or a client that went away (which reads no answer).
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let receipt = app
        .receive_hook(kind, id, raw_request(&headers, query, body))
        .await
        .map_err(|e| hook_error(e, StatusCode::UNAUTHORIZED))?;
    Ok(Json(json!({
        "ok": true,
        "stored": receipt.stored,
        "duplicates": receipt.duplicates,
        "statuses": receipt.statuses,
    })))
}
