//! `app::ingest`: inbound messages become durable here, before anyone is told "200".
//!
//! Callers (webhook handlers, the web chat socket) hand parsed messages to an [`Ingestor`].
//! One writer task collects whatever is waiting, up to [`MAX_BATCH`], and commits it in ONE
//! transaction ("group commit"): this machine manages about 1,000 fsyncs a second, so
//! committing messages one by one would cap throughput there. Each caller gets its own
//! outcome only after the commit, so an acknowledgement always means "stored". After the
//! commit the events go to the bus and the job worker is woken.

use std::sync::Arc;

use switchboard_core::ports::{IngestItem, IngestOutcome, Store};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bus::EventBus;

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 512;

type Request = (
    IngestItem,
    oneshot::Sender<Result<IngestOutcome, IngestError>>,
);

/// Why a message could not be stored. The caller must not acknowledge it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The database refused or failed; the provider should retry later.
    #[error("could not store the message: {0}")]
    Storage(String),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Handle for submitting inbound messages to the writer task.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Request>,
}

impl Ingestor {
    /// Starts the writer task; it stops when `shutdown` fires and the queue is drained.
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        wake_jobs: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Request>(MAX_BATCH * 8);
        let handle = tokio::spawn(run_writer(rx, store, bus, wake_jobs, shutdown));
        (Self { tx }, handle)
    }

    /// Stores one message; returns once it is committed (or refused).
    pub async fn ingest(&self, item: IngestItem) -> Result<IngestOutcome, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        rx.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

async fn run_writer(
    mut rx: mpsc::Receiver<Request>,
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    wake_jobs: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<IngestItem>, Vec<_>) = batch.drain(..).unzip();
        match store.ingest(&items).await {
            Ok(outcomes) => {
                let mut stored_any = false;
                for o in &outcomes {
                    if let IngestOutcome::Stored { events, .. } = o {
                        bus.publish(events);
                        stored_any = true;
                    }
                }
                if stored_any {
                    wake_jobs.notify_one();
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = items.len(), "ingest batch failed; providers will retry");
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(IngestError::Storage(msg.clone())));
                }
            }
        }
    }
    tracing::debug!("ingest writer stopped");
}
