//! Process configuration: one typed tree, read once at start-up.
//!
//! Layers, later ones winning: built-in defaults → an optional TOML file (`switchboard.toml`,
//! or `--config FILE`) → environment variables `SWITCHBOARD__SECTION__KEY` (double underscore
//! marks nesting) → the short forms `SWITCHBOARD_LISTEN`, `SWITCHBOARD_DATA_DIR`,
//! `SWITCHBOARD_DATABASE_URL` (also `DATABASE_URL`) → command-line flags. Unknown keys are
//! rejected so a typo fails at start-up instead of being ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Folder for the SQLite database and media (default `./data`).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; unset means SQLite in `data_dir/switchboard.db`.
    pub database_url: Option<String>,
    /// `nats://…` to share live events between several nodes through NATS JetStream; unset
    /// means the in-process bus (one node).
    pub nats_url: Option<String>,
    /// The URL people use to reach this server (printed links, webhook URLs).
    /// Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Limits that protect the server from oversized or slow requests.
    pub limits: Limits,
    /// Outbound sending.
    pub sender: SenderConfig,
    /// Staff sessions.
    pub sessions: SessionConfig,
    /// Self-service flows: HTTP calls and their SSRF guard.
    pub flows: FlowsConfig,
    /// Provider channels: send rates (channels.md §1.2, §2.2) and the Signal receiver.
    pub channels: ChannelsConfig,
    /// Encryption at rest: where the master key comes from (see [`crate::keys`]).
    pub keys: KeysConfig,
    /// Reverse proxies (load balancers) whose `X-Forwarded-For` header is believed.
    pub proxy: ProxyConfig,
}

/// Reverse proxies in front of the server. Behind a load balancer every request comes from
/// the balancer's address, so login throttling would lock out everyone at once; listing the
/// balancer here makes the server take the client's address from `X-Forwarded-For` instead.
/// Only listed peers are believed: anyone else could write the header to dodge a lockout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Addresses or networks of trusted proxies, e.g. `["127.0.0.1", "10.0.0.0/8"]`
    /// (default none: the TCP peer is the client).
    pub trusted: Vec<TrustedNet>,
}

/// One trusted proxy: an address (`10.0.0.5`, `::1`) or a network in CIDR form (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedNet(pub ipnet::IpNet);

impl TryFrom<String> for TrustedNet {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let t = text.trim();
        if let Ok(net) = t.parse::<ipnet::IpNet>() {
            return Ok(TrustedNet(net.trunc()));
        }
        t.parse::<std::net::IpAddr>()
            .map(|ip| TrustedNet(ipnet::IpNet::from(ip)))
            .map_err(|_| {
                format!(
                    "{text:?} is not an IP address or CIDR network (write e.g. \"10.0.0.5\" or \"10.0.0.0/8\")"
                )
            })
    }
}

impl From<TrustedNet> for String {
    fn from(net: TrustedNet) -> String {
        net.0.to_string()
    }
}

impl ProxyConfig {
    /// Whether `ip` is one of the trusted proxies (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.0.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `forwarded_for` (the values of
    /// every `X-Forwarded-For` header, in order). Walks the chain from the right, skipping
    /// trusted proxies; the first address that is not a proxy is the client. A peer that is
    /// not trusted is the client whatever the header says, and so is the last trusted hop when
    /// the chain holds something that is not an address (a proxy appends; only the part left
    /// of the proxies can be forged).
    pub fn client_address(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: &[&str],
    ) -> std::net::IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                Err(_) => return client,
            }
        }
        client
    }
}

/// Master key settings. The key never goes into the database or the data directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The master key itself (64 hex digits or base64 of 32 bytes). Set it through the
    /// environment, `SWITCHBOARD_MASTER_KEY`, rather than in a file next to the config.
    #[serde(skip_serializing)]
    pub master_key: Option<KeyText>,
    /// A file holding the master key, mode 0600, outside `data_dir`
    /// (`SWITCHBOARD_MASTER_KEY_FILE`). Default: `~/.config/switchboard/master.key`, made
    /// on first start when no key is configured.
    pub master_key_file: Option<PathBuf>,
    /// Older (or, during a cluster rotation, newer) master keys that may only unwrap data
    /// keys, never wrap: see `switchboard keys rotate --help`.
    pub previous_master_key_files: Vec<PathBuf>,
}

