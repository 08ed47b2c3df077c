//! Picks, transfers, wrap-up codes and queue settings, table-driven.

use std::collections::HashMap;

use switchboard_core::ChannelKind;
use switchboard_routing::*;
use time::Duration;

use crate::common::*;

#[test]
fn pick_table() {
    let billing = Queue {
        required_skills: skills(&[("billing", 1)]),
        ..queue(1, Policy::ManualPick)
    };
    let skilled = |n, cap| Agent {
        skills: skills(&[("billing", 1)]),
        ..agent(n, cap, &[1])
    };
    let full = Agent {
        load: HashMap::from([(ChannelKind::Webchat, 1)]),
        ..skilled(4, 1)
    };
    let away = Agent {
        presence: Presence::Away,
        ..skilled(5, 1)
    };
    let cases = [
        (
            skilled(1, 1),
            waiting(1, 1, 3),
            Ok(()),
            "skilled member with room",
        ),
        (
            skilled(1, 1),
            waiting(1, 2, 3),
            Err(PickError::WrongQueue),
            "not in this queue",
        ),
        (
            agent(2, 1, &[1]),
            waiting(1, 1, 3),
            Err(PickError::MissingSkills),
            "no billing skill",
        ),
        (
            Agent {
                queues: vec![],
                ..skilled(3, 1)
            },
            waiting(1, 1, 3),
            Err(PickError::NotMember),
            "does not serve the queue",
        ),
        (
            full,
            waiting(1, 1, 3),
            Err(PickError::AtCapacity),
            "at capacity",
        ),
        (
            away,
            waiting(1, 1, 3),
            Err(PickError::NotAvailable(Presence::Away)),
            "away",
        ),
    ];
    for (agent, w, expected, why) in cases {
        assert_eq!(check_pick(&billing, &agent, &w), expected, "{why}");
    }
}

#[test]
fn transfer_table() {
    let queues = vec![
        queue(1, Policy::LongestIdle),
        Queue {
            business_hours: Some(BusinessHours {
                time_zone: TimeZone::parse("UTC").expect("zone"),
                weekly: vec![],
                closed_dates: vec![],
            }),
            ..queue(2, Policy::LongestIdle)
        },
    ];
    let agents = vec![
        agent(1, 2, &[1]),
        Agent {
            presence: Presence::Offline,
            ..agent(2, 2, &[1])
        },
        Agent {
            load: HashMap::from([(ChannelKind::Webchat, 2)]),
            ..agent(3, 2, &[1])
        },
        agent(4, 2, &[2]),
    ];
    let request = |target, from_agent: Option<u128>, note: Option<&str>| TransferRequest {
        conversation: cid(1),
        queue: qid(1),
        from_agent: from_agent.map(aid),
        channel: ChannelKind::Webchat,
        required_skills: Skills::new(),
        target,
        note: note.map(str::to_owned),
    };
    let to_agent = |n| TransferTarget::Agent(aid(n));
    let to_queue = |n| TransferTarget::Queue(qid(n));
    let long_note = "x".repeat(MAX_NOTE_CHARS + 1);
    let cases = [
        (
            request(to_agent(1), Some(4), Some("  wants a refund ")),
            Ok(Transfer::ToAgent {
                conversation: cid(1),
                queue: qid(1),
                agent: aid(1),
                note: Some("wants a refund".into()),
            }),
            "to an available agent, note trimmed",
        ),
        (
            request(to_agent(4), Some(1), None),
            Ok(Transfer::ToAgent {
                conversation: cid(1),
                queue: qid(1),
                agent: aid(4),
                note: None,
            }),
            "to a specialist outside the queue: allowed by hand",
        ),
        (
            request(to_agent(2), None, None),
            Err(TransferError::AgentNotAvailable(Presence::Offline)),
            "offline agent",
        ),
        (
            request(to_agent(3), None, None),
            Err(TransferError::AgentAtCapacity),
            "full agent",
        ),
        (
            request(to_agent(1), Some(1), None),
            Err(TransferError::AlreadyThere),
            "to oneself",
        ),
        (
            request(to_agent(9), None, None),
            Err(TransferError::UnknownAgent(aid(9))),
            "unknown agent",
        ),
        (
            request(to_queue(2), Some(1), Some("   ")),
            Ok(Transfer::ToQueue {
                conversation: cid(1),
                from: qid(1),
                to: qid(2),
                note: None,
                target_open: false,
            }),
            "to a closed queue: allowed, flagged, blank note dropped",
        ),
        (
            request(to_queue(1), Some(1), None),
            Ok(Transfer::ToQueue {
                conversation: cid(1),
                from: qid(1),
                to: qid(1),
                note: None,
                target_open: true,
            }),
            "an agent hands it back to its own queue",
        ),
        (
            request(to_queue(1), None, None),
            Err(TransferError::AlreadyThere),
            "already waiting there",
        ),
        (
            request(to_queue(7), Some(1), None),
            Err(TransferError::UnknownQueue(qid(7))),
            "unknown queue",
        ),
        (
            request(to_queue(2), Some(1), Some(&long_note)),
            Err(TransferError::NoteTooLong),
            "note too long",
        ),
    ];
    for (req, expected, why) in cases {
        assert_eq!(transfer(&queues, &agents, &req, t0()), expected, "{why}");
    }
}

