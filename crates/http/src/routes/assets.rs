//! Static pages and assets embedded in the binary (`switchboard-web`).

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use switchboard_app::App;

use crate::error::ApiError;

/// Asset routes: `/` → `/agent`, the agent page (also at `/supervisor`, where it opens
/// the supervisor view for supervisors), and `/static/...` files.
pub fn router() -> Router<App> {
    let page = || async { serve("agent/index.html").ok_or_else(|| ApiError::not_found("page")) };
    Router::new()
        .route("/", get(|| async { Redirect::to("/agent") }))
        .route("/agent", get(page))
        .route("/supervisor", get(page))
        .route("/static/{*path}", get(file))
}

/// A response with an embedded file, or `None` when it does not exist.
pub fn serve(path: &str) -> Option<Response> {
    let (bytes, mime) = switchboard_web::get(path)?;
    let cache = if path.ends_with(".html") {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_string()),
            ],
            bytes.into_owned(),
        )
            .into_response(),
    )
}

async fn file(Path(path): Path<String>) -> Result<Response, ApiError> {
    if path.contains("..") {
        return Err(ApiError::not_found("file"));
    }
    serve(&path).ok_or_else(|| ApiError::not_found("file"))
}
