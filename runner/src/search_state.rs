//! What `/propose` needs to know about a run — the run row, its finished trials as TPE observations, its
//! queued or running trainings and its pending proposals — kept in memory between calls.
//!
//! An entry is reloaded from the database when the store's change counter ([`Store::generation`]) moved since it
//! was loaded (a trial was recorded or finished, a proposal settled, the run changed), and at least every
//! [`MAX_AGE`] so that writes made by other replicas sharing the database are seen. Proposals this process
//! hands out are added to the entry after they are committed, so the constant liar sees them at once without
//! reading them back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::domain::keys::flatten;
use crate::domain::{RunId, TrialStatus};
use crate::search::{Observation, Outcome};
use crate::store::proposals::MAX_PENDING;
use crate::store::{PendingProposal, RunRecord, Store, TrialRecord, now_ms};

/// Longest time an entry is trusted without reloading (bounds staleness across replicas).
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Most runs kept in memory; beyond it an entry is dropped (and reloaded when used again).
const MAX_RUNS: usize = 4096;
/// Provisional ids of reserved proposals: above every stored proposal's id (a set id times 64 plus a slot), so
/// they sort as the newest until their commit replaces them.
static RESERVED_IDS: AtomicI64 = AtomicI64::new(1 << 62);

/// A consistent view of a run for one `/propose` call.
#[derive(Debug, Clone)]
pub struct RunSnapshot {
    /// The run row (shared with the cache: no copy per call).
    pub run: Arc<RunRecord>,
    /// Finished trials carrying the objective metric (or failed), oldest first.
    pub observations: Arc<Vec<Observation>>,
    /// Parameters the sampler must treat as pending: queued or running trainings, then unexpired unsettled
    /// proposals (the newest [`MAX_PENDING`]), oldest first.
    pub pending: Vec<Arc<Map<String, Value>>>,
    /// Number of trials of the run.
    pub n_trials: usize,
    /// Id of the newest pending proposal known here (0 when there is none): it moves with every call, so
    /// derived seeds differ between consecutive calls even when the liar's window is full.
    pub newest_pending_id: i64,
}

#[derive(Debug)]
struct Loaded {
    generation: u64,
    loaded_at: Instant,
    run: Arc<RunRecord>,
    observations: Arc<Vec<Observation>>,
    running: Vec<Arc<Map<String, Value>>>,
    /// Unsettled proposals by id (ascending = oldest first).
    proposals: BTreeMap<i64, PendingProposal>,
    n_trials: usize,
}

impl Loaded {
    fn is_fresh(&self, store: &Store) -> bool {
        self.generation == store.generation() && self.loaded_at.elapsed() < MAX_AGE
    }

    fn snapshot(&self, since_ms: i64, with_pending: bool) -> RunSnapshot {
        let pending = if with_pending {
            let unexpired: Vec<&PendingProposal> = self
                .proposals
                .values()
                .rev()
                .filter(|p| p.created_at_ms >= since_ms)
                .take(MAX_PENDING as usize)
                .collect();
            self.running
                .iter()
                .cloned()
                .chain(unexpired.into_iter().rev().map(|p| p.params.clone()))
                .collect()
        } else {
            Vec::new()
        };
        RunSnapshot {
            run: self.run.clone(),
            observations: self.observations.clone(),
            pending,
            n_trials: self.n_trials,
            newest_pending_id: self.proposals.keys().next_back().copied().unwrap_or(0),
        }
    }

    fn remove(&mut self, ids: &[i64]) {
        for id in ids {
            self.proposals.remove(id);
        }
    }

    fn add(&mut self, proposals: Vec<PendingProposal>) {
        for p in proposals {
            self.proposals.insert(p.id, p);
        }
        while self.proposals.len() > MAX_PENDING as usize {
            self.proposals.pop_first();
        }
    }
}

/// One run's entry. Calls read it under a short synchronous lock; only a reload from the database (and the
/// additions that must not slip between a reload's query and its result) takes the asynchronous one.
#[derive(Debug, Default)]
struct Slot {
    loaded: Mutex<Option<Loaded>>,
    reload: tokio::sync::Mutex<()>,
    sampling: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn loaded(&self) -> std::sync::MutexGuard<'_, Option<Loaded>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh_snapshot(
        &self,
        store: &Store,
        since_ms: i64,
        with_pending: bool,
    ) -> Option<RunSnapshot> {
        self.loaded()
            .as_ref()
            .filter(|l| l.is_fresh(store))
            .map(|l| l.snapshot(since_ms, with_pending))
    }
}

/// The per-run cache; shared by all requests.
#[derive(Debug, Default)]
pub struct SearchStates {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl SearchStates {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, run_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(run_id) {
            return slot.clone();
        }
        if slots.len() >= MAX_RUNS
            && let Some(victim) = slots.keys().next().cloned()
        {
            slots.remove(&victim);
        }
        slots.entry(run_id.to_string()).or_default().clone()
    }

