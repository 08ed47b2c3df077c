//! The audit log as a hash chain: each entry carries the hash of the one before, so editing,
//! deleting, inserting or reordering entries breaks the chain where it happened.
//!
//! This module computes and checks hashes; `storage` appends rows (one writer per chain at a
//! time, e.g. `unique (tenant_id, seq)` plus a retry) and `switchboard audit verify` streams
//! them through a [`ChainVerifier`].
//!
//! # Canonical form (the bytes that are hashed)
//!
//! `hash = lowercase hex(SHA-256(canonical))`, where `canonical` is the entry as compact JSON
//! with its keys in byte order and without `hash`, plus a format marker `"v":1`:
//!
//! ```text
//! {"action":"contact.view","actor":"user:0190…","at":"2026-11-25T10:00:00.123456Z",
//!  "details":{"fields":["phone"]},"prev_hash":"00…00","seq":1,"subject":"contact:0190…","v":1}
//! ```
//!
//! (one line, no spaces). Rules, so any backend or language reproduces the same bytes:
//!
//! * `at` is UTC with exactly six fractional digits (microseconds) and `Z`. [`chain_next`]
//!   truncates the time to microseconds, so it survives PostgreSQL `timestamptz` (µs) and a
//!   SQLite `TEXT` column unchanged.
//! * Objects, at every depth of `details`, have their keys sorted by UTF-8 bytes; arrays keep
//!   their order; no whitespace. Strings escape `"`, `\` and control characters (as `\n`, `\t`,
//!   `\r`, `\b`, `\f` or `\u00XX`) and keep all other characters as UTF-8. Numbers are written as
//!   serde_json writes them.
//! * Store `details` as the text [`canonical_json`] returns (a `TEXT` column), not as `jsonb`:
//!   PostgreSQL's `jsonb` reorders keys and rewrites numbers such as `1e2`, which would change
//!   the hash. Prefer strings and integers in details; avoid floats.
//! * The first entry has `seq` 1 and `prev_hash` = 64 zeros ([`GENESIS_HASH`]).
//!
//! For entries without floats this is exactly Python's
//! `json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, so an
//! independent verifier is a few lines of script; the test `the_canonical_form_is_fixed` holds
//! a test vector.
//!
//! # What a hash chain does and does not prove
//!
//! Any change to a stored entry, a missing entry in the middle, an inserted one or a swap is
//! detected by [`verify_chain`], down to the first entry affected. Someone who can rewrite the
//! whole table can, however, recompute every hash after their edit, or drop the newest entries.
//! Against that, record the head ([`ChainHead`]: seq + hash) outside the database from time to
//! time (application log, an external timestamping service, the operator's notes) and check
//! against it with [`verify_chain_to`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// `prev_hash` of the first entry of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit entry. Fields are public so storage can map rows; [`verify_chain`] catches
/// any entry not made by [`chain_next`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it happened (UTC, microsecond precision), RFC 3339 in JSON.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it, e.g. `user:<uuid>`, `api-token:<id>`, `system`.
    pub actor: String,
    /// What was done, a dotted name: `auth.login`, `contact.view`, `contact.export`,
    /// `contact.erase`, `user.role_change`, `config.change`, `keys.rotate`.
    pub action: String,
    /// What it was done to, e.g. `contact:<uuid>`.
    pub subject: String,
    /// Anything else worth keeping (no personal data in clear: ids, field names, counts).
    pub details: Value,
    /// `hash` of the previous entry, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// SHA-256 of this entry's canonical form, lowercase hex.
    pub hash: String,
}

/// What the caller supplies for a new entry; [`chain_next`] adds `seq` and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When it happened (passed in: this crate never reads the clock).
    pub at: OffsetDateTime,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Extra details.
    pub details: Value,
}

impl AuditEntry {
    /// The exact bytes hashed into `hash` (see the module docs).
    pub fn canonical_form(&self) -> String {
        canonical_form(
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.subject,
            &self.details,
            &self.prev_hash,
        )
    }

    /// Recomputes the hash of this entry's content.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_form().as_bytes()))
    }
}

