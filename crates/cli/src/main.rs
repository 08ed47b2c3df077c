//! `switchboard`: the one binary. Parses arguments, loads configuration and hands over to
//! the libraries; no business logic lives here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard_app::config::Overrides;
use switchboard_app::{App, Config};
use switchboard_core::Role;
use switchboard_http::Server;
use tokio_util::sync::CancellationToken;

mod keys;
mod privacy;
mod queues;
mod security;

/// Switchboard: an open-source contact centre for WhatsApp, Telegram, Signal and web chat.
#[derive(Parser)]
#[command(name = "switchboard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, web desk, web chat, workers).
    Serve(ServeArgs),
    /// Seed a demo business (admin, two agents, a web chat channel) and run the server.
    Demo(DemoArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(StoreArgs),
    /// Manage businesses (tenants).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Manage staff users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage WhatsApp, Telegram and Signal channels.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// Bot flow definitions.
    #[command(subcommand)]
    Flows(FlowsCommand),
    /// Routing queues (teams) that flows hand off to.
    #[command(subcommand)]
    Queues(queues::QueuesCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The hash-chained audit log: verify it, list it.
    #[command(subcommand)]
    Audit(security::AuditCommand),
    /// API tokens for integrations (`Authorization: Bearer`).
    #[command(subcommand)]
    Tokens(security::TokensCommand),
    /// Encryption at rest: make a master key, rotate it, add a tenant data-key version.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// A customer's data: export it (JSON) or erase it, as the law gives them the right to.
    #[command(subcommand)]
    Contacts(privacy::ContactsCommand),
    /// Retention: the periods, purge reports, and a purge run now.
    #[command(subcommand)]
    Retention(privacy::RetentionCommand),
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Validate flow files (YAML) and report each problem with file, line and how to fix it.
    Check {
        /// Flow files to check; subflows are resolved among the files given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load flow files into a business (checked first; a changed file becomes a new version).
    Load {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Also make this flow id the default flow of `--channel` (new conversations start in it).
        #[arg(long, requires = "channel")]
        default_flow: Option<String>,
        /// Channel id whose default flow to set.
        #[arg(long, requires = "default_flow")]
        channel: Option<String>,
        /// Print the loaded versions as JSON.
        #[arg(long)]
        json: bool,
        /// Flow files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start a flow for a list of contacts (a campaign): each gets it on their open
    /// conversation on --channel, or on a new one; messages go on the bulk lane, behind live
    /// replies, and are sent by the running server. Opted-out contacts are refused.
    Start(FlowsStartArgs),
}

#[derive(Args)]
struct FlowsStartArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Tenant slug.
    #[arg(long)]
    tenant: String,
    /// Channel id to reach the contacts on.
    #[arg(long)]
    channel: String,
    /// Contacts: a CSV file whose first column is the contact id (a header row is allowed),
    /// or a JSON file with an array of contact ids or of objects with `contact_id`.
    #[arg(long)]
    contacts: PathBuf,
    /// Approved WhatsApp template sent to contacts outside the 24-hour window (the flow
    /// then starts when they answer). Not needed when the flow opens with a template.
    #[arg(long)]
    template: Option<String>,
    /// Language code of --template.
    #[arg(long, default_value = "en_US", requires = "template")]
    template_language: String,
    /// A body variable of --template, in order (repeat for several).
    #[arg(long = "template-var", requires = "template")]
    template_vars: Vec<String>,
    /// Print one JSON object per contact and a summary instead of text.
    #[arg(long)]
    json: bool,
    /// The flow id to start.
    flow: String,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Configuration file (TOML). Default: ./switchboard.toml when present.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the SQLite database and media [default: ./data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL: postgres://user@host:5432/db [default: SQLite in the data dir].
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Share live events with other nodes through NATS JetStream: nats://host:4222
    /// [default: in-process, one node].
    #[arg(long, env = "SWITCHBOARD_NATS_URL")]
    nats_url: Option<String>,
}

#[derive(Args, Clone)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Password for the demo admin (and agents created in the same run); generated if unset.
    #[arg(long, env = "SWITCHBOARD_DEMO_ADMIN_PASSWORD")]
    admin_password: Option<String>,
    /// Print what was seeded as JSON.
    #[arg(long)]
    json: bool,
    /// Seed only; do not start the server.
    #[arg(long)]
    seed_only: bool,
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Create a business.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Short handle: lowercase letters, digits and '-'.
        #[arg(long)]
        slug: String,
        /// Name shown to customers.
        #[arg(long)]
        name: String,
        /// Print the created tenant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one business by slug.
    Show {
        #[command(flatten)]
        store: StoreArgs,
        /// The tenant's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a staff user.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug (see `switchboard tenants add`).
        #[arg(long)]
        tenant: String,
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin, supervisor or agent.
        #[arg(long, default_value = "agent")]
        role: Role,
        /// Password (at least 10 characters); generated and printed if unset.
        #[arg(long, env = "SWITCHBOARD_USER_PASSWORD")]
        password: Option<String>,
        /// Print the created user (and generated password) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a staff member's role (applies from their next request; audited).
    SetRole {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The staff member's login e-mail.
        #[arg(long)]
        email: String,
        /// admin, supervisor or agent.
        #[arg(long)]
        role: Role,
    },
    /// Lift a login lock (after too many failed logins) now instead of when it runs out.
    Unlock {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The staff member's login e-mail.
        #[arg(long)]
        email: String,
    },
    /// List a tenant's staff users.
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

#[derive(Subcommand)]
enum ChannelsCommand {
    /// Add a channel: checks the credentials with the provider and prints the webhook URL.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// whatsapp, telegram or signal.
        kind: switchboard_core::ChannelKind,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Name shown to staff [default: the kind].
        #[arg(long)]
        name: Option<String>,
        /// WhatsApp: system-user access token.
        #[arg(long, env = "SWITCHBOARD_WHATSAPP_TOKEN")]
        access_token: Option<String>,
        /// WhatsApp: the business phone number id.
        #[arg(long)]
        phone_number_id: Option<String>,
        /// WhatsApp: the app secret (webhook signatures).
        #[arg(long, env = "SWITCHBOARD_WHATSAPP_APP_SECRET")]
        app_secret: Option<String>,
        /// WhatsApp: verify token for the webhook handshake [default: generated].
        #[arg(long)]
        verify_token: Option<String>,
        /// Telegram: bot token from @BotFather.
        #[arg(long, env = "SWITCHBOARD_TELEGRAM_TOKEN")]
        bot_token: Option<String>,
        /// Telegram: webhook secret token [default: generated].
        #[arg(long)]
        webhook_secret: Option<String>,
        /// Telegram: register the webhook with setWebhook now.
        #[arg(long)]
        register_webhook: bool,
        /// Signal: our number, E.164 with +.
        #[arg(long)]
        account: Option<String>,
        /// Signal: json-rpc (signal-cli daemon --http) or rest (signal-cli-rest-api).
        #[arg(long, default_value = "json-rpc")]
        mode: String,
        /// Provider API base (tests, proxies; Signal: where signal-cli listens).
        #[arg(long)]
        api_base: Option<String>,
        /// Do not check the credentials with the provider.
        #[arg(long)]
        no_validate: bool,
        /// Allow bulk (campaign) sends; Signal refuses them otherwise.
        #[arg(long)]
        allow_bulk: bool,
        /// Send rate override, messages per second.
        #[arg(long)]
        rate_per_second: Option<u32>,
        /// Print the channel id and webhook URL as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resume a channel paused because the provider refused its credentials (revoked or
    /// expired token): checks the new (or stored) credentials with the provider, stores
    /// them and sends the queued messages.
    Resume {
        #[command(flatten)]
        store: StoreArgs,
        /// The channel id (`GET /api/v1/channels` lists ids and shows `paused`).
        channel_id: switchboard_core::ChannelId,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// WhatsApp: a new system-user access token.
        #[arg(long, env = "SWITCHBOARD_WHATSAPP_TOKEN")]
        access_token: Option<String>,
        /// Telegram: a new bot token from @BotFather.
        #[arg(long, env = "SWITCHBOARD_TELEGRAM_TOKEN")]
        bot_token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented example configuration file.
    Example,
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let json = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(store: &StoreArgs, listen: Option<SocketAddr>) -> anyhow::Result<Config> {
    load_config_with(store, listen, None)
}

fn load_config_with(
    store: &StoreArgs,
    listen: Option<SocketAddr>,
    nats_url: Option<String>,
) -> anyhow::Result<Config> {
    Config::load(
        store.config.as_deref(),
        &Overrides {
            listen,
            data_dir: store.data_dir.clone(),
            database_url: store.database_url.clone(),
            nats_url,
        },
    )
}

async fn open_app(store: &StoreArgs) -> anyhow::Result<App> {
    App::open(load_config(store, None)?).await
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider; install ring once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args, None, false).await,
        Command::Demo(args) => demo(args).await,
        Command::Migrate(store) => {
            let config = load_config(&store, None)?;
            let url = switchboard_app::redact_url(&config.database_url());
            App::open(config).await?;
            println!("Database {url} is migrated and ready.");
            println!("Next: `switchboard serve`, or `switchboard demo` for a demo business.");
            Ok(())
        }
        Command::Tenants(cmd) => tenants(cmd).await,
        Command::Users(cmd) => users(cmd).await,
        Command::Channels(cmd) => channels(cmd).await,
        Command::Flows(FlowsCommand::Check { files }) => flows_check(&files),
        Command::Flows(FlowsCommand::Load {
            store,
            tenant,
            default_flow,
            channel,
            json,
            files,
        }) => flows_load(&store, &tenant, default_flow, channel, json, &files).await,
        Command::Flows(FlowsCommand::Start(args)) => flows_start(args).await,
        Command::Queues(cmd) => queues::run(cmd).await,
        Command::Audit(cmd) => security::audit(cmd).await,
        Command::Tokens(cmd) => security::tokens(cmd).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Contacts(cmd) => privacy::contacts(cmd).await,
        Command::Retention(cmd) => privacy::retention(cmd).await,
        Command::Config(ConfigCommand::Example) => {
            print!("{}", Config::example_toml());
            Ok(())
        }
    }
}

/// Serves; `demo` also lets flows call this server itself (its demo account endpoint),
/// which the SSRF guard refuses otherwise (`flows.allow_hosts = ["self"]`).
async fn serve(args: ServeArgs, banner: Option<String>, demo: bool) -> anyhow::Result<()> {
    let mut config = load_config_with(&args.store, args.listen, args.nats_url.clone())?;
    if demo && !config.flows.allow_hosts.iter().any(|h| h == "self") {
        config.flows.allow_hosts.push("self".into());
    }
    let server = Server::build(config).await?;
    let url = server.app().config.public_url(server.addr());
    println!(
        "Switchboard is running on {url}  (database: {})",
        server.app().backend
    );
    println!("  Agent desk:  {url}/agent");
    match banner {
        Some(b) => println!("{b}"),
        None => {
            if !has_users(server.app()).await? {
                println!("  No staff users yet. Create a business and its first admin:");
                println!("    switchboard tenants add --slug acme --name \"ACME\"");
                println!(
                    "    switchboard users add --tenant acme --email you@example.com --name \"Your Name\" --role admin"
                );
                println!("  or run `switchboard demo` for a ready-made demo business.");
            }
        }
    }
    println!("Press Ctrl+C to stop.");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing work in hand");
        stop.cancel();
    });
    server.run_until_stopped(shutdown).await
}

/// Whether any staff user exists (so `serve` can tell a first-time user what to do).
async fn has_users(app: &App) -> anyhow::Result<bool> {
    Ok(app.store.count_users().await.context("counting users")? > 0)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let config = load_config_with(
        &args.serve.store,
        args.serve.listen,
        args.serve.nats_url.clone(),
    )?;
    let app = App::open(config.clone()).await?;
    let info = app.seed_demo(args.admin_password.as_deref()).await?;
    drop(app);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    }
    let base = match &config.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", config.listen),
    };
    let password = match &info.admin_password {
        Some(p) => p.clone(),
        None => "(unchanged; pass --admin-password to set a new one)".to_string(),
    };
    let banner = format!(
        "  Demo business \"{}\" is ready{}.\n  Log in at {base}/agent as {} with password {password}\n  Agents: {} (same password when created in this run)\n  Customer web chat: {base}/chat/{} (the main menu flow answers first; type *agent* for a person)\n  Open the chat page in one window and the agent desk in another, and say hello.",
        switchboard_app::demo::DEMO_BUSINESS,
        if info.created {
            " (created now)"
        } else {
            " (already seeded)"
        },
        info.admin_email,
        info.agents.join(", "),
        info.webchat_channel_id,
    );
    if args.seed_only {
        if !args.json {
            println!("{banner}");
            println!("Next: `switchboard serve` to start the server.");
        }
        return Ok(());
    }
    serve(args.serve, Some(banner), true).await
}

