//! Request and reply bodies of the runner's API beyond the bridge contracts.
//!
//! Replies keep the fields the runner adds in `other`, so callers see everything it sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contracts::{Direction, Objective, RunId, TrialId};

/// How `/propose` draws candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Tree-structured Parzen estimator (the runner's default).
    Tpe,
    /// Uniform random sampling.
    Random,
}

/// Body of `POST /propose`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposeRequest {
    /// Run the proposals belong to (created when unknown).
    pub run_id: RunId,
    /// Number of proposals, 1..=64.
    pub k: u32,
    /// Search space; the runner falls back to the one stored for the run when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<Value>,
    /// Objective, when the run has none yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Sampling strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Seed, for reproducible proposals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl ProposeRequest {
    /// `k` proposals for `run_id` over `space`, everything else left to the runner.
    pub fn new(run_id: RunId, k: u32, space: Option<Value>) -> Self {
        Self {
            run_id,
            k,
            space,
            objective: None,
            strategy: None,
            seed: None,
        }
    }
}

/// TPE log-densities of a proposal under the good (`l`) and bad (`g`) estimators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Log-density under the good estimator.
    pub l: f64,
    /// Log-density under the bad estimator.
    pub g: f64,
}

/// One item of `/propose`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Parameter name → value.
    pub params: Map<String, Value>,
    /// Densities behind the rank.
    pub score: Score,
    /// 1 = most promising.
    pub rank: u32,
}

/// Whether `/train` answers when training ends or at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainMode {
    /// Answer with the metrics.
    Sync,
    /// Answer 202 and train in the background.
    Async,
}

/// Body of `POST /train`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainRequest {
    /// The trial to train.
    pub trial_id: TrialId,
    /// Its run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// Architecture and optimiser parameters.
    pub params: Map<String, Value>,
    /// Inline rows or dataset references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Value>,
    /// Dataset URI or built-in name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    /// Sync (default) or async.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<TrainMode>,
}

/// Reply of `POST /train` (and `GET /trials/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReply {
    /// The trial.
    pub trial_id: String,
    /// Its run.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Trial status.
    #[serde(default)]
    pub status: Option<String>,
    /// Measured metrics.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Fields not named above.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Reply of `POST /bridge/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedReply {
    /// The run.
    pub run_id: String,
    /// `started`.
    pub status: String,
    /// MLflow parent run, when tracking is on.
    #[serde(default)]
    pub mlflow_run_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Reply of `POST /bridge/record`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedReply {
    /// The run.
    pub run_id: String,
    /// The trial id.
    pub trial: String,
    /// The trial's status.
    pub status: String,
    /// MLflow child run, when tracking is on.
    #[serde(default)]
    pub mlflow_run_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Reply of `POST /bridge/finalize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizedReply {
    /// The run.
    pub run_id: String,
    /// The run's final status.
    #[serde(default)]
    pub status: Option<String>,
    /// Time since the start.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Number of trials.
    #[serde(default)]
    pub trials: Option<u64>,
    /// Best succeeded trial, as stored.
    #[serde(default)]
    pub best_trial: Option<Value>,
    /// Its id.
    #[serde(default)]
    pub best_trial_id: Option<String>,
    /// Its metrics.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Fields not named above.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Reply of `GET /runs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    pub run_id: String,
    /// Run status.
    #[serde(default)]
    pub status: Option<String>,
    /// What the run optimises.
    #[serde(default)]
    pub objective: Option<Objective>,
    /// Direction of the objective.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Search space stored at the start, when any.
    #[serde(default)]
    pub search_space: Value,
    /// Best succeeded trial.
    #[serde(default)]
    pub best_trial_id: Option<String>,
    /// Its parameters.
    #[serde(default)]
    pub best_params: Option<Map<String, Value>>,
    /// Its objective value.
    #[serde(default)]
    pub best_value: Option<f64>,
    /// Trials reported.
    #[serde(default)]
    pub n_trials: Option<u64>,
    /// Trials that succeeded with the objective metric.
    #[serde(default)]
    pub n_complete: Option<u64>,
    /// Proposals not yet settled by a trial (the runner's `pending_proposals`).
    #[serde(default, alias = "pending_proposals")]
    pub n_pending: Option<u64>,
    /// Fields not named above.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RunView {
    /// The run's direction, from `direction` or the objective, maximize when neither says.
    pub fn effective_direction(&self) -> Direction {
        self.direction
            .or(match &self.objective {
                Some(Objective::Spec { direction, .. }) => *direction,
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// Reply of `GET /runs/{id}/trials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialPage {
    /// Trials of this page.
    pub trials: Vec<Value>,
    /// Trials in the run.
    pub total: u64,
}

/// Reply of `GET /runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// Runs of this page.
    pub runs: Vec<Value>,
    /// Runs stored.
    pub total: u64,
}
