//! Privacy for staff (issue 6): a contact's export (everything held, JSON) and erasure,
//! consent history and consent recorded outside the chat, the tenant's privacy settings
//! (command words, replies, retention, self-service erasure), customers' erasure requests
//! with approval, erasure tombstones and retention purge reports.
//!
//! Roles: export, erasure, settings changes, erasure decisions and purges need **admin**
//! (an export is the whole of a customer's data; an erasure cannot be undone); requests,
//! tombstones, reports and recording consent need **supervisor**; reading consent and the
//! settings any staff. Every export, erasure, change and decision is recorded in the audit
//! log; ids of another tenant answer 404 like unknown ids. The use cases live in
//! `app::privacy`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;
use switchboard_core::ports::ConsentStatus;
use switchboard_core::privacy::{ErasureStatus, PrivacySettings};
use switchboard_core::{ChannelId, ContactId, Role};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, StaffAuth};

/// Privacy routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/contacts/{id}/export", get(export))
        .route("/api/v1/contacts/{id}", delete(erase))
        .route(
            "/api/v1/contacts/{id}/consents",
            get(consents).post(record_consent),
        )
        .route("/api/v1/privacy/settings", get(settings).put(put_settings))
        .route("/api/v1/privacy/erasure-requests", get(erasure_requests))
        .route(
            "/api/v1/privacy/erasure-requests/{id}/approve",
            post(approve),
        )
        .route("/api/v1/privacy/erasure-requests/{id}/deny", post(deny))
        .route("/api/v1/privacy/tombstones", get(tombstones))
        .route("/api/v1/privacy/retention/runs", get(retention_runs))
        .route("/api/v1/privacy/retention/run", post(purge_now))
}

fn contact_id(raw: &str) -> Result<ContactId, ApiError> {
    crate::error::parse_id(raw)
}

/// `GET /api/v1/contacts/{id}/export` (admins)
///
/// - `200`: `switchboard.contact-export.v1` JSON (contact, identities with phone numbers,
///   merged contacts, conversations, every message, consents, bot records and sessions,
///   erasure requests, the retention policy), as an attachment `contact-<id>.json`.
/// - Recorded in the audit log (`contact.export`, counts only) before it is sent.
/// - `404` for an unknown or another tenant's contact.
async fn export(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id = contact_id(&id)?;
    let export = app
        .export_contact(auth.user.tenant_id, &auth.actor, id)
        .await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"contact-{id}.json\""),
        )],
        Json(export),
    ))
}

/// `DELETE /api/v1/contacts/{id}` (admins): erases the contact. It cannot be undone.
///
/// - Deletes the contact, the contacts merged into it, their identities, conversations,
///   messages, outbox rows, bot sessions and records, consents, open jobs and events in one
///   transaction, then the media files no other message uses; leaves a tombstone (counts,
///   dates, channel kinds; `reason` `admin`) and completes open erasure requests.
/// - `200 {"tombstone", "rows_deleted": {table: n}, "media_files_deleted"}`; recorded in the
///   audit log (`contact.erase`).
/// - `422` for a contact merged into another (erase that one); `404` for an unknown,
///   already erased or another tenant's contact.
async fn erase(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let id = contact_id(&id)?;
    let outcome = app
        .erase_contact(auth.user.tenant_id, &auth.actor, id, "admin")
        .await?;
    Ok(Json(outcome))
}

/// `GET /api/v1/contacts/{id}/consents` (any staff): the consent history, oldest first
/// (`status`, `channel_id`, `source` such as `chat:whatsapp` or `staff:user:<id>`,
/// `wording`, `at`). Recorded as a view of contact data. `404` for an unknown contact.
async fn consents(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = contact_id(&id)?;
    let list = app
        .consent_history(auth.user.tenant_id, &auth.actor, id)
        .await?;
    Ok(Json(json!({"consents": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    channel_id: String,
    /// `opted_in` or `opted_out`.
    status: String,
    /// The words the customer agreed to (optional).
    wording: Option<String>,
}

/// `POST /api/v1/contacts/{id}/consents {"channel_id", "status", "wording"}` (supervisors)
///
/// - Records consent given or withdrawn outside the chat (a signed form, a phone call);
///   `201` with the record (`source` names the staff member). Audited.
/// - An `opted_out` stops templates and bulk sends to the contact on that channel at once.
/// - `422` for an unknown status or empty wording; `404` for an unknown contact or channel.
async fn record_consent(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Supervisor)?;
    let id = contact_id(&id)?;
    let channel: ChannelId = crate::error::parse_id(&body.channel_id)?;
    let status: ConsentStatus = body.status.parse().map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_status",
            format!(
                "unknown consent status `{}`: use `opted_in` or `opted_out`",
                body.status
            ),
        )
    })?;
    let consent = app
        .record_consent(
            auth.user.tenant_id,
            &auth.actor,
            id,
            channel,
            status,
            body.wording,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent)))
}

