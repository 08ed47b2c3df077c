//! Route modules; each exposes `router() -> Router<App>` and the root merges them.

pub mod assets;
pub mod attachments;
pub mod auth;
pub mod channels;
pub mod contacts;
pub mod conversations;
pub mod demo;
pub mod events;
pub mod health;
pub mod hooks;
pub mod media;
pub mod privacy;
pub mod routing;
pub mod security;
pub mod users;
pub mod webchat;
