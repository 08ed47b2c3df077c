//! `switchboard queues …`: list a tenant's routing queues and add one from the command line.
//! Thin wrappers over `switchboard_app::routing` (the same checks as `POST /api/v1/queues`).

use std::collections::BTreeMap;

use anyhow::Context;
use clap::Subcommand;
use switchboard_app::routing::{QueueSettings, check_queue, policy_queue};
use switchboard_core::QueueId;

use crate::{StoreArgs, open_app, tenant_by_slug};

/// `switchboard queues …`
#[derive(Subcommand)]
pub enum QueuesCommand {
    /// Add a queue (a team) that flows hand off to by name.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Queue name, as flows name it in `handoff: queue:`.
        name: String,
        /// A skill every agent of the queue needs (level 1); repeat for several.
        #[arg(long = "skill")]
        skills: Vec<String>,
        /// Served before queues with a lower number.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        /// longest_idle, least_busy, round_robin or manual_pick.
        #[arg(long, default_value = "longest_idle")]
        policy: String,
        /// Wrap-up codes agents choose from when resolving, comma-separated.
        #[arg(long, value_delimiter = ',')]
        wrap_up_codes: Vec<String>,
        /// Refuse to resolve without one of the wrap-up codes.
        #[arg(long)]
        wrap_up_required: bool,
        /// First human reply target, seconds.
        #[arg(long, default_value_t = 300)]
        first_response_secs: u32,
        /// Tell waiting customers their position this often, seconds.
        #[arg(long)]
        position_update_secs: Option<u32>,
        /// Resolution target, seconds (runs while an agent holds the conversation too).
        #[arg(long, default_value_t = 86_400)]
        resolution_secs: u32,
        /// A customer writing again within this many seconds of a resolution reopens the
        /// conversation; later (or 0) starts a new one.
        #[arg(long, default_value_t = 86_400)]
        reopen_within_secs: u32,
        /// A flow (its id, e.g. main_menu) that takes customers waiting while the queue is
        /// closed, instead of the out-of-hours message.
        #[arg(long)]
        out_of_hours_flow: Option<String>,
    },
    /// List a tenant's queues.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `queues` command.
pub async fn run(cmd: QueuesCommand) -> anyhow::Result<()> {
    match cmd {
        QueuesCommand::Add {
            store,
            tenant,
            name,
            skills,
            priority,
            policy,
            wrap_up_codes,
            wrap_up_required,
            first_response_secs,
            position_update_secs,
            resolution_secs,
            reopen_within_secs,
            out_of_hours_flow,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let policy = serde_json::from_value(serde_json::Value::String(policy.clone()))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "unknown policy `{policy}`: use longest_idle, least_busy, round_robin or manual_pick"
                    )
                })?;
            let settings = QueueSettings {
                priority,
                required_skills: skills
                    .iter()
                    .map(|s| (s.clone(), 1u8))
                    .collect::<BTreeMap<_, _>>(),
                policy,
                wrap_up_codes: wrap_up_codes
                    .iter()
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                wrap_up_required,
                first_response_secs,
                position_update_secs,
                resolution_secs,
                reopen_within_secs,
                out_of_hours_flow,
                ..QueueSettings::default()
            };
            let others = app.store.queues(t.id).await?;
            check_queue(&name, QueueId::new_at(1), &settings, &others)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut settings = settings;
            app.check_out_of_hours_flow(t.id, &mut settings)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            settings.required_skills =
                switchboard_app::routing::parse_skills(&settings.required_skills)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), v))
                    .collect();
            let value = serde_json::to_value(&settings).context("encoding the settings")?;
            let (q, _) = app
                .store
                .save_queue(t.id, None, name.trim(), &value, switchboard_app::now())
                .await?;
            println!("Added queue {} ({}) to {}.", q.name, q.id, t.slug);
            println!(
                "Next: give agents the queue with `PUT /api/v1/agents/{{id}}` {{\"queues\": [\"{}\"]}} (or the desk), and hand off to `{}` from a flow.",
                q.id, q.name
            );
            Ok(())
        }
        QueuesCommand::List {
            store,
            tenant,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let queues = app.store.queues(t.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&queues)?);
            } else if queues.is_empty() {
                println!(
                    "No queues in {}. Add one with `switchboard queues add NAME --tenant {}`.",
                    t.slug, t.slug
                );
            } else {
                for q in queues {
                    let summary = match policy_queue(&q) {
                        Ok(p) => format!(
                            "{:?} priority {} skills [{}] wrap-up [{}]{}",
                            p.policy,
                            p.priority,
                            p.required_skills
                                .keys()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            p.wrap_up.codes.join(", "),
                            if p.wrap_up.required {
                                " (required)"
                            } else {
                                ""
                            }
                        ),
                        Err(e) => format!("unreadable settings: {e}"),
                    };
                    println!("{:<14} {}  {}", q.name, q.id, summary);
                }
            }
            Ok(())
        }
    }
}