async fn tenant_by_slug(app: &App, slug: &str) -> anyhow::Result<switchboard_core::Tenant> {
    app.store.tenant_by_slug(slug).await?.with_context(|| {
        format!(
            "no tenant `{slug}`: create it with `switchboard tenants add --slug {slug} --name ...`"
        )
    })
}

async fn tenants(cmd: TenantsCommand) -> anyhow::Result<()> {
    match cmd {
        TenantsCommand::Add {
            store,
            slug,
            name,
            json,
        } => {
            switchboard_core::tenant::validate_slug(&slug).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let app = open_app(&store).await?;
            let t = app
                .store
                .create_tenant(&slug, name.trim(), switchboard_app::now())
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("Created tenant {} ({}) with id {}.", t.slug, t.name, t.id);
                println!(
                    "Next: switchboard users add --tenant {} --email you@example.com --name \"Your Name\" --role admin",
                    t.slug
                );
            }
            Ok(())
        }
        TenantsCommand::Show { store, slug, json } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &slug).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("{}  {}  {}", t.id, t.slug, t.name);
            }
            Ok(())
        }
    }
}

async fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Add {
            store,
            tenant,
            email,
            name,
            role,
            password,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let generated = password.is_none();
            let password = password.unwrap_or_else(switchboard_app::auth::random_password);
            let user = app
                .create_user_as(
                    &switchboard_app::audit::Actor::Cli,
                    t.id,
                    &email,
                    &name,
                    role,
                    &password,
                )
                .await?;
            if json {
                let mut v = serde_json::to_value(&user)?;
                if generated {
                    v["password"] = serde_json::Value::String(password);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "Created {} {} <{}> in {}.",
                    user.role, user.name, user.email, t.slug
                );
                if generated {
                    println!("Generated password: {password}");
                }
                println!("Next: `switchboard serve` and log in at /agent.");
            }
            Ok(())
        }
        UsersCommand::SetRole {
            store,
            tenant,
            email,
            role,
        } => security::set_role(store, tenant, email, role).await,
        UsersCommand::Unlock {
            store,
            tenant,
            email,
        } => security::unlock(store, tenant, email).await,
        UsersCommand::List {
            store,
            tenant,
            json,
        } => {
            let app = open_app(&store).await?;
            let t = tenant_by_slug(&app, &tenant).await?;
            let users = app.store.list_users(t.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else if users.is_empty() {
                println!(
                    "No users in {}. Add one with `switchboard users add --tenant {} ...`.",
                    t.slug, t.slug
                );
            } else {
                for u in users {
                    println!(
                        "{:<10} {:<30} {}",
                        u.role.as_str(),
                        u.email.as_str(),
                        u.name
                    );
                }
            }
            Ok(())
        }
    }
}

