//! Web assets.
