//! The Switchboard runtime: everything between the HTTP edge and storage.
//!
//! Layout:
//! - [`config`]: the typed configuration and its layers.
//! - [`ingest`]: inbound messages committed in batches before they are acknowledged.
//! - [`worker`]: durable jobs (decisions after a customer message); [`clock`]: the time
//!   the worker and the flow runtime read (tests move it forward).
//! - [`media`]: inbound media downloaded by a job into the content-addressed media store.
//! - [`sender`]: the outbox sender and the per-kind transports.
//! - [`bus`]: live event notifications ([`bus_nats`] across nodes); [`webchat`]: open
//!   customer pages, reached from any node; [`lease`]: work one node does at a time.
//! - [`routing`]: routing rounds (queues, agents, SLA timers) and the desk's use cases;
//!   [`agent_desk`]: the desk's view counts, typing state and template catalogue.
//! - [`flows_runtime`]: runs bot flows for conversations in state `bot` (HTTP calls behind
//!   an SSRF guard, hand-off, records, consent, timers) and loads flow definitions.
//! - [`access`]: login throttling and lockout, session expiry, API tokens, role changes;
//!   [`audit`]: the audit service and chain verification.
//! - [`auth`]: password hashing and tokens; [`services`]: the use cases the HTTP layer calls
//!   (login, reply, assign, web chat visitors); [`demo`]: idempotent demo data.
//!
//! [`App`] owns the shared state; [`App::start_workers`] runs the background tasks until a
//! cancellation token fires.

pub mod access;
pub mod agent_desk;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod bus_nats;
pub mod cache;
pub mod channels;
pub mod clock;
pub mod config;
pub mod demo;
pub mod flows_runtime;
pub mod ingest;
pub mod keys;
pub mod lease;
pub mod media;
pub mod privacy;
pub mod routing;
pub mod sender;
pub mod services;
pub mod webchat;
pub mod worker;

use std::sync::Arc;

use anyhow::Context;
use switchboard_core::ChannelKind;
use switchboard_core::ports::Store;
use switchboard_core::retry::RetryPolicy;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::bus::{EventBus, InProcessBus};
use crate::ingest::Ingestor;
use crate::sender::{Transport, Transports, WebchatTransport};
use crate::webchat::WebchatHub;

/// The current time. The only clock read of the runtime, so tests know where time enters.
pub fn now() -> switchboard_core::Timestamp {
    time::OffsetDateTime::now_utc()
}

/// Shared runtime state, cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Live events.
    pub bus: Arc<dyn EventBus>,
    /// Open web chat pages.
    pub webchat: WebchatHub,
    /// Configuration.
    pub config: Arc<Config>,
    /// This process's name in leases.
    pub node: String,
    /// Name of the storage backend (`sqlite` / `postgres`).
    pub backend: &'static str,
    wake_jobs: Arc<Notify>,
    wake_sender: Arc<Notify>,
    ingestor: Arc<std::sync::OnceLock<Ingestor>>,
    /// Hot-path lookups: channel id → (channel, tenant).
    pub(crate) channel_cache: Arc<
        cache::TtlCache<
            switchboard_core::ChannelId,
            (switchboard_core::Channel, switchboard_core::Tenant),
        >,
    >,
    /// Web chat token hash → visitor id.
    pub(crate) visitor_cache: Arc<cache::TtlCache<(switchboard_core::ChannelId, String), String>>,
    /// Self-service flows: runs `flows::step` for conversations in state `bot`.
    pub flows: Arc<flows_runtime::FlowRuntime>,
    /// Privacy: chat commands, erasure, export, retention purges.
    pub privacy: Arc<privacy::Privacy>,
    /// The time the job worker (timers) and the flow runtime read; see [`App::with_clock`].
    pub clock: Arc<dyn switchboard_core::ports::Clock>,
    own_addr: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    extra_transports: Arc<std::sync::Mutex<Transports>>,
    /// Provider channels: HTTP client and per-account send limiters.
    pub channels: Arc<channels::ChannelRuntime>,
    /// The desk's extras: typing throttles and signals, the template catalogue cache.
    pub desk: Arc<agent_desk::DeskLive>,
    wake_signal: Arc<Notify>,
    /// The SQL store when [`App::open`] opened one: the media store takes tenant keys from it.
    sql_store: Option<Arc<switchboard_storage::SqlStore>>,
}