async fn channels(cmd: ChannelsCommand) -> anyhow::Result<()> {
    if let ChannelsCommand::Resume {
        store,
        channel_id,
        tenant,
        access_token,
        bot_token,
    } = cmd
    {
        return channels_resume(&store, channel_id, &tenant, access_token, bot_token).await;
    }
    let ChannelsCommand::Add {
        store,
        kind,
        tenant,
        name,
        access_token,
        phone_number_id,
        app_secret,
        verify_token,
        bot_token,
        webhook_secret,
        register_webhook,
        account,
        mode,
        api_base,
        no_validate,
        allow_bulk,
        rate_per_second,
        json,
    } = cmd
    else {
        anyhow::bail!(
            "this `channels` subcommand is not handled here; run `switchboard channels --help` for the supported ones"
        );
    };
    let mut creds = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            creds.insert(k.to_string(), serde_json::Value::String(v));
        }
    };
    match kind {
        switchboard_core::ChannelKind::Whatsapp => {
            put("access_token", access_token);
            put("phone_number_id", phone_number_id);
            put("app_secret", app_secret);
            put("verify_token", verify_token);
        }
        switchboard_core::ChannelKind::Telegram => {
            put("bot_token", bot_token);
            put("webhook_secret", webhook_secret);
        }
        switchboard_core::ChannelKind::Signal => {
            put("account", account);
            put("mode", Some(mode));
            put("api_base", api_base.clone());
        }
        switchboard_core::ChannelKind::Webchat => {}
    }
    let app = open_app(&store).await?;
    let t = tenant_by_slug(&app, &tenant).await?;
    let added = app
        .add_channel(
            t.id,
            switchboard_app::channels::setup::AddChannel {
                kind,
                name: name.unwrap_or_else(|| kind.to_string()),
                credentials: serde_json::Value::Object(creds),
                api_base,
                validate: !no_validate,
                register_webhook,
                allow_bulk,
                rate_per_second,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    app.audit(
        t.id,
        &switchboard_app::audit::Actor::Cli,
        switchboard_app::audit::action::CHANNEL_ADD,
        format!("channel:{}", added.channel.id),
        serde_json::json!({"kind": added.channel.kind.to_string()}),
    )
    .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "channel_id": added.channel.id,
                "kind": added.channel.kind,
                "webhook_url": added.webhook_url,
                "verify_token": added.verify_token,
                "webhook_registered": added.webhook_registered,
            }))?
        );
        return Ok(());
    }
    println!(
        "Added {} channel \"{}\" with id {}.",
        added.channel.kind, added.channel.name, added.channel.id
    );
    match (&added.webhook_url, kind) {
        (Some(url), switchboard_core::ChannelKind::Whatsapp) => {
            println!("Register this callback URL in the Meta App Dashboard: {url}");
            if let Some(v) = &added.verify_token {
                println!("with the verify token: {v}");
            }
        }
        (Some(url), _) if added.webhook_registered => {
            println!("Telegram now sends updates to {url}");
        }
        (Some(url), _) => println!(
            "Webhook URL: {url} (register it with setWebhook, or rerun with --register-webhook)"
        ),
        (None, _) => println!(
            "Signal messages are received from signal-cli by `switchboard serve`; keep signal-cli on loopback."
        ),
    }
    Ok(())
}

