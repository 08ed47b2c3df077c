//! Integration tests for switchboard-crypto, in one binary (one link step): a module per area.

mod audit;
mod blind_index;
mod keys;
mod media;
mod seal;
