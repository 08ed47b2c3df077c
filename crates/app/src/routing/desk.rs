//! The desk's and the supervisor's routing use cases: queues, presence and agent settings,
//! conversation lists, take, transfer, notes, resolve with a wrap-up code, reopen, canned
//! responses and the supervisor snapshot.
//!
//! Roles: agents act on their own work (their presence, conversations assigned to them or
//! waiting in a queue); supervisors and admins manage queues and agents and may transfer
//! (reassign) anyone's conversation. Every manual assignment is checked by the same rules as
//! automatic routing (`switchboard_routing::check_pick` / `transfer`), inside a routing
//! round, so nobody is overloaded by hand either and two desks cannot take one conversation.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_core::ports::StoreError;
use switchboard_core::routing::{
    AgentPresence, AgentSettings, CannedResponse, DeskFilter, Note, NoteKind, QueueRecord,
    RoutedConversation, RoutingChange, RoutingSnapshot,
};
use switchboard_core::{
    CannedId, ChannelKind, ConversationId, ConversationState, ConversationSummary, QueueId, Role,
    Timestamp, User, UserId,
};
/// Where a transfer goes (an agent or a queue).
pub use switchboard_routing::TransferTarget;
use switchboard_routing::{
    SlaClocks, SlaSent, TransferRequest, check_pick, check_sla, transfer, validate_wrap_up,
};

use super::{
    QueueSettings, assigned_timer, check_queue, parse_skills, policy_agent, policy_queue,
    policy_waiting, reopen_until,
};
use crate::services::{ServiceError, ServiceResult};
use crate::{App, now};

/// Longest internal note, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;
/// Longest canned response body, in characters.
pub const MAX_CANNED_CHARS: usize = 4000;
/// Highest capacity an agent can be given.
pub const MAX_CAPACITY: u32 = 100;

/// A queue as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// Its id.
    pub id: QueueId,
    /// Its name.
    pub name: String,
    /// Its settings.
    pub settings: QueueSettings,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

fn queue_view(r: &QueueRecord) -> QueueView {
    QueueView {
        id: r.id,
        name: r.name.clone(),
        settings: serde_json::from_value(r.settings.clone()).unwrap_or_default(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// An agent's settings as supervisors change them (`PUT /api/v1/agents/{id}`); absent
/// fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettingsInput {
    /// Presence.
    pub presence: Option<AgentPresence>,
    /// Total capacity (1–100).
    pub capacity: Option<u32>,
    /// Per channel kind limits.
    pub capacity_per_channel: Option<HashMap<ChannelKind, u32>>,
    /// Skills and levels.
    pub skills: Option<BTreeMap<String, u8>>,
    /// Queues served.
    pub queues: Option<Vec<QueueId>>,
}

/// An agent with their current work, for lists and the supervisor view.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// The user.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Routing settings.
    #[serde(flatten)]
    pub settings: AgentSettings,
    /// Conversations they own now.
    pub load: u32,
    /// Their assigned conversations.
    pub conversations: Vec<ConversationId>,
}

/// A desk list row: the inbox row plus routing fields.
#[derive(Debug, Clone, Serialize)]
pub struct DeskRow {
    /// The inbox row.
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Routing fields.
    pub routing: RoutedConversation,
}

/// Which desk list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeskView {
    /// Assigned to me.
    Mine,
    /// Waiting in the queues I serve.
    MyQueues,
    /// Nobody's (bot or queued).
    Unassigned,
    /// Everything open (supervisors).
    All,
    /// Resolved (supervisors see all, agents their own).
    Resolved,
}

/// One queue in the supervisor snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct QueueLive {
    /// The queue.
    pub id: QueueId,
    /// Its name.
    pub name: String,
    /// Open now.
    pub open: bool,
    /// Conversations waiting.
    pub waiting: u32,
    /// The longest current wait, seconds.
    pub longest_wait_secs: i64,
    /// Conversations of the queue held by agents now.
    pub assigned: u32,
    /// Open conversations (waiting or assigned) within the warning window of an SLA target:
    /// first response until an agent replies, resolution until resolved.
    pub sla_at_risk: u32,
    /// Open conversations (waiting or assigned) past an SLA target.
    pub sla_breached: u32,
    /// Members available now.
    pub agents_available: u32,
}