/// `switchboard channels resume`: new or re-tested credentials, then sending resumes.
async fn channels_resume(
    store: &StoreArgs,
    channel_id: switchboard_core::ChannelId,
    tenant: &str,
    access_token: Option<String>,
    bot_token: Option<String>,
) -> anyhow::Result<()> {
    let mut creds = serde_json::Map::new();
    if let Some(t) = access_token {
        creds.insert("access_token".into(), serde_json::Value::String(t));
    }
    if let Some(t) = bot_token {
        creds.insert("bot_token".into(), serde_json::Value::String(t));
    }
    let app = open_app(store).await?;
    let t = tenant_by_slug(&app, tenant).await?;
    let update = (!creds.is_empty()).then_some(serde_json::Value::Object(creds));
    let channel = app
        .resume_channel(t.id, channel_id, update)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\nThe channel stays paused. Pass a working token (--access-token for WhatsApp, --bot-token for Telegram) and try again."
            )
        })?;
    println!(
        "{} channel \"{}\" ({}) accepted its credentials; sending resumed.",
        channel.kind, channel.name, channel.id
    );
    println!("Queued messages go out as soon as `switchboard serve` runs.");
    Ok(())
}

/// `switchboard flows check FILE…`: prints `file:line: problem (hint)` for each problem and
/// fails when there is any.
fn flows_check(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut problems = 0usize;
    let mut library = switchboard_flows::FlowLibrary::default();
    let mut origin = std::collections::HashMap::new();
    for file in files {
        let source =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let found = switchboard_flows::check_source(&source);
        for p in &found {
            println!("{}:{p}", file.display());
        }
        problems += found.len();
        if found.is_empty()
            && let Ok(def) = switchboard_flows::parse_flow(&source)
        {
            origin.insert(def.id.clone(), file.clone());
            library.flows.insert(def.id.clone(), def);
        }
    }
    for (flow_id, p) in switchboard_flows::check_library(&library) {
        let file = origin
            .get(&flow_id)
            .map(|f| f.display().to_string())
            .unwrap_or(flow_id);
        println!("{file}:{p}");
        problems += 1;
    }
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) in {} file(s)", files.len());
    }
    println!("{} flow file(s) OK.", files.len());
    Ok(())
}