/// Builds the entry that follows `prev` (or the first entry of a chain when `prev` is `None`).
pub fn chain_next(prev: Option<&AuditEntry>, new: NewAuditEntry) -> AuditEntry {
    let (seq, prev_hash) = match prev {
        Some(prev) => (prev.seq.saturating_add(1), prev.hash.clone()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let at = truncate_to_micros(new.at);
    let mut entry = AuditEntry {
        seq,
        at,
        actor: new.actor,
        action: new.action,
        subject: new.subject,
        details: new.details,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    entry
}

/// The newest verified entry of a chain: record it outside the database to detect a rewrite of
/// the whole chain or deleted newest entries later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Its `seq`.
    pub seq: u64,
    /// Its `hash`.
    pub hash: String,
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct ChainError {
    /// `seq` of the first entry that fails (for a missing anchor, the anchor's seq).
    pub seq: u64,
    /// What failed there.
    pub reason: ChainBreak,
}

/// The kinds of break [`verify_chain`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's content does not match its hash: a field was edited.
    ContentEdited,
    /// The entry does not point at the previous entry's hash: the previous entry was edited and
    /// rehashed, or entries were inserted or removed and renumbered.
    BrokenLink,
    /// `seq` is not the next number: an entry is missing (gap), inserted (repeat) or moved.
    UnexpectedSeq {
        /// The seq that should have come next.
        expected: u64,
    },
    /// The chain ends before the anchor, or the entry at the anchor's seq has another hash.
    AnchorMismatch,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::ContentEdited => f.write_str("content does not match its hash (edited)"),
            ChainBreak::BrokenLink => {
                f.write_str("prev_hash does not match the previous entry (edit, insertion or deletion before it)")
            }
            ChainBreak::UnexpectedSeq { expected } => {
                write!(f, "expected seq {expected} (entry missing, inserted or moved)")
            }
            ChainBreak::AnchorMismatch => f.write_str("does not match the recorded chain head"),
        }
    }
}

/// Checks entries one at a time, in `seq` order, so a long log can be verified as a stream.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting the first entry of a chain.
    pub fn new() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }

    /// A verifier that continues after an already verified `head` (to check only new entries).
    pub fn resume_after(head: &ChainHead) -> Self {
        ChainVerifier {
            expected_seq: head.seq.saturating_add(1),
            prev_hash: head.hash.clone(),
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), ChainError> {
        let fail = |reason| {
            Err(ChainError {
                seq: entry.seq,
                reason,
            })
        };
        if entry.seq != self.expected_seq {
            return fail(ChainBreak::UnexpectedSeq {
                expected: self.expected_seq,
            });
        }
        if entry.prev_hash != self.prev_hash {
            return fail(ChainBreak::BrokenLink);
        }
        if entry.compute_hash() != entry.hash {
            return fail(ChainBreak::ContentEdited);
        }
        self.expected_seq = entry.seq.saturating_add(1);
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }

    /// The last entry accepted so far, if any.
    pub fn head(&self) -> Option<ChainHead> {
        (self.expected_seq > 1).then(|| ChainHead {
            seq: self.expected_seq - 1,
            hash: self.prev_hash.clone(),
        })
    }
}

/// Verifies a whole chain from its first entry, in `seq` order.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<(), ChainError> {
    let mut verifier = ChainVerifier::new();
    entries
        .into_iter()
        .try_for_each(|entry| verifier.push(entry))
}

/// Verifies a whole chain and that it still contains `anchor` (a head recorded earlier outside
/// the database). Returns the current head. Catches a rewritten chain and deleted newest
/// entries up to the anchor, which [`verify_chain`] alone cannot.
pub fn verify_chain_to<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    anchor: &ChainHead,
) -> Result<Option<ChainHead>, ChainError> {
    let mut verifier = ChainVerifier::new();
    let mut anchor_seen = false;
    for entry in entries {
        verifier.push(entry)?;
        if entry.seq == anchor.seq {
            if entry.hash != anchor.hash {
                return Err(ChainError {
                    seq: anchor.seq,
                    reason: ChainBreak::AnchorMismatch,
                });
            }
            anchor_seen = true;
        }
    }
    if anchor_seen {
        Ok(verifier.head())
    } else {
        Err(ChainError {
            seq: anchor.seq,
            reason: ChainBreak::AnchorMismatch,
        })
    }
}

fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let micros = at.microsecond();
    at.replace_microsecond(micros).unwrap_or(at)
}

fn format_at(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

fn canonical_form(
    seq: u64,
    at: OffsetDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    details: &Value,
    prev_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"action\":");
    write_string(&mut out, action);
    out.push_str(",\"actor\":");
    write_string(&mut out, actor);
    out.push_str(",\"at\":");
    write_string(&mut out, &format_at(at));
    out.push_str(",\"details\":");
    write_value(&mut out, details);
    out.push_str(",\"prev_hash\":");
    write_string(&mut out, prev_hash);
    out.push_str(",\"seq\":");
    out.push_str(&seq.to_string());
    out.push_str(",\"subject\":");
    write_string(&mut out, subject);
    out.push_str(",\"v\":1}");
    out
}

/// `value` as canonical JSON (sorted keys at every depth, no whitespace): the text to store
/// in the `details` column.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sort explicitly: serde_json's map keeps insertion order when any crate in the
            // build enables its `preserve_order` feature.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}
