//! `GET /api/v1/events`: the staff pages' live feed over a websocket.
//!
//! The socket subscribes to the bus *before* reading the backlog, then replays every event
//! with `seq > after` from storage, then streams live events. Live events arrive from several
//! tasks and so may be out of order; whenever one arrives beyond the next expected number
//! (or the subscription lagged), the gap is read back from storage, which is the source of
//! truth: sequence numbers are assigned under a per-tenant row lock, so once event N is
//! visible every event before it is committed too. A page therefore never misses an event.
//!
//! Besides the numbered events, the socket carries `{"type": "typing", "data":
//! {"conversation_id"}}` frames without a `seq` (a web chat or Signal customer is typing):
//! best effort, relayed from the other nodes over NATS, never replayed.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use switchboard_app::App;
use switchboard_core::{Event, TenantId};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::extract::{ApiQuery, StaffAuth};

/// Buffer sizes for every websocket this server accepts (agent events, web chat), with
/// `max_message` the largest message the peer may send. tungstenite's defaults (a 128 KiB
/// read buffer allocated for each connection, a 128 KiB write buffer, 64 MiB messages) cost
/// about 130 KiB per idle socket, 1.3 GB for 10,000 agents; our frames are small JSON, so
/// 4 KiB buffers (they grow when a larger frame arrives) keep
/// 10,000 agent sockets within the memory budget (architecture.md, README "Performance").
pub(crate) fn lean_socket(ws: WebSocketUpgrade, max_message: usize) -> WebSocketUpgrade {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(max_message)
        .max_frame_size(max_message)
}

/// The largest message an agent page may send on its event socket: it only answers pings
/// and closes, so anything bigger is refused.
const AGENT_MAX_MESSAGE: usize = 4 * 1024;

/// Event routes.
pub fn router() -> Router<App> {
    Router::new().route("/api/v1/events", get(events))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<i64>,
}

/// Refuses cross-site websocket opens (a websocket is not covered by CORS, and the cookie
/// would be sent): the `Origin`, when present, must name the host the request was sent to.
pub fn check_origin(parts: &Parts) -> Result<(), ApiError> {
    let Some(origin) = parts.headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::forbidden("cross-origin websocket refused"))
    }
}

async fn events(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = req.into_parts();
    check_origin(&parts)?;
    let auth =
        <StaffAuth as axum::extract::FromRequestParts<App>>::from_request_parts(&mut parts, &app)
            .await?;
    let ApiQuery(q) =
        <ApiQuery<EventsQuery> as axum::extract::FromRequestParts<App>>::from_request_parts(
            &mut parts, &app,
        )
        .await?;
    let ws = <WebSocketUpgrade as axum::extract::FromRequestParts<App>>::from_request_parts(
        &mut parts, &app,
    )
    .await
    .map_err(|e| ApiError::bad_request("websocket_required", e.to_string()))?;
    let tenant = auth.user.tenant_id;
    Ok(
        lean_socket(ws, AGENT_MAX_MESSAGE).on_upgrade(move |socket| async move {
            if let Err(e) = stream(app, tenant, q.after, socket).await {
                tracing::debug!(error = %e, "event socket closed");
            }
        }),
    )
}

async fn send_event(socket: &mut WebSocket, e: &Event) -> anyhow::Result<()> {
    let text = serde_json::to_string(e)?;
    socket.send(WsMessage::Text(text.into())).await?;
    Ok(())
}

/// Sends stored events after `*last`, advancing it.
async fn catch_up(
    app: &App,
    tenant: TenantId,
    last: &mut i64,
    socket: &mut WebSocket,
) -> anyhow::Result<()> {
    loop {
        let batch = app.store.events_after(tenant, *last, 500).await?;
        let n = batch.len();
        for e in &batch {
            send_event(socket, e).await?;
            *last = e.seq;
        }
        if n < 500 {
            return Ok(());
        }
    }
}

async fn stream(
    app: App,
    tenant: TenantId,
    after: Option<i64>,
    mut socket: WebSocket,
) -> anyhow::Result<()> {
    let mut rx = app.bus.subscribe();
    let mut typing = app.desk.subscribe_typing();
    let mut last = match after {
        Some(a) => a.max(0),
        None => app.store.last_event_seq(tenant).await?,
    };
    catch_up(&app, tenant, &mut last, &mut socket).await?;
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(25));
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) => {
                    let e: Arc<Event> = e;
                    if e.tenant_id != tenant || e.seq <= last {
                        continue;
                    }
                    if e.seq == last + 1 {
                        send_event(&mut socket, &e).await?;
                        last = e.seq;
                    } else {
                        catch_up(&app, tenant, &mut last, &mut socket).await?;
                    }
                }
                Err(RecvError::Lagged(_)) => catch_up(&app, tenant, &mut last, &mut socket).await?,
                Err(RecvError::Closed) => return Ok(()),
            },
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            },
            signal = typing.recv() => match signal {
                // Not numbered: a page that missed one has nothing to catch up on.
                Ok(t) if t.tenant_id == tenant => {
                    let frame = serde_json::json!({"type": "typing", "data": t});
                    socket.send(WsMessage::Text(frame.to_string().into())).await?;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = ping.tick() => socket.send(WsMessage::Ping(Vec::new().into())).await?,
        }
    }
}
