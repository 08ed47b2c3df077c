//! `app::routing`: runs the routing policy (`switchboard_routing::decide`) against storage.
//!
//! - [`QueueSettings`] is the queue configuration as the API and the database keep it, and
//!   [`policy_queue`] turns it into the policy's [`Queue`].
//! - [`plan_round`] is the pure heart of a round: from a [`RoutingSnapshot`] (read by the
//!   store under the tenant's routing lock) it places newly handed-off conversations in
//!   their queue, calls `decide`, and turns the decisions into [`RoutingChange`]s:
//!   assignments, overflow moves, customer notices (position, expected wait, out of hours)
//!   for the outbox, SLA alerts, the notices-sent marks, round-robin cursors and each waiting
//!   conversation's next timer. The store applies them in ONE transaction.
//! - [`Router`] is the worker: a round runs when something changes (a conversation queued
//!   by a hand-off or a transfer, an agent's presence or settings, a queue's settings: seen
//!   on the event bus, so changes made on other nodes count too) and when a routing timer
//!   is due (timers are rows, so a restart loses none). Manual actions (take, transfer,
//!   resolve, presence) run their own round right away ([`App::route`]).
//!
//! The use cases the HTTP layer calls (presence, queues, take, transfer, notes, wrap-up,
//! canned responses, supervisor snapshot) are in [`desk`].

pub mod desk;
pub mod seed;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};
use switchboard_core::ports::StoreError;
use switchboard_core::routing::{
    AgentPresence, AgentSettings, NoteKind, QueueRecord, RoutedConversation, RoutingChange,
    RoutingMarks, RoutingSnapshot,
};
use switchboard_core::{
    ConversationId, ConversationState, EventKind, QueueId, TenantId, Timestamp, UserId,
};
use switchboard_routing::{
    Agent, BusinessHours, Capacity, Decisions, OutOfHours, Overflow, Policy, Presence, Queue,
    Skill, Skills, Sla, SlaClocks, SlaSent, SlaTarget, TimeZone, Waiting, Window, WrapUp,
    check_sla, decide,
};
use time::Duration;
use tokio_util::sync::CancellationToken;

use crate::bus::EventBus;
use crate::{App, now};

/// Longest text of a queue's out-of-hours message.
const MAX_MESSAGE_CHARS: usize = 1000;

/// A queue's routing settings: the body of `POST /api/v1/queues` (with `name`) and the
/// JSON stored in `queues.settings`. Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Served before queues with a lower number when agents serve several queues.
    #[serde(default)]
    pub priority: i32,
    /// Skills every agent of the queue needs, with minimum levels (0–255).
    #[serde(default)]
    pub required_skills: BTreeMap<String, u8>,
    /// `longest_idle` (default), `least_busy`, `round_robin` or `manual_pick`.
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// Opening hours; absent: always open.
    #[serde(default)]
    pub business_hours: Option<HoursSettings>,
    /// Told to a customer waiting while the queue is closed.
    #[serde(default = "default_out_of_hours")]
    pub out_of_hours_message: String,
    /// First human reply target (default 300 s).
    #[serde(default = "default_first_response")]
    pub first_response_secs: u32,
    /// Resolution target (default 86 400 s).
    #[serde(default = "default_resolution")]
    pub resolution_secs: u32,
    /// Warning this long before a target (default 60 s; below `first_response_secs`).
    #[serde(default = "default_warn")]
    pub warn_before_secs: u32,
    /// Move waiting conversations to another queue after a wait.
    #[serde(default)]
    pub overflow: Option<OverflowSettings>,
    /// Disposition codes agents choose from when resolving.
    #[serde(default)]
    pub wrap_up_codes: Vec<String>,
    /// Whether resolving needs one of `wrap_up_codes`.
    #[serde(default)]
    pub wrap_up_required: bool,
    /// Tell waiting customers their position and expected wait this often; absent: never.
    #[serde(default)]
    pub position_update_secs: Option<u32>,
    /// A bot flow (its id, e.g. `main_menu`) started for a customer waiting while the queue
    /// is closed, instead of `out_of_hours_message`; absent: the message is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_hours_flow: Option<String>,
    /// A customer who writes again within this many seconds of a resolution reopens the
    /// resolved conversation (back to this queue, and to its last agent when available);
    /// later, or with 0, their message starts a new conversation. Default 86 400 (a day).
    #[serde(default = "default_reopen_within")]
    pub reopen_within_secs: u32,
}

/// Overflow settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowSettings {
    /// The queue conversations move to.
    pub to_queue: QueueId,
    /// After waiting this long in this queue.
    pub after_secs: u32,
}

