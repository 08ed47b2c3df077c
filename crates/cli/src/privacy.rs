//! `switchboard contacts export|erase` and `switchboard retention report|run`: a data
//! protection officer's tools at the command line, thin wrappers over `app::privacy`.
//! Everything done here is recorded in the tenant's audit log with the actor `cli`; the
//! command line is trusted as whoever holds the database and the master key.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use switchboard_app::audit::Actor;
use switchboard_core::ContactId;

use crate::{StoreArgs, open_app, tenant_by_slug};

/// `switchboard contacts …`
#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Write everything held about one contact as JSON (format
    /// `switchboard.contact-export.v1`): profile, identities, conversations, every message,
    /// consents, bot records, erasure requests. Audited.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The contact's id (shown in the agent desk and by `GET /api/v1/contacts/{id}`).
        contact: String,
        /// Write to this file instead of standard output (created with mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase one contact everywhere (messages, conversations, identities, consents, records,
    /// media files), leaving an anonymised tombstone for statistics. Cannot be undone. Audited.
    Erase {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The contact's id.
        contact: String,
        /// Confirm: the erasure cannot be undone.
        #[arg(long)]
        yes: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `switchboard retention …`
#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Show the tenant's retention periods and its latest purge reports.
    Report {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a retention purge now with the tenant's saved periods (the server's timer keeps
    /// its own schedule). Audited.
    Run {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_contact(raw: &str) -> anyhow::Result<ContactId> {
    raw.parse().map_err(|e| {
        anyhow::anyhow!(
            "`{raw}` is not a contact id ({e}); copy it from the agent desk or from \
             GET /api/v1/conversations/{{id}} (contact.id)"
        )
    })
}

fn not_found(
    e: switchboard_app::services::ServiceError,
    contact: &str,
    slug: &str,
) -> anyhow::Error {
    match e {
        switchboard_app::services::ServiceError::NotFound(_) => anyhow::anyhow!(
            "no contact {contact} in {slug} (erased already, or another business's id)"
        ),
        other => anyhow::Error::new(other),
    }
}

/// Runs `switchboard contacts …`.
pub async fn contacts(cmd: ContactsCommand) -> anyhow::Result<()> {
    match cmd {
        ContactsCommand::Export {
            store,
            tenant,
            contact,
            out,
        } => {
            let id = parse_contact(&contact)?;
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let export = app
                .export_contact(t.id, &Actor::Cli, id)
                .await
                .map_err(|e| not_found(e, &contact, &t.slug))?;
            let json = serde_json::to_string_pretty(&export).context("encoding the export")?;
            match out {
                None => println!("{json}"),
                Some(path) => {
                    write_private(&path, json.as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "Wrote {} ({} conversations, {} messages) to {}.",
                        contact,
                        export.conversations.len(),
                        export.messages.len(),
                        path.display()
                    );
                    println!(
                        "It holds the customer's personal data: send it to them over a safe \
                         channel and delete your copy. `switchboard audit list --tenant {}` \
                         shows the export was recorded.",
                        t.slug
                    );
                }
            }
            Ok(())
        }
        ContactsCommand::Erase {
            store,
            tenant,
            contact,
            yes,
            json,
        } => {
            let id = parse_contact(&contact)?;
            if !yes {
                anyhow::bail!(
                    "erasure cannot be undone: run again with --yes to erase contact {contact} \
                     (export it first with `switchboard contacts export --tenant {tenant} {contact}` \
                     if the customer asked for a copy)"
                );
            }
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let done = app
                .erase_contact(t.id, &Actor::Cli, id, "cli")
                .await
                .map_err(|e| not_found(e, &contact, &t.slug))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
                return Ok(());
            }
            let rows: Vec<String> = done
                .erasure
                .rows_deleted
                .iter()
                .map(|(table, n)| format!("{table} {n}"))
                .collect();
            println!(
                "Erased contact {contact}: {} conversations, {} messages; {} media files deleted.",
                done.erasure.tombstone.conversations,
                done.erasure.tombstone.messages_inbound + done.erasure.tombstone.messages_outbound,
                done.media_files_deleted
            );
            println!("Rows deleted: {}.", rows.join(", "));
            println!(
                "Tombstone {} keeps only counts and dates. Next: `switchboard audit list --tenant {}` \
                 shows the erasure was recorded.",
                done.erasure.tombstone.id, t.slug
            );
            Ok(())
        }
    }
}

/// Runs `switchboard retention …`.
pub async fn retention(cmd: RetentionCommand) -> anyhow::Result<()> {
    match cmd {
        RetentionCommand::Report {
            store,
            tenant,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let settings = app.privacy_settings(t.id).await?;
            let runs = app.retention_runs(t.id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "retention": settings.retention,
                        "purge_interval_minutes": settings.purge_interval_minutes,
                        "runs": runs,
                    }))?
                );
                return Ok(());
            }
            let days =
                |d: Option<u32>| d.map_or_else(|| "kept".to_string(), |d| format!("{d} days"));
            let r = settings.retention;
            println!(
                "{}: messages {}, media files {}, resolved conversations {}; purge every {} minutes.",
                t.slug,
                days(r.messages_days),
                days(r.media_days),
                days(r.closed_conversations_days),
                settings.purge_interval_minutes
            );
            if runs.is_empty() {
                println!("No purge has run yet.");
            }
            for run in runs.iter().take(20) {
                println!(
                    "{}  {} messages, {} resolved conversations, {} media files deleted ({} batches)",
                    run.started_at,
                    run.messages_deleted,
                    run.conversations_deleted,
                    run.media_deleted,
                    run.batches
                );
            }
            if !r.is_active() {
                println!(
                    "Nothing is deleted automatically. Set periods with PUT /api/v1/privacy/settings \
                     (\"retention\": {{\"messages_days\": 365}})."
                );
            }
            Ok(())
        }
        RetentionCommand::Run {
            store,
            tenant,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let run = app.purge_now(t.id, &Actor::Cli).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
                return Ok(());
            }
            println!(
                "Purged {}: {} messages, {} resolved conversations, {} media files deleted.",
                t.slug, run.messages_deleted, run.conversations_deleted, run.media_deleted
            );
            if !run.policy.is_active() {
                println!(
                    "No retention periods are set, so nothing was due. Set them with \
                     PUT /api/v1/privacy/settings."
                );
            }
            println!("Next: `switchboard retention report --tenant {}`.", t.slug);
            Ok(())
        }
    }
}

/// Writes `bytes` to a new file readable by its owner only (an export is personal data).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