    /// The run's state, creating the run if it does not exist yet. Proposals older than `pending_ttl` are left
    /// out of `pending`, and with `with_pending` false (random search) `pending` is left empty.
    pub async fn snapshot(
        &self,
        store: &Store,
        run_id: &RunId,
        pending_ttl: Duration,
        with_pending: bool,
    ) -> Result<RunSnapshot, sqlx::Error> {
        let since_ms =
            now_ms().saturating_sub(i64::try_from(pending_ttl.as_millis()).unwrap_or(i64::MAX));
        let slot = self.slot(run_id.as_str());
        if let Some(snapshot) = slot.fresh_snapshot(store, since_ms, with_pending) {
            return Ok(snapshot);
        }
        let _reloading = slot.reload.lock().await;
        if let Some(snapshot) = slot.fresh_snapshot(store, since_ms, with_pending) {
            return Ok(snapshot);
        }
        let loaded = load(store, run_id, since_ms).await?;
        let snapshot = loaded.snapshot(since_ms, with_pending);
        *slot.loaded() = Some(loaded);
        Ok(snapshot)
    }

    /// Waits for the run's sampling turn: TPE calls of one run take it from their snapshot until their
    /// proposals are [reserved](Self::reserve), so each call's constant liar sees the previous call's points.
    pub async fn sampling_turn(&self, run_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.slot(run_id).sampling.clone().lock_owned().await
    }

    /// Counts proposals as pending before they are committed, so calls that follow see them at once; returns
    /// the provisional ids to pass to [`confirm`](Self::confirm) or [`release`](Self::release).
    pub fn reserve(&self, run_id: &str, params: &[Arc<Map<String, Value>>]) -> Vec<i64> {
        let ids: Vec<i64> = params
            .iter()
            .map(|_| RESERVED_IDS.fetch_add(1, Ordering::Relaxed))
            .collect();
        let slot = self.slot(run_id);
        if let Some(loaded) = slot.loaded().as_mut() {
            let created_at_ms = now_ms();
            loaded.add(
                ids.iter()
                    .zip(params)
                    .map(|(id, params)| PendingProposal {
                        id: *id,
                        created_at_ms,
                        params: params.clone(),
                    })
                    .collect(),
            );
        }
        ids
    }

    /// Replaces reserved proposals by the committed ones.
    pub async fn confirm(&self, run_id: &str, reserved: &[i64], stored: Vec<PendingProposal>) {
        let slot = self.slot(run_id);
        // A reload in progress may have read the table before these rows were committed: wait for it.
        let _reloading = slot.reload.lock().await;
        if let Some(loaded) = slot.loaded().as_mut() {
            loaded.remove(reserved);
            loaded.add(stored);
        }
    }

    /// Forgets reserved proposals whose commit failed.
    pub fn release(&self, run_id: &str, reserved: &[i64]) {
        if let Some(loaded) = self.slot(run_id).loaded().as_mut() {
            loaded.remove(reserved);
        }
    }
}

async fn load(store: &Store, run_id: &RunId, since_ms: i64) -> Result<Loaded, sqlx::Error> {
    // Read the counter first: a change committed while loading moves it, and the next call reloads.
    let generation = store.generation();
    let run = match store.get_run(run_id.as_str()).await? {
        Some(run) => run,
        None => store.ensure_run(run_id).await?,
    };
    let trials = store.run_trials(run_id).await?;
    let (observations, running) = history(&trials, &run.objective.metric);
    let proposals = store
        .pending(run_id.as_str(), since_ms)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    Ok(Loaded {
        generation,
        loaded_at: Instant::now(),
        run: Arc::new(run),
        observations: Arc::new(observations),
        running,
        proposals,
        n_trials: trials.len(),
    })
}

/// Turns stored trials into TPE observations and pending points: succeeded trials with the objective metric
/// are complete, failed ones rank last, queued or running trainings are pending.
fn history(
    trials: &[TrialRecord],
    metric: &str,
) -> (Vec<Observation>, Vec<Arc<Map<String, Value>>>) {
    let mut observations = Vec::with_capacity(trials.len());
    let mut running = Vec::new();
    for t in trials {
        let params = flatten(&t.parameters);
        match t.status {
            TrialStatus::Succeeded => {
                if let Some(v) = t.metric(metric) {
                    observations.push(Observation {
                        params,
                        outcome: Outcome::Complete(v),
                    });
                }
            }
            TrialStatus::Failed => observations.push(Observation {
                params,
                outcome: Outcome::Failed,
            }),
            TrialStatus::Queued | TrialStatus::Running => running.push(Arc::new(params)),
            TrialStatus::Skipped | TrialStatus::Cancelled => {}
        }
    }
    (observations, running)
}
