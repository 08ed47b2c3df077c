//! `switchboard audit …`, `switchboard tokens …` and the access commands of
//! `switchboard users …` (set-role, unlock): thin wrappers over `app::audit` and
//! `app::access`. Everything done here is recorded in the audit log with the actor `cli`.

use anyhow::Context;
use clap::Subcommand;
use switchboard_app::App;
use switchboard_app::audit::{Actor, verify_tenant};
use switchboard_core::security::TokenScope;
use switchboard_core::{ApiTokenId, Role, Tenant, User};

use crate::{StoreArgs, open_app, tenant_by_slug};

/// `switchboard audit …`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every tenant's hash chain (or one tenant's) and name the first broken entry.
    /// Exits with status 1 when a chain is broken.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this tenant (slug); default: every tenant with audit entries.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show a tenant's audit entries in chain order.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Entries after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `switchboard tokens …`
#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an API token acting as a staff member; the secret is printed once.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// E-mail of the staff member the token acts as.
        #[arg(long)]
        email: String,
        /// read (GET only), write, or admin (admin owners only).
        #[arg(long)]
        scope: String,
        /// A label, e.g. "CRM sync".
        #[arg(long)]
        name: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's tokens (never their secrets).
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
    /// Revoke a token by id; it stops working at once.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The token's id (from `switchboard tokens list`).
        id: String,
    },
}

async fn staff_by_email(app: &App, tenant: &Tenant, email: &str) -> anyhow::Result<User> {
    let found = app.store.user_for_login(email).await?;
    match found {
        Some((user, _)) if user.tenant_id == tenant.id => Ok(user),
        _ => anyhow::bail!(
            "no staff member <{email}> in {}: see `switchboard users list --tenant {}`",
            tenant.slug,
            tenant.slug
        ),
    }
}

/// Runs `switchboard audit …`.
pub async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { store, tenant } => {
            let app = open_app(&store).await?;
            let tenants = match tenant {
                Some(slug) => vec![tenant_by_slug(&app, &slug).await?.id],
                None => app.store.audit_tenants().await?,
            };
            if tenants.is_empty() {
                println!("No audit entries yet: nothing to verify.");
                return Ok(());
            }
            let mut broken = 0;
            for id in tenants {
                let slug = app
                    .store
                    .tenant(id)
                    .await?
                    .map_or_else(|| id.to_string(), |t| t.slug);
                let v = verify_tenant(app.store.as_ref(), id).await?;
                if let Some(b) = &v.broken {
                    broken += 1;
                    println!("{slug}: BROKEN at seq {}: {}", b.seq, b.reason);
                } else if let Some(m) = &v.head_mismatch {
                    broken += 1;
                    println!("{slug}: BROKEN: {m}");
                } else if let Some(h) = &v.head {
                    println!(
                        "{slug}: intact, {} entries, head seq {} hash {}",
                        v.checked, h.seq, h.hash
                    );
                }
            }
            if broken > 0 {
                println!(
                    "The audit log was changed outside Switchboard. Keep the database as it is \
                     for investigation; `switchboard audit list --tenant <slug> --after <seq - 1>` \
                     shows the entries around the break."
                );
                std::process::exit(1);
            }
            println!(
                "Next: keep the head (seq and hash) somewhere outside the database; a later \
                 verify that shows a different hash for that seq means the log was rewritten."
            );
            Ok(())
        }
        AuditCommand::List {
            store,
            tenant,
            after,
            limit,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let entries = app
                .store
                .audit_entries(t.id, after.max(0), limit.clamp(1, 10_000))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("No audit entries after seq {after} in {}.", t.slug);
            } else {
                for e in &entries {
                    println!(
                        "{:>6}  {}  {:<22} {:<52} {}  {}",
                        e.seq, e.at, e.action, e.actor, e.subject, e.details
                    );
                }
                if let Some(last) = entries.last() {
                    println!(
                        "Next page: switchboard audit list --tenant {} --after {}",
                        t.slug, last.seq
                    );
                }
            }
            Ok(())
        }
    }
}

/// Runs `switchboard tokens …`.
pub async fn tokens(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create {
            store,
            tenant,
            email,
            scope,
            name,
            json,
        } => {
            let scope = TokenScope::parse(&scope).map_err(anyhow::Error::msg)?;
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let owner = staff_by_email(&app, &t, &email).await?;
            let created = app
                .create_api_token(&Actor::Cli, &owner, &name, scope)
                .await?;
            if json {
                let mut v = serde_json::to_value(&created.token)?;
                v["secret"] = serde_json::Value::String(created.secret);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "Created {} token {} ({}) acting as {}.",
                    created.token.scope, created.token.id, created.token.name, owner.email
                );
                println!(
                    "Secret (shown once, stored only hashed): {}",
                    created.secret
                );
                println!(
                    "Next: send it as `Authorization: Bearer <secret>`; revoke with \
                     `switchboard tokens revoke --tenant {} {}`.",
                    t.slug, created.token.id
                );
            }
            Ok(())
        }
        TokensCommand::List {
            store,
            tenant,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let tokens = app.api_tokens(t.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                println!(
                    "No API tokens in {}. Create one with `switchboard tokens create --tenant {} --email … --scope read --name …`.",
                    t.slug, t.slug
                );
            } else {
                for k in tokens {
                    let state = match (k.revoked_at, k.last_used_at) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, Some(at)) => format!("last used {at}"),
                        (None, None) => "never used".into(),
                    };
                    println!("{}  {:<6} {:<24} {}", k.id, k.scope.as_str(), k.name, state);
                }
            }
            Ok(())
        }
        TokensCommand::Revoke { store, tenant, id } => {
            let id: ApiTokenId = id
                .parse()
                .with_context(|| "see `switchboard tokens list` for token ids".to_string())?;
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let token = app.revoke_api_token(&Actor::Cli, t.id, id).await?;
            println!("Revoked token {} ({}).", token.id, token.name);
            Ok(())
        }
    }
}

/// `switchboard users set-role`.
pub async fn set_role(
    store: StoreArgs,
    tenant: String,
    email: String,
    role: Role,
) -> anyhow::Result<()> {
    let app = open_app(&store).await?;
    let t = tenant_by_slug(&app, &tenant).await?;
    let user = staff_by_email(&app, &t, &email).await?;
    let user = app.change_role(&Actor::Cli, t.id, user.id, role).await?;
    println!(
        "{} is now {} in {}; it applies from their next request.",
        user.email, user.role, t.slug
    );
    Ok(())
}

/// `switchboard users unlock`.
pub async fn unlock(store: StoreArgs, tenant: String, email: String) -> anyhow::Result<()> {
    let app = open_app(&store).await?;
    let t = tenant_by_slug(&app, &tenant).await?;
    let user = staff_by_email(&app, &t, &email).await?;
    app.unlock_account(&Actor::Cli, t.id, user.id).await?;
    println!("{} can log in again.", user.email);
    Ok(())
}
