//! Demo data for `switchboard demo`: a tenant, an admin, two agents, a web chat channel whose
//! new conversations are answered by the bundled `main_menu` flow, and the bundled flows
//! themselves (loaded into the database as versions; unchanged files add no version), and
//! the routing the flows hand off to (`crate::routing::seed`: queues, agents' skills and
//! capacity, canned responses, wrap-up codes).
//!
//! Seeding is idempotent: running it again finds what exists and creates only what is
//! missing. A password is generated for new accounts unless one is given; an existing
//! admin's password changes only when one is given explicitly.

use serde::Serialize;
use switchboard_core::{ChannelKind, ChannelSettings, NewChannel, Role};

use crate::services::ServiceError;
use crate::{App, auth, now};

/// Slug of the demo tenant.
pub const DEMO_TENANT: &str = "demo";
/// Display name of the demo business.
pub const DEMO_BUSINESS: &str = "Demo Bank";
/// The demo admin's login.
pub const DEMO_ADMIN: &str = "admin@demo.example";
/// The flow that answers the demo web chat.
pub const DEMO_FLOW: &str = "main_menu";
/// The demo agents' logins and names.
pub const DEMO_AGENTS: [(&str, &str); 2] = [
    ("ann@demo.example", "Ann Agent"),
    ("ben@demo.example", "Ben Agent"),
];

/// What the demo seeding created or found; printed by the CLI (`--json` prints this).
#[derive(Debug, Clone, Serialize)]
pub struct DemoInfo {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant slug.
    pub tenant: String,
    /// Admin login.
    pub admin_email: String,
    /// The admin password when it was set by this run; `None` when unchanged.
    pub admin_password: Option<String>,
    /// Agent logins (they share the admin's password when created in the same run).
    pub agents: Vec<String>,
    /// The web chat channel id.
    pub webchat_channel_id: String,
    /// Whether anything was created by this run.
    pub created: bool,
    /// The bundled flows loaded for the demo tenant, as `id@version`.
    pub flows: Vec<String>,
}

/// The fixed, clearly fake accounts behind `GET /api/v1/demo/accounts/{account}`, which the
/// bundled balance and collections flows call: (account, holder, balance, available, arrears).
pub const DEMO_ACCOUNTS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "12345678",
        "T. Nkosi (demo)",
        "1234.50",
        "1000.00",
        "850.00",
    ),
    (
        "87654321",
        "A. van Wyk (demo)",
        "20500.00",
        "20500.00",
        "0.00",
    ),
    (
        "100200300",
        "L. Dlamini (demo)",
        "-320.75",
        "0.00",
        "1320.75",
    ),
];

/// A demo account as its endpoint answers it (amounts as exact decimal strings), or `None`.
pub fn demo_account(account: &str) -> Option<serde_json::Value> {
    DEMO_ACCOUNTS.iter().find(|a| a.0 == account).map(
        |(account, holder, balance, available, arrears)| {
            serde_json::json!({
                "account": account, "holder": holder, "currency": "ZAR",
                "balance": balance, "available": available, "arrears": arrears,
            })
        },
    )
}

impl App {
    /// Seeds the demo tenant (see the module documentation).
    pub async fn seed_demo(&self, admin_password: Option<&str>) -> Result<DemoInfo, ServiceError> {
        let mut created = false;
        let tenant = match self.store.tenant_by_slug(DEMO_TENANT).await? {
            Some(t) => t,
            None => {
                created = true;
                self.store
                    .create_tenant(DEMO_TENANT, DEMO_BUSINESS, now())
                    .await?
            }
        };
        let users = self.store.list_users(tenant.id).await?;
        let find = |email: &str| users.iter().find(|u| u.email.as_str() == email).cloned();

        let mut set_password: Option<String> = None;
        match find(DEMO_ADMIN) {
            Some(admin) => {
                if let Some(pw) = admin_password {
                    auth::check_password_policy(pw).map_err(ServiceError::Invalid)?;
                    let pw_owned = pw.to_string();
                    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw_owned))
                        .await
                        .map_err(|e| anyhow::anyhow!("hashing task: {e}"))??;
                    self.store.set_password(tenant.id, admin.id, &hash).await?;
                    set_password = Some(pw.to_string());
                }
            }
            None => {
                let pw = admin_password
                    .map(str::to_string)
                    .unwrap_or_else(auth::random_password);
                self.create_user(tenant.id, DEMO_ADMIN, "Demo Admin", Role::Admin, &pw)
                    .await?;
                set_password = Some(pw);
                created = true;
            }
        }
        for (email, name) in DEMO_AGENTS {
            if find(email).is_none() {
                let pw = set_password.clone().unwrap_or_else(auth::random_password);
                self.create_user(tenant.id, email, name, Role::Agent, &pw)
                    .await?;
                created = true;
            }
        }
        let channels = self.store.list_channels(tenant.id).await?;
        let webchat = match channels
            .into_iter()
            .find(|c| c.kind == ChannelKind::Webchat)
        {
            Some(c) => c,
            None => {
                created = true;
                self.store
                    .create_channel(
                        NewChannel {
                            tenant_id: tenant.id,
                            kind: ChannelKind::Webchat,
                            name: "Website chat".into(),
                            credentials: serde_json::json!({}),
                            settings: ChannelSettings {
                                welcome_message: Some(format!(
                                    "Hello! You are chatting with {DEMO_BUSINESS}. I am an automated assistant; a person from our team will join you shortly."
                                )),
                                title: Some(format!("{DEMO_BUSINESS} support")),
                                ..ChannelSettings::default()
                            },
                        },
                        now(),
                    )
                    .await?
            }
        };
        // The bundled self-service flows answer the demo web chat first.
        let flows = self
            .load_flows(tenant.id, &crate::flows_runtime::BUNDLED_FLOWS)
            .await?;
        let webchat = if webchat.settings.default_flow.is_none() {
            let settings = ChannelSettings {
                default_flow: Some(DEMO_FLOW.to_string()),
                ..webchat.settings.clone()
            };
            self.store
                .set_channel_settings(tenant.id, webchat.id, &settings)
                .await?
        } else {
            webchat
        };
        // Queues the bundled flows hand off to, the agents' skills and canned responses.
        let users = self.store.list_users(tenant.id).await?;
        let agents: Vec<(String, switchboard_core::UserId)> = DEMO_AGENTS
            .iter()
            .filter_map(|(email, _)| {
                users
                    .iter()
                    .find(|u| u.email.as_str() == *email)
                    .map(|u| (email.to_string(), u.id))
            })
            .collect();
        self.seed_demo_routing(tenant.id, &agents).await?;
        Ok(DemoInfo {
            flows: flows
                .iter()
                .map(|f| format!("{}@{}", f.flow.flow_id, f.flow.version))
                .collect(),
            tenant_id: tenant.id.to_string(),
            tenant: tenant.slug,
            admin_email: DEMO_ADMIN.to_string(),
            admin_password: set_password,
            agents: DEMO_AGENTS.iter().map(|(e, _)| e.to_string()).collect(),
            webchat_channel_id: webchat.id.to_string(),
            created,
        })
    }
}
