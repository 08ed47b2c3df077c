//! The customer side of web chat: the page, its websocket, and an HTTP fallback.
//!
//! Protocol: docs/api.md, "Web chat". Frames are parsed and validated by
//! `switchboard_channels::webchat`; messages enter the same ingest pipeline as every webhook,
//! and replies reach the page through the outbox sender and the `WebchatHub`.

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::services::{ServiceError, Visitor};
use switchboard_channels::webchat::{self, ClientFrame, ServerFrame};
use switchboard_core::{ChannelId, ConversationId};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::assets;

/// Web chat routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/chat/{channel}", get(page))
        .route("/chat/{channel}/ws", get(socket))
        .route("/chat/{channel}/session", post(new_session))
        .route("/chat/{channel}/messages", post(post_message))
        .route("/chat/{channel}/media/{message_id}", get(media))
}

/// The visitor token of `Authorization: Bearer <token>`, or 401.
fn bearer_token(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer <token>` (get a token from POST /chat/{channel}/session)",
            )
        })
}

/// `GET /chat/{channel}/media/{message_id}` with `Authorization: Bearer <token>`: the file of
/// a media message in the visitor's own conversation (what the page shows for a file an
/// agent sent). Any other message, including another visitor's, answers 404 exactly like
/// an unknown one.
async fn media(
    State(app): State<App>,
    Path((channel, message_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let channel = parse_channel(&channel)?;
    let token = bearer_token(&headers)?;
    let message_id: switchboard_core::MessageId = message_id
        .parse()
        .map_err(|_| ApiError::not_found("message"))?;
    let visitor = app.webchat_known_visitor(channel, &token).await?;
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "reading web chat media failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the file could not be read; try again later",
        )
    };
    let conversation = app
        .store
        .webchat_conversation(channel, &visitor.visitor_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let message = app
        .store
        .message(visitor.tenant.id, message_id)
        .await
        .map_err(|e| internal(&e))?
        .filter(|m| m.conversation_id == conversation.id)
        .ok_or_else(|| ApiError::not_found("message"))?;
    let switchboard_core::Content::Media { media, .. } = &message.content else {
        return Err(ApiError::not_found("message"));
    };
    let key = media
        .stored_key
        .as_deref()
        .ok_or_else(|| ApiError::not_found("message"))?;
    let bytes = app
        .media_store()
        .read(visitor.tenant.id, key, media.sha256.as_deref())
        .await
        .map_err(|e| internal(&e))?;
    Ok(crate::routes::media::file_response(
        bytes,
        media.mime_type.as_deref(),
        media.filename.as_deref(),
    ))
}

fn parse_channel(raw: &str) -> Result<ChannelId, ApiError> {
    raw.parse().map_err(|e: switchboard_core::ids::InvalidId| {
        ApiError::not_found(&format!("web chat channel ({e})"))
    })
}

/// `GET /chat/{channel}`: the customer page (404 for unknown channels).
async fn page(State(app): State<App>, Path(channel): Path<String>) -> Result<Response, ApiError> {
    app.webchat_channel(parse_channel(&channel)?).await?;
    assets::serve("chat/index.html").ok_or_else(|| ApiError::not_found("page"))
}

/// `POST /chat/{channel}/session`: a new visitor token (HTTP fallback clients).
async fn new_session(
    State(app): State<App>,
    Path(channel): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let v = app.webchat_visitor(parse_channel(&channel)?, None).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": v.token}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    client_msg_id: String,
    text: String,
}

/// `POST /chat/{channel}/messages` with `Authorization: Bearer <token>`
/// - 202 once the message is committed; a resend with the same `client_msg_id` answers
///   202 with `duplicate: true` and stores nothing.
async fn post_message(
    State(app): State<App>,
    Path(channel): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let channel = parse_channel(&channel)?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer <token>` (get a token from POST /chat/{channel}/session)",
            )
        })?;
    let ApiJson(body) =
        <ApiJson<PostBody> as axum::extract::FromRequest<App>>::from_request(req, &app).await?;
    let visitor = app.webchat_known_visitor(channel, &token).await?;
    webchat::check_client_id(&body.client_msg_id).map_err(frame_to_api)?;
    webchat::check_text(&body.text).map_err(frame_to_api)?;
    let accepted = app
        .webchat_receive(
            &visitor,
            ClientFrame::Message {
                client_msg_id: body.client_msg_id,
                text: body.text,
            },
        )
        .await?;
    if let Some(m) = &accepted.message {
        // The visitor's open tabs, on any node.
        app.webchat.deliver_message(m);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "message_id": accepted.message_id,
            "conversation_id": accepted.conversation_id,
            "duplicate": accepted.duplicate,
        })),
    )
        .into_response())
}

fn frame_to_api(e: webchat::FrameError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message)
}