#[test]
fn wrap_up_table() {
    let with_codes = |required| Queue {
        wrap_up: WrapUp {
            codes: vec!["sale".into(), "no-sale".into()],
            required,
        },
        ..queue(1, Policy::LongestIdle)
    };
    let cases = [
        (with_codes(true), Some("sale"), true, "a listed code"),
        (with_codes(true), Some(" sale "), true, "trimmed"),
        (with_codes(true), None, false, "required and missing"),
        (
            with_codes(true),
            Some("  "),
            false,
            "blank counts as missing",
        ),
        (with_codes(true), Some("Sale"), false, "codes are exact"),
        (with_codes(false), None, true, "optional"),
        (
            with_codes(false),
            Some("other"),
            false,
            "optional, but still from the list",
        ),
        (
            queue(1, Policy::LongestIdle),
            Some("x"),
            false,
            "no codes: none accepted",
        ),
        (
            queue(1, Policy::LongestIdle),
            None,
            true,
            "no codes, none given",
        ),
    ];
    for (q, code, ok, why) in cases {
        assert_eq!(validate_wrap_up(&q, code).is_ok(), ok, "{code:?}: {why}");
    }
    let err = validate_wrap_up(&with_codes(true), None).expect_err("required");
    assert_eq!(err.to_string(), "choose a wrap-up code: sale, no-sale");
}

#[test]
fn queue_settings_table() {
    let ok = queue(1, Policy::LongestIdle);
    let cases = [
        (vec![ok.clone()], vec![], "defaults are fine"),
        (
            vec![ok.clone(), ok.clone()],
            vec![QueueProblem::DuplicateId(qid(1))],
            "same id twice",
        ),
        (
            vec![Queue {
                overflow: Some(Overflow {
                    after: Duration::ZERO,
                    to_queue: qid(1),
                }),
                ..ok.clone()
            }],
            vec![
                QueueProblem::BadOverflowTarget {
                    queue: qid(1),
                    to: qid(1),
                },
                QueueProblem::NotPositive {
                    queue: qid(1),
                    what: "overflow.after",
                },
            ],
            "overflow to itself, immediately",
        ),
        (
            vec![Queue {
                wrap_up: WrapUp {
                    codes: vec![],
                    required: true,
                },
                name: " ".into(),
                ..ok.clone()
            }],
            vec![
                QueueProblem::EmptyName(qid(1)),
                QueueProblem::WrapUpWithoutCodes(qid(1)),
            ],
            "required wrap-up with nothing to choose, blank name",
        ),
        (
            vec![Queue {
                sla: Sla {
                    warn_before: mins(60),
                    ..ok.sla
                },
                wrap_up: WrapUp {
                    codes: vec!["a".into(), "a".into()],
                    required: false,
                },
                ..ok.clone()
            }],
            vec![
                QueueProblem::WarningTooEarly(qid(1)),
                QueueProblem::BadWrapUpCode(qid(1)),
            ],
            "warning as long as the target; repeated code",
        ),
    ];
    for (queues, expected, why) in cases {
        assert_eq!(validate_queues(&queues), expected, "{why}");
    }
}