/// Background tasks started by [`App::start_workers`].
pub struct Workers {
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Workers {
    /// Waits for every task to finish (after the shutdown token fired).
    pub async fn join(self) {
        for (name, h) in self.handles {
            if let Err(e) = h.await {
                tracing::error!(worker = name, error = %e, "worker ended abnormally");
            }
        }
    }
}

impl App {
    /// Opens storage (running migrations) and prepares the runtime. Workers are not started.
    pub async fn open(config: Config) -> anyhow::Result<App> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "creating the data directory {} (choose another with --data-dir)",
                    config.data_dir.display()
                )
            })?;
        }
        // The master key: configured, or made on first start outside the data directory.
        let (master, source) = keys::master_keyring(&config, true)?;
        tracing::info!(master_key = %master.current().id(), source = %source, "master key loaded");
        let store = switchboard_storage::open(&url, master)
            .await
            .with_context(|| format!("opening the database {}", redact_url(&url)))?;
        let backend = store.backend_name();
        let nats_url = config.nats_url.clone();
        let store = Arc::new(store);
        let mut app = Self::with_store(store.clone(), backend, config);
        app.sql_store = Some(store);
        if let Some(url) = nats_url {
            let bus = bus_nats::NatsBus::connect(&url).await?;
            let relay = bus_nats::WebchatNatsRelay::start(
                bus.client(),
                app.webchat.clone(),
                app.node.clone(),
            )
            .await?;
            app.webchat.set_relay(Arc::new(relay));
            let typing = bus_nats::TypingNatsRelay::start(
                bus.client(),
                app.desk.clone(),
                app.webchat.clone(),
                app.node.clone(),
            )
            .await?;
            app.desk.set_relay(Arc::new(typing));
            app.bus = Arc::new(bus);
        }
        Ok(app)
    }

    /// Builds the runtime over an already opened store (tests, benchmarks).
    pub fn with_store(store: Arc<dyn Store>, backend: &'static str, config: Config) -> App {
        let channels = Arc::new(channels::ChannelRuntime::new(
            config.channels.clone(),
            config.lease(),
        ));
        let own_addr = Arc::new(std::sync::OnceLock::new());
        let clock: Arc<dyn switchboard_core::ports::Clock> = Arc::new(clock::SystemClock);
        let flows = Arc::new(flows_runtime::FlowRuntime::new(
            store.clone(),
            config.flows.clone(),
            own_addr.clone(),
            clock.clone(),
        ));
        let privacy = Arc::new(privacy::Privacy::new(
            store.clone(),
            media::MediaStore::new(config.data_dir.join("media")),
            clock.clone(),
        ));
        App {
            flows,
            privacy,
            clock,
            own_addr,
            channels,
            desk: Arc::new(agent_desk::DeskLive::default()),
            wake_signal: Arc::new(Notify::new()),
            sql_store: None,
            store,
            bus: Arc::new(InProcessBus::new(8192)),
            webchat: WebchatHub::default(),
            config: Arc::new(config),
            node: format!("node-{}", &auth::random_token()[..8]),
            backend,
            wake_jobs: Arc::new(Notify::new()),
            wake_sender: Arc::new(Notify::new()),
            ingestor: Arc::new(std::sync::OnceLock::new()),
            channel_cache: Arc::new(cache::TtlCache::new(
                Some(std::time::Duration::from_secs(5)),
                10_000,
            )),
            visitor_cache: Arc::new(cache::TtlCache::new(None, 200_000)),
            extra_transports: Arc::new(std::sync::Mutex::new(Transports::new())),
        }
    }

    /// The same runtime reading `clock` (tests: a [`clock::ShiftedClock`] they advance to
    /// make flow timers due). Call before [`App::start_workers`].
    pub fn with_clock(mut self, clock: Arc<dyn switchboard_core::ports::Clock>) -> App {
        self.flows = Arc::new(flows_runtime::FlowRuntime::new(
            self.store.clone(),
            self.config.flows.clone(),
            self.own_addr.clone(),
            clock.clone(),
        ));
        self.privacy = Arc::new(privacy::Privacy::new(
            self.store.clone(),
            media::MediaStore::new(self.config.data_dir.join("media")),
            clock.clone(),
        ));
        self.clock = clock;
        self
    }

    /// The media store under `<data_dir>/media/` (downloaded inbound files, encrypted with
    /// the tenants' data keys).
    pub fn media_store(&self) -> media::MediaStore {
        let root = self.config.data_dir.join("media");
        match &self.sql_store {
            Some(store) => media::MediaStore::with_keys(root, store.clone()),
            None => media::MediaStore::new(root),
        }
    }

    /// Registers (or replaces) the transport used for a channel kind. Must be called before
    /// [`App::start_workers`].
    pub fn set_transport(&self, kind: ChannelKind, transport: Arc<dyn Transport>) {
        let mut t = self
            .extra_transports
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.insert(kind, transport);
    }

    /// Starts the ingest writer, the job worker and the sender; they stop when `shutdown`
    /// fires, after finishing the work in hand.
    pub fn start_workers(&self, shutdown: CancellationToken) -> Workers {
        // Every tenant gets its retention purge timer (a job row; idempotent across nodes),
        // at start and each minute after (tenants created meanwhile).
        tokio::spawn(privacy::arm_timers_until_stopped(
            self.store.clone(),
            self.wake_jobs.clone(),
            shutdown.clone(),
        ));
        let (ingestor, ingest_handle) = Ingestor::start(
            self.store.clone(),
            self.bus.clone(),
            self.wake_jobs.clone(),
            shutdown.clone(),
        );
        let _ = self.ingestor.set(ingestor);
        let jobs = worker::JobWorker {
            store: self.store.clone(),
            bus: self.bus.clone(),
            lease: self.config.lease(),
            node: self.node.clone(),
            wake: self.wake_jobs.clone(),
            wake_sender: self.wake_sender.clone(),
            flows: self.flows.clone(),
            privacy: self.privacy.clone(),
            clock: self.clock.clone(),
            media: Arc::new(media::MediaFetcher::new(
                self.store.clone(),
                self.bus.clone(),
                self.channels.clone(),
                self.media_store(),
            )),
        };
        let mut transports: Transports = Transports::new();
        transports.insert(
            ChannelKind::Webchat,
            Arc::new(WebchatTransport::new(self.webchat.clone())),
        );
        let provider: Arc<dyn Transport> = Arc::new(
            channels::ProviderTransport::new(self.channels.clone())
                .with_media(self.media_store())
                .with_store(self.store.clone()),
        );
        for kind in [
            ChannelKind::Whatsapp,
            ChannelKind::Telegram,
            ChannelKind::Signal,
        ] {
            transports.insert(kind, provider.clone());
        }
        for (k, t) in self
            .extra_transports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            transports.insert(*k, t.clone());
        }
        let s = &self.config.sender;
        let sender = sender::Sender {
            store: self.store.clone(),
            bus: self.bus.clone(),
            transports,
            policy: RetryPolicy {
                max_attempts: s.max_attempts.max(1),
                base: std::time::Duration::from_millis(s.base_backoff_ms),
                max: std::time::Duration::from_millis(s.max_backoff_ms.max(s.base_backoff_ms)),
            },
            lease: self.config.lease(),
            node: self.node.clone(),
            wake: self.wake_sender.clone(),
        };
        Workers {
            handles: vec![
                ("ingest", ingest_handle),
                (
                    "jobs",
                    tokio::spawn(jobs.run_until_stopped(shutdown.clone())),
                ),
                (
                    "signal",
                    tokio::spawn(self.clone().run_signal_receivers(shutdown.clone())),
                ),
                (
                    "routing",
                    tokio::spawn(
                        routing::Router {
                            app: self.clone(),
                            tick: std::time::Duration::from_millis(500),
                        }
                        .run_until_stopped(shutdown.clone()),
                    ),
                ),
                ("sender", tokio::spawn(sender.run_until_stopped(shutdown))),
            ],
        }
    }

    /// The ingest handle; `None` until [`App::start_workers`] ran.
    pub fn ingestor(&self) -> Option<&Ingestor> {
        self.ingestor.get()
    }

    /// Records the address the server listens on (flows call `self` through it).
    pub fn set_own_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.own_addr.set(addr);
    }

    /// Wakes the job worker (after enqueuing a job outside ingest).
    pub fn wake_jobs(&self) {
        self.wake_jobs.notify_one();
    }

    /// Wakes the sender (after enqueuing outbound messages outside a job).
    pub fn wake_sender(&self) {
        self.wake_sender.notify_one();
    }
}

/// Hides the password of a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://sb:secret@db:5432/x"),
            "postgres://sb:***@db:5432/x"
        );
        assert_eq!(
            super::redact_url("sqlite://data/x.db"),
            "sqlite://data/x.db"
        );
    }
}
