//! Write-behind buffer for pending proposals. `/propose` appends to it without a database round trip; one
//! background flush (or any reader that needs the pending set, through [`PendingBuffer::flush`]) writes
//! everything buffered in a single transaction, so concurrent proposals share one commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Store;

/// A proposal of a run: `(run_id, params)`.
type Buffered = (String, Map<String, Value>);

/// Proposals waiting to be stored as pending.
#[derive(Clone)]
pub struct PendingBuffer {
    store: Store,
    queued: Arc<Mutex<Vec<Buffered>>>,
    flushing: Arc<tokio::sync::Mutex<()>>,
}

impl PendingBuffer {
    /// An empty buffer over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            queued: Arc::new(Mutex::new(Vec::new())),
            flushing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Buffers proposals of `run_id`.
    pub fn push(&self, run_id: &str, proposals: Vec<Map<String, Value>>) {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.extend(proposals.into_iter().map(|p| (run_id.to_string(), p)));
    }

    /// Writes everything buffered so far; returns once it is committed.
    pub async fn flush(&self) -> Result<(), sqlx::Error> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.store.add_pending_batch(&batch).await;
        if result.is_err() {
            // Keep them for the next flush rather than dropping them.
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            let newer = std::mem::take(&mut *queued);
            *queued = batch;
            queued.extend(newer);
        }
        result
    }

    /// Flushes every `every` until `stop`, then once more.
    pub fn spawn_flusher(
        &self,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(every) => {},
                }
                if let Err(e) = me.flush().await {
                    tracing::warn!(error = %e, "storing pending proposals failed; will retry");
                }
            }
            if let Err(e) = me.flush().await {
                tracing::error!(error = %e, "pending proposals lost at shutdown");
            }
        })
    }
}
