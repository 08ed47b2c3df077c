//! Black-box tests of the whole server: one binary so linking happens once.
//! Each test starts a real server on a random port over a fresh SQLite file
//! (`helpers::spawn_app`) and talks to it over HTTP and websockets.

mod helpers;
mod providers;

mod access;
mod attachments;
mod auth;
mod bad_input;
mod browser;
mod channels_resilience;
mod channels_signal;
mod channels_telegram;
mod channels_whatsapp;
mod contacts;
mod conversations;
mod desk;
mod encryption;
mod flows;
mod flows_lifecycle;
mod hardening;
mod health;
mod media;
mod multinode;
mod multinode_typing;
mod outbox;
mod postgres;
mod privacy;
mod restart;
mod routing;
mod security;
mod webchat;
