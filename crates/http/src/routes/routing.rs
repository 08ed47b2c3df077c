//! Routing for the desk and the supervisor view: queues, presence and agent settings, desk
//! lists with search, take, transfer, internal notes, reopen, canned responses and the
//! supervisor snapshot. Staff session and CSRF as every staff route; roles are checked by
//! the use cases in `switchboard_app::routing::desk` (agents act on their own work,
//! supervisors and admins manage queues and reassign). Resolve with a wrap-up code is
//! `POST /api/v1/conversations/{id}/resolve` (module `conversations`).

use crate::error::parse_id as parse;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::routing::QueueSettings;
use switchboard_app::routing::desk::{AgentSettingsInput, DeskView, TransferTarget};
use switchboard_core::routing::AgentPresence;
use switchboard_core::{CannedId, ConversationId, QueueId, UserId};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, StaffAuth};

/// Routing routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/queues", get(list_queues).post(create_queue))
        .route(
            "/api/v1/queues/{id}",
            get(show_queue).put(update_queue).delete(delete_queue),
        )
        .route("/api/v1/me/presence", put(set_presence))
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", put(update_agent))
        .route("/api/v1/desk/conversations", get(desk_list))
        .route("/api/v1/conversations/{id}/take", post(take))
        .route("/api/v1/conversations/{id}/transfer", post(transfer))
        .route(
            "/api/v1/conversations/{id}/notes",
            get(list_notes).post(add_note),
        )
        .route("/api/v1/conversations/{id}/reopen", post(reopen))
        .route(
            "/api/v1/canned-responses",
            get(list_canned).post(create_canned),
        )
        .route(
            "/api/v1/canned-responses/{id}",
            put(update_canned).delete(delete_canned),
        )
        .route("/api/v1/canned-responses/{id}/render", post(render_canned))
        .route("/api/v1/supervisor", get(supervisor))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    name: String,
    #[serde(default)]
    settings: QueueSettings,
}

/// `GET /api/v1/queues`: `{"queues": [{id, name, settings, created_at, updated_at}]}` by name.
async fn list_queues(
    State(app): State<App>,
    auth: StaffAuth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!({"queues": app.list_queues(&auth.user).await?})))
}

/// `GET /api/v1/queues/{id}`: one queue; `404` when unknown.
async fn show_queue(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: QueueId = parse(&id)?;
    let queue = app
        .list_queues(&auth.user)
        .await?
        .into_iter()
        .find(|q| q.id == id)
        .ok_or_else(|| ApiError::not_found("queue"))?;
    Ok(Json(json!({"queue": queue})))
}

/// `POST /api/v1/queues` `{"name", "settings"?}` (supervisor): `201 {"queue"}`.
/// - Settings are checked with the routing rules; every problem is named in one `422`.
/// - `409` when the name is taken.
async fn create_queue(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = app
        .save_queue(&auth.user, None, &body.name, body.settings)
        .await?;
    audit_queue(&app, &auth, queue.id, "create").await?;
    Ok((StatusCode::CREATED, Json(json!({"queue": queue}))))
}

/// `PUT /api/v1/queues/{id}` `{"name", "settings"?}` (supervisor): replaces name and settings.
async fn update_queue(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = app
        .save_queue(&auth.user, Some(parse(&id)?), &body.name, body.settings)
        .await?;
    audit_queue(&app, &auth, queue.id, "update").await?;
    Ok(Json(json!({"queue": queue})))
}

/// `DELETE /api/v1/queues/{id}` (supervisor): `204`; `409` while conversations wait in it.
async fn delete_queue(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: QueueId = parse(&id)?;
    app.delete_queue(&auth.user, id).await?;
    audit_queue(&app, &auth, id, "delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records a queue change in the audit log (`config.queue_change`).
async fn audit_queue(
    app: &App,
    auth: &StaffAuth,
    queue: QueueId,
    change: &str,
) -> Result<(), ApiError> {
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::QUEUE_CHANGE,
        format!("queue:{queue}"),
        json!({"change": change}),
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    presence: AgentPresence,
}

/// `PUT /api/v1/me/presence` `{"presence": "available" | "away" | "offline"}`: your own
/// presence; `{"agent"}` with your routing settings. Going available starts routing.
async fn set_presence(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<PresenceBody>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = app.set_presence(&auth.user, body.presence).await?;
    Ok(Json(json!({"agent": agent})))
}

/// `GET /api/v1/agents`: every staff member with presence, capacity, skills, queues, load
/// and assigned conversations.
async fn list_agents(
    State(app): State<App>,
    auth: StaffAuth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!({"agents": app.list_agents(&auth.user).await?})))
}

