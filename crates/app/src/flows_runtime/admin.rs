//! Flow use cases for the CLI and the HTTP layer: load flow definitions (checked, versioned),
//! start a flow on a conversation or for a contact (the campaign trigger), and read what the
//! bot collected.

use switchboard_core::ports::{CampaignStart, ConsentStatus, FlowRecord, JobKind, SavedFlow};
use switchboard_core::{
    ChannelId, ContactId, Content, ConversationId, ConversationState, Role, TenantId, Transition,
    User,
};
use switchboard_flows::{FlowLibrary, check, check_library, parse_flow};

use crate::services::{ServiceError, ServiceResult};
use crate::{App, now};

impl App {
    /// Checks and stores flow definitions (YAML sources) for a tenant, as one set: every file
    /// must parse and pass `flows check`, and together with the tenant's other flows every
    /// subflow must exist. Nothing is stored when anything is wrong; the error names the file
    /// (by its flow id or position), the line and the problem. Unchanged sources keep their
    /// version.
    pub async fn load_flows(
        &self,
        tenant: TenantId,
        sources: &[(&str, &str)],
    ) -> ServiceResult<Vec<SavedFlow>> {
        self.load_flows_as(&crate::audit::Actor::System, tenant, sources)
            .await
    }

    /// [`App::load_flows`] on behalf of `actor`, recorded in the audit log as
    /// `config.flow_load` with the flow ids stored.
    pub async fn load_flows_as(
        &self,
        actor: &crate::audit::Actor,
        tenant: TenantId,
        sources: &[(&str, &str)],
    ) -> ServiceResult<Vec<SavedFlow>> {
        let mut lib = FlowLibrary::default();
        for stored in self.store.flows(tenant).await? {
            if let Ok(def) = parse_flow(&stored.source) {
                lib.insert(def);
            }
        }
        let mut parsed = Vec::new();
        for (name, src) in sources {
            let def = parse_flow(src).map_err(|problems| invalid(name, &problems))?;
            let problems = check(&def);
            if !problems.is_empty() {
                return Err(invalid(name, &problems));
            }
            parsed.push((def.id.clone(), *src));
            lib.insert(def);
        }
        let problems: Vec<String> = check_library(&lib)
            .into_iter()
            .filter(|(id, _)| parsed.iter().any(|(p, _)| p == id))
            .map(|(id, p)| format!("flow `{id}`: {p}"))
            .collect();
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("; ")));
        }
        let mut saved = Vec::new();
        for (id, src) in parsed {
            saved.push(self.store.save_flow(tenant, &id, src, now()).await?);
        }
        self.flows.invalidate(tenant);
        let ids: Vec<serde_json::Value> = saved
            .iter()
            .map(|s| serde_json::json!({"id": s.flow.flow_id, "version": s.flow.version, "changed": s.created}))
            .collect();
        self.audit(
            tenant,
            actor,
            crate::audit::action::FLOW_LOAD,
            format!("tenant:{tenant}"),
            serde_json::json!({"flows": ids}),
        )
        .await?;
        Ok(saved)
    }

    /// Starts `flow_id` on a conversation (staff): the conversation goes to state `bot` (its
    /// assignee is cleared) and the flow's first messages are sent by the job worker.
    /// Unknown flows answer NotFound; resolved conversations are refused.
    pub async fn start_flow(
        &self,
        staff: &User,
        conversation: ConversationId,
        flow_id: &str,
    ) -> ServiceResult<switchboard_core::ConversationSummary> {
        let conv = self.conversation_for(staff, conversation).await?;
        let lib = self.flows.library(staff.tenant_id).await?;
        if !lib.flows.contains_key(flow_id) {
            return Err(ServiceError::NotFound("flow"));
        }
        match conv.conversation.state {
            ConversationState::Resolved => {
                return Err(ServiceError::Invalid(
                    "this conversation is resolved; a flow can start when the customer writes again"
                        .into(),
                ));
            }
            ConversationState::Bot => {}
            ConversationState::Queued | ConversationState::Assigned => {
                let ev = self
                    .store
                    .transition(staff.tenant_id, conversation, Transition::StartBot, now())
                    .await?;
                self.bus.publish(std::slice::from_ref(&ev));
            }
        }
        self.store
            .enqueue_job(
                staff.tenant_id,
                JobKind::StartFlow {
                    conversation_id: conversation,
                    flow_id: flow_id.to_string(),
                    campaign: None,
                },
                self.clock.now(),
            )
            .await?;
        self.wake_jobs();
        self.conversation_for(staff, conversation).await
    }

    /// Starts `flow_id` for a contact on a channel (the campaign trigger; supervisors and
    /// admins). See [`App::start_campaign_flow`] for what happens and what is refused.
    pub async fn start_flow_for_contact(
        &self,
        staff: &User,
        flow_id: &str,
        target: CampaignTarget,
    ) -> ServiceResult<switchboard_core::ConversationSummary> {
        if !staff.role.includes(Role::Supervisor) {
            return Err(ServiceError::Forbidden(
                "starting a flow for a contact needs the supervisor role".into(),
            ));
        }
        self.start_campaign_flow(staff.tenant_id, flow_id, target)
            .await
    }

    /// The campaign trigger (the API for supervisors, `switchboard flows start` for the
    /// operator): starts `flow_id` for a contact on a channel, its messages on the bulk lane.
    /// - The contact's open conversation there is used when the bot has it; with none open, a
    ///   new conversation is opened in state `bot` (`Store::open_conversation`, with the
    ///   start job in the same transaction).
    /// - WhatsApp outside the 24-hour window (the customer's last message on this channel is
    ///   older, or they never wrote): with `target.template`, only that template is sent and
    ///   the flow starts when the customer answers; without it, the flow must open with a
    ///   template (`send` with `template`), else `TemplateRequired`. Inside the window (and
    ///   on other channels) `target.template` is not needed and not sent.
    /// - Refused, with nothing written: `Conflict` when the contact's latest consent on the
    ///   channel is `opted_out` or their conversation there is with people (queued or
    ///   assigned); `NotFound` for an unknown flow, contact or channel; `Invalid` when the
    ///   contact has no address on the channel or the template has no name or language.
    pub async fn start_campaign_flow(
        &self,
        tenant: TenantId,
        flow_id: &str,
        target: CampaignTarget,
    ) -> ServiceResult<switchboard_core::ConversationSummary> {
        let CampaignTarget {
            contact,
            channel,
            template,
        } = target;
        if let Some(t) = &template {
            match t {
                Content::Template { name, language, .. }
                    if !name.trim().is_empty() && !language.trim().is_empty() => {}
                _ => {
                    return Err(ServiceError::Invalid(
                        "a template needs a name and a language code (e.g. {\"name\": \"payment_reminder\", \"language\": \"en_US\", \"variables\": [\"Thandi\"]})".into(),
                    ));
                }
            }
        }
        let lib = self.flows.library(tenant).await?;
        let Some(def) = lib.flows.get(flow_id) else {
            return Err(ServiceError::NotFound("flow"));
        };
        let Some(ch) = self
            .store
            .channel(channel)
            .await?
            .filter(|c| c.tenant_id == tenant)
        else {
            return Err(ServiceError::NotFound("channel"));
        };
        let Some((_, identities)) = self.store.contact(tenant, contact).await? else {
            return Err(ServiceError::NotFound("contact"));
        };
        if !identities.iter().any(|i| i.channel_id == channel) {
            return Err(ServiceError::Invalid(
                "the contact has no address on this channel; pick a channel they wrote to us on"
                    .into(),
            ));
        }
        let opted_out = self
            .store
            .consents(tenant, contact)
            .await?
            .iter()
            .rfind(|c| c.channel_id == channel)
            .is_some_and(|c| c.status == ConsentStatus::OptedOut);
        if opted_out {
            return Err(ServiceError::Conflict(
                "this contact opted out of messages on this channel; a flow cannot be started for them until they write to you again".into(),
            ));
        }
        let on_channel: Vec<_> = self
            .store
            .contact_conversations(tenant, contact)
            .await?
            .into_iter()
            .filter(|c| c.conversation.channel_id == channel)
            .collect();
        let open = on_channel
            .iter()
            .find(|c| c.conversation.state != ConversationState::Resolved);
        if let Some(conv) = open
            && matches!(
                conv.conversation.state,
                ConversationState::Queued | ConversationState::Assigned
            )
        {
            return Err(ServiceError::Conflict(
                "the contact's conversation on this channel is with people (queued or assigned); a campaign does not take it from them".into(),
            ));
        }
        let now = self.clock.now();
        let last_inbound = on_channel
            .iter()
            .filter_map(|c| c.conversation.last_inbound_at)
            .max();
        let window_open =
            crate::channels::window_allows(ch.kind, &Content::text(""), last_inbound, now);
        let opening_template = if window_open {
            None
        } else if template.is_some() {
            template
        } else if def.opens_with_template() {
            None
        } else {
            return Err(ServiceError::TemplateRequired(format!(
                "the contact's last message on this {} channel is more than 24 hours old (or they never wrote), so only an approved template may open the conversation: add {{\"template\": {{\"name\", \"language\", \"variables\"}}}} to the request, or make flow `{flow_id}` start with a `send` node that has a `template`",
                ch.kind
            )));
        };
        let campaign = CampaignStart { opening_template };
        let conversation = match open {
            Some(conv) => {
                self.store
                    .enqueue_job(
                        tenant,
                        JobKind::StartFlow {
                            conversation_id: conv.conversation.id,
                            flow_id: flow_id.to_string(),
                            campaign: Some(campaign),
                        },
                        now,
                    )
                    .await?;
                conv.clone()
            }
            None => {
                let opened = self
                    .store
                    .open_conversation(tenant, contact, channel, flow_id, campaign, now)
                    .await?;
                self.bus.publish(&opened.events);
                opened.conversation
            }
        };
        self.wake_jobs();
        Ok(conversation)
    }

    /// What the bot collected in a conversation (records, oldest first) and the latest
    /// hand-off summary, for the agent.
    pub async fn bot_records(
        &self,
        staff: &User,
        conversation: ConversationId,
    ) -> ServiceResult<(Vec<FlowRecord>, Option<serde_json::Value>)> {
        let records = self.store.records(staff.tenant_id, conversation).await?;
        let summary = records
            .iter()
            .rev()
            .find(|r| r.kind == "handoff")
            .map(|r| r.data.clone());
        Ok((records, summary))
    }
}

/// One contact a campaign starts a flow for ([`App::start_campaign_flow`]).
#[derive(Debug, Clone)]
pub struct CampaignTarget {
    /// The customer.
    pub contact: ContactId,
    /// The channel to reach them on (they must have an address there).
    pub channel: ChannelId,
    /// A `Content::Template` to open with when WhatsApp's 24-hour window is closed.
    pub template: Option<Content>,
}

fn invalid(name: &str, problems: &[switchboard_flows::Problem]) -> ServiceError {
    let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    ServiceError::Invalid(format!("{name}: {}", list.join("; ")))
}
