//! All of routing's integration tests, in one binary so linking happens once.
//! - `rules`: table-driven cases, one per policy and rule, each with its `why`.
//! - `actions`: picks, transfers, wrap-up codes, queue settings.
//! - `properties`: proptest invariants over random snapshots.
//! - `load`: 5,000 waiting conversations and 300 agents, invariants only.

mod actions;
mod common;
mod load;
mod properties;
mod rules;
