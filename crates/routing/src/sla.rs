//! Service-level targets: when a warning or a breach notice is due.
//!
//! Decisions:
//! - Two targets per queue. First response runs from [`Waiting::enqueued_at`] until an agent
//!   first replies; resolution runs from [`Waiting::opened_at`] until the conversation is
//!   resolved, whoever holds it.
//! - Each notice is sent once: the caller passes which were sent ([`SlaSent`]) and records
//!   the ones returned. A target already missed gets its breach notice only, not a late
//!   warning.
//! - [`check_sla`] is public so the runtime can apply the same rule to assigned
//!   conversations (resolution), which [`crate::decide()`] does not see.
//!
//! [`Waiting::enqueued_at`]: crate::Waiting::enqueued_at
//! [`Waiting::opened_at`]: crate::Waiting::opened_at

use serde::{Deserialize, Serialize};
use switchboard_core::ConversationId;
use time::OffsetDateTime;

use crate::model::{QueueId, Sla, SlaSent};

/// Which target a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    /// First human reply.
    FirstResponse,
    /// Resolution.
    Resolution,
}

/// A warning (target near) or a breach (target missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaNotice {
    /// The conversation.
    pub conversation: ConversationId,
    /// The queue whose target applies.
    pub queue: QueueId,
    /// Which target.
    pub target: SlaTarget,
    /// When the target is (or was) due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

/// The clocks of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaClocks {
    /// Start of the first-response clock.
    pub enqueued_at: OffsetDateTime,
    /// Start of the resolution clock.
    pub opened_at: OffsetDateTime,
    /// When an agent first replied; stops the first-response clock.
    pub first_response_at: Option<OffsetDateTime>,
}

/// What [`check_sla`] found: notices to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlaCheck {
    /// Targets now within their warning window.
    pub warnings: [Option<SlaTarget>; 2],
    /// Targets now missed.
    pub breaches: [Option<SlaTarget>; 2],
    /// Due time of each target, first response then resolution (`None`: already met).
    pub due: [Option<OffsetDateTime>; 2],
}

/// The notices due at `now` for one conversation, skipping those in `sent`.
pub fn check_sla(sla: &Sla, clocks: SlaClocks, sent: SlaSent, now: OffsetDateTime) -> SlaCheck {
    let mut out = SlaCheck::default();
    let targets = [
        (
            SlaTarget::FirstResponse,
            clocks
                .first_response_at
                .is_none()
                .then(|| clocks.enqueued_at.saturating_add(sla.first_response)),
            sent.first_response_warning,
            sent.first_response_breach,
        ),
        (
            SlaTarget::Resolution,
            Some(clocks.opened_at.saturating_add(sla.resolution)),
            sent.resolution_warning,
            sent.resolution_breach,
        ),
    ];
    for (i, (target, due, warned, breached)) in targets.into_iter().enumerate() {
        let Some(due) = due else { continue };
        out.due[i] = Some(due);
        if now >= due {
            if !breached {
                out.breaches[i] = Some(target);
            }
        } else if now >= due.saturating_sub(sla.warn_before) && !warned && !breached {
            out.warnings[i] = Some(target);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn sla_table() {
        let sla = Sla {
            first_response: Duration::minutes(5),
            resolution: Duration::hours(1),
            warn_before: Duration::minutes(1),
        };
        let t0 = datetime!(2026-01-05 10:00 UTC);
        let clocks = SlaClocks {
            enqueued_at: t0,
            opened_at: t0,
            first_response_at: None,
        };
        let answered = SlaClocks {
            first_response_at: Some(t0 + Duration::minutes(2)),
            ..clocks
        };
        let warned = SlaSent {
            first_response_warning: true,
            ..SlaSent::default()
        };
        let fr = Some(SlaTarget::FirstResponse);
        let res = Some(SlaTarget::Resolution);
        let none = [None, None];
        let cases = [
            (
                clocks,
                SlaSent::default(),
                3,
                none,
                none,
                "well within target",
            ),
            (
                clocks,
                SlaSent::default(),
                4,
                [fr, None],
                none,
                "one minute before the first-response target",
            ),
            (clocks, warned, 4, none, none, "warning already sent"),
            (
                clocks,
                SlaSent::default(),
                5,
                none,
                [fr, None],
                "missed: breach only, no late warning",
            ),
            (
                clocks,
                warned,
                6,
                none,
                [fr, None],
                "warned earlier, now missed",
            ),
            (
                clocks,
                SlaSent {
                    first_response_breach: true,
                    ..SlaSent::default()
                },
                6,
                none,
                none,
                "breach already reported",
            ),
            (
                answered,
                SlaSent::default(),
                10,
                none,
                none,
                "an agent replied: first response met",
            ),
            (
                answered,
                SlaSent::default(),
                59,
                [None, res],
                none,
                "one minute before resolution",
            ),
            (
                answered,
                SlaSent::default(),
                61,
                none,
                [None, res],
                "resolution missed",
            ),
            (
                clocks,
                SlaSent::default(),
                61,
                none,
                [fr, res],
                "both missed at once",
            ),
        ];
        for (clocks, sent, minutes, warnings, breaches, why) in cases {
            let got = check_sla(&sla, clocks, sent, t0 + Duration::minutes(minutes));
            assert_eq!((got.warnings, got.breaches), (warnings, breaches), "{why}");
        }
    }
}
