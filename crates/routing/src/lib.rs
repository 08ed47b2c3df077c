//! Routing policy: which agent gets which waiting conversation, and what waiting customers
//! and supervisors are told. Pure: `decide(queues, agents, waiting, now) -> Decisions`.
//!
//! Layout:
//! - [`model`]: the inputs ([`Queue`], [`Agent`], [`Waiting`]) and their rules (skills,
//!   capacity per channel kind, presence).
//! - [`hours`]: business hours in an IANA time zone.
//! - [`decide()`] (module [`mod@decide`]): one routing round; its module docs state the policy
//!   decisions (ordering, FIFO, returning customers, overflow, notices).
//! - [`sla`]: first-response and resolution targets, warnings and breaches.
//! - [`wait`]: the expected-wait estimate.
//! - [`actions`]: manual pick, transfers, wrap-up codes, queue settings checks.
//!
//! What this crate leaves to others: the runtime (`app`) builds the snapshot from storage,
//! calls [`decide()`] when something changes or a timer fires, applies [`Decisions`] in one
//! transaction (assignments, queue moves, messages to the outbox, the `sla_sent` /
//! `*_sent_at` / round-robin state handed back) and measures average handle times. No clock
//! is read here: `now` is always an argument.

pub mod actions;
pub mod decide;
pub mod hours;
pub mod model;
pub mod sla;
pub mod wait;

pub use actions::{
    MAX_NOTE_CHARS, PickError, QueueProblem, Transfer, TransferError, TransferRequest,
    TransferTarget, WrapUpError, check_pick, transfer, validate_queues, validate_wrap_up,
};
pub use decide::{
    AssignReason, Assignment, Decisions, OutOfHoursNotice, OverflowMove, PositionUpdate, Problem,
    decide,
};
pub use hours::{BusinessHours, TimeZone, Window};
pub use model::{
    Agent, Capacity, OutOfHours, Overflow, Policy, Presence, Queue, QueueId, Skill, Skills, Sla,
    SlaSent, Waiting, WrapUp,
};
pub use sla::{SlaCheck, SlaClocks, SlaNotice, SlaTarget, check_sla};
pub use wait::expected_wait;
