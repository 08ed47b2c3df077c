//! PostgreSQL schema and connection setup for Switchboard.
//!
//! This crate owns the PostgreSQL migrations (`migrations/*.sql`, embedded at compile time)
//! and a pool helper. The schema mirrors the SQLite one column for column (TEXT ids, BIGINT
//! unix-millisecond timestamps, JSON in TEXT) so the `storage` crate can run the same SQL on
//! both; only work claiming differs (`FOR UPDATE SKIP LOCKED` here).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The embedded PostgreSQL migrations.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Opens a pool on `postgres://` / `postgresql://` URL.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
}
