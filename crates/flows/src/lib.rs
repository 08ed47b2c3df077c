//! Switchboard's flow engine: self-service bot flows, pure and testable.
//!
//! Layout (read in this order):
//! - [`definition`]: the YAML flow format and [`parse_flow`]; [`FlowLibrary`] holds several flows.
//! - [`check`]: what `switchboard flows check` reports ([`Problem`] with line, node, message, hint).
//! - [`session`]: the persisted [`FlowSession`], [`Input`], [`Action`], [`StepOutcome`].
//! - [`engine`]: [`step`], the pure transition `(flows, session, input, now) -> (actions, session)`.
//! - [`expr`]: the small expression language for `set`, `branch` and `record`.
//! - [`template`]: `{{vars.x}}` placeholders in messages.
//! - [`validate`]: `ask` validators (number, money, date, yes/no, e-mail, phone, SA ID, ...).
//! - [`choice`]: [`match_choice`], mapping a typed reply to a menu option.
//! - [`trigger`]: [`match_keyword`], the flow a customer's keyword starts (`triggers:`).
//! - [`value`]: variable values; money as integer cents.
//!
//! No IO and no clock: the runtime (`app`) executes the actions (send through the outbox, call
//! HTTP behind its SSRF guard, hand off, persist records, arm timers) and stores the session.

#![warn(missing_docs)]

pub mod check;
pub mod choice;
pub mod definition;
pub mod engine;
pub mod expr;
pub mod session;
pub mod template;
pub mod trigger;
pub mod validate;
pub mod value;

pub use check::{Problem, check, check_library, check_source};
pub use choice::match_choice;
pub use definition::{FlowDefinition, FlowLibrary, Flows, Node, parse_flow};
pub use engine::{StepError, step};
pub use session::{Action, FlowSession, Frame, Input, SessionState, StepOutcome};
pub use trigger::match_keyword;
pub use value::{Money, Value};