/// Opening hours as the API writes them: `{"time_zone": "Africa/Johannesburg", "weekly":
/// [{"day": "mon", "open": "08:00", "close": "17:00"}], "closed_dates": ["2026-12-25"]}`.
/// A `close` at or before `open` runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSettings {
    /// IANA time zone.
    pub time_zone: String,
    /// Weekly windows.
    pub weekly: Vec<WindowSettings>,
    /// Local dates with no opening (`YYYY-MM-DD`).
    #[serde(default)]
    pub closed_dates: Vec<String>,
}

/// One weekly window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    /// `mon` … `sun`.
    pub day: String,
    /// `HH:MM`.
    pub open: String,
    /// `HH:MM`.
    pub close: String,
}

fn default_policy() -> Policy {
    Policy::LongestIdle
}
fn default_out_of_hours() -> String {
    "We are closed right now; we will answer as soon as we open.".into()
}
fn default_first_response() -> u32 {
    300
}
fn default_resolution() -> u32 {
    86_400
}
fn default_warn() -> u32 {
    60
}
fn default_reopen_within() -> u32 {
    86_400
}

/// Longest a flow id may be.
const MAX_FLOW_ID_CHARS: usize = 64;
/// Longest reopen window: 30 days.
const MAX_REOPEN_WITHIN_SECS: u32 = 30 * 86_400;

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            priority: 0,
            required_skills: BTreeMap::new(),
            policy: Policy::LongestIdle,
            business_hours: None,
            out_of_hours_message: default_out_of_hours(),
            first_response_secs: default_first_response(),
            resolution_secs: default_resolution(),
            warn_before_secs: default_warn(),
            overflow: None,
            wrap_up_codes: Vec::new(),
            wrap_up_required: false,
            position_update_secs: None,
            out_of_hours_flow: None,
            reopen_within_secs: default_reopen_within(),
        }
    }
}

fn parse_day(s: &str) -> Result<time::Weekday, String> {
    use time::Weekday::*;
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Monday,
        "tue" | "tuesday" => Tuesday,
        "wed" | "wednesday" => Wednesday,
        "thu" | "thursday" => Thursday,
        "fri" | "friday" => Friday,
        "sat" | "saturday" => Saturday,
        "sun" | "sunday" => Sunday,
        other => {
            return Err(format!(
                "`{}` is not a day: use mon, tue, wed, thu, fri, sat or sun",
                other.chars().take(16).collect::<String>()
            ));
        }
    })
}

fn parse_clock(s: &str) -> Result<time::Time, String> {
    let fmt = time::macros::format_description!("[hour]:[minute]");
    time::Time::parse(s.trim(), &fmt).map_err(|_| {
        format!(
            "`{}` is not a time of day: use HH:MM, e.g. 08:30",
            s.chars().take(16).collect::<String>()
        )
    })
}