/// `GET /chat/{channel}/ws`: the customer page's websocket.
async fn socket(
    State(app): State<App>,
    Path(channel): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let channel = parse_channel(&channel)?;
    app.webchat_channel(channel).await?;
    let ws = <WebSocketUpgrade as axum::extract::FromRequestParts<App>>::from_request_parts(
        &mut parts, &app,
    )
    .await
    .map_err(|e| ApiError::bad_request("websocket_required", e.to_string()))?;
    Ok(
        super::events::lean_socket(ws, 64 * 1024).on_upgrade(move |socket| async move {
            if let Err(e) = run_socket(app, channel, socket).await {
                tracing::debug!(error = %format!("{e:#}"), "web chat socket closed");
            }
        }),
    )
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> anyhow::Result<()> {
    socket
        .send(WsMessage::Text(serde_json::to_string(frame)?.into()))
        .await?;
    Ok(())
}

fn error_frame(code: &'static str, message: impl Into<String>) -> ServerFrame {
    ServerFrame::Error {
        code,
        message: message.into(),
    }
}

/// Waits for `hello`, then serves the visitor until the socket closes.
async fn run_socket(app: App, channel: ChannelId, mut socket: WebSocket) -> anyhow::Result<()> {
    let visitor = loop {
        let first = tokio::time::timeout(Duration::from_secs(15), socket.recv()).await;
        let text = match first {
            Ok(Some(Ok(WsMessage::Text(t)))) => t,
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            Ok(Some(Ok(_))) => {
                send(
                    &mut socket,
                    &error_frame("hello_required", "send {\"type\":\"hello\"} first"),
                )
                .await?;
                return Ok(());
            }
            Ok(_) => return Ok(()),
            Err(_) => {
                send(
                    &mut socket,
                    &error_frame("hello_timeout", "no hello within 15 seconds"),
                )
                .await?;
                return Ok(());
            }
        };
        match webchat::parse_client_frame(&text) {
            Ok(ClientFrame::Hello { token }) => {
                break app.webchat_visitor(channel, token.as_deref()).await?;
            }
            Ok(_) => {
                send(
                    &mut socket,
                    &error_frame("hello_required", "send {\"type\":\"hello\"} first"),
                )
                .await?
            }
            Err(e) => send(&mut socket, &error_frame(e.code, e.message)).await?,
        }
    };
    let (conversation, history) = app.webchat_history(&visitor).await?;
    let title = visitor
        .channel
        .settings
        .title
        .clone()
        .unwrap_or_else(|| visitor.tenant.name.clone());
    send(
        &mut socket,
        &ServerFrame::Welcome {
            token: visitor.token.clone(),
            title,
            business: visitor.tenant.name.clone(),
            messages: history,
        },
    )
    .await?;

    let (tx, mut rx) = mpsc::channel::<ServerFrame>(256);
    let mut registered: Option<(ConversationId, switchboard_app::webchat::Registration)> =
        conversation.map(|c| (c, app.webchat.register(c, tx.clone())));

    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(f) => send(&mut socket, &f).await?,
                None => return Ok(()),
            },
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    let reply = handle_frame(&app, &visitor, &t, &tx, &mut registered).await;
                    if let Some(f) = reply {
                        send(&mut socket, &f).await?;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => return Ok(()),
                Some(Ok(WsMessage::Binary(_))) => {
                    send(&mut socket, &error_frame("invalid_frame", "frames must be JSON text")).await?;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            },
        }
    }
}

async fn handle_frame(
    app: &App,
    visitor: &Visitor,
    text: &str,
    tx: &mpsc::Sender<ServerFrame>,
    registered: &mut Option<(ConversationId, switchboard_app::webchat::Registration)>,
) -> Option<ServerFrame> {
    let frame = match webchat::parse_client_frame(text) {
        Ok(f) => f,
        Err(e) => return Some(error_frame(e.code, e.message)),
    };
    let client_msg_id = match &frame {
        ClientFrame::Ping => return Some(ServerFrame::Pong),
        ClientFrame::Typing => {
            // Best effort: the desks of this conversation show it; nothing is stored.
            if let Some((conversation, _)) = registered {
                app.customer_typing(visitor.tenant.id, *conversation);
            }
            return None;
        }
        ClientFrame::Hello { .. } => {
            return Some(error_frame("already_greeted", "hello was already received"));
        }
        ClientFrame::Message { client_msg_id, .. } | ClientFrame::Choice { client_msg_id, .. } => {
            client_msg_id.clone()
        }
    };
    match app.webchat_receive(visitor, frame).await {
        Ok(acc) => {
            // A first message opens the conversation: start receiving its replies.
            if registered.as_ref().map(|(c, _)| *c) != Some(acc.conversation_id) {
                *registered = Some((
                    acc.conversation_id,
                    app.webchat.register(acc.conversation_id, tx.clone()),
                ));
            }
            if let Some(m) = &acc.message {
                // Other tabs of the same visitor show the message too, on any node.
                app.webchat.deliver_message(m);
            }
            Some(ServerFrame::Accepted {
                client_msg_id,
                message_id: acc.message_id,
                duplicate: acc.duplicate,
            })
        }
        Err(ServiceError::Invalid(m)) => Some(error_frame("invalid_message", m)),
        Err(e) => {
            tracing::warn!(error = %e, "web chat message not stored");
            Some(error_frame(
                "unavailable",
                "your message was not stored; it will be resent",
            ))
        }
    }
}