/// `switchboard flows load`: checks and stores flow files for a tenant, optionally making one
/// the default flow of a channel.
async fn flows_load(
    store: &StoreArgs,
    tenant: &str,
    default_flow: Option<String>,
    channel: Option<String>,
    json: bool,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let mut sources = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        sources.push((file.display().to_string(), text));
    }
    let app = open_app(store).await?;
    let t = tenant_by_slug(&app, tenant).await?;
    let refs: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let saved = app
        .load_flows_as(&switchboard_app::audit::Actor::Cli, t.id, &refs)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e} (run `switchboard flows check FILE…` for every problem with its line)"
            )
        })?;
    let mut channel_set = None;
    if let (Some(flow_id), Some(channel)) = (default_flow, channel) {
        let channel_id: switchboard_core::ChannelId = channel
            .parse()
            .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
        let known = app
            .store
            .flows(t.id)
            .await?
            .into_iter()
            .any(|f| f.flow_id == flow_id);
        anyhow::ensure!(
            known,
            "flow `{flow_id}` is not loaded in {tenant}; load its file first"
        );
        let ch = app
            .store
            .channel(channel_id)
            .await?
            .filter(|c| c.tenant_id == t.id)
            .with_context(|| format!("no channel {channel_id} in {tenant}"))?;
        let mut settings = ch.settings.clone();
        settings.default_flow = Some(flow_id.clone());
        app.store
            .set_channel_settings(t.id, channel_id, &settings)
            .await?;
        channel_set = Some((channel_id, flow_id));
    }
    if json {
        let flows: Vec<_> = saved
            .iter()
            .map(|s| serde_json::json!({"flow_id": s.flow.flow_id, "version": s.flow.version, "created": s.created}))
            .collect();
        let out = serde_json::json!({
            "flows": flows,
            "default_flow": channel_set.as_ref().map(|(c, f)| serde_json::json!({"channel_id": c, "flow_id": f})),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for s in &saved {
        let what = if s.created {
            "loaded as version"
        } else {
            "unchanged, version"
        };
        println!("{} {what} {}", s.flow.flow_id, s.flow.version);
    }
    match channel_set {
        Some((c, f)) => println!("New conversations on channel {c} now start in `{f}`."),
        None => println!(
            "Next: make one the default of a channel with --default-flow FLOW --channel ID."
        ),
    }
    Ok(())
}

/// Reads contact ids from a CSV (first column; a header row that is not an id is skipped) or
/// JSON file (an array of ids, or of objects with `contact_id`).
fn read_contact_ids(path: &Path) -> anyhow::Result<Vec<switchboard_core::ContactId>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the contacts file {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    let mut ids = Vec::new();
    if is_json {
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid JSON: write an array of contact ids, or of objects with \"contact_id\"",
                path.display()
            )
        })?;
        let items = v.as_array().with_context(|| {
            format!(
                "{}: the JSON must be an array of contact ids",
                path.display()
            )
        })?;
        for (i, item) in items.iter().enumerate() {
            let raw = item
                .as_str()
                .or_else(|| item.get("contact_id").and_then(|c| c.as_str()))
                .with_context(|| {
                    format!(
                        "{} item {}: expected a contact id or {{\"contact_id\": \"...\"}}",
                        path.display(),
                        i + 1
                    )
                })?;
            ids.push(
                raw.trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{} item {}: {e}", path.display(), i + 1))?,
            );
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let first = line
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if first.is_empty() {
                continue;
            }
            match first.parse() {
                Ok(id) => ids.push(id),
                Err(_) if n == 0 => {} // a header row
                Err(e) => anyhow::bail!(
                    "{} line {}: `{first}` is not a contact id ({e}); the first column must hold contact ids",
                    path.display(),
                    n + 1
                ),
            }
        }
    }
    anyhow::ensure!(
        !ids.is_empty(),
        "{} lists no contacts: put one contact id per line (CSV) or a JSON array of ids",
        path.display()
    );
    Ok(ids)
}

