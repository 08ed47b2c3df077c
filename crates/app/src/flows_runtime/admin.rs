//! Flow use cases for the CLI and the HTTP layer: load flow definitions (checked, versioned),
//! start a flow on a conversation, and read what the bot collected.

use switchboard_core::ports::{FlowRecord, JobKind, SavedFlow};
use switchboard_core::{ConversationId, ConversationState, TenantId, Transition, User};
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