/// One hour of the supervisor chart.
#[derive(Debug, Clone, Serialize)]
pub struct HourStats {
    /// Start of the hour.
    #[serde(with = "time::serde::rfc3339")]
    pub hour: Timestamp,
    /// Conversations that joined a queue in that hour.
    pub volume: u32,
    /// Of those, served by an agent.
    pub served: u32,
    /// Their average wait until an agent, seconds (`null`: none served).
    pub average_wait_secs: Option<i64>,
}

/// The supervisor snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorView {
    /// When it was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    /// Per queue.
    pub queues: Vec<QueueLive>,
    /// Every staff member with state and load.
    pub agents: Vec<AgentView>,
    /// Agents by presence.
    pub agents_by_state: BTreeMap<String, u32>,
    /// Volume and wait per hour, oldest first.
    pub history: Vec<HourStats>,
}

/// A canned response rendered for a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    /// The text with variables filled in.
    pub text: String,
    /// Variables that had no value (left as written).
    pub missing: Vec<String>,
}

fn supervisor(staff: &User) -> ServiceResult<()> {
    if staff.role.includes(Role::Supervisor) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "this needs the supervisor role".into(),
        ))
    }
}

fn refused(e: impl std::fmt::Display) -> StoreError {
    StoreError::Conflict(e.to_string())
}

/// Fills `{{ name }}` variables; unknown names stay as written and are reported.
pub fn render_template(body: &str, vars: &HashMap<&str, String>) -> Rendered {
    let mut text = String::with_capacity(body.len());
    let mut missing = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(v) => text.push_str(v),
            None => {
                text.push_str(&rest[start..start + 2 + end + 2]);
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_string());
                }
            }
        }
        rest = &after[end + 2..];
    }
    text.push_str(rest);
    Rendered { text, missing }
}

impl App {
    /// The tenant's queues.
    pub async fn list_queues(&self, staff: &User) -> ServiceResult<Vec<QueueView>> {
        Ok(self
            .store
            .queues(staff.tenant_id)
            .await?
            .iter()
            .map(queue_view)
            .collect())
    }

    /// Creates (`id: None`) or replaces a queue (supervisors). Settings are checked with
    /// the routing rules first (`422` naming every problem); a taken name is `409`.
    /// (The HTTP route records the change in the audit log.)
    pub async fn save_queue(
        &self,
        staff: &User,
        id: Option<QueueId>,
        name: &str,
        settings: QueueSettings,
    ) -> ServiceResult<QueueView> {
        supervisor(staff)?;
        let others = self.store.queues(staff.tenant_id).await?;
        if let Some(id) = id
            && !others.iter().any(|q| q.id == id)
        {
            return Err(ServiceError::NotFound("queue"));
        }
        let check_id = id.unwrap_or_else(|| QueueId::from_uuid(uuid::Uuid::now_v7()));
        check_queue(name, check_id, &settings, &others).map_err(ServiceError::Invalid)?;
        let mut settings = settings;
        self.check_out_of_hours_flow(staff.tenant_id, &mut settings)
            .await?;
        settings.required_skills = parse_skills(&settings.required_skills)
            .map_err(ServiceError::Invalid)?
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect();
        let value = serde_json::to_value(&settings)
            .map_err(|e| anyhow::anyhow!("encoding queue settings: {e}"))?;
        let (record, events) = self
            .store
            .save_queue(staff.tenant_id, id, name.trim(), &value, now())
            .await?;
        self.bus.publish(&events);
        Ok(queue_view(&record))
    }

    /// Deletes a queue (supervisors); `409` while conversations wait in it.
    pub async fn delete_queue(&self, staff: &User, id: QueueId) -> ServiceResult<()> {
        supervisor(staff)?;
        let events = self.store.delete_queue(staff.tenant_id, id, now()).await?;
        self.bus.publish(&events);
        Ok(())
    }