/// Key material given as text; `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct KeyText(String);

impl KeyText {
    /// Wraps key text (tests pass keys this way).
    pub fn new(text: impl Into<String>) -> Self {
        KeyText(text.into())
    }

    /// The text, for parsing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(..)")
    }
}

/// Provider channel settings. Providers change limits without notice, so every number is
/// configurable; a channel's `settings.rate_per_second` overrides its kind's rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Messages per second per WhatsApp business number (default 80, Meta's default tier).
    pub whatsapp_per_second: u32,
    /// Seconds between messages to the same WhatsApp user once the burst is used (default 6).
    pub whatsapp_pair_interval_secs: u32,
    /// Messages to one WhatsApp user that may go out back to back (default 45).
    pub whatsapp_pair_burst: u32,
    /// Messages per second per Telegram bot across chats (default 30).
    pub telegram_per_second: u32,
    /// Messages per second to one Telegram chat (default 1).
    pub telegram_per_chat_per_second: u32,
    /// Messages per second per Signal account (default 1: Signal publishes no limit and
    /// bans numbers that look like spam, so stay conservative).
    pub signal_per_second: u32,
    /// How often the Signal receiver polls signal-cli-rest-api in `rest` mode, and how long it
    /// waits before reconnecting a dropped JSON-RPC event stream (milliseconds, default 1000).
    pub signal_poll_interval_ms: u64,
    /// WhatsApp error 131026 (message undeliverable) answers in a row to one customer after
    /// which their WhatsApp identity is marked unreachable (default 3; 0 never marks). Counted
    /// per node; a delivered message resets the count.
    pub whatsapp_undeliverable_limit: u32,
    /// Largest inbound media file kept, in bytes (default 100 MiB).
    pub media_max_bytes: u64,
    /// MIME types of inbound media that are downloaded and kept (`type/subtype`, or `type/*`
    /// for a whole family). Default: images, audio (including ogg/opus voice notes),
    /// video/mp4 and 3gpp, PDF, common office documents and plain text. Anything else stays
    /// a message saying the file was refused.
    pub media_allowed_types: Vec<String>,
    /// Links a WhatsApp and a Signal identity with the same verified phone number to one
    /// contact (default true). The lookup uses a blind index keyed per tenant (see
    /// `switchboard_storage::keys`), never the number itself.
    pub link_by_phone: bool,
}

/// Self-service flow settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Hosts flow HTTP calls may reach even though they resolve to loopback or private
    /// addresses (`host` or `host:port`; `self` = this server's own listen address). Every
    /// other host must resolve to public addresses only (the SSRF guard). Default: none;
    /// `switchboard demo` adds `self` so the demo flows can call the demo account endpoint.
    pub allow_hosts: Vec<String>,
    /// `env.base_url` given to flows (the demo flows call `{base_url}/api/v1/demo/...`).
    /// Default: this server's own `http://<listen>` address.
    pub base_url: Option<String>,
    /// Longest a flow HTTP call may take, in milliseconds, whatever the flow asks (default 5000).
    pub http_timeout_ms: u64,
    /// Most flow steps chained in one job (each HTTP answer is a step; default 8). A flow
    /// that needs more is handed to a person.
    pub max_chained_steps: u32,
    /// Seconds a node reuses the flows it loaded from the database before reading them
    /// again (default 10); loading flows on this node refreshes them at once.
    pub cache_secs: u64,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            base_url: None,
            http_timeout_ms: 5000,
            max_chained_steps: 8,
            cache_secs: 10,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON API body in bytes (default 256 KiB).
    pub max_api_body_bytes: usize,
    /// Largest webhook body in bytes (default 3 MiB: WhatsApp's documented maximum).
    pub max_webhook_body_bytes: usize,
    /// Seconds before a request is abandoned with 408 (default 30).
    pub request_timeout_secs: u64,
    /// Largest file staff may attach to a reply, in bytes (default 16 MiB: what WhatsApp
    /// carries as audio or video; larger files go as documents up to the channel's limit).
    pub max_upload_bytes: usize,
    /// MIME types staff may attach (`type/subtype`, or `type/*`). Default: the same list as
    /// `channels.media_allowed_types`.
    pub upload_allowed_types: Vec<String>,
}

