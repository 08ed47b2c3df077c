//! Channel listing for staff (credentials are never serialised).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use switchboard_app::App;
use switchboard_app::services::ServiceError;

use crate::error::ApiError;
use crate::extract::StaffAuth;

/// Channel routes.
pub fn router() -> Router<App> {
    Router::new().route("/api/v1/channels", get(list))
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
