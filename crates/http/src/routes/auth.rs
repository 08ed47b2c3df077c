//! Staff login, logout and `me`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::App;

use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp, SESSION_COOKIE, StaffAuth};

/// Auth routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

fn session_cookie(app: &App, value: String, max_age_secs: i64) -> String {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.config.sessions.secure_cookies)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// `POST /api/v1/auth/login`
/// - Sets the `sb_session` cookie (HttpOnly, SameSite=Lax) and returns the CSRF token.
/// - Wrong e-mail and wrong password answer the same 401, in the same time.
/// - 429 `too_many_attempts` with `Retry-After` once an account or client address is locked
///   (`sessions.max_failures_per_account` / `max_failures_per_ip` failures within
///   `failure_window_secs`); the lock ends after `lockout_secs` or when an admin lifts it.
async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let done = app.login_from(&body.email, &body.password, ip).await?;
    let max_age = i64::from(app.config.sessions.ttl_hours.max(1)) * 3600;
    let cookie = session_cookie(&app, done.token, max_age);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": done.user, "tenant": done.tenant, "csrf_token": done.csrf_token})),
    )
        .into_response())
}

/// `POST /api/v1/auth/logout`: ends the session and clears the cookie.
/// - 400 `not_a_session` for an API token: revoke tokens with `DELETE /api/v1/tokens/{id}`.
async fn logout(State(app): State<App>, auth: StaffAuth) -> Result<Response, ApiError> {
    if auth.api_token.is_some() {
        return Err(ApiError::bad_request(
            "not_a_session",
            "logout ends browser sessions; revoke an API token with DELETE /api/v1/tokens/{id}",
        ));
    }
    app.logout(&auth.user, &auth.token).await?;
    let cookie = session_cookie(&app, String::new(), 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/v1/me`: the logged-in user, their business and the CSRF token.
async fn me(State(app): State<App>, auth: StaffAuth) -> Result<Response, ApiError> {
    let tenant = app
        .store
        .tenant(auth.user.tenant_id)
        .await
        .map_err(switchboard_app::services::ServiceError::from)?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(
        Json(json!({"user": auth.user, "tenant": tenant, "csrf_token": auth.csrf_token}))
            .into_response(),
    )
}
