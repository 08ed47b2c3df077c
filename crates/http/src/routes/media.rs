//! Stored inbound media for staff: `GET /api/v1/media/{message_id}` answers the bytes the
//! media job downloaded, never a provider URL. Scoped by the staff member's tenant: another
//! tenant's message answers 404 exactly like an unknown one.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchboard_app::App;
use switchboard_core::{Content, MessageId};

use crate::error::ApiError;
use crate::extract::StaffAuth;

/// Media routes.
pub fn router() -> Router<App> {
    Router::new().route("/api/v1/media/{message_id}", get(show))
}

/// `GET /api/v1/media/{message_id}`
///
/// - `200` with the stored bytes, `Content-Type` from the stored MIME type,
///   `X-Content-Type-Options: nosniff`, `Cache-Control: private`, and
///   `Content-Disposition: attachment` for everything but images.
/// - `404 not_found` for an unknown or another tenant's message; `404 media_not_stored` for
///   a message without a stored file (not media, not downloaded yet, or refused).
async fn show(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: MessageId = crate::error::parse_id(&id)?;
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, message_id = %id, "reading stored media failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the file could not be read; try again later",
        )
    };
    let message = app
        .store
        .message(auth.user.tenant_id, id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let stored = match &message.content {
        Content::Media { media, .. } => media.stored_key.as_ref().map(|k| {
            (
                k.clone(),
                media.mime_type.clone(),
                media.filename.clone(),
                media.sha256.clone(),
            )
        }),
        _ => None,
    };
    let Some((key, mime, filename, sha256)) = stored else {
        let why = match &message.failure {
            Some(f) if matches!(message.content, Content::Media { .. }) => {
                format!("this message's file was not stored: {}", f.reason)
            }
            _ if matches!(message.content, Content::Media { .. }) => {
                "this message's file has not been downloaded yet; try again shortly".to_string()
            }
            _ => "this message has no file".to_string(),
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "media_not_stored",
            why,
        ));
    };
    let bytes = app
        .media_store()
        .read(auth.user.tenant_id, &key, sha256.as_deref())
        .await
        .map_err(|e| internal(&e))?;
    Ok(file_response(bytes, mime.as_deref(), filename.as_deref()))
}

/// The answer serving a stored file: its type (or `application/octet-stream`), `nosniff`,
/// `Cache-Control: private`, and `Content-Disposition: attachment` with a safe ASCII name for
/// everything but images. Staff media and the web chat visitor's media answer the same way.
pub(crate) fn file_response(
    bytes: Vec<u8>,
    mime: Option<&str>,
    filename: Option<&str>,
) -> Response {
    let mime = mime
        .map(switchboard_app::media::normalise_mime)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let content_type = HeaderValue::from_str(&mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let inline = mime.starts_with("image/") && mime != "image/svg+xml";
    let disposition = if inline {
        HeaderValue::from_static("inline")
    } else {
        // Only a safe ASCII subset of the original name goes into the header.
        let name: String = filename
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(100)
            .collect();
        let name = if name.is_empty() {
            "file".to_string()
        } else {
            name
        };
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("private")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}
