//! Conversations for staff: inbox views, one conversation, its messages, replies, assignment
//! and resolution. Every lookup is scoped by the staff member's tenant: another tenant's id
//! answers 404, exactly like an id that does not exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::services::ServiceError;
use switchboard_core::ports::ConversationFilter;
use switchboard_core::{Content, ConversationId, ConversationState, MessageId, Role, UserId};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, StaffAuth};

/// Conversation routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/conversations", get(list))
        .route("/api/v1/conversations/{id}", get(show))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(messages).post(reply),
        )
        .route(
            "/api/v1/conversations/{id}/messages/{message_id}/retry",
            post(retry),
        )
        .route("/api/v1/conversations/{id}/typing", post(typing))
        .route("/api/v1/desk/counts", get(counts))
        .route("/api/v1/conversations/{id}/assign", post(assign))
        .route("/api/v1/conversations/{id}/resolve", post(resolve))
        .route("/api/v1/conversations/{id}/flow", post(start_flow))
        .route(
            "/api/v1/flows/{flow_id}/start",
            post(start_flow_for_contact),
        )
}

/// A conversation id from the path.
fn parse_id(raw: &str) -> Result<ConversationId, ApiError> {
    crate::error::parse_id(raw)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    view: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/conversations?view=open|mine|unassigned|resolved&limit=N`
async fn list(
    State(app): State<App>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    use ConversationState::*;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let filter = match q.view.as_deref().unwrap_or("open") {
        "open" => ConversationFilter {
            states: vec![Bot, Queued, Assigned],
            assignee: None,
            limit,
        },
        "mine" => ConversationFilter {
            states: vec![Assigned],
            assignee: Some(auth.user.id),
            limit,
        },
        "unassigned" => ConversationFilter {
            states: vec![Bot, Queued],
            assignee: None,
            limit,
        },
        "resolved" => ConversationFilter {
            states: vec![Resolved],
            assignee: None,
            limit,
        },
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown view `{other}`: use open, mine, unassigned or resolved"),
            ));
        }
    };
    let conversations = app
        .store
        .list_conversations(auth.user.tenant_id, &filter)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({"conversations": conversations})))
}

/// `GET /api/v1/conversations/{id}`: the conversation, its contact and their identities,
/// what the bot collected (`records`), the latest hand-off summary (`bot_summary`:
/// `{queue, skill, priority, summary, flow}` or null) and the routing fields (`routing`:
/// queue, priority, enqueued_at, last agent, SLA marks, timer, wrap-up code).
async fn show(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let conv = app.conversation_for(&auth.user, parse_id(&id)?).await?;
    let (contact, identities) = app
        .store
        .contact(auth.user.tenant_id, conv.conversation.contact_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let (records, bot_summary) = app.bot_records(&auth.user, conv.conversation.id).await?;
    let routing = app
        .store
        .routed_conversation(auth.user.tenant_id, conv.conversation.id)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({
        "conversation": conv, "contact": contact, "identities": identities,
        "bot_summary": bot_summary, "records": records, "routing": routing,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartFlowBody {
    flow_id: String,
}

/// `POST /api/v1/conversations/{id}/flow` `{"flow_id"}`: starts a loaded flow.
/// - The conversation goes to state `bot` (assignee cleared) and the flow's first messages
///   follow from the job worker; answers `202 {"conversation"}`.
/// - `404` for an unknown flow id (nothing changes); `422` for a resolved conversation.
async fn start_flow(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StartFlowBody>,
) -> Result<impl IntoResponse, ApiError> {
    let conv = app
        .start_flow(&auth.user, parse_id(&id)?, body.flow_id.trim())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"conversation": conv}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartForContactBody {
    contact_id: String,
    channel_id: String,
    template: Option<TemplateBody>,
}

/// `POST /api/v1/flows/{flow_id}/start` `{"contact_id", "channel_id", "template"?}`
/// (supervisor): the campaign trigger; answers `202 {"conversation"}`.
/// - The flow starts on the contact's open conversation on that channel, or on a new one
///   opened for it; its messages go on the bulk lane, behind live replies.
/// - WhatsApp outside the 24-hour window: `template` (`{"name", "language", "variables"}`)
///   is sent alone and the flow starts when the customer answers; without it the flow must
///   open with a template, else `422 template_required`. Inside the window it is not sent.
/// - `409` when the contact opted out on that channel or people have their conversation
///   there; `404` for an unknown flow, contact or channel; `422` when the contact has no
///   address on the channel. Nothing is written when refused.
async fn start_flow_for_contact(
    State(app): State<App>,
    auth: StaffAuth,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<StartForContactBody>,
) -> Result<impl IntoResponse, ApiError> {
    let target = switchboard_app::flows_runtime::admin::CampaignTarget {
        contact: crate::error::parse_id(&body.contact_id)?,
        channel: crate::error::parse_id(&body.channel_id)?,
        template: body.template.map(|t| Content::Template {
            name: t.name.trim().to_string(),
            language: t.language.trim().to_string(),
            variables: t.variables,
        }),
    };
    let conv = app
        .start_flow_for_contact(&auth.user, flow_id.trim(), target)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"conversation": conv}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesQuery {
    limit: Option<u32>,
}

/// `GET /api/v1/conversations/{id}/messages?limit=N`: oldest first.
async fn messages(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    app.conversation_for(&auth.user, id).await?;
    let messages = app
        .store
        .list_messages(
            auth.user.tenant_id,
            id,
            q.limit.unwrap_or(200).clamp(1, 1000),
        )
        .await
        .map_err(ServiceError::from)?;
    // Message text is contact data: record the view before it leaves.
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::CONVERSATION_VIEW,
        format!("conversation:{id}"),
        json!({"messages": messages.len()}),
    )
    .await?;
    Ok(Json(json!({"messages": messages})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    text: Option<String>,
    template: Option<TemplateBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    name: String,
    language: String,
    #[serde(default)]
    variables: Vec<String>,
}

/// `POST /api/v1/conversations/{id}/messages` `{"text"}` or
/// `{"template": {"name", "language", "variables"}}`
/// - Stores the reply with its outbox row (status `queued`) and answers 201; the sender
///   delivers it. An unowned conversation is assigned to the replying agent.
/// - 422 `template_required` for free-form text when the WhatsApp 24 h window is closed.
async fn reply(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let content = match (body.text, body.template) {
        (Some(text), None) => Content::text(text),
        (None, Some(t)) => {
            if t.name.trim().is_empty() || t.language.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    "a template needs a name and a language code (e.g. en_US)",
                ));
            }
            Content::Template {
                name: t.name,
                language: t.language,
                variables: t.variables,
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "send exactly one of `text` or `template`",
            ));
        }
    };
    let message = app.reply_with(&auth.user, parse_id(&id)?, content).await?;
    Ok((StatusCode::CREATED, Json(json!({"message": message}))))
}

/// `POST /api/v1/conversations/{id}/messages/{message_id}/retry`: sends a failed message
/// again as the SAME message (same id and outbox row; status back to `queued`, attempts
/// reset, failure cleared; a `message_status` event tells the desks; the audit log records
/// `message.retry` with the ids). Answers `202 {"message"}`.
/// - `409` unless the message is an outbound one that failed; `409 recipient_unreachable`
///   when the customer cannot be reached on the channel (blocked us, not on WhatsApp) and
///   `409` when they opted out of templates; `404` for a message not in this conversation.
/// - Otherwise the reply's rules: `422 template_required` for free-form text when the
///   WhatsApp 24 h window is closed, `422` for a resolved conversation. Nothing changes
///   when refused.
async fn retry(
    State(app): State<App>,
    auth: StaffAuth,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let message_id: MessageId = crate::error::parse_id(&message_id)?;
    let message = app
        .retry_message(&auth.user, parse_id(&id)?, message_id)
        .await
        .map_err(|e| match e {
            // The customer cannot be reached: it would only fail again.
            ServiceError::Unreachable(m) => {
                ApiError::new(StatusCode::CONFLICT, "recipient_unreachable", m)
            }
            other => other.into(),
        })?;
    // Sending customer data again is audited (ids only); the retry is committed already.
    app.audit_after(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::MESSAGE_RETRY,
        format!("message:{}", message.id),
        json!({"conversation_id": message.conversation_id}),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(json!({"message": message}))))
}

/// `POST /api/v1/conversations/{id}/typing` (body ignored): the agent is typing. Tells the
/// customer where the channel can (Telegram chat action, WhatsApp typing indicator with a
/// read mark, Signal typing, the web chat page), at most once per 5 s per conversation,
/// best effort: never queued, dropped on failure. `{"typing": "sent" | "throttled" |
/// "unsupported"}`; `422` for a resolved conversation.
async fn typing(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let outcome = app.agent_typing(&auth.user, parse_id(&id)?).await?;
    Ok(Json(json!({"typing": outcome})))
}

/// `GET /api/v1/desk/counts`: `{"counts": {"mine", "my_queues", "unassigned", "all"?}}`,
/// the number of open conversations in each desk view, in one request (`all` for
/// supervisors and admins only, like the view itself).
async fn counts(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    let c = app.desk_counts(&auth.user).await?;
    let mut counts = json!({"mine": c.mine, "my_queues": c.my_queues, "unassigned": c.unassigned});
    if auth.user.role.includes(Role::Supervisor) {
        counts["all"] = json!(c.all);
    }
    Ok(Json(json!({"counts": counts})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    user_id: Option<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/conversations/{id}/assign` `{"user_id"?, "force"?}`: to yourself by
/// default. A conversation in a queue goes only to an available agent with room and the
/// skills it needs: `409` (away/offline, at capacity) or `422` (missing skills) naming the
/// reason. Supervisors may send `"force": true` to skip those checks (`403` for agents).
async fn assign(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // The body is optional: an empty one means "assign to me".
    let body: AssignBody = if body.iter().all(u8::is_ascii_whitespace) {
        AssignBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("request body is not valid: {e}"))
        })?
    };
    let to = match body.user_id {
        Some(raw) => Some(crate::error::parse_id::<UserId>(&raw)?),
        None => None,
    };
    let conv = app
        .assign_to(&auth.user, parse_id(&id)?, to, body.force)
        .await?;
    Ok(Json(json!({"conversation": conv})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    wrap_up_code: Option<String>,
}

/// `POST /api/v1/conversations/{id}/resolve` `{"wrap_up_code"?}` (body optional):
/// - The conversation's queue decides whether a wrap-up code is required and which are
///   allowed: `422` naming the allowed codes when one is missing or unknown.
/// - Agents resolve their own or unassigned conversations (`409` for someone else's);
///   supervisors any. `422` when already resolved. The freed slot is routed at once.
async fn resolve(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: ResolveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("request body is not valid: {e}"))
        })?
    };
    let conv = app
        .resolve_with(&auth.user, parse_id(&id)?, body.wrap_up_code.as_deref())
        .await?;
    Ok(Json(json!({"conversation": conv})))
}
