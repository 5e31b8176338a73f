//! Runs, metrics and dataset inputs.

use serde::{Deserialize, Serialize};

use super::common::{Param, Tag, ViewType, now_millis};
use super::serde_helpers::{deserialize_f64, deserialize_i64, deserialize_opt_i64, serialize_f64};

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// The run is in progress.
    Running,
    /// The run is scheduled but has not started.
    Scheduled,
    /// The run completed.
    Finished,
    /// The run failed.
    Failed,
    /// The run was stopped.
    Killed,
}

/// Metadata of a run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Display name.
    #[serde(default)]
    pub run_name: Option<String>,
    /// Experiment the run belongs to.
    pub experiment_id: String,
    /// User that created the run.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Current status.
    pub status: RunStatus,
    /// Start time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub start_time: Option<i64>,
    /// End time (ms since the epoch), once the run ended.
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub end_time: Option<i64>,
    /// Root URI of the run's artifacts, e.g. `mlflow-artifacts:/1/<run_id>/artifacts`.
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// Logged data of a run (the latest value of each metric only).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunData {
    /// Latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Parameters.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Tags, including system tags such as `mlflow.runName`.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl RunData {
    /// The value of tag `key`, if set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// The value of parameter `key`, if logged.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// The latest logged value of metric `key`.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }
}

/// Dataset inputs of a run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunInputs {
    /// Datasets logged with `runs/log-inputs`.
    #[serde(default)]
    pub dataset_inputs: Vec<DatasetInput>,
}

/// A run as returned by `runs/get` and `runs/search`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Metrics, params and tags.
    #[serde(default)]
    pub data: RunData,
    /// Dataset inputs.
    #[serde(default)]
    pub inputs: RunInputs,
}

/// Arguments of `runs/create`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateRun {
    /// Experiment to create the run in.
    pub experiment_id: String,
    /// Display name; the server makes one up when `None`.
    pub run_name: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
    /// Parent run: sets the `mlflow.parentRunId` tag, which nests the run in the UI.
    pub parent_run_id: Option<String>,
    /// Start time (ms since the epoch); now when `None`.
    pub start_time: Option<i64>,
    /// User id; also sets the `mlflow.user` tag. Taken from an `mlflow.user` tag when `None`.
    pub user_id: Option<String>,
}

impl CreateRun {
    /// Arguments for a run in `experiment_id` with everything else defaulted.
    pub fn in_experiment(experiment_id: impl Into<String>) -> Self {
        Self {
            experiment_id: experiment_id.into(),
            ..Self::default()
        }
    }
}

/// Arguments of `runs/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchRuns {
    /// Experiments to search.
    pub experiment_ids: Vec<String>,
    /// Filter expression, e.g. `metrics.loss < 0.5 and params.lr = '0.01'`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Lifecycle stages to include.
    #[serde(rename = "run_view_type")]
    pub view_type: ViewType,
    /// Page size (server default 1000, maximum 50000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    /// Ordering clauses, e.g. `metrics.loss ASC`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
    /// Token from the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

/// One metric point. NaN and ±Inf are allowed and sent as MLflow's client sends them; note that
/// MLflow's SQL store keeps ±Inf as ±`f64::MAX`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric key (at most 250 characters).
    pub key: String,
    /// Value.
    #[serde(serialize_with = "serialize_f64", deserialize_with = "deserialize_f64")]
    pub value: f64,
    /// Time of the measurement (ms since the epoch).
    #[serde(deserialize_with = "deserialize_i64")]
    pub timestamp: i64,
    /// Step (epoch, iteration …).
    #[serde(default, deserialize_with = "deserialize_i64")]
    pub step: i64,
}

impl Metric {
    /// A metric point stamped with the current time.
    pub fn new(key: impl Into<String>, value: f64, step: i64) -> Self {
        Self {
            key: key.into(),
            value,
            timestamp: now_millis(),
            step,
        }
    }
}

/// A dataset reference logged as a run input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Dataset name (at most 500 characters).
    pub name: String,
    /// Content digest (at most 36 characters).
    pub digest: String,
    /// Kind of source, e.g. `local`, `s3`, `http`.
    pub source_type: String,
    /// Source description (usually JSON such as `{"uri": "s3://…"}`).
    pub source: String,
    /// Schema (JSON), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Profile (JSON), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A tag on a dataset input, e.g. `mlflow.data.context = training`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTag {
    /// Key (at most 255 characters).
    pub key: String,
    /// Value (at most 500 characters).
    pub value: String,
}

/// A dataset input of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInput {
    /// Tags of this input.
    #[serde(default)]
    pub tags: Vec<InputTag>,
    /// The dataset.
    pub dataset: Dataset,
}