/// Outbound sender settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Attempts before a message is marked failed (default 8).
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles each attempt, with full jitter (default 1000).
    pub base_backoff_ms: u64,
    /// Longest retry delay in milliseconds (default 300000 = 5 min).
    pub max_backoff_ms: u64,
    /// How long a claimed outbox row or job stays leased before another node may take it
    /// (seconds, default 60).
    pub lease_secs: u64,
}

/// Staff session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Hours a login stays valid (default 12).
    pub ttl_hours: u32,
    /// Send cookies with `Secure` (set true behind HTTPS; default false for localhost).
    pub secure_cookies: bool,
    /// Minutes without a request after which a session ends (default 30). `ttl_hours` is
    /// the absolute lifetime, however active the session is.
    pub idle_minutes: u32,
    /// Failed logins within `failure_window_secs` that lock an account (default 5).
    pub max_failures_per_account: u32,
    /// Failed logins within `failure_window_secs` that lock a client address (default 20).
    pub max_failures_per_ip: u32,
    /// The window failures are counted in, in seconds (default 900).
    pub failure_window_secs: u64,
    /// How long a lock lasts, in seconds (default 900); an admin can lift it sooner.
    pub lockout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            nats_url: None,
            public_url: None,
            limits: Limits::default(),
            sender: SenderConfig::default(),
            sessions: SessionConfig::default(),
            flows: FlowsConfig::default(),
            channels: ChannelsConfig::default(),
            keys: KeysConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            whatsapp_per_second: 80,
            whatsapp_pair_interval_secs: 6,
            whatsapp_pair_burst: 45,
            telegram_per_second: 30,
            telegram_per_chat_per_second: 1,
            signal_per_second: 1,
            signal_poll_interval_ms: 1000,
            whatsapp_undeliverable_limit: 3,
            media_max_bytes: 100 * 1024 * 1024,
            media_allowed_types: default_media_types(),
            link_by_phone: true,
        }
    }
}

/// The default `channels.media_allowed_types`.
pub fn default_media_types() -> Vec<String> {
    [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/opus",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "text/plain",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_api_body_bytes: 256 * 1024,
            max_webhook_body_bytes: 3 * 1024 * 1024,
            request_timeout_secs: 30,
            max_upload_bytes: 16 * 1024 * 1024,
            upload_allowed_types: default_media_types(),
        }
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff_ms: 1000,
            max_backoff_ms: 300_000,
            lease_secs: 60,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_hours: 12,
            secure_cookies: false,
            idle_minutes: 30,
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            failure_window_secs: 900,
            lockout_secs: 900,
        }
    }
}

/// Overrides given on the command line (they win over every other layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--nats-url`.
    pub nats_url: Option<String>,
}

