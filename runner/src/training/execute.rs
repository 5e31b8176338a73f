//! One training from request to stored result: admission, dataset, the trial committed with the task that
//! creates its MLflow child run while it trains, the trainer on a blocking thread with a heartbeat, the result
//! committed with its outbox tasks, then the reply. MLflow and S3 deliveries run in the background; the reply
//! carries what is delivered by then and lists what is pending (only a purely local artifact write is awaited).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{TrainRequest, Trainer};
use crate::datasets::DatasetLoadError;
use crate::domain::{RunId, TrialStatus};
use crate::nas::{self, Control, Dataset, TrainError, TrainSpec, TrainedModel};
use crate::store::TrialRecord;
use crate::store::outbox::OutboxEntry;
use crate::store::training::{NewTraining, SubmitOutcome, TrainingResult};
use crate::tracking;

/// How long `/train` waits for the local artifact directory (its only awaited delivery) before replying.
const LOCAL_DELIVERY_DEADLINE: Duration = Duration::from_secs(5);

/// The `/train` reply.
#[derive(Debug)]
pub enum TrainReply {
    /// Finished (succeeded or failed) — 200.
    Done(Value),
    /// Queued or still running — 202 with `Location: /trials/{id}`.
    Accepted(Value),
}

/// Why a training request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrainFailure {
    /// Too many trainings waiting (429).
    #[error("training queue is full")]
    QueueFull,
    /// Bad dataset (422).
    #[error(transparent)]
    Dataset(DatasetLoadError),
    /// Data source temporarily unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// The trial id is taken by another request (409).
    #[error("{0}")]
    Conflict(String),
    /// The network cannot be built as asked (422).
    #[error("{0}")]
    Unbuildable(String),
    /// Storage failed (500).
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl From<DatasetLoadError> for TrainFailure {
    fn from(e: DatasetLoadError) -> Self {
        match e {
            DatasetLoadError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            other => Self::Dataset(other),
        }
    }
}

