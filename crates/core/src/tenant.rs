//! A tenant is one business. Everything Switchboard stores is scoped by its [`TenantId`].

use serde::{Deserialize, Serialize};

use crate::{TenantId, Timestamp};

/// A business using Switchboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Short unique handle, used in URLs and CLI arguments (`acme`).
    pub slug: String,
    /// Display name shown to customers ("you are talking to ACME Bank's assistant").
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// Checks a tenant slug: 1–40 characters of lowercase ASCII letters, digits and `-`.
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug.len() <= 40
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tenant slug `{slug}` is invalid: use 1-40 lowercase letters, digits or '-'"
        ))
    }
}