    /// Every staff member with routing settings and current work.
    pub async fn list_agents(&self, staff: &User) -> ServiceResult<Vec<AgentView>> {
        let t = staff.tenant_id;
        let users = self.store.list_users(t).await?;
        let settings = self.store.agent_settings(t, now()).await?;
        let assigned = self
            .store
            .desk_conversations(
                t,
                &DeskFilter {
                    states: vec![ConversationState::Assigned],
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await?;
        let mut work: HashMap<UserId, Vec<ConversationId>> = HashMap::new();
        for (_, r) in &assigned {
            if let Some(a) = r.assignee {
                work.entry(a).or_default().push(r.id);
            }
        }
        Ok(users
            .into_iter()
            .map(|u| {
                let settings = super::settings_or_default(&settings, u.id, now());
                let conversations = work.remove(&u.id).unwrap_or_default();
                AgentView {
                    user_id: u.id,
                    name: u.name,
                    role: u.role,
                    settings,
                    load: u32::try_from(conversations.len()).unwrap_or(u32::MAX),
                    conversations,
                }
            })
            .collect())
    }

    /// Changes the staff member's own presence; going available starts a round.
    pub async fn set_presence(
        &self,
        staff: &User,
        presence: AgentPresence,
    ) -> ServiceResult<AgentSettings> {
        self.change_agent(
            staff.tenant_id,
            staff.id,
            AgentSettingsInput {
                presence: Some(presence),
                ..Default::default()
            },
        )
        .await
    }

    /// Changes an agent's settings (supervisors; anyone for their own presence only).
    pub async fn update_agent(
        &self,
        staff: &User,
        user: UserId,
        input: AgentSettingsInput,
    ) -> ServiceResult<AgentSettings> {
        let only_presence = input.capacity.is_none()
            && input.capacity_per_channel.is_none()
            && input.skills.is_none()
            && input.queues.is_none();
        if !(user == staff.id && only_presence) {
            supervisor(staff)?;
        }
        self.change_agent(staff.tenant_id, user, input).await
    }

    async fn change_agent(
        &self,
        tenant: switchboard_core::TenantId,
        user: UserId,
        input: AgentSettingsInput,
    ) -> ServiceResult<AgentSettings> {
        let at = now();
        let all = self.store.agent_settings(tenant, at).await?;
        if !all.iter().any(|a| a.user_id == user) {
            return Err(ServiceError::NotFound("user"));
        }
        let mut s = super::settings_or_default(&all, user, at);
        if let Some(p) = input.presence
            && p != s.presence
        {
            s.presence = p;
            s.presence_since = at;
        }
        if let Some(c) = input.capacity {
            if !(1..=MAX_CAPACITY).contains(&c) {
                return Err(ServiceError::Invalid(format!(
                    "capacity must be 1 to {MAX_CAPACITY} conversations"
                )));
            }
            s.capacity = c;
        }
        if let Some(per) = input.capacity_per_channel {
            if per.values().any(|&v| v > MAX_CAPACITY) {
                return Err(ServiceError::Invalid(format!(
                    "capacity_per_channel limits must be 0 to {MAX_CAPACITY}"
                )));
            }
            s.capacity_per_channel = per;
        }
        if let Some(skills) = input.skills {
            s.skills = parse_skills(&skills)
                .map_err(ServiceError::Invalid)?
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
        }
        if let Some(mut queues) = input.queues {
            queues.sort();
            queues.dedup();
            s.queues = queues;
        }
        let events = self.store.save_agent_settings(tenant, &s, at).await?;
        self.bus.publish(&events);
        if s.presence == AgentPresence::Available
            && let Err(e) = self.route(tenant).await
        {
            tracing::error!(error = %format!("{e:#}"), "routing after an agent change failed; the router retries");
        }
        Ok(s)
    }

    /// A desk list: `mine`, `my_queues`, `unassigned`, `all` (supervisors), `resolved`;
    /// `search` matches the contact's name or the last message.
    pub async fn desk_list(
        &self,
        staff: &User,
        view: DeskView,
        search: Option<String>,
        limit: u32,
    ) -> ServiceResult<Vec<DeskRow>> {
        use ConversationState::*;
        let t = staff.tenant_id;
        let mut f = DeskFilter {
            search,
            limit,
            ..Default::default()
        };
        match view {
            DeskView::Mine => {
                f.states = vec![Assigned];
                f.assignee = Some(staff.id);
            }
            DeskView::MyQueues => {
                let me = super::settings_or_default(
                    &self.store.agent_settings(t, now()).await?,
                    staff.id,
                    now(),
                );
                if me.queues.is_empty() {
                    return Ok(Vec::new());
                }
                f.states = vec![Queued];
                f.queues = me.queues;
            }
            DeskView::Unassigned => {
                f.states = vec![Bot, Queued];
                f.unassigned = true;
            }
            DeskView::All => {
                supervisor(staff)?;
            }
            DeskView::Resolved => {
                f.states = vec![Resolved];
                if !staff.role.includes(Role::Supervisor) {
                    f.assignee = Some(staff.id);
                }
            }
        }
        Ok(self
            .store
            .desk_conversations(t, &f)
            .await?
            .into_iter()
            .map(|(summary, routing)| DeskRow { summary, routing })
            .collect())
    }

    /// The agent takes a waiting conversation from a queue they serve (manual pick). The
    /// same rules as automatic routing apply: available, skilled, room left. `409` with
    /// the reason otherwise, also when someone else took it first.
    pub async fn take(&self, staff: &User, id: ConversationId) -> ServiceResult<DeskRow> {
        let me = staff.id;
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            if c.state != ConversationState::Queued {
                return Err(StoreError::Conflict(format!(
                    "the conversation is {}, not waiting: someone may have taken it",
                    c.state
                )));
            }
            let settings = snap
                .agents
                .iter()
                .find(|a| a.user_id == me)
                .ok_or(StoreError::NotFound("user"))?;
            let agent = policy_agent(settings, snap.loads.get(&me));
            let Some(record) = c.queue.and_then(|q| snap.queues.iter().find(|r| r.id == q)) else {
                return Err(StoreError::Conflict(
                    "the conversation is not in a queue yet: try again in a moment".into(),
                ));
            };
            let queue = policy_queue(record).map_err(StoreError::Invalid)?;
            let waiting = policy_waiting(c, now()).ok_or(StoreError::NotFound("queue"))?;
            check_pick(&queue, &agent, &waiting).map_err(refused)?;
            Ok(vec![
                RoutingChange::Assign {
                    conversation: c.id,
                    agent: me,
                },
                assigned_timer(snap, c, c.queue, now()),
            ])
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), now(), &plan)
            .await?;
        self.publish_routing(&outcome);
        self.desk_row(staff, id).await
    }

