//! Channels for staff: listing (credentials are never serialised; a channel the provider
//! refused shows `paused`) and, for admins, adding WhatsApp, Telegram and Signal channels and
//! resuming paused ones.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::channels::setup::AddChannel;
use switchboard_app::services::ServiceError;
use switchboard_core::{ChannelKind, Role};

use crate::error::ApiError;
use crate::extract::{ApiJson, StaffAuth};

/// Channel routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/channels", get(list).post(add))
        .route("/api/v1/channels/{id}/resume", post(resume))
        .route("/api/v1/channels/{id}/templates", get(templates))
}

/// `GET /api/v1/channels`: the tenant's channel instances. A channel whose account the
/// provider refused (revoked token) carries `paused: {"reason", "since"}`; its messages wait.
async fn list(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    let channels = app
        .store
        .list_channels(auth.user.tenant_id)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({"channels": channels})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    kind: String,
    name: String,
    #[serde(default)]
    credentials: serde_json::Value,
    api_base: Option<String>,
    validate: Option<bool>,
    register_webhook: Option<bool>,
    #[serde(default)]
    allow_bulk: bool,
    rate_per_second: Option<u32>,
}

/// `POST /api/v1/channels` (admin)
/// `{"kind": "whatsapp"|"telegram"|"signal", "name", "credentials": {…}, "api_base"?,
/// "validate"? (default true), "register_webhook"? (Telegram, default false),
/// "allow_bulk"?, "rate_per_second"?}`
/// - Checks the credentials against the provider (unless `validate: false`), stores the
///   channel and answers 201 `{"channel", "webhook_url", "verify_token"?, "webhook_registered"}`.
/// - 422 when the credentials are incomplete or the provider refuses them.
async fn add(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let kind: ChannelKind = body
        .kind
        .parse()
        .map_err(|e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", e))?;
    let added = app
        .add_channel(
            auth.user.tenant_id,
            AddChannel {
                kind,
                name: body.name,
                credentials: body.credentials,
                api_base: body.api_base,
                validate: body.validate.unwrap_or(true),
                register_webhook: body.register_webhook.unwrap_or(false),
                allow_bulk: body.allow_bulk,
                rate_per_second: body.rate_per_second,
            },
        )
        .await?;
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::CHANNEL_ADD,
        format!("channel:{}", added.channel.id),
        json!({"kind": added.channel.kind.to_string()}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    credentials: Option<serde_json::Value>,
}

/// `POST /api/v1/channels/{id}/resume` (admin) `{"credentials"?: {…}}` (`{}` re-tests)
/// - Merges the given credential fields (e.g. a new `access_token` or `bot_token`) into the
///   stored ones, checks them with the provider, stores them, clears `paused` and sends the
///   queued messages; answers `200 {"channel"}`. Without `credentials` the stored ones are
///   re-tested.
/// - 422 when the provider still refuses them (the channel stays paused, nothing changes);
///   404 for an unknown channel or another tenant's.
async fn resume(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResumeBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id = crate::error::parse_id(&id)?;
    let new_credentials = body.credentials.is_some();
    let channel = app
        .resume_channel(auth.user.tenant_id, id, body.credentials)
        .await?;
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::CHANNEL_UPDATE,
        format!("channel:{id}"),
        json!({"change": "resume", "new_credentials": new_credentials}),
    )
    .await?;
    Ok(Json(json!({"channel": channel})))
}

/// `GET /api/v1/channels/{id}/templates`: `{"templates": [{name, language, category, body,
/// variables}]}`, the message templates an agent may send on this channel: WhatsApp's
/// APPROVED templates from the Graph API (`GET /{WABA-ID}/message_templates`, cached for
/// 5 minutes; needs `business_account_id` in the channel's credentials, else `422`); an
/// empty list for channels without templates. `503` when the provider fails.
async fn templates(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = crate::error::parse_id(&id)?;
    let templates = app.channel_templates(&auth.user, id).await?;
    Ok(Json(json!({"templates": templates})))
}