impl HoursSettings {
    /// The policy's business hours, or what is wrong.
    pub fn to_policy(&self) -> Result<BusinessHours, String> {
        let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
        Ok(BusinessHours {
            time_zone: TimeZone::parse(&self.time_zone)?,
            weekly: self
                .weekly
                .iter()
                .map(|w| {
                    Ok(Window {
                        day: parse_day(&w.day)?,
                        open: parse_clock(&w.open)?,
                        close: parse_clock(&w.close)?,
                    })
                })
                .collect::<Result<_, String>>()?,
            closed_dates: self
                .closed_dates
                .iter()
                .map(|d| {
                    time::Date::parse(d.trim(), &date_fmt).map_err(|_| {
                        format!(
                            "`{}` is not a date: use YYYY-MM-DD",
                            d.chars().take(16).collect::<String>()
                        )
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

/// Parses skill names and levels (names are normalised: trimmed, lower-cased).
pub fn parse_skills(skills: &BTreeMap<String, u8>) -> Result<Skills, String> {
    skills
        .iter()
        .map(|(name, &level)| Ok((Skill::parse(name)?, level)))
        .collect()
}

/// The policy's queue for a stored queue. Measured state (average handle time) is added
/// by the caller.
pub fn policy_queue(record: &QueueRecord) -> Result<Queue, String> {
    let s: QueueSettings = serde_json::from_value(record.settings.clone())
        .map_err(|e| format!("queue `{}` has unreadable settings: {e}", record.name))?;
    let secs = |n: u32| Duration::seconds(i64::from(n));
    Ok(Queue {
        id: record.id,
        name: record.name.clone(),
        priority: s.priority,
        required_skills: parse_skills(&s.required_skills)?,
        policy: s.policy,
        business_hours: s
            .business_hours
            .as_ref()
            .map(HoursSettings::to_policy)
            .transpose()?,
        sla: Sla {
            first_response: secs(s.first_response_secs),
            resolution: secs(s.resolution_secs),
            warn_before: secs(s.warn_before_secs),
        },
        overflow: s.overflow.map(|o| Overflow {
            after: secs(o.after_secs),
            to_queue: o.to_queue,
        }),
        out_of_hours: match &s.out_of_hours_flow {
            Some(flow) => OutOfHours::Flow(flow.trim().to_string()),
            None => OutOfHours::Message(s.out_of_hours_message.clone()),
        },
        wrap_up: WrapUp {
            codes: s.wrap_up_codes.clone(),
            required: s.wrap_up_required,
        },
        position_updates_every: s.position_update_secs.map(secs),
        average_handle_time: None,
        round_robin_after: record.round_robin_after,
    })
}

/// Until when a conversation resolved now from queue `record` reopens on the customer's
/// next message (its `reopen_within_secs`); `None`: never (0, or unreadable settings).
pub fn reopen_until(record: &QueueRecord, now: Timestamp) -> Option<Timestamp> {
    let s: QueueSettings = serde_json::from_value(record.settings.clone()).ok()?;
    (s.reopen_within_secs > 0).then(|| now + Duration::seconds(i64::from(s.reopen_within_secs)))
}

/// Checks a queue's settings before they are saved, against the tenant's other queues
/// (overflow targets). Returns every problem as one message.
pub fn check_queue(
    name: &str,
    id: QueueId,
    settings: &QueueSettings,
    others: &[QueueRecord],
) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("a queue needs a name of 1 to 64 characters".into());
    }
    if settings.out_of_hours_message.trim().is_empty()
        || settings.out_of_hours_message.chars().count() > MAX_MESSAGE_CHARS
    {
        return Err(format!(
            "out_of_hours_message must be 1 to {MAX_MESSAGE_CHARS} characters"
        ));
    }
    if let Some(flow) = &settings.out_of_hours_flow
        && (flow.trim().is_empty() || flow.chars().count() > MAX_FLOW_ID_CHARS)
    {
        return Err(format!(
            "out_of_hours_flow must be a flow id of 1 to {MAX_FLOW_ID_CHARS} characters \
            , or absent to send out_of_hours_message"
        ));
    }
    if settings.reopen_within_secs > MAX_REOPEN_WITHIN_SECS {
        return Err(format!(
            "reopen_within_secs must be 0 (never reopen) to {MAX_REOPEN_WITHIN_SECS} (30 days)"
        ));
    }
    let record = QueueRecord {
        id,
        tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
        name: name.to_string(),
        settings: serde_json::to_value(settings).map_err(|e| e.to_string())?,
        round_robin_after: None,
        created_at: now(),
        updated_at: now(),
    };
    let mut queues = vec![policy_queue(&record)?];
    for o in others.iter().filter(|o| o.id != id) {
        // Other queues count as overflow targets even if their own settings are broken.
        queues.push(policy_queue(o).unwrap_or_else(|_| Queue::new(o.id, o.name.clone())));
    }
    let problems: Vec<String> = switchboard_routing::validate_queues(&queues)
        .into_iter()
        .filter(|p| p.to_string().contains(&id.to_string()))
        .map(|p| p.to_string().replace(&id.to_string(), &format!("`{name}`")))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn presence(p: AgentPresence) -> Presence {
    match p {
        AgentPresence::Available => Presence::Available,
        AgentPresence::Away => Presence::Away,
        AgentPresence::Offline => Presence::Offline,
    }
}

/// The policy's agent for stored settings and current load. Skills that do not parse are
/// dropped (they were checked when saved).
pub fn policy_agent(
    s: &AgentSettings,
    load: Option<&HashMap<switchboard_core::ChannelKind, u32>>,
) -> Agent {
    Agent {
        id: s.user_id,
        presence: presence(s.presence),
        capacity: Capacity {
            total: s.capacity,
            per_channel: s.capacity_per_channel.clone(),
        },
        skills: s
            .skills
            .iter()
            .filter_map(|(k, &v)| Skill::parse(k).ok().map(|k| (k, v)))
            .collect(),
        queues: s.queues.clone(),
        load: load.cloned().unwrap_or_default(),
        last_assigned_at: s.last_assigned_at,
    }
}

/// The policy's view of a placed, waiting conversation.
pub fn policy_waiting(c: &RoutedConversation, now: Timestamp) -> Option<Waiting> {
    let queue = c.queue?;
    let enqueued_at = c.enqueued_at.unwrap_or(c.created_at);
    Some(Waiting {
        conversation: c.id,
        queue,
        priority: c.priority,
        enqueued_at,
        in_queue_since: c.in_queue_since.unwrap_or(enqueued_at),
        opened_at: c.opened_at.unwrap_or(c.created_at).min(now),
        channel: c.channel_kind,
        required_skills: c
            .required_skills
            .iter()
            .filter_map(|(k, &v)| Skill::parse(k).ok().map(|k| (k, v)))
            .collect(),
        last_agent: c.last_agent,
        first_response_at: c.first_response_at,
        sla_sent: SlaSent {
            first_response_warning: c.marks.first_response_warning,
            first_response_breach: c.marks.first_response_breach,
            resolution_warning: c.marks.resolution_warning,
            resolution_breach: c.marks.resolution_breach,
        },
        position_sent_at: c.marks.position_sent_at,
        out_of_hours_sent_at: c.marks.out_of_hours_sent_at,
    })
}

/// Where a handed-off conversation goes, from its hand-off record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Queue name the flow asked for.
    pub queue: Option<String>,
    /// Skill the flow asked for (required at level 1).
    pub skill: Option<String>,
    /// Priority the flow asked for.
    pub priority: i32,
}

/// Measured inputs a round needs besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct RoundInputs {
    /// Hand-off details of not-yet-placed conversations.
    pub placements: HashMap<ConversationId, Placement>,
    /// Recent average handle time per queue.
    pub handle_times: HashMap<QueueId, Duration>,
}

/// The queue a placement goes to: the named one, else `general`, else the first by name.
fn placement_queue<'a>(queues: &'a [Queue], name: Option<&str>) -> Option<&'a Queue> {
    let by_name = |n: &str| {
        queues
            .iter()
            .find(|q| q.name.eq_ignore_ascii_case(n.trim()))
    };
    name.and_then(by_name)
        .or_else(|| by_name("general"))
        .or_else(|| queues.first())
}

/// How long until a closed queue is looked at again (it may have opened).
const CLOSED_RECHECK: Duration = Duration::minutes(1);

/// One routing round, pure: see the module docs. Queues whose stored settings cannot be
/// read are left out (their conversations wait), and logged.
pub fn plan_round(
    snap: &RoutingSnapshot,
    inputs: &RoundInputs,
    now: Timestamp,
) -> Vec<RoutingChange> {
    let mut changes = Vec::new();
    let mut queues: Vec<Queue> = Vec::with_capacity(snap.queues.len());
    for record in &snap.queues {
        match policy_queue(record) {
            Ok(mut q) => {
                q.average_handle_time = inputs.handle_times.get(&q.id).copied();
                queues.push(q);
            }
            Err(e) => tracing::error!(queue = %record.id, error = %e, "queue skipped by routing"),
        }
    }
    let agents: Vec<Agent> = snap
        .agents
        .iter()
        .map(|a| policy_agent(a, snap.loads.get(&a.user_id)))
        .collect();

    // Place newly handed-off conversations; they take part in this very round.
    let mut waiting_rows: Vec<RoutedConversation> = Vec::with_capacity(snap.waiting.len());
    for c in &snap.waiting {
        let mut c = c.clone();
        if c.queue.is_none() {
            let placement = inputs.placements.get(&c.id).cloned().unwrap_or_default();
            let Some(q) = placement_queue(&queues, placement.queue.as_deref()) else {
                continue;
            };
            let mut skills = BTreeMap::new();
            if let Some(skill) = placement
                .skill
                .as_deref()
                .and_then(|s| Skill::parse(s).ok())
            {
                skills.insert(skill.as_str().to_string(), 1u8);
            }
            changes.push(RoutingChange::Place {
                conversation: c.id,
                queue: q.id,
                priority: placement.priority,
                required_skills: skills.clone(),
                last_agent: c.last_agent,
            });
            c.queue = Some(q.id);
            c.priority = placement.priority;
            c.required_skills = skills;
            c.enqueued_at = Some(now);
            c.in_queue_since = Some(now);
            c.opened_at = Some(c.opened_at.unwrap_or(now));
            // The hand-off already told the customer a person is coming: the first position
            // update follows one cadence later, not at once.
            c.marks = RoutingMarks {
                position_sent_at: Some(now),
                ..RoutingMarks::default()
            };
            changes.push(RoutingChange::Marks {
                conversation: c.id,
                marks: c.marks,
            });
            c.first_response_at = None;
        }
        waiting_rows.push(c);
    }
    let waiting: Vec<Waiting> = waiting_rows
        .iter()
        .filter_map(|c| policy_waiting(c, now))
        .collect();
    let d = decide(&queues, &agents, &waiting, now);
    for p in &d.problems {
        tracing::warn!(problem = ?p, "routing input problem");
    }
    apply_decisions(&d, &queues, &waiting_rows, now, &mut changes);
    assigned_sla(&queues, &snap.due_assigned, now, &mut changes);
    changes
}

/// SLA alerts for assigned conversations whose timer is due (first response until the
/// agent replies, resolution until resolved), and each one's next timer.
fn assigned_sla(
    queues: &[Queue],
    rows: &[RoutedConversation],
    now: Timestamp,
    changes: &mut Vec<RoutingChange>,
) {
    for r in rows {
        let Some(q) = r.queue.and_then(|id| queues.iter().find(|q| q.id == id)) else {
            // No queue (or an unreadable one): nothing to measure against.
            changes.push(RoutingChange::Timer {
                conversation: r.id,
                due_at: None,
            });
            continue;
        };
        let Some(w) = policy_waiting(r, now) else {
            continue;
        };
        let check = check_sla(
            &q.sla,
            SlaClocks {
                enqueued_at: w.enqueued_at,
                opened_at: w.opened_at,
                first_response_at: w.first_response_at,
            },
            w.sla_sent,
            now,
        );
        let mut marks = r.marks;
        for (found, breach) in [(check.warnings, false), (check.breaches, true)] {
            for (i, target) in found.into_iter().enumerate() {
                let (Some(target), Some(due_at)) = (target, check.due[i]) else {
                    continue;
                };
                record_sla(&mut marks, target, breach);
                changes.push(RoutingChange::SlaAlert {
                    conversation: r.id,
                    queue: q.id,
                    target: sla_target_name(target).into(),
                    breach,
                    due_at,
                });
            }
        }
        if marks != r.marks {
            changes.push(RoutingChange::Marks {
                conversation: r.id,
                marks,
            });
        }
        changes.push(RoutingChange::Timer {
            conversation: r.id,
            due_at: sla_due(q, r, &marks, now),
        });
    }
}

/// Records a sent SLA notice in the marks.
fn record_sla(m: &mut RoutingMarks, target: SlaTarget, breach: bool) {
    match (target, breach) {
        (SlaTarget::FirstResponse, false) => m.first_response_warning = true,
        (SlaTarget::FirstResponse, true) => m.first_response_breach = true,
        (SlaTarget::Resolution, false) => m.resolution_warning = true,
        (SlaTarget::Resolution, true) => m.resolution_breach = true,
    }
}

/// The target's name in `sla_alert` events.
fn sla_target_name(target: SlaTarget) -> &'static str {
    match target {
        SlaTarget::FirstResponse => "first_response",
        SlaTarget::Resolution => "resolution",
    }
}

/// Turns `decide`'s output into changes, with each still-waiting conversation's next timer.
fn apply_decisions(
    d: &Decisions,
    queues: &[Queue],
    rows: &[RoutedConversation],
    now: Timestamp,
    changes: &mut Vec<RoutingChange>,
) {
    let queue_by_id: HashMap<QueueId, &Queue> = queues.iter().map(|q| (q.id, q)).collect();
    let mut marks: HashMap<ConversationId, RoutingMarks> =
        rows.iter().map(|r| (r.id, r.marks)).collect();
    let mut gone: HashSet<ConversationId> = HashSet::new();
    for a in &d.assignments {
        changes.push(RoutingChange::Assign {
            conversation: a.conversation,
            agent: a.agent,
        });
        gone.insert(a.conversation);
    }
    for (queue, after) in &d.round_robin_cursors {
        changes.push(RoutingChange::RoundRobin {
            queue: *queue,
            after: *after,
        });
    }
    for o in &d.overflows {
        changes.push(RoutingChange::ToQueue {
            conversation: o.conversation,
            queue: o.to,
        });
        let name = |id: QueueId| queue_by_id.get(&id).map_or("?", |q| q.name.as_str());
        changes.push(RoutingChange::Note {
            conversation: o.conversation,
            author: None,
            kind: NoteKind::System,
            body: format!(
                "Moved from {} to {} after waiting too long.",
                name(o.from),
                name(o.to)
            ),
            data: serde_json::json!({"from_queue": o.from, "to_queue": o.to, "reason": "overflow"}),
        });
        gone.insert(o.conversation);
    }
    for (list, breach) in [(&d.sla_warnings, false), (&d.sla_breaches, true)] {
        for n in list {
            record_sla(marks.entry(n.conversation).or_default(), n.target, breach);
            changes.push(RoutingChange::SlaAlert {
                conversation: n.conversation,
                queue: n.queue,
                target: sla_target_name(n.target).into(),
                breach,
                due_at: n.due_at,
            });
        }
    }
    for p in &d.position_updates {
        let text = match p.expected_wait {
            Some(w) if w.whole_minutes() >= 1 => format!(
                "You are number {} in the queue. Expected wait: about {} minute(s).",
                p.position,
                w.whole_minutes()
            ),
            Some(_) => format!(
                "You are number {} in the queue. Expected wait: less than a minute.",
                p.position
            ),
            None => format!("You are number {} in the queue.", p.position),
        };
        changes.push(RoutingChange::Notice {
            conversation: p.conversation,
            text,
        });
        marks.entry(p.conversation).or_default().position_sent_at = Some(now);
    }
    let assigned: HashSet<ConversationId> = d.assignments.iter().map(|a| a.conversation).collect();
    for o in &d.out_of_hours {
        marks
            .entry(o.conversation)
            .or_default()
            .out_of_hours_sent_at = Some(now);
        match &o.action {
            OutOfHours::Message(text) => changes.push(RoutingChange::Notice {
                conversation: o.conversation,
                text: text.clone(),
            }),
            // The flow takes the customer (state `bot`); the mark, written below, keeps a
            // flow that hands them back from being started again in the same closure.
            OutOfHours::Flow(flow_id) => {
                changes.push(RoutingChange::StartFlow {
                    conversation: o.conversation,
                    flow_id: flow_id.clone(),
                });
                gone.insert(o.conversation);
            }
        }
    }
    for r in rows {
        let m = marks.get(&r.id).copied().unwrap_or_default();
        if m != r.marks {
            changes.push(RoutingChange::Marks {
                conversation: r.id,
                marks: m,
            });
        }
        let queue = r.queue.and_then(|q| queue_by_id.get(&q));
        if assigned.contains(&r.id) {
            // Assigning cleared the timer; the SLA targets keep running for the agent.
            changes.push(RoutingChange::Timer {
                conversation: r.id,
                due_at: queue.and_then(|q| sla_due(q, r, &m, now)),
            });
            continue;
        }
        if gone.contains(&r.id) {
            continue;
        }
        let next = queue.and_then(|q| next_due(q, r, &m, now));
        let stored = r.timer_due.map(trunc_ms);
        if next.map(trunc_ms) != stored {
            changes.push(RoutingChange::Timer {
                conversation: r.id,
                due_at: next,
            });
        }
    }
}

fn trunc_ms(t: Timestamp) -> i128 {
    t.unix_timestamp_nanos() / 1_000_000
}

/// The next time a round must look at a waiting conversation: an SLA warning or breach,
/// the overflow limit, the next position update, or a recheck of a closed queue.
pub fn next_due(
    q: &Queue,
    r: &RoutedConversation,
    m: &RoutingMarks,
    now: Timestamp,
) -> Option<Timestamp> {
    let enqueued = r.enqueued_at.unwrap_or(r.created_at);
    let mut candidates: Vec<Timestamp> = sla_due(q, r, m, now).into_iter().collect();
    if let Some(of) = q.overflow {
        let at = r.in_queue_since.unwrap_or(enqueued) + of.after;
        if at > now {
            candidates.push(at);
        }
    }
    if !q.is_open(now) {
        candidates.push(now + CLOSED_RECHECK);
    } else if let Some(every) = q.position_updates_every {
        let at = m.position_sent_at.map_or(now + every, |s| s + every);
        candidates.push(if at > now { at } else { now + every });
    }
    candidates.into_iter().min()
}

/// The routing timer of a conversation an agent now holds, after a manual assignment (take,
/// assign, transfer to an agent): its next SLA notice in `queue` (assigning clears the
/// timer; the targets keep running until the agent replies and resolves).
pub fn assigned_timer(
    snap: &RoutingSnapshot,
    c: &RoutedConversation,
    queue: Option<QueueId>,
    now: Timestamp,
) -> RoutingChange {
    let due_at = queue
        .and_then(|q| snap.queues.iter().find(|r| r.id == q))
        .and_then(|r| policy_queue(r).ok())
        .and_then(|q| sla_due(&q, c, &c.marks, now));
    RoutingChange::Timer {
        conversation: c.id,
        due_at,
    }
}

/// The next SLA warning or breach due for a conversation (waiting or assigned), if any.
pub fn sla_due(
    q: &Queue,
    r: &RoutedConversation,
    m: &RoutingMarks,
    now: Timestamp,
) -> Option<Timestamp> {
    let enqueued = r.enqueued_at.unwrap_or(r.created_at);
    let opened = r.opened_at.unwrap_or(r.created_at);
    let mut candidates: Vec<Timestamp> = Vec::new();
    let mut sla = |due: Timestamp, warned: bool, breached: bool| {
        let warn = due - q.sla.warn_before;
        if !warned && !breached && warn > now {
            candidates.push(warn);
        } else if !breached && due > now {
            candidates.push(due);
        }
    };
    if r.first_response_at.is_none() {
        sla(
            enqueued + q.sla.first_response,
            m.first_response_warning,
            m.first_response_breach,
        );
    }
    sla(
        opened + q.sla.resolution,
        m.resolution_warning,
        m.resolution_breach,
    );
    candidates.into_iter().min()
}

/// The average handle time (assigned → resolved) per queue over recent visits.
pub fn handle_times(
    visits: &[switchboard_core::routing::QueueVisit],
) -> HashMap<QueueId, Duration> {
    let mut sums: HashMap<QueueId, (i64, i64)> = HashMap::new();
    for v in visits {
        if let (Some(a), Some(r)) = (v.assigned_at, v.resolved_at)
            && r > a
        {
            let e = sums.entry(v.queue).or_default();
            e.0 += (r - a).whole_seconds();
            e.1 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(q, (s, n))| (q, Duration::seconds(s / n)))
        .collect()
}

/// Unplaced conversations read per page.
const UNPLACED_PAGE: u32 = 1000;

/// How far back handle times are measured.
const HANDLE_TIME_WINDOW: Duration = Duration::hours(2);

impl App {
    /// Runs routing rounds for `tenant` until one changes nothing that needs another
    /// (placements and overflows are followed by a round in their new queue), at most 3.
    /// Publishes the events and wakes the sender for customer notices.
    pub async fn route(&self, tenant: TenantId) -> anyhow::Result<()> {
        for _ in 0..3 {
            let inputs = self.round_inputs(tenant).await?;
            let at = now();
            let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
                Ok(plan_round(snap, &inputs, at))
            };
            let outcome = self.store.routing_round(tenant, None, at, &plan).await?;
            self.publish_routing(&outcome);
            let again = outcome.changes.iter().any(|c| {
                matches!(
                    c,
                    RoutingChange::Place { .. } | RoutingChange::ToQueue { .. }
                )
            });
            if !again {
                break;
            }
        }
        Ok(())
    }

    /// Trims a queue's `out_of_hours_flow` and checks that the tenant has that flow
    /// (`Invalid` listing the flows otherwise). The API and the CLI call it before saving.
    pub async fn check_out_of_hours_flow(
        &self,
        tenant: TenantId,
        settings: &mut QueueSettings,
    ) -> crate::services::ServiceResult<()> {
        let Some(flow) = &mut settings.out_of_hours_flow else {
            return Ok(());
        };
        *flow = flow.trim().to_string();
        let lib = self.flows.library(tenant).await?;
        if lib.flows.contains_key(flow.as_str()) {
            return Ok(());
        }
        let mut known: Vec<&str> = lib.flows.keys().map(String::as_str).collect();
        known.sort_unstable();
        Err(crate::services::ServiceError::Invalid(format!(
            "out_of_hours_flow `{}` is not one of this business's flows ({})",
            flow.chars().take(MAX_FLOW_ID_CHARS).collect::<String>(),
            known.join(", ")
        )))
    }

    /// Publishes a round's events; wakes the sender when it queued customer notices, and
    /// the job worker when it started flows.
    pub(crate) fn publish_routing(&self, outcome: &switchboard_core::routing::RoutingOutcome) {
        self.bus.publish(&outcome.events);
        let has = |f: fn(&RoutingChange) -> bool| outcome.changes.iter().any(f);
        if has(|c| matches!(c, RoutingChange::Notice { .. })) {
            self.wake_sender();
        }
        if has(|c| matches!(c, RoutingChange::StartFlow { .. })) {
            self.wake_jobs();
        }
    }

    /// Placements of the tenant's not-yet-placed conversations (from their hand-off
    /// records) and recent handle times.
    async fn round_inputs(&self, tenant: TenantId) -> anyhow::Result<RoundInputs> {
        // Every unplaced conversation, a page of 1000 at a time (oldest first), so a backlog
        // bigger than a page starves nobody.
        let mut ids: Vec<ConversationId> = Vec::new();
        loop {
            let page = self
                .store
                .desk_conversations(
                    tenant,
                    &switchboard_core::routing::DeskFilter {
                        states: vec![ConversationState::Queued],
                        unplaced: true,
                        after: ids.last().copied(),
                        limit: UNPLACED_PAGE,
                        ..Default::default()
                    },
                )
                .await?;
            let full = page.len() >= UNPLACED_PAGE as usize;
            ids.extend(page.iter().map(|(_, r)| r.id));
            if !full {
                break;
            }
        }
        // One query per 500 conversations, not one per conversation: a big first round
        // places thousands at once.
        let handoffs = self.store.latest_records(tenant, "handoff", &ids).await?;
        let placements = ids
            .iter()
            .map(|id| {
                let placement = handoffs
                    .get(id)
                    .map(|rec| Placement {
                        queue: rec.data["queue"].as_str().map(str::to_string),
                        skill: rec.data["skill"].as_str().map(str::to_string),
                        priority: rec.data["priority"]
                            .as_i64()
                            .and_then(|p| i32::try_from(p).ok())
                            .unwrap_or(0),
                    })
                    .unwrap_or_default();
                (*id, placement)
            })
            .collect();
        let visits = self
            .store
            .queue_visits(tenant, now() - HANDLE_TIME_WINDOW)
            .await?;
        Ok(RoundInputs {
            placements,
            handle_times: handle_times(&visits),
        })
    }
}

/// The routing worker (see the module docs).
pub struct Router {
    /// The runtime.
    pub app: App,
    /// How often due timers are looked for.
    pub tick: StdDuration,
}

impl Router {
    /// Runs until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let bus: Arc<dyn EventBus> = self.app.bus.clone();
        let mut events = bus.subscribe();
        let mut dirty: HashSet<TenantId> = HashSet::new();
        let mut trigger = RoundTrigger::default();
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    match self.app.store.routing_due(now(), 1000).await {
                        Ok(t) => dirty.extend(t),
                        Err(e) => tracing::error!(error = %e, "looking for due routing timers failed"),
                    }
                }
                received = events.recv() => match received {
                    Ok(event) => {
                        if trigger.needs_round(&event.kind) {
                            dirty.insert(event.tenant_id);
                        }
                        // Take what else is already there, so a burst costs one round.
                        while let Ok(e) = events.try_recv() {
                            if trigger.needs_round(&e.kind) {
                                dirty.insert(e.tenant_id);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Missed notifications: the timer scan finds what is due, and
                        // unplaced conversations; a changed agent waits for the next event.
                        trigger.forget();
                        ticker.reset_immediately();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
            for tenant in dirty.drain() {
                if let Err(e) = self.app.route(tenant).await {
                    trigger.forget();
                    tracing::error!(tenant_id = %tenant, error = %format!("{e:#}"), "routing round failed; it runs again at the next change or tick");
                }
            }
        }
        tracing::debug!("router stopped");
    }
}

/// Which events may make a routing round assign or move something. Every customer message
/// publishes its conversation's `ConversationChanged`; a burst into conversations already
/// waiting would otherwise cost one round per batch although a new message changes nothing a
/// round decides (measured: ~14% of the server's CPU in the ingest benchmark). So an unassigned
/// queued conversation triggers a round when the router first sees it queued (new, handed
/// off, reopened, released) and not again until it leaves that state. Desk actions that move a
/// waiting conversation (transfers, assignment) run their round themselves; timers are found
/// by the tick. Forgetting is always safe (the next event then triggers a round), so the
/// memory is cleared when it grows large, when events were missed and when a round fails.
#[derive(Debug, Default)]
struct RoundTrigger {
    /// Unassigned queued conversations a round has already been asked for.
    waiting: HashSet<ConversationId>,
}

impl RoundTrigger {
    /// The most conversations remembered before the memory starts over.
    const MAX_REMEMBERED: usize = 100_000;

    /// Whether `kind` needs a routing round of its tenant.
    fn needs_round(&mut self, kind: &EventKind) -> bool {
        match kind {
            EventKind::ConversationChanged { conversation } => {
                let c = &conversation.conversation;
                match c.state {
                    ConversationState::Queued if c.assignee.is_none() => {
                        if self.waiting.len() >= Self::MAX_REMEMBERED {
                            self.waiting.clear();
                        }
                        self.waiting.insert(c.id)
                    }
                    ConversationState::Queued | ConversationState::Resolved => {
                        self.waiting.remove(&c.id);
                        true
                    }
                    _ => {
                        self.waiting.remove(&c.id);
                        false
                    }
                }
            }
            EventKind::AgentChanged { .. } | EventKind::QueueChanged { .. } => true,
            _ => false,
        }
    }

    /// Forgets everything: every waiting conversation's next event triggers a round again.
    fn forget(&mut self) {
        self.waiting.clear();
    }
}

/// Settings a user is given the first time they change presence without stored settings.
pub fn settings_or_default(all: &[AgentSettings], user: UserId, at: Timestamp) -> AgentSettings {
    all.iter()
        .find(|a| a.user_id == user)
        .cloned()
        .unwrap_or_else(|| AgentSettings::default_for(user, at))
}

#[cfg(test)]
mod tests;
