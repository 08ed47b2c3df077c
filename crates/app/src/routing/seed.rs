//! Demo routing data for `switchboard demo`: the queues the bundled flows hand off to
//! (`general`, `loans`, `collections`, `sales`) with SLA targets and wrap-up codes, the demo
//! agents' skills, capacity and queues, and a few canned responses. Idempotent: only what
//! is missing is created, and agents keep settings someone already changed. Agents start
//! offline: nothing is assigned until one of them sets themselves available.

use std::collections::BTreeMap;

use switchboard_core::routing::AgentSettings;
use switchboard_core::{QueueId, TenantId};
use switchboard_routing::Policy;

use super::QueueSettings;
use crate::services::ServiceResult;
use crate::{App, now};

/// A demo queue: (name, priority, skill required of every member, wrap-up codes, whether a
/// code is required).
pub type DemoQueue = (
    &'static str,
    i32,
    Option<&'static str>,
    &'static [&'static str],
    bool,
);

/// The demo queues.
pub const DEMO_QUEUES: [DemoQueue; 4] = [
    (
        "general",
        0,
        None,
        &["answered", "callback", "no_reply"],
        false,
    ),
    (
        "loans",
        5,
        Some("lending"),
        &["application_complete", "more_documents", "declined"],
        true,
    ),
    (
        "collections",
        3,
        Some("collections"),
        &["promise_to_pay", "paid", "dispute", "no_contact"],
        true,
    ),
    (
        "sales",
        1,
        None,
        &["sold", "follow_up", "not_interested"],
        false,
    ),
];

/// The demo canned responses: (shortcut, title, body).
pub const DEMO_CANNED: [(&str, &str, &str); 3] = [
    (
        "hello",
        "Greeting",
        "Hello {{contact.name}}, this is {{agent.name}} from {{business.name}}. How can I help?",
    ),
    (
        "docs",
        "Documents needed",
        "To continue your application please send a copy of your ID and your last three payslips.",
    ),
    (
        "bye",
        "Closing",
        "Thank you for contacting {{business.name}}. Is there anything else I can help with?",
    ),
];

impl App {
    /// Seeds the demo routing data (see the module docs). `agents` are (e-mail, user id) of
    /// the demo agents, in `DEMO_AGENTS` order.
    pub async fn seed_demo_routing(
        &self,
        tenant: TenantId,
        agents: &[(String, switchboard_core::UserId)],
    ) -> ServiceResult<()> {
        let at = now();
        let mut queues = self.store.queues(tenant).await?;
        for (name, priority, skill, codes, required) in DEMO_QUEUES {
            if queues.iter().any(|q| q.name == name) {
                continue;
            }
            let settings = QueueSettings {
                priority,
                required_skills: skill
                    .map(|s| BTreeMap::from([(s.to_string(), 1u8)]))
                    .unwrap_or_default(),
                policy: Policy::LongestIdle,
                wrap_up_codes: codes.iter().map(|c| c.to_string()).collect(),
                wrap_up_required: required,
                position_update_secs: Some(120),
                ..QueueSettings::default()
            };
            let value = serde_json::to_value(&settings)
                .map_err(|e| anyhow::anyhow!("encoding demo queue settings: {e}"))?;
            let (q, _) = self
                .store
                .save_queue(tenant, None, name, &value, at)
                .await?;
            queues.push(q);
        }
        let id = |name: &str| -> Option<QueueId> {
            queues.iter().find(|q| q.name == name).map(|q| q.id)
        };
        let current = self.store.agent_settings(tenant, at).await?;
        // Ann lends, Ben collects; both answer general questions and sales.
        let plans: [(&[&str], &[&str]); 2] = [
            (&["general", "loans", "sales"], &["lending"]),
            (&["general", "collections", "sales"], &["collections"]),
        ];
        for ((_, user), (qs, skills)) in agents.iter().zip(plans) {
            let existing = super::settings_or_default(&current, *user, at);
            if !existing.queues.is_empty() || !existing.skills.is_empty() {
                continue;
            }
            let settings = AgentSettings {
                capacity: 3,
                skills: skills.iter().map(|s| (s.to_string(), 5u8)).collect(),
                queues: qs.iter().filter_map(|n| id(n)).collect(),
                ..existing
            };
            self.store
                .save_agent_settings(tenant, &settings, at)
                .await?;
        }
        let canned = self.store.canned_responses(tenant).await?;
        for (shortcut, title, body) in DEMO_CANNED {
            if !canned.iter().any(|c| c.shortcut == shortcut) {
                self.store
                    .save_canned(tenant, None, shortcut, title, body, at)
                    .await?;
            }
        }
        Ok(())
    }
}