impl Config {
    /// Loads the layers described in the module documentation. `file` is an explicit
    /// `--config` path (it must exist); without it `./switchboard.toml` is read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist (run `switchboard config example > {}` to create one)",
                    path.display(),
                    path.display()
                );
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("switchboard.toml")),
        }
        fig = fig.merge(Env::prefixed("SWITCHBOARD__").split("__").lowercase(true));
        for (var, key) in [
            ("SWITCHBOARD_LISTEN", "listen"),
            ("SWITCHBOARD_DATA_DIR", "data_dir"),
            ("DATABASE_URL", "database_url"),
            ("SWITCHBOARD_DATABASE_URL", "database_url"),
            ("SWITCHBOARD_NATS_URL", "nats_url"),
            ("SWITCHBOARD_PUBLIC_URL", "public_url"),
            ("SWITCHBOARD_MASTER_KEY", "keys.master_key"),
            ("SWITCHBOARD_MASTER_KEY_FILE", "keys.master_key_file"),
        ] {
            if let Ok(v) = std::env::var(var)
                && !v.trim().is_empty()
            {
                fig = fig.merge(Serialized::default(key, v));
            }
        }
        let mut config: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if let Some(l) = overrides.listen {
            config.listen = l;
        }
        if let Some(d) = &overrides.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = &overrides.database_url {
            config.database_url = Some(u.clone());
        }
        if let Some(u) = &overrides.nats_url {
            config.nats_url = Some(u.clone());
        }
        Ok(config)
    }

    /// The database to open: the configured URL, or SQLite inside `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            ),
        }
    }

    /// Base URL for links printed to people.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }

    /// Lease length for claimed work.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.sender.lease_secs.max(1))
    }

    /// A commented example configuration file (`switchboard config example`).
    pub fn example_toml() -> &'static str {
        include_str!("../switchboard.example.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_a_valid_config() {
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(Config::example_toml()))
            .extract()
            .expect("example config must parse");
        assert_eq!(c.listen.port(), 8080);
    }

    fn proxies(list: &[&str]) -> ProxyConfig {
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(&format!("[proxy]\ntrusted = {list:?}")))
            .extract()
            .expect("proxy list parses");
        c.proxy
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn the_client_address_comes_from_forwarded_for_only_behind_a_trusted_proxy() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let cases: &[(&str, &[&str], &str, &str)] = &[
            (
                "203.0.113.9",
                &["198.51.100.1"],
                "203.0.113.9",
                "an untrusted peer is the client; its header is ignored",
            ),
            (
                "127.0.0.1",
                &[],
                "127.0.0.1",
                "a trusted peer without the header is the client",
            ),
            ("127.0.0.1", &["198.51.100.1"], "198.51.100.1", "one proxy"),
            (
                "127.0.0.1",
                &["198.51.100.1, 10.1.2.3"],
                "198.51.100.1",
                "two proxies in one header",
            ),
            (
                "10.9.9.9",
                &["198.51.100.1", "10.1.2.3"],
                "198.51.100.1",
                "two proxies in two headers",
            ),
            (
                "127.0.0.1",
                &["6.6.6.6, 198.51.100.1"],
                "198.51.100.1",
                "a forged left part is not believed",
            ),
            (
                "127.0.0.1",
                &["garbage, 198.51.100.1"],
                "198.51.100.1",
                "garbage left of the client is ignored",
            ),
            (
                "127.0.0.1",
                &["198.51.100.1, garbage"],
                "127.0.0.1",
                "garbage from the proxy side stops the walk",
            ),
            (
                "::ffff:127.0.0.1",
                &["2001:db8::7"],
                "2001:db8::7",
                "IPv4-mapped peer, IPv6 client",
            ),
            (
                "127.0.0.1",
                &["10.0.0.1"],
                "10.0.0.1",
                "only proxies: the farthest one",
            ),
        ];
        for (peer, header, want, why) in cases {
            assert_eq!(p.client_address(ip(peer), header), ip(want), "{why}");
        }
        assert_eq!(
            ProxyConfig::default().client_address(ip("127.0.0.1"), &["198.51.100.1"]),
            ip("127.0.0.1"),
            "nothing trusted by default"
        );
    }

    #[test]
    fn a_bad_proxy_entry_is_refused_with_an_example() {
        let r: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[proxy]\ntrusted = [\"10.0.0/8\"]"))
            .extract();
        let e = r
            .expect_err("a malformed network must be refused")
            .to_string();
        assert!(e.contains("10.0.0/8") && e.contains("CIDR"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let r: Result<Config, _> = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("lisen = \"127.0.0.1:1\""))
            .extract();
        assert!(r.is_err());
    }
}
