//! Switchboard's domain model and the rules that need no IO.
//!
//! Layout:
//! - [`ids`]: typed, time-ordered identifiers for every aggregate.
//! - [`tenant`], [`user`], [`channel`], [`contact`]: who is involved.
//! - [`conversation`]: the conversation and its state machine.
//! - [`message`]: messages, the channel-agnostic [`message::Content`], status timelines.
//! - [`event`]: what happened, in per-tenant order, for live pages and integrations.
//! - [`routing`]: queues, agents' settings and routing changes as storage keeps them.
//! - [`ports`]: the traits the outside world implements (storage).
//!
//! This crate has no async runtime, no database and no clock: time is always an argument.

pub mod channel;
pub mod contact;
pub mod conversation;
pub mod event;
pub mod ids;
pub mod message;
pub mod ports;
pub mod privacy;
pub mod retry;
pub mod routing;
pub mod security;
pub mod tenant;
pub mod user;

pub use channel::{Capabilities, Channel, ChannelKind, ChannelPause, ChannelSettings, NewChannel};
pub use contact::{Contact, ContactCard, Identity};
pub use conversation::{Conversation, ConversationState, ConversationSummary, Transition};
pub use event::{Event, EventKind};
pub use ids::*;
pub use message::{
    Choice, ChoiceStyle, Content, DeliveryStatus, Direction, ErrorClass, InboundEvent,
    InboundMessage, MediaKind, MediaRef, Message, SendFailure, Sender, StatusReport, StatusUpdate,
};
pub use tenant::Tenant;
pub use user::{Email, NewUser, Role, User};

/// A point in time, always UTC. Re-exported so callers need not depend on `time` directly.
pub type Timestamp = time::OffsetDateTime;
