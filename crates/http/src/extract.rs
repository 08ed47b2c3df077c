//! Request extractors: JSON bodies with our error shape, the client's address, and the
//! authenticated staff member: a session cookie (plus the CSRF header on state-changing
//! methods) or an API token in `Authorization: Bearer` (no CSRF: browsers never add that
//! header by themselves, so a cross-site request cannot carry it).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use switchboard_app::App;
use switchboard_app::audit::Actor;
use switchboard_core::security::ApiToken;
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

/// The logged-in staff member, by session cookie or API token. Rejects with 401 without a
/// live session or token, with 403 when a state-changing request lacks the session's CSRF
/// token, and with 403 when a read-only token tries to change something.
pub struct StaffAuth {
    /// The user (for a token: its owner, with the role capped by the token's scope).
    pub user: User,
    /// The session cookie value (for logout); empty for a token.
    pub token: String,
    /// The session's CSRF token; empty for a token.
    pub csrf_token: String,
    /// Who the audit log names.
    pub actor: Actor,
    /// The API token used, if the request came with one.
    pub api_token: Option<ApiToken>,
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
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            return bearer(app, value, unsafe_method).await;
        }
        let token = cookie(parts, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?;
        let staff = app
            .authenticate(&token)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if unsafe_method {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let ok = sent.is_some_and(|s| {
                constant_time_eq(s.as_bytes(), staff.session.csrf_token.as_bytes())
            });
            if !ok {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "missing or wrong X-CSRF-Token header: use the csrf_token from GET /api/v1/me",
                ));
            }
        }
        Ok(StaffAuth {
            actor: Actor::User(staff.user.id),
            user: staff.user,
            token,
            csrf_token: staff.session.csrf_token,
            api_token: None,
        })
    }
}

/// Authenticates `Authorization: Bearer <token>`.
async fn bearer(
    app: &App,
    value: &axum::http::HeaderValue,
    unsafe_method: bool,
) -> Result<StaffAuth, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", m);
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("use `Authorization: Bearer <API token>`"))?;
    let found = app.authenticate_bearer(secret).await?.ok_or_else(|| {
        unauthorized("unknown or revoked API token: create one with `switchboard tokens create`")
    })?;
    if unsafe_method && !found.token.scope.allows_writes() {
        return Err(ApiError::forbidden(
            "this API token is read-only (scope read); create a write token to change data",
        ));
    }
    Ok(StaffAuth {
        actor: Actor::Token {
            token: found.token.id,
            owner: found.user.id,
        },
        user: found.user,
        token: String::new(),
        csrf_token: String::new(),
        api_token: Some(found.token),
    })
}

/// The client's address, when the server runs with connection info (it always does outside
/// unit tests): the TCP peer, or behind a trusted proxy (`proxy.trusted`) the address
/// `X-Forwarded-For` names (see `ProxyConfig::client_address`). Used for login throttling.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientIp(None));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientIp(Some(
            app.config.proxy.client_address(peer, &forwarded),
        )))
    }
}

/// Compares two byte strings in constant time, so timing reveals nothing of the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
