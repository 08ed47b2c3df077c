//! Files staff send to a customer: `POST /api/v1/conversations/{id}/attachments`.
//!
//! The upload is checked before anything is written: the reply guards first (conversation,
//! WhatsApp window, reachability, opt-out), then the size (`limits.max_upload_bytes`, counted
//! while streaming) and the MIME type (`limits.upload_allowed_types`). Only then is the file
//! encrypted into the media store and the message queued through the normal outbox, where
//! the sender uploads or links it the way each channel's API wants.

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use switchboard_app::App;
use switchboard_app::media::{mime_allowed, normalise_mime};
use switchboard_core::{Content, ConversationId, MediaKind, MediaRef};

use crate::error::ApiError;
use crate::extract::StaffAuth;

/// Longest caption accepted, in characters (channels split or move longer ones).
const MAX_CAPTION_CHARS: usize = 4096;

/// Attachment routes.
pub fn router() -> Router<App> {
    Router::new().route(
        "/api/v1/conversations/{id}/attachments",
        // The size is enforced while streaming, against `limits.max_upload_bytes`.
        post(upload).layer(DefaultBodyLimit::disable()),
    )
}

/// What kind of media a MIME type is sent as.
pub fn kind_of(mime: &str) -> MediaKind {
    match mime.split('/').next().unwrap_or_default() {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// The last path segment of a client's file name, without control characters, at most 200
/// characters; `file` when nothing is left.
fn clean_filename(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let name = name.trim().to_string();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_string()
    } else {
        name
    }
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
}

fn bad_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!("the multipart body could not be read: {e}"),
    )
}

/// Reads a field's bytes, refusing past `max` with 413.
async fn read_limited(field: &mut Field<'_>, max: usize) -> Result<bytes::Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!(
                    "the file is larger than the {max} bytes this server accepts (config limits.max_upload_bytes)"
                ),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `POST /api/v1/conversations/{id}/attachments`, `multipart/form-data` with a `file` part
/// (its `Content-Type` is the file's type) and an optional `caption` text part.
/// - `201 {"message"}`: stored encrypted and queued like a reply; the message's content is
///   `{"type":"media","kind":"image"|"video"|"audio"|"document",...}`.
/// - `413 file_too_large` over `limits.max_upload_bytes`; `415 unsupported_media_type` for a
///   type outside `limits.upload_allowed_types` or a body that is not multipart; `422` for a
///   missing or empty file, an unknown part, a caption over 4096 characters, or the reply
///   guards (`template_required` outside WhatsApp's 24 h window, an unreachable customer, a
///   resolved conversation). Nothing is stored on any error.
async fn upload(
    State(app): State<App>,
    auth: StaffAuth,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let conversation: ConversationId = crate::error::parse_id(&id)?;
    let probe = Content::Media {
        kind: MediaKind::Document,
        media: MediaRef::default(),
        caption: None,
    };
    // The guards first (an unknown or another business's conversation is 404 whatever the
    // body is), and an upload to a conversation that cannot take it is not read.
    app.check_reply(&auth.user, conversation, &probe).await?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "multipart_required",
            format!("send multipart/form-data with a `file` part and an optional `caption` ({e})"),
        )
    })?;

    let limits = &app.config.limits;
    let mut file: Option<(bytes::Bytes, String, String)> = None;
    let mut caption: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name().unwrap_or_default() {
            "file" if file.is_none() => {
                let mime = field.content_type().map(normalise_mime).unwrap_or_default();
                if mime.is_empty() || !mime_allowed(&mime, &limits.upload_allowed_types) {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        format!(
                            "files of type `{}` cannot be sent; allowed: {} (config limits.upload_allowed_types)",
                            if mime.is_empty() {
                                "(none given)"
                            } else {
                                &mime
                            },
                            limits.upload_allowed_types.join(", ")
                        ),
                    ));
                }
                let name = clean_filename(field.file_name());
                let bytes = read_limited(&mut field, limits.max_upload_bytes).await?;
                file = Some((bytes, mime, name));
            }
            "caption" if caption.is_none() => {
                let text = read_limited(&mut field, MAX_CAPTION_CHARS * 4).await?;
                let text = String::from_utf8(text.to_vec())
                    .map_err(|_| unprocessable("the caption is not UTF-8 text"))?;
                if text.chars().count() > MAX_CAPTION_CHARS {
                    return Err(unprocessable(format!(
                        "the caption is longer than {MAX_CAPTION_CHARS} characters"
                    )));
                }
                let text = text.trim().to_string();
                caption = (!text.is_empty()).then_some(text);
            }
            other => {
                return Err(unprocessable(format!(
                    "unexpected part `{other}`: send one `file` part and at most one `caption` part"
                )));
            }
        }
    }
    let Some((bytes, mime, filename)) = file else {
        return Err(unprocessable(
            "no `file` part: attach the file as a multipart part named `file`",
        ));
    };
    if bytes.is_empty() {
        return Err(unprocessable("the file is empty"));
    }
    let stored = app
        .media_store()
        .write_bytes(auth.user.tenant_id, bytes)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "writing an attachment to the media store failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the file could not be stored; try again later",
            )
        })?;
    let content = Content::Media {
        kind: kind_of(&mime),
        media: MediaRef {
            stored_key: Some(stored.key),
            mime_type: Some(mime),
            filename: Some(filename),
            size: Some(stored.size),
            sha256: Some(stored.sha256),
            ..MediaRef::default()
        },
        caption,
    };
    let message = app.reply_with(&auth.user, conversation, content).await?;
    Ok((StatusCode::CREATED, Json(json!({"message": message}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            clean_filename(Some("C:\\Users\\a\\report.pdf")),
            "report.pdf"
        );
        assert_eq!(clean_filename(Some("a\nb.txt")), "ab.txt");
        assert_eq!(clean_filename(Some("..")), "file");
        assert_eq!(clean_filename(None), "file");
    }

    #[test]
    fn kinds_follow_the_mime_family() {
        assert_eq!(kind_of("image/png"), MediaKind::Image);
        assert_eq!(kind_of("video/mp4"), MediaKind::Video);
        assert_eq!(kind_of("audio/ogg"), MediaKind::Audio);
        assert_eq!(kind_of("application/pdf"), MediaKind::Document);
    }
}