/// `GET /api/v1/privacy/settings` (any staff): the tenant's settings (defaults when never
/// saved): `commands` and `replies` per language (built-in `en` and `af` apply unless
/// configured), `language`, `self_service_erasure`, `retention`, `purge_interval_minutes`.
async fn settings(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(app.privacy_settings(auth.user.tenant_id).await?))
}

/// `PUT /api/v1/privacy/settings` (admins): replaces the settings.
///
/// - `200` with the saved settings; audited (`config.privacy_settings`, with the names of
///   the parts that changed).
/// - `422` for an unknown field, a retention period outside 1..36500 days, an empty or
///   over-long word or reply, or a word given to two commands of one language. Nothing is
///   saved then.
async fn put_settings(
    State(app): State<App>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<PrivacySettings>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let saved = app
        .set_privacy_settings(auth.user.tenant_id, &auth.actor, body)
        .await?;
    Ok(Json(saved))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestsQuery {
    /// Only this status (`pending`, `confirming`, `approved`, `denied`, `cancelled`,
    /// `completed`).
    status: Option<String>,
}

/// `GET /api/v1/privacy/erasure-requests?status=pending` (supervisors): customers'
/// "forget me" requests, newest first (at most 200). `422` for an unknown status.
async fn erasure_requests(
    State(app): State<App>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Supervisor)?;
    let status = q
        .status
        .map(|s| s.parse::<ErasureStatus>())
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_status", e))?;
    let list = app.erasure_requests(auth.user.tenant_id, status).await?;
    Ok(Json(json!({"requests": list})))
}

/// `POST /api/v1/privacy/erasure-requests/{id}/approve` (admins)
///
/// - The customer is told in their chat; once that message has left, a job erases them
///   (tombstone reason `customer_request`). `200` with the request (`approved`). Audited.
/// - `409` when the request is not pending; `404` for an unknown or another tenant's id.
async fn approve(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let r = app
        .decide_erasure(auth.user.tenant_id, &auth.actor, &id, true, None)
        .await?;
    Ok(Json(r))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    /// The reason the customer is told.
    note: String,
}

/// `POST /api/v1/privacy/erasure-requests/{id}/deny {"note": "why"}` (admins)
///
/// - The customer is told the reason in their chat; `200` with the request (`denied`).
///   Audited.
/// - `422` for an empty note; `409` when not pending; `404` for an unknown id.
async fn deny(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DenyBody>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let r = app
        .decide_erasure(
            auth.user.tenant_id,
            &auth.actor,
            &id,
            false,
            Some(body.note),
        )
        .await?;
    Ok(Json(r))
}

/// `GET /api/v1/privacy/tombstones` (supervisors): what remains of erased contacts (counts,
/// dates, channel kinds, reason), newest first, at most 200.
async fn tombstones(
    State(app): State<App>,
    auth: StaffAuth,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Supervisor)?;
    let list = app.tombstones(auth.user.tenant_id).await?;
    Ok(Json(json!({"tombstones": list})))
}

/// `GET /api/v1/privacy/retention/runs` (supervisors): retention purge reports, newest
/// first, at most 100.
async fn retention_runs(
    State(app): State<App>,
    auth: StaffAuth,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Supervisor)?;
    let runs = app.retention_runs(auth.user.tenant_id).await?;
    Ok(Json(json!({"runs": runs})))
}

/// `POST /api/v1/privacy/retention/run` (admins): runs a purge now with the saved periods
/// (the timer keeps its schedule); `200` with the report. Audited (`retention.purge`).
async fn purge_now(State(app): State<App>, auth: StaffAuth) -> Result<impl IntoResponse, ApiError> {
    auth.require(Role::Admin)?;
    let run = app.purge_now(auth.user.tenant_id, &auth.actor).await?;
    Ok(Json(run))
}
