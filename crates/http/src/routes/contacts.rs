//! Contacts for staff: one contact with its identities and conversations on every channel,
//! and merging two contacts. Every lookup is scoped by the staff member's tenant: another
//! tenant's id answers 404, exactly like an id that does not exist.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_app::App;
use switchboard_core::ContactId;

use crate::error::ApiError;
use crate::extract::{ApiJson, StaffAuth};

/// Contact routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/contacts/{id}", get(show))
        .route("/api/v1/contacts/{id}/merge", post(merge))
}

fn parse_id(raw: &str) -> Result<ContactId, ApiError> {
    crate::error::parse_id(raw)
}

/// `GET /api/v1/contacts/{id}`
///
/// - `200 {"contact","identities","conversations"}`: identities carry `unreachable` (why the
///   customer cannot be reached there) and `linked_by`; conversations cover every channel.
/// - `404` for an unknown or another tenant's id.
async fn show(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let overview = app.contact_overview(&auth.user, id).await?;
    // Recorded before the data leaves: a view that cannot be audited is not served.
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::CONTACT_VIEW,
        format!("contact:{id}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(overview))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    other: String,
}

/// `POST /api/v1/contacts/{id}/merge {"other": "<contact id>"}`
///
/// - Moves `other`'s identities, conversations, records and consents to `{id}`, marks `other`
///   merged, records who merged them (audit) and answers `200` with the merged contact.
/// - `404` when either id is unknown or another tenant's; `422` for the same id twice;
///   `409` when both have an open conversation on one channel. Nothing changes then.
async fn merge(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let other = parse_id(&body.other)?;
    let merged = app.merge_contacts(&auth.user, id, other).await?;
    app.audit(
        auth.user.tenant_id,
        &auth.actor,
        switchboard_app::audit::action::CONTACT_MERGE,
        format!("contact:{id}"),
        serde_json::json!({"merged": format!("contact:{other}")}),
    )
    .await?;
    Ok(Json(merged))
}