/// `switchboard flows start FLOW --tenant T --channel C --contacts FILE`: the campaign
/// trigger for a list of contacts, one line of progress per contact.
async fn flows_start(args: FlowsStartArgs) -> anyhow::Result<()> {
    let contacts = read_contact_ids(&args.contacts)?;
    let channel: switchboard_core::ChannelId = args
        .channel
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let app = open_app(&args.store).await?;
    let t = tenant_by_slug(&app, &args.tenant).await?;
    let template = args
        .template
        .as_ref()
        .map(|name| switchboard_core::Content::Template {
            name: name.trim().to_string(),
            language: args.template_language.trim().to_string(),
            variables: args.template_vars.clone(),
        });
    let total = contacts.len();
    let (mut started, mut refused) = (0usize, 0usize);
    for (i, contact) in contacts.into_iter().enumerate() {
        let target = switchboard_app::flows_runtime::admin::CampaignTarget {
            contact,
            channel,
            template: template.clone(),
        };
        let result = app
            .start_campaign_flow(t.id, args.flow.trim(), target)
            .await;
        match &result {
            Ok(_) => started += 1,
            Err(_) => refused += 1,
        }
        if args.json {
            let line = match result {
                Ok(conv) => {
                    serde_json::json!({"contact_id": contact, "started": true, "conversation_id": conv.conversation.id})
                }
                Err(e) => {
                    serde_json::json!({"contact_id": contact, "started": false, "error": e.to_string()})
                }
            };
            println!("{line}");
        } else {
            match result {
                Ok(conv) => println!(
                    "[{}/{total}] {contact}: started in conversation {}",
                    i + 1,
                    conv.conversation.id
                ),
                Err(e) => println!("[{}/{total}] {contact}: refused: {e}", i + 1),
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"summary": {"total": total, "started": started, "refused": refused}})
        );
    } else {
        println!("{started} of {total} started, {refused} refused.");
        println!(
            "Next: the running server (`switchboard serve`) sends the messages; follow them in the desk or with GET /api/v1/conversations."
        );
    }
    anyhow::ensure!(
        started > 0 || total == 0,
        "no flow was started; fix the reasons above and run the command again"
    );
    Ok(())
}
