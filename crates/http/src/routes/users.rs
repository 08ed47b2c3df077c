//! Staff user management.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::services::ServiceError;
use switchboard_core::Role;

use crate::error::ApiError;
use crate::extract::{ApiJson, StaffAuth};

/// User routes.
pub fn router() -> Router<App> {
    Router::new().route("/api/v1/users", get(list).post(create))
}

/// `GET /api/v1/users`: the tenant's staff (supervisors and admins).
async fn list(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Supervisor)?;
    let users = app
        .store
        .list_users(auth.user.tenant_id)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({"users": users})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    name: String,
    role: String,
    password: String,
}

/// `POST /api/v1/users` (admins): creates a staff user in the admin's tenant.
/// - 409 when the e-mail is taken; 422 for a bad e-mail, role or a short password.
async fn create(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", m))?;
    let user = app
        .create_user(
            auth.user.tenant_id,
            &body.email,
            &body.name,
            role,
            &body.password,
        )
        .await
        .map_err(|e| match e {
            ServiceError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                format!("a user with e-mail {} already exists", body.email.trim()),
            ),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(json!({"user": user}))))
}
