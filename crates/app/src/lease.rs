//! Work that must run on exactly one node at a time, guarded by a named lease in the
//! database (`Store::take_lease`). Used for the Signal receivers: signal-cli hands each
//! message to whichever connection reads it (a REST poll drains its queue), so two nodes
//! reading one account would split its messages and race on them.
//!
//! A node takes the lease, runs the work and renews the lease every third of its length. When
//! the node dies it stops renewing; another node takes the lease over once it expired and
//! starts the work there. A node that cannot renew in time (its database connection is gone,
//! or another node took over) stops its work before its lease runs out, so two holders never
//! overlap by more than one renewal round trip. A clean shutdown releases the lease at once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::Channel;
use switchboard_core::ports::Store;
use tokio_util::sync::CancellationToken;

use crate::{App, now};

/// Runs `work` while this node holds the lease `name`, until `shutdown`.
///
/// `work` gets a token that fires when the lease is lost or on shutdown; it is started again
/// when the lease is won back. When `work` ends by itself (nothing to do, e.g. unusable
/// credentials) the lease is released and this returns.
pub async fn run_while_leased<F, Fut>(
    store: Arc<dyn Store>,
    name: String,
    node: String,
    ttl: Duration,
    shutdown: CancellationToken,
    mut work: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ttl = ttl.max(Duration::from_millis(300));
    let every = ttl / 3;
    while !shutdown.is_cancelled() {
        match store.take_lease(&name, &node, now(), ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(lease = %name, error = %e, "taking a lease failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
        }
        tracing::info!(lease = %name, node = %node, "lease taken; starting the work here");
        // Counted from before the take: the lease surely runs at least until then.
        let mut held_until = Instant::now() + ttl;
        let stop = shutdown.child_token();
        let mut running = tokio::spawn(work(stop.clone()));
        let ended_by_itself = loop {
            tokio::select! {
                _ = &mut running => break !shutdown.is_cancelled() && !stop.is_cancelled(),
                _ = tokio::time::sleep(every) => {}
            }
            if stop.is_cancelled() {
                continue; // waiting for the work to stop
            }
            let asked = Instant::now();
            match store.take_lease(&name, &node, now(), ttl).await {
                Ok(true) => held_until = asked + ttl,
                Ok(false) => {
                    tracing::warn!(lease = %name, "lease lost to another node; stopping the work here");
                    stop.cancel();
                }
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "renewing a lease failed");
                    // Stop before the lease can expire under us (one more round may not fit).
                    if Instant::now() + every >= held_until {
                        tracing::warn!(lease = %name, "cannot renew the lease in time; stopping the work here");
                        stop.cancel();
                    }
                }
            }
        };
        if ended_by_itself || shutdown.is_cancelled() {
            if let Err(e) = store.release_lease(&name, &node).await {
                tracing::warn!(lease = %name, error = %e, "releasing a lease failed; it expires by itself");
            }
            if ended_by_itself {
                return;
            }
        }
    }
}

impl App {
    /// Runs the Signal receiver of `channel` on the one node holding the lease
    /// `signal:<channel id>`.
    pub(crate) async fn receive_signal_when_leased(
        self,
        channel: Channel,
        shutdown: CancellationToken,
    ) {
        let name = signal_lease_name(&channel);
        let (store, node, ttl) = (self.store.clone(), self.node.clone(), self.config.lease());
        run_while_leased(store, name, node, ttl, shutdown, move |stop| {
            self.clone().receive_signal(channel.clone(), stop)
        })
        .await;
    }
}

/// The lease guarding a Signal channel's receiver.
pub fn signal_lease_name(channel: &Channel) -> String {
    format!("signal:{}", channel.id)
}
