//! The demo account endpoint the bundled balance and collections flows call.
//!
//! `GET /api/v1/demo/accounts/{account}` answers a few fixed, clearly fake accounts (holder
//! names end in "(demo)"; see `switchboard_app::demo::DEMO_ACCOUNTS`). It is always mounted:
//! it reveals nothing about real data, needs no login (the flow runtime calls it like any
//! external service) and lets a fresh `switchboard demo` work with no other service running.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use switchboard_app::App;

use crate::error::ApiError;

/// Demo routes.
pub fn router() -> Router<App> {
    Router::new().route("/api/v1/demo/accounts/{account}", get(account))
}

/// `GET /api/v1/demo/accounts/{account}`
/// - `200 {"account","holder","currency","balance","available","arrears"}`, amounts as
///   decimal strings, for the demo accounts (12345678, 87654321, 100200300).
/// - `400 invalid_account` unless the account is 8 to 12 digits; `404` for any other number.
async fn account(Path(account): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    if !(8..=12).contains(&account.len()) || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_account",
            "an account number has 8 to 12 digits",
        ));
    }
    switchboard_app::demo::demo_account(&account)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("account"))
}