/// `PUT /api/v1/agents/{id}` `{"presence"?, "capacity"?, "capacity_per_channel"?,
/// "skills"?, "queues"?}` (supervisor; anyone for their own presence): absent fields keep
/// their value. `422` for a capacity outside 1–100, a bad skill name or an unknown queue.
async fn update_agent(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentSettingsInput>,
) -> Result<impl IntoResponse, ApiError> {
    let user: UserId = parse(&id)?;
    let agent = app.update_agent(&auth.user, user, body).await?;
    Ok(Json(json!({"agent": agent})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeskQuery {
    view: Option<DeskView>,
    q: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/desk/conversations?view=mine|my_queues|unassigned|all|resolved&q=text&limit=N`:
/// inbox rows with their routing fields (`routing`: queue, priority, enqueued_at, last
/// agent, SLA marks…), newest activity first. `all` needs the supervisor role; `q` matches
/// the contact's name or the last message, case-insensitively.
async fn desk_list(
    State(app): State<App>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<DeskQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let rows = app
        .desk_list(
            &auth.user,
            q.view.unwrap_or(DeskView::Mine),
            q.q,
            q.limit.unwrap_or(100).clamp(1, 500),
        )
        .await?;
    Ok(Json(json!({"conversations": rows})))
}

/// `POST /api/v1/conversations/{id}/take`: you take a waiting conversation of a queue you
/// serve. `409` with the reason when you are not available, lack a skill, are at capacity,
/// do not serve the queue, or someone took it first.
async fn take(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ConversationId = parse(&id)?;
    Ok(Json(
        json!({"conversation": app.take(&auth.user, id).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to_agent: Option<String>,
    to_queue: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/conversations/{id}/transfer` `{"to_agent" | "to_queue", "note"?}`:
/// - to an agent: assigned now if they are available, skilled and have room (`409` with the
///   reason otherwise); to a queue: waits there and the next round assigns it.
/// - The note is recorded as an internal `transfer` note (never sent to the customer).
/// - Agents transfer their own conversations; supervisors anyone's (reassign).
async fn transfer(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ConversationId = parse(&id)?;
    let target = match (body.to_agent.as_deref(), body.to_queue.as_deref()) {
        (Some(a), None) => TransferTarget::Agent(parse(a)?),
        (None, Some(q)) => TransferTarget::Queue(parse(q)?),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "send exactly one of `to_agent` or `to_queue`",
            ));
        }
    };
    let row = app.transfer(&auth.user, id, target, body.note).await?;
    Ok(Json(json!({"conversation": row})))
}

/// `GET /api/v1/conversations/{id}/notes`: internal notes, oldest first.
async fn list_notes(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"notes": app.list_notes(&auth.user, parse(&id)?).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    body: String,
}

/// `POST /api/v1/conversations/{id}/notes` `{"body"}`: `201 {"note"}`; staff only, never
/// sent to the customer; a `note_added` event reaches the desks.
async fn add_note(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<impl IntoResponse, ApiError> {
    let note = app.add_note(&auth.user, parse(&id)?, &body.body).await?;
    Ok((StatusCode::CREATED, Json(json!({"note": note}))))
}

/// `POST /api/v1/conversations/{id}/reopen`: a resolved conversation waits in its queue
/// again (`422` unless resolved; `409` when the customer has another open conversation on
/// that channel).
async fn reopen(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"conversation": app.reopen(&auth.user, parse(&id)?).await?}),
    ))
}

/// `GET /api/v1/canned-responses`: `{"canned_responses": [{id, shortcut, title, body}]}`.
async fn list_canned(
    State(app): State<App>,
    auth: StaffAuth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({"canned_responses": app.list_canned(&auth.user).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CannedBody {
    shortcut: String,
    title: String,
    body: String,
}

/// `POST /api/v1/canned-responses` `{"shortcut", "title", "body"}` (supervisor): `201`.
/// The body may use `{{contact.name}}`, `{{agent.name}}`, `{{business.name}}`,
/// `{{queue.name}}`, `{{conversation.id}}`. `409` when the shortcut is taken.
async fn create_canned(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(b): ApiJson<CannedBody>,
) -> Result<impl IntoResponse, ApiError> {
    let c = app
        .save_canned(&auth.user, None, &b.shortcut, &b.title, &b.body)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"canned_response": c}))))
}

/// `PUT /api/v1/canned-responses/{id}` (supervisor): replaces it.
async fn update_canned(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CannedBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id: CannedId = parse(&id)?;
    let c = app
        .save_canned(&auth.user, Some(id), &b.shortcut, &b.title, &b.body)
        .await?;
    Ok(Json(json!({"canned_response": c})))
}

/// `DELETE /api/v1/canned-responses/{id}` (supervisor): `204`.
async fn delete_canned(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    app.delete_canned(&auth.user, parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderBody {
    conversation_id: String,
}

/// `POST /api/v1/canned-responses/{id}/render` `{"conversation_id"}`: `{"text", "missing"}`,
/// the body with the conversation's variables filled in (`missing`: variables with no
/// value, left as written). Nothing is sent.
async fn render_canned(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RenderBody>,
) -> Result<impl IntoResponse, ApiError> {
    let rendered = app
        .render_canned(&auth.user, parse(&id)?, parse(&b.conversation_id)?)
        .await?;
    Ok(Json(json!(rendered)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SupervisorQuery {
    hours: Option<u32>,
}

/// `GET /api/v1/supervisor?hours=N` (supervisor): per queue waiting, longest wait, SLA at
/// risk and breached, agents available; every agent with state, load and conversations;
/// agents by state; volume and average wait per hour for the last N hours (1–24, default 8).
async fn supervisor(
    State(app): State<App>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<SupervisorQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!(
        app.supervisor_view(&auth.user, q.hours.unwrap_or(8))
            .await?
    )))
}
