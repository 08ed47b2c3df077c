//! Staff user management.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_app::services::ServiceError;
use switchboard_core::{Role, UserId};

use crate::error::ApiError;
use crate::extract::{ApiJson, StaffAuth};

/// User routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", patch(update))
        .route("/api/v1/users/{id}/unlock", post(unlock))
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
        .create_user_as(
            &auth.actor,
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

fn parse_user_id(id: &str) -> Result<UserId, ApiError> {
    crate::error::parse_id(id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    role: String,
}

/// `PATCH /api/v1/users/{id} {"role": "supervisor"}` (admins): changes a staff member's role.
/// - Applies from the user's next request (sessions and tokens read the current role).
/// - 403 for your own role (ask another admin); 404 for unknown or another tenant's ids.
/// - Recorded in the audit log as `user.role_change` with the old and new role.
async fn update(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id = parse_user_id(&id)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", m))?;
    let user = app
        .change_role(&auth.actor, auth.user.tenant_id, id, role)
        .await?;
    Ok(Json(json!({"user": user})))
}

/// `POST /api/v1/users/{id}/unlock` (admins): lifts a login lock on the account now instead
/// of when it runs out. Recorded in the audit log as `auth.unlock`.
async fn unlock(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id = parse_user_id(&id)?;
    let user = app
        .unlock_account(&auth.actor, auth.user.tenant_id, id)
        .await?;
    Ok(Json(json!({"user": user, "unlocked": true})))
}
