//! Flow use cases for the CLI and the HTTP layer: load flow definitions (checked, versioned),
//! start a flow on a conversation, and read what the bot collected.

use switchboard_core::ports::{ConsentStatus, FlowRecord, JobKind, SavedFlow};
use switchboard_core::{
    ChannelId, ContactId, ConversationId, ConversationState, Role, TenantId, Transition, User,
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
                },
                now(),
            )
            .await?;
        self.wake_jobs();
        self.conversation_for(staff, conversation).await
    }

    /// Starts `flow_id` for a contact on a channel (the campaign trigger; supervisors and
    /// admins): the contact's open conversation on that channel is reused and the flow starts
    /// there as with [`App::start_flow`]. Refused with `Conflict` when the contact's latest
    /// consent on that channel is `opted_out` or the conversation is with people (queued or
    /// assigned); `NotFound` for an unknown flow or contact;
    /// `Invalid` when the contact has no address or no open conversation on the channel
    /// (opening a new conversation from here is not supported yet).
    pub async fn start_flow_for_contact(
        &self,
        staff: &User,
        flow_id: &str,
        contact: ContactId,
        channel: ChannelId,
    ) -> ServiceResult<switchboard_core::ConversationSummary> {
        if !staff.role.includes(Role::Supervisor) {
            return Err(ServiceError::Forbidden(
                "starting a flow for a contact needs the supervisor role".into(),
            ));
        }
        let tenant = staff.tenant_id;
        let lib = self.flows.library(tenant).await?;
        if !lib.flows.contains_key(flow_id) {
            return Err(ServiceError::NotFound("flow"));
        }
        let Some((_, identities)) = self.store.contact(tenant, contact).await? else {
            return Err(ServiceError::NotFound("contact"));
        };
        if !identities.iter().any(|i| i.channel_id == channel) {
            return Err(ServiceError::Invalid(
                "the contact has no address on this channel".into(),
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
        let open = self
            .store
            .contact_conversations(tenant, contact)
            .await?
            .into_iter()
            .find(|c| {
                c.conversation.channel_id == channel
                    && c.conversation.state != ConversationState::Resolved
            });
        let Some(conv) = open else {
            return Err(ServiceError::Invalid(
                "the contact has no open conversation on this channel; starting a new one from a campaign is not supported yet".into(),
            ));
        };
        if matches!(
            conv.conversation.state,
            ConversationState::Queued | ConversationState::Assigned
        ) {
            return Err(ServiceError::Conflict(
                "the contact's conversation on this channel is with people (queued or assigned); a campaign does not take it from them".into(),
            ));
        }
        self.start_flow(staff, conv.conversation.id, flow_id).await
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

fn invalid(name: &str, problems: &[switchboard_flows::Problem]) -> ServiceError {
    let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    ServiceError::Invalid(format!("{name}: {}", list.join("; ")))
}