    /// Transfers a conversation to an agent or a queue with an optional note for whoever
    /// receives it. Agents transfer conversations assigned to them; supervisors any (that
    /// is how they reassign). A transfer to an agent needs them available, skilled and with
    /// room (`409` with the reason); to a queue, the next round assigns it.
    pub async fn transfer(
        &self,
        staff: &User,
        id: ConversationId,
        target: TransferTarget,
        note: Option<String>,
    ) -> ServiceResult<DeskRow> {
        if let Some(n) = &note
            && n.trim().chars().count() > switchboard_routing::MAX_NOTE_CHARS
        {
            return Err(ServiceError::Invalid(format!(
                "the note is longer than {} characters",
                switchboard_routing::MAX_NOTE_CHARS
            )));
        }
        let me = staff.id;
        let is_supervisor = staff.role.includes(Role::Supervisor);
        let at = now();
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            if !is_supervisor && c.assignee != Some(me) {
                return Err(StoreError::Conflict(
                    "you can transfer only conversations assigned to you; ask a supervisor".into(),
                ));
            }
            if c.state == ConversationState::Resolved || c.state == ConversationState::Bot {
                return Err(StoreError::Invalid(format!(
                    "a {} conversation cannot be transferred",
                    c.state
                )));
            }
            let queues: Vec<_> = snap
                .queues
                .iter()
                .filter_map(|r| policy_queue(r).ok())
                .collect();
            let agents: Vec<_> = snap
                .agents
                .iter()
                .map(|a| policy_agent(a, snap.loads.get(&a.user_id)))
                .collect();
            // A conversation not yet placed counts as waiting in the target or first queue.
            let current = c
                .queue
                .or(match target {
                    TransferTarget::Queue(q) => Some(q),
                    TransferTarget::Agent(_) => queues.first().map(|q| q.id),
                })
                .ok_or_else(|| StoreError::Invalid("create a queue first".into()))?;
            let request = TransferRequest {
                conversation: c.id,
                queue: current,
                from_agent: c.assignee,
                channel: c.channel_kind,
                required_skills: c
                    .required_skills
                    .iter()
                    .filter_map(|(k, &v)| switchboard_routing::Skill::parse(k).ok().map(|k| (k, v)))
                    .collect(),
                target,
                note: note.clone(),
            };
            let checked = transfer(&queues, &agents, &request, at).map_err(|e| match e {
                switchboard_routing::TransferError::UnknownQueue(_) => {
                    StoreError::NotFound("queue")
                }
                switchboard_routing::TransferError::UnknownAgent(_) => StoreError::NotFound("user"),
                other => refused(other),
            })?;
            let mut changes = Vec::new();
            let (to_agent, to_queue, note) = match checked {
                switchboard_routing::Transfer::ToAgent { agent, note, .. } => {
                    if c.queue.is_none() {
                        changes.push(RoutingChange::ToQueue {
                            conversation: c.id,
                            queue: current,
                        });
                    }
                    changes.push(RoutingChange::Assign {
                        conversation: c.id,
                        agent,
                    });
                    changes.push(assigned_timer(snap, c, Some(current), at));
                    (Some(agent), None, note)
                }
                switchboard_routing::Transfer::ToQueue { to, note, .. } => {
                    changes.push(RoutingChange::ToQueue {
                        conversation: c.id,
                        queue: to,
                    });
                    (None, Some(to), note)
                }
            };
            changes.push(RoutingChange::Note {
                conversation: c.id,
                author: Some(me),
                kind: NoteKind::Transfer,
                body: note.unwrap_or_default(),
                data: serde_json::json!({
                    "from_agent": c.assignee, "from_queue": c.queue,
                    "to_agent": to_agent, "to_queue": to_queue,
                }),
            });
            Ok(changes)
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), at, &plan)
            .await?;
        self.publish_routing(&outcome);
        if let Err(e) = self.route(staff.tenant_id).await {
            tracing::error!(error = %format!("{e:#}"), "routing after a transfer failed; the router retries");
        }
        self.desk_row(staff, id).await
    }

    /// Adds an internal note (any staff member of the tenant). Never sent to the customer.
    pub async fn add_note(
        &self,
        staff: &User,
        id: ConversationId,
        body: &str,
    ) -> ServiceResult<Note> {
        let body = body.trim();
        if body.is_empty() || body.chars().count() > MAX_NOTE_CHARS {
            return Err(ServiceError::Invalid(format!(
                "a note needs 1 to {MAX_NOTE_CHARS} characters"
            )));
        }
        let me = staff.id;
        let text = body.to_string();
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            Ok(vec![RoutingChange::Note {
                conversation: c.id,
                author: Some(me),
                kind: NoteKind::Note,
                body: text.clone(),
                data: serde_json::json!({}),
            }])
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), now(), &plan)
            .await?;
        self.publish_routing(&outcome);
        outcome
            .events
            .iter()
            .find_map(|e| match &e.kind {
                switchboard_core::EventKind::NoteAdded { note } => Some(note.clone()),
                _ => None,
            })
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("the note was not recorded")))
    }

    /// A conversation's internal notes, oldest first.
    pub async fn list_notes(&self, staff: &User, id: ConversationId) -> ServiceResult<Vec<Note>> {
        self.conversation_for(staff, id).await?;
        Ok(self.store.notes(staff.tenant_id, id).await?)
    }

    /// Resolves with an optional wrap-up code. The conversation's queue decides whether a
    /// code is required and which are allowed (`422` naming them). Agents resolve their own
    /// or unassigned conversations; supervisors any. The freed slot starts a round.
    pub async fn resolve_with(
        &self,
        staff: &User,
        id: ConversationId,
        code: Option<&str>,
    ) -> ServiceResult<ConversationSummary> {
        let me = staff.id;
        let is_supervisor = staff.role.includes(Role::Supervisor);
        let code = code
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            if !is_supervisor && c.assignee.is_some_and(|a| a != me) {
                return Err(StoreError::Conflict(
                    "this conversation is assigned to someone else; ask a supervisor".into(),
                ));
            }
            if c.state == ConversationState::Resolved {
                return Err(StoreError::Invalid(
                    "the conversation is already resolved".into(),
                ));
            }
            if let Some(record) = c.queue.and_then(|q| snap.queues.iter().find(|r| r.id == q)) {
                let queue = policy_queue(record).map_err(StoreError::Invalid)?;
                validate_wrap_up(&queue, code.as_deref())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            } else if let Some(code) = &code {
                return Err(StoreError::Invalid(format!(
                    "`{}` is not a wrap-up code: this conversation is in no queue, so it takes none",
                    code.chars().take(64).collect::<String>()
                )));
            }
            let reopen = c
                .queue
                .and_then(|q| snap.queues.iter().find(|r| r.id == q))
                .and_then(|r| reopen_until(r, now()));
            Ok(vec![RoutingChange::Resolve {
                conversation: c.id,
                wrap_up_code: code.clone(),
                reopen_until: reopen,
            }])
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), now(), &plan)
            .await?;
        self.publish_routing(&outcome);
        if let Err(e) = self.route(staff.tenant_id).await {
            tracing::error!(error = %format!("{e:#}"), "routing after a resolve failed; the router retries");
        }
        self.conversation_for(staff, id).await
    }

    /// Assigns a conversation by hand: `POST /api/v1/conversations/{id}/assign` and an
    /// agent's reply to an unassigned conversation. `to` defaults to the staff member;
    /// agents assign only to themselves, supervisors to anyone of the tenant.
    ///
    /// A conversation routing manages (placed in a queue) goes only to an agent who could
    /// take it from that queue, checked inside a routing round (so two desks cannot race
    /// past a capacity limit): `409` when the agent is away/offline or at capacity (total or
    /// for the channel), `422` when they lack a skill the queue or the conversation needs.
    /// Queue membership is not required: a supervisor may hand work to an agent of another
    /// team. A supervisor may pass `force` to skip these checks (an agent who is just
    /// signing in, an emergency); agents cannot. Conversations outside routing (no queue:
    /// bot conversations, tenants without queues) are assigned as before, without checks.
    pub async fn assign_to(
        &self,
        staff: &User,
        id: ConversationId,
        to: Option<UserId>,
        force: bool,
    ) -> ServiceResult<ConversationSummary> {
        let target = to.unwrap_or(staff.id);
        let is_supervisor = staff.role.includes(Role::Supervisor);
        if target != staff.id && !is_supervisor {
            return Err(ServiceError::Forbidden(
                "agents can only assign conversations to themselves; ask a supervisor".into(),
            ));
        }
        if force && !is_supervisor {
            return Err(ServiceError::Forbidden(
                "only supervisors may force an assignment past presence, capacity and skills"
                    .into(),
            ));
        }
        self.store
            .user(staff.tenant_id, target)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let routed = self
            .store
            .routed_conversation(staff.tenant_id, id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))?;
        if routed.queue.is_none() || force {
            if force {
                tracing::info!(tenant_id = %staff.tenant_id, user_id = %staff.id, conversation_id = %id, assignee = %target, "assignment forced past routing checks");
            }
            let ev = self
                .store
                .assign(staff.tenant_id, id, target, now())
                .await?;
            self.bus.publish(std::slice::from_ref(&ev));
            return self.conversation_for(staff, id).await;
        }
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            if c.state == ConversationState::Resolved {
                return Err(StoreError::Invalid(
                    "a resolved conversation cannot be assigned: reopen it first".into(),
                ));
            }
            if c.assignee == Some(target) {
                return Ok(Vec::new());
            }
            let settings = snap
                .agents
                .iter()
                .find(|a| a.user_id == target)
                .ok_or(StoreError::NotFound("user"))?;
            let agent = policy_agent(settings, snap.loads.get(&target));
            if settings.presence != AgentPresence::Available {
                return Err(StoreError::Conflict(format!(
                    "the agent is {}: only an available agent can be assigned (they set \
                     themselves available, or a supervisor forces it with \"force\": true)",
                    settings.presence
                )));
            }
            let queue = c
                .queue
                .and_then(|q| snap.queues.iter().find(|r| r.id == q))
                .map(policy_queue)
                .transpose()
                .map_err(StoreError::Invalid)?;
            let extra = c
                .required_skills
                .iter()
                .filter_map(|(k, &v)| switchboard_routing::Skill::parse(k).ok().map(|k| (k, v)))
                .collect::<switchboard_routing::Skills>();
            let mut needed: Vec<&switchboard_routing::Skills> = vec![&extra];
            if let Some(q) = &queue {
                needed.push(&q.required_skills);
            }
            if !agent.has_skills(needed.iter().copied()) {
                let mut names: Vec<String> = needed
                    .iter()
                    .flat_map(|s| s.iter())
                    .filter(|(skill, min)| agent.skills.get(*skill).is_none_or(|l| l < *min))
                    .map(|(skill, min)| format!("{} (level {min})", skill.as_str()))
                    .collect();
                names.sort();
                names.dedup();
                return Err(StoreError::Invalid(format!(
                    "the agent lacks skills this conversation needs: {}",
                    names.join(", ")
                )));
            }
            if !agent.has_room_for(c.channel_kind) {
                return Err(StoreError::Conflict(format!(
                    "the agent is at capacity ({} of {} conversations, or the limit for {}): \
                     resolve or transfer one first",
                    agent.total_load(),
                    agent.capacity.total,
                    c.channel_kind
                )));
            }
            Ok(vec![
                RoutingChange::Assign {
                    conversation: c.id,
                    agent: target,
                },
                assigned_timer(snap, c, c.queue, now()),
            ])
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), now(), &plan)
            .await?;
        self.publish_routing(&outcome);
        self.conversation_for(staff, id).await
    }

    /// Reopens a resolved conversation into its queue (`422` unless resolved; `409` when
    /// the customer already has another open conversation on that channel).
    pub async fn reopen(&self, staff: &User, id: ConversationId) -> ServiceResult<DeskRow> {
        let plan = move |snap: &RoutingSnapshot| -> Result<Vec<RoutingChange>, StoreError> {
            let c = snap
                .focus
                .as_ref()
                .ok_or(StoreError::NotFound("conversation"))?;
            if c.state != ConversationState::Resolved {
                return Err(StoreError::Invalid(format!(
                    "only a resolved conversation can be reopened; this one is {}",
                    c.state
                )));
            }
            Ok(vec![RoutingChange::Reopen {
                conversation: c.id,
                queue: c.queue,
            }])
        };
        let outcome = self
            .store
            .routing_round(staff.tenant_id, Some(id), now(), &plan)
            .await?;
        self.publish_routing(&outcome);
        if let Err(e) = self.route(staff.tenant_id).await {
            tracing::error!(error = %format!("{e:#}"), "routing after a reopen failed; the router retries");
        }
        self.desk_row(staff, id).await
    }

    /// One conversation as a desk row.
    pub async fn desk_row(&self, staff: &User, id: ConversationId) -> ServiceResult<DeskRow> {
        let summary = self.conversation_for(staff, id).await?;
        let routing = self
            .store
            .routed_conversation(staff.tenant_id, id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))?;
        Ok(DeskRow { summary, routing })
    }

    /// The tenant's canned responses.
    pub async fn list_canned(&self, staff: &User) -> ServiceResult<Vec<CannedResponse>> {
        Ok(self.store.canned_responses(staff.tenant_id).await?)
    }

    /// Creates or replaces a canned response (supervisors). The shortcut is 1–32 letters,
    /// digits, `-` or `_`.
    pub async fn save_canned(
        &self,
        staff: &User,
        id: Option<CannedId>,
        shortcut: &str,
        title: &str,
        body: &str,
    ) -> ServiceResult<CannedResponse> {
        supervisor(staff)?;
        let shortcut = shortcut.trim().trim_start_matches('/').to_lowercase();
        if shortcut.is_empty()
            || shortcut.len() > 32
            || !shortcut
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ServiceError::Invalid(
                "shortcut must be 1 to 32 letters, digits, `-` or `_` (typed after `/`)".into(),
            ));
        }
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 100 {
            return Err(ServiceError::Invalid(
                "title must be 1 to 100 characters".into(),
            ));
        }
        if body.trim().is_empty() || body.chars().count() > MAX_CANNED_CHARS {
            return Err(ServiceError::Invalid(format!(
                "body must be 1 to {MAX_CANNED_CHARS} characters"
            )));
        }
        Ok(self
            .store
            .save_canned(staff.tenant_id, id, &shortcut, title, body, now())
            .await?)
    }

    /// Deletes a canned response (supervisors).
    pub async fn delete_canned(&self, staff: &User, id: CannedId) -> ServiceResult<()> {
        supervisor(staff)?;
        Ok(self.store.delete_canned(staff.tenant_id, id).await?)
    }

    /// Renders a canned response for a conversation. Variables: `contact.name`,
    /// `agent.name`, `business.name`, `conversation.id`, `queue.name`.
    pub async fn render_canned(
        &self,
        staff: &User,
        id: CannedId,
        conversation: ConversationId,
    ) -> ServiceResult<Rendered> {
        let canned = self
            .store
            .canned_responses(staff.tenant_id)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(ServiceError::NotFound("canned response"))?;
        let row = self.desk_row(staff, conversation).await?;
        let tenant = self
            .store
            .tenant(staff.tenant_id)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))?;
        let mut vars: HashMap<&str, String> = HashMap::new();
        if let Some(n) = row.summary.contact_name.clone() {
            vars.insert("contact.name", n);
        }
        vars.insert("agent.name", staff.name.clone());
        vars.insert("business.name", tenant.name);
        vars.insert("conversation.id", conversation.to_string());
        if let Some(q) = row.routing.queue {
            let queues = self.store.queues(staff.tenant_id).await?;
            if let Some(q) = queues.into_iter().find(|r| r.id == q) {
                vars.insert("queue.name", q.name);
            }
        }
        Ok(render_template(&canned.body, &vars))
    }

    /// The supervisor snapshot: per queue (waiting, longest wait, SLA at risk and breached,
    /// members available), agents with state and load, agents by state, and volume and
    /// wait per hour for the last `hours` hours (1–24).
    pub async fn supervisor_view(&self, staff: &User, hours: u32) -> ServiceResult<SupervisorView> {
        supervisor(staff)?;
        let t = staff.tenant_id;
        let at = now();
        let records = self.store.queues(t).await?;
        let agents = self.list_agents(staff).await?;
        let open = self
            .store
            .desk_conversations(
                t,
                &DeskFilter {
                    states: vec![ConversationState::Queued, ConversationState::Assigned],
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await?;
        let mut queues = Vec::with_capacity(records.len());
        for r in &records {
            let Ok(q) = policy_queue(r) else { continue };
            let mut live = QueueLive {
                id: r.id,
                name: r.name.clone(),
                open: q.is_open(at),
                waiting: 0,
                assigned: 0,
                longest_wait_secs: 0,
                sla_at_risk: 0,
                sla_breached: 0,
                agents_available: u32::try_from(
                    agents
                        .iter()
                        .filter(|a| {
                            a.settings.presence == AgentPresence::Available
                                && a.settings.queues.contains(&r.id)
                        })
                        .count(),
                )
                .unwrap_or(u32::MAX),
            };
            for (_, c) in open.iter().filter(|(_, c)| c.queue == Some(r.id)) {
                let since = c.enqueued_at.unwrap_or(c.created_at);
                if c.state == ConversationState::Queued {
                    live.waiting += 1;
                    live.longest_wait_secs =
                        live.longest_wait_secs.max((at - since).whole_seconds());
                } else {
                    live.assigned += 1;
                }
                let check = check_sla(
                    &q.sla,
                    SlaClocks {
                        enqueued_at: since,
                        opened_at: c.opened_at.unwrap_or(c.created_at),
                        first_response_at: c.first_response_at,
                    },
                    SlaSent::default(),
                    at,
                );
                if check.breaches.iter().any(Option::is_some) {
                    live.sla_breached += 1;
                } else if check.warnings.iter().any(Option::is_some) {
                    live.sla_at_risk += 1;
                }
            }
            queues.push(live);
        }
        let mut agents_by_state = BTreeMap::new();
        for p in ["available", "away", "offline"] {
            agents_by_state.insert(p.to_string(), 0u32);
        }
        for a in &agents {
            *agents_by_state
                .entry(a.settings.presence.as_str().to_string())
                .or_insert(0) += 1;
        }
        let hours = hours.clamp(1, 24);
        let start = at
            .replace_minute(0)
            .and_then(|t| t.replace_second(0))
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(at)
            - time::Duration::hours(i64::from(hours) - 1);
        let visits = self.store.queue_visits(t, start).await?;
        let history = (0..hours)
            .map(|h| {
                let from = start + time::Duration::hours(i64::from(h));
                let to = from + time::Duration::hours(1);
                let in_hour: Vec<_> = visits
                    .iter()
                    .filter(|v| v.enqueued_at >= from && v.enqueued_at < to)
                    .collect();
                let waits: Vec<i64> = in_hour
                    .iter()
                    .filter_map(|v| v.assigned_at.map(|a| (a - v.enqueued_at).whole_seconds()))
                    .collect();
                HourStats {
                    hour: from,
                    volume: u32::try_from(in_hour.len()).unwrap_or(u32::MAX),
                    served: u32::try_from(waits.len()).unwrap_or(u32::MAX),
                    average_wait_secs: (!waits.is_empty())
                        .then(|| waits.iter().sum::<i64>() / waits.len() as i64),
                }
            })
            .collect();
        Ok(SupervisorView {
            at,
            queues,
            agents,
            agents_by_state,
            history,
        })
    }
}
