//! Request extractors: JSON bodies with our error shape, and the authenticated staff member
//! (session cookie, plus the CSRF header on state-changing methods).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;
use switchboard_app::App;
use switchboard_core::{Role, User};

use crate::error::ApiError;

/// Name of the staff session cookie.
pub const SESSION_COOKIE: &str = "sb_session";
/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `Json<T>` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(v))
    }
}

/// Reads a cookie value from the request headers.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The logged-in staff member. Rejects with 401 without a live session, and with 403 when a
/// state-changing request lacks the session's CSRF token.
pub struct StaffAuth {
    /// The user.
    pub user: User,
    /// The session cookie value (for logout).
    pub token: String,
    /// The session's CSRF token.
    pub csrf_token: String,
}

impl StaffAuth {
    /// Refuses unless the user's role includes `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.user.role.includes(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this needs the {role} role")))
        }
    }
}

impl FromRequestParts<App> for StaffAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = cookie(parts, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?;
        let staff = app
            .authenticate(&token)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if unsafe_method {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let ok = sent.is_some_and(|s| {
                constant_time_eq(s.as_bytes(), staff.session.csrf_token.as_bytes())
            });
            if !ok {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "missing or wrong X-CSRF-Token header: use the csrf_token from GET /api/v1/me",
                ));
            }
        }
        Ok(StaffAuth {
            user: staff.user,
            token,
            csrf_token: staff.session.csrf_token,
        })
    }
}

/// Compares two byte strings in constant time, so timing reveals nothing of the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
