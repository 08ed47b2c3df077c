//! Signal receiving: signal-cli has no webhook, so one background task per Signal channel
//! reads it on loopback (channels.md §3.1):
//! - `json-rpc` mode (`signal-cli daemon --http`): the server-sent event stream
//!   `GET /api/v1/events`, each `data:` payload a `receive` notification; reconnects after
//!   `signal_poll_interval_ms` when the stream drops.
//! - `rest` mode (signal-cli-rest-api in `normal`/`native` mode): polls
//!   `GET /v1/receive/{number}` every `signal_poll_interval_ms`. Each poll **drains** the
//!   server's queue, so a batch is retried until it is committed (never dropped).
//!
//! Frames go through the same [`App::accept_parsed`] as webhooks. A supervisor starts
//! receivers for channels that exist at start-up and for ones added later
//! ([`App::wake_signal_receivers`]).

use std::collections::HashSet;
use std::time::Duration;

use switchboard_channels::{RawRequest, signal};
use switchboard_core::{Channel, ChannelId, ChannelKind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::App;

/// How often the supervisor looks for new Signal channels without being woken.
const RESCAN: Duration = Duration::from_secs(30);
/// Commit attempts for one drained frame (about three minutes with the back-off).
const COMMIT_ATTEMPTS: usize = 24;

impl App {
    /// Runs the receivers until `shutdown`.
    pub async fn run_signal_receivers(self, shutdown: CancellationToken) {
        let mut running: HashSet<ChannelId> = HashSet::new();
        let mut tasks = JoinSet::new();
        loop {
            match self.store.channels_of_kind(ChannelKind::Signal).await {
                Ok(channels) => {
                    for channel in channels {
                        if running.insert(channel.id) {
                            tracing::info!(channel_id = %channel.id, "starting the Signal receiver");
                            // One node at a time per account (crate::lease).
                            tasks.spawn(
                                self.clone()
                                    .receive_signal_when_leased(channel, shutdown.clone()),
                            );
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "listing Signal channels failed"),
            }
            tokio::select! {
                _ = self.wake_signal.notified() => {}
                _ = tokio::time::sleep(RESCAN) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        while tasks.join_next().await.is_some() {}
        tracing::debug!("Signal receivers stopped");
    }

    /// Starts receivers for newly added Signal channels.
    pub fn wake_signal_receivers(&self) {
        self.wake_signal.notify_one();
    }

    /// Receives for `channel` until `shutdown`; [`crate::lease`] runs it on one node.
    pub(crate) async fn receive_signal(self, channel: Channel, shutdown: CancellationToken) {
        let creds: signal::Credentials = match serde_json::from_value(channel.credentials.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(channel_id = %channel.id, error = %e, "Signal credentials are unusable; not receiving");
                return;
            }
        };
        let base = channel
            .settings
            .api_base
            .clone()
            .unwrap_or_else(|| creds.api_base.clone())
            .trim_end_matches('/')
            .to_string();
        let pause = Duration::from_millis(self.config.channels.signal_poll_interval_ms.max(10));
        loop {
            let receive = async {
                match creds.mode {
                    signal::Mode::Rest => self.poll_signal_rest(&channel, &base, &creds).await,
                    signal::Mode::JsonRpc => self.stream_signal_events(&channel, &base).await,
                }
            };
            let result = tokio::select! {
                r = receive => r,
                _ = shutdown.cancelled() => break,
            };
            if let Err(e) = result {
                tracing::warn!(channel_id = %channel.id, error = %e, "Signal receive failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// One REST poll: drains the queue and commits every frame before returning.
    async fn poll_signal_rest(
        &self,
        channel: &Channel,
        base: &str,
        creds: &signal::Credentials,
    ) -> anyhow::Result<()> {
        let url = format!("{base}/v1/receive/{}?timeout=1", creds.account);
        let resp = self
            .channels
            .http()
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
        anyhow::ensure!(
            resp.status().is_success(),
            "signal-cli-rest-api answered {}",
            resp.status()
        );
        let body = resp.bytes().await?;
        if body.iter().all(u8::is_ascii_whitespace) || body.as_ref() == b"[]" {
            return Ok(());
        }
        self.commit_signal_frame(channel, body).await;
        Ok(())
    }

    /// Reads the daemon's event stream until it ends.
    async fn stream_signal_events(&self, channel: &Channel, base: &str) -> anyhow::Result<()> {
        let mut resp = self
            .channels
            .http()
            .get(format!("{base}/api/v1/events"))
            .header("accept", "text/event-stream")
            // The stream is long-lived: no overall timeout.
            .timeout(Duration::from_secs(60 * 60 * 24 * 365))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
        anyhow::ensure!(
            resp.status().is_success(),
            "signal-cli answered {}",
            resp.status()
        );
        let mut buf: Vec<u8> = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    if !data.is_empty() {
                        let frame = std::mem::take(&mut data);
                        self.commit_signal_frame(channel, frame.into()).await;
                    }
                } else if let Some(rest) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
                }
                // `event:`, `id:` and comment lines carry nothing we need.
            }
        }
        Ok(())
    }

    /// Parses and commits one frame, retrying the commit until it succeeds: the frame has
    /// already left signal-cli's queue, so giving up would lose it.
    async fn commit_signal_frame(&self, channel: &Channel, body: bytes::Bytes) {
        let parsed = match switchboard_channels::signal::parse(&RawRequest::from_body(body)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel_id = %channel.id, error = %e, "unreadable Signal frame skipped");
                return;
            }
        };
        let mut delay = Duration::from_millis(100);
        for _ in 0..COMMIT_ATTEMPTS {
            match self.accept_parsed(channel, parsed.clone()).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(channel_id = %channel.id, error = %e, "storing Signal messages failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!(channel_id = %channel.id, events = parsed.events.len(), "gave up storing a Signal frame; its messages are lost");
    }
}