fn file(name: &str, content_type: &str, bytes: &[u8]) -> Value {
    json!({
        "name": name,
        "content_type": content_type,
        "base64": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// Everything a finished training produced.
struct Outcome {
    result: TrainingResult,
    model: Option<TrainedModel>,
    /// Stopped by shutdown before the last epoch.
    interrupted: bool,
}

impl Trainer {
    /// Handles `/train`: admission, then sync training or a queued async one.
    pub async fn submit(&self, req: TrainRequest) -> Result<TrainReply, TrainFailure> {
        let queued = usize::try_from(self.store.queued_trainings().await?).unwrap_or(usize::MAX);
        if self.waiting.load(Ordering::Relaxed).saturating_add(queued) >= self.queue_limit {
            return Err(TrainFailure::QueueFull);
        }
        let run_id = match &req.run_id {
            Some(r) => r.clone(),
            None => match self.store.run_of_pending(&req.params).await? {
                Some(found) => {
                    RunId::parse(&found).map_err(|e| TrainFailure::Conflict(e.to_string()))?
                }
                None => {
                    RunId::parse("default").map_err(|e| TrainFailure::Conflict(e.to_string()))?
                }
            },
        };
        let run = self.store.ensure_run(&run_id).await?;
        let mut raw = req.raw.clone();
        raw["run_id"] = json!(run_id.as_str());
        // Resolve now so a bad dataset is a 422 for the caller, not a failed trial later.
        let data = self
            .resolver
            .resolve(
                req.dataset.as_ref(),
                req.dataset_id.as_deref(),
                run.dataset_id.as_deref(),
            )
            .await?;
        let claim_for = (!req.asynchronous).then_some(&*self.replica);
        // A sync trial trains now: its MLflow child run is created meanwhile, so the end only completes it.
        let early: Vec<OutboxEntry> = if claim_for.is_some() && self.tracker.mlflow_enabled() {
            vec![
                tracking::run_task(run_id.as_str()).into(),
                tracking::trial_start_task(req.trial_id.as_str()).into(),
            ]
        } else {
            Vec::new()
        };
        let outcome = self
            .store
            .submit_training(&NewTraining {
                trial_id: &req.trial_id,
                run_id: &run_id,
                params: &req.params,
                request: &raw,
                claim_for,
                outbox: &early,
            })
            .await?;
        let trial = match outcome {
            SubmitOutcome::Conflict(message) => return Err(TrainFailure::Conflict(message)),
            SubmitOutcome::Existing(trial) => {
                return Ok(if trial.status.is_terminal() {
                    TrainReply::Done(reply_json(&trial, &[]))
                } else {
                    TrainReply::Accepted(reply_json(&trial, &[]))
                });
            }
            SubmitOutcome::Created(trial) => trial,
        };
        if req.asynchronous {
            self.wake.notify_one();
            return Ok(TrainReply::Accepted(reply_json(&trial, &[])));
        }
        if !early.is_empty() {
            self.tracker.push(&trial.trial_id);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit =
            permit.map_err(|_| TrainFailure::Unavailable("the runner is shutting down".into()))?;
        let outcome = self
            .train_claimed(&trial, req.spec, req.warnings, data, false)
            .await;
        let unbuildable = matches!(&outcome.result.error, Some(e) if e.starts_with(UNBUILDABLE));
        let stored = self.finish(&trial, outcome).await?;
        let Some(stored) = stored else {
            return Ok(TrainReply::Accepted(reply_json(&trial, &[])));
        };
        if unbuildable {
            return Err(TrainFailure::Unbuildable(
                stored
                    .error
                    .clone()
                    .unwrap_or_default()
                    .trim_start_matches(UNBUILDABLE)
                    .to_string(),
            ));
        }
        let report = if self.tracker.delivers_locally() {
            self.tracker
                .deliver_for_trial(&stored.trial_id, LOCAL_DELIVERY_DEADLINE)
                .await
        } else {
            self.tracker.push(&stored.trial_id);
            self.tracker.delivery_status(&stored.trial_id).await
        };
        let refreshed = self
            .store
            .get_trial(&stored.trial_id)
            .await?
            .unwrap_or(stored);
        let mut body = reply_json(&refreshed, &report.pending);
        if body["mlflow_run_id"].is_null() {
            body["mlflow_run_id"] = json!(report.mlflow_run_id);
        }
        if body["artifact_uri"].is_null() {
            body["artifact_uri"] = json!(report.artifact_uri);
        }
        Ok(TrainReply::Done(body))
    }

    /// Trains a trial claimed from the queue (async mode, or taken back from a stopped replica).
    pub(crate) async fn run_claimed(&self, trial: TrialRecord) {
        let request = trial.train_request.clone();
        let params = request
            .get("params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let prepared = match TrainSpec::from_params(&params) {
            Ok((spec, warnings)) => {
                let run = self.store.get_run(&trial.run_id).await.ok().flatten();
                match self
                    .resolver
                    .resolve(
                        request.get("dataset"),
                        request.get("dataset_id").and_then(Value::as_str),
                        run.and_then(|r| r.dataset_id).as_deref(),
                    )
                    .await
                {
                    Ok(data) => Ok((spec, warnings, data)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let outcome = match prepared {
            Ok((spec, warnings, data)) => {
                self.train_claimed(&trial, spec, warnings, data, true).await
            }
            Err(error) => Outcome {
                result: failed_result(error, 0, Vec::new(), None),
                model: None,
                interrupted: false,
            },
        };
        if let Err(e) = self.finish(&trial, outcome).await {
            tracing::error!(trial_id = %trial.trial_id, error = %e, "storing a training result failed");
        }
        self.tracker.nudge();
    }

    /// Runs the trainer on a blocking thread while renewing the claim. With `stoppable`, a shutdown stops the
    /// training and puts the trial back in the queue.
    #[tracing::instrument(name = "training", skip_all, fields(trial_id = %trial.trial_id, run_id = %trial.run_id))]
    async fn train_claimed(
        &self,
        trial: &TrialRecord,
        spec: TrainSpec,
        warnings: Vec<String>,
        data: Dataset,
        stoppable: bool,
    ) -> Outcome {
        let started = Instant::now();
        let rows = i64::try_from(data.len()).unwrap_or(i64::MAX);
        self.running.fetch_add(1, Ordering::Relaxed);
        let heartbeat_every = (self.lease / 3).max(Duration::from_millis(100));
        let heartbeat = {
            let store = self.store.clone();
            let replica = self.replica.clone();
            let trial_id = trial.trial_id.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(heartbeat_every).await;
                    if let Err(e) = store.heartbeat(&trial_id, &replica).await {
                        tracing::warn!(%trial_id, error = %e, "heartbeat failed");
                    }
                }
            })
        };
        let stop = self.stop.clone();
        let span = tracing::info_span!("training.fit", rows);
        let time_limit = self.time_limit;
        let trained = tokio::task::spawn_blocking(move || {
            let _entered = span.entered();
            let mut interrupted = false;
            let mut timed_out = false;
            let result = nas::train_with_control(&spec, &data, &mut |_| {
                if stoppable && stop.is_cancelled() {
                    interrupted = true;
                    Control::Stop
                } else if time_limit.is_some_and(|limit| started.elapsed() >= limit) {
                    timed_out = true;
                    Control::Stop
                } else {
                    Control::Continue
                }
            });
            (result, interrupted, timed_out)
        })
        .await;
        heartbeat.abort();
        self.running.fetch_sub(1, Ordering::Relaxed);
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let outcome = match &trained {
            Ok((Ok(_), _, false)) => TrialStatus::Succeeded,
            _ => TrialStatus::Failed,
        };
        self.metrics
            .record_train(outcome, started.elapsed().as_secs_f64());
        match trained {
            Ok((Ok(model), _, true)) => Outcome {
                result: failed_result(
                    format!(
                        "training stopped after {} epochs: it reached the time limit of {} s (RUNNER_TRAIN_TIMEOUT_SECS)",
                        model.metrics.get("epochs_run").copied().unwrap_or(0.0),
                        self.time_limit.unwrap_or_default().as_secs()
                    ),
                    duration_ms,
                    warnings,
                    Some(rows),
                ),
                model: None,
                interrupted: false,
            },
            Ok((Ok(model), interrupted, false)) => {
                let metrics: Map<String, Value> = model
                    .metrics
                    .iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                Outcome {
                    result: TrainingResult {
                        status: TrialStatus::Succeeded,
                        metrics,
                        dataset_size: Some(rows),
                        duration_ms,
                        warnings,
                        error: None,
                    },
                    model: Some(model),
                    interrupted,
                }
            }
            Ok((Err(e), _, _)) => {
                let message = match &e {
                    TrainError::Param(_)
                    | TrainError::TooManyParams { .. }
                    | TrainError::TooMuchMemory { .. } => {
                        format!("{UNBUILDABLE}{e}")
                    }
                    _ => e.to_string(),
                };
                Outcome {
                    result: failed_result(message, duration_ms, warnings, Some(rows)),
                    model: None,
                    interrupted: false,
                }
            }
            Err(join) => Outcome {
                result: failed_result(
                    format!("training crashed: {join}"),
                    duration_ms,
                    warnings,
                    Some(rows),
                ),
                model: None,
                interrupted: false,
            },
        }
    }

    /// Commits the result with its outbox tasks; `None` when this replica lost the claim meanwhile.
    async fn finish(
        &self,
        trial: &TrialRecord,
        outcome: Outcome,
    ) -> Result<Option<TrialRecord>, sqlx::Error> {
        if outcome.interrupted {
            // Stopped by shutdown before the end: another replica (or the next start) trains it again.
            self.store
                .requeue_training(&trial.trial_id, &self.replica)
                .await?;
            return Ok(None);
        }
        let mut tasks = Vec::new();
        if self.tracker.mlflow_enabled() {
            tasks.push(tracking::run_task(&trial.run_id));
            let history: Vec<Value> = outcome
                .model
                .as_ref()
                .map(|m| {
                    m.history
                        .iter()
                        .map(|e| {
                            json!({"epoch": e.epoch, "loss": e.loss, "val_loss": e.val_loss,
                                   "val_metric": e.val_metric, "val_metric_name": e.val_metric_name})
                        })
                        .collect()
                })
                .unwrap_or_default();
            tasks.push(tracking::trial_task(&trial.trial_id, history));
        }
        if let Some(model) = &outcome.model {
            let architecture = serde_json::to_vec_pretty(&model.architecture).unwrap_or_default();
            let metrics = serde_json::to_vec_pretty(&model.metrics).unwrap_or_default();
            let files = vec![
                file(
                    "model.safetensors",
                    "application/octet-stream",
                    &model.weights_safetensors,
                ),
                file("architecture.json", "application/json", &architecture),
                file("metrics.json", "application/json", &metrics),
            ];
            tasks.push(tracking::artifacts_task(
                &trial.run_id,
                &trial.trial_id,
                files,
            ));
        }
        self.store
            .complete_training(
                &trial.trial_id,
                &self.replica,
                &outcome.result,
                &tasks.into_iter().map(OutboxEntry::from).collect::<Vec<_>>(),
            )
            .await
    }
}

/// Prefix marking failures that are the caller's fault (answered 422 in sync mode).
const UNBUILDABLE: &str = "unbuildable: ";

fn failed_result(
    error: String,
    duration_ms: i64,
    warnings: Vec<String>,
    rows: Option<i64>,
) -> TrainingResult {
    TrainingResult {
        status: TrialStatus::Failed,
        metrics: Map::new(),
        dataset_size: rows,
        duration_ms,
        warnings,
        error: Some(error),
    }
}

/// The `/train` reply for a stored trial.
pub(crate) fn reply_json(trial: &TrialRecord, pending: &[String]) -> Value {
    json!({
        "trial_id": trial.trial_id,
        "run_id": trial.run_id,
        "status": trial.status.as_str(),
        "metrics": trial.metrics,
        "dataset_size": trial.dataset_size,
        "mlflow_run_id": trial.mlflow_run_id,
        "artifact_uri": trial.artifact_uri,
        "duration_ms": trial.duration_ms,
        "warnings": trial.warnings,
        "error": trial.error,
        "pending": pending,
    })
}
