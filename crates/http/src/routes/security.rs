//! The audit log and API tokens, for admins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_core::security::TokenScope;
use switchboard_core::{ApiTokenId, Role};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, StaffAuth};

/// Audit and token routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries after this seq (default 0: from the start).
    after: Option<i64>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<u32>,
}

/// `GET /api/v1/audit?after=0&limit=100` (admins): the tenant's audit entries in chain order.
/// - Page with `after` = the last `seq` received; `next_after` is null at the end.
/// - Each entry carries `prev_hash` and `hash`, so a client can verify the chain itself
///   (the canonical form is documented in `crypto::audit`).
async fn audit(
    State(app): State<App>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = app
        .store
        .audit_entries(auth.user.tenant_id, q.after.unwrap_or(0).max(0), limit)
        .await
        .map_err(switchboard_app::services::ServiceError::from)?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({"entries": entries, "next_after": next_after})))
}

/// `GET /api/v1/tokens` (admins): the tenant's API tokens, newest first, without secrets.
async fn tokens(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let tokens = app.api_tokens(auth.user.tenant_id).await?;
    Ok(Json(json!({"tokens": tokens})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    scope: String,
}

/// `POST /api/v1/tokens {"name": "CRM sync", "scope": "read"}` (admins): creates a token
/// acting as the caller.
/// - `201` with `secret`: shown this once, stored only as a hash. Send it as
///   `Authorization: Bearer <secret>`; bearer requests need no CSRF header.
/// - `read` allows only GET; `read` and `write` act with at most supervisor rights; `admin`
///   acts with the owner's full role.
/// - 422 for an unknown scope or an empty name.
async fn create_token(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let scope = TokenScope::parse(&body.scope)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", m))?;
    let created = app
        .create_api_token(&auth.actor, &auth.user, &body.name, scope)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": created.token,
            "secret": created.secret,
            "note": "store the secret now: it is not shown again",
        })),
    ))
}

/// `DELETE /api/v1/tokens/{id}` (admins): revokes a token; it stops working at once.
/// Idempotent; 404 for unknown or another tenant's ids.
async fn revoke_token(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id: ApiTokenId = crate::error::parse_id(&id)?;
    let token = app
        .revoke_api_token(&auth.actor, auth.user.tenant_id, id)
        .await?;
    Ok(Json(json!({"token": token})))
}
