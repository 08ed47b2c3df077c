//! Channels for staff: listing (credentials are never serialised) and, for admins, adding
//! WhatsApp, Telegram and Signal channels.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
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
    Router::new().route("/api/v1/channels", get(list).post(add))
}

/// `GET /api/v1/channels`: the tenant's channel instances.
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
