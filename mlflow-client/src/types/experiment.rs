//! Experiments.

use serde::{Deserialize, Serialize};

use super::common::{Tag, ViewType};
use super::serde_helpers::deserialize_opt_i64;

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    /// Experiment id.
    pub experiment_id: String,
    /// Unique name.
    pub name: String,
    /// Root URI of the experiment's artifacts, e.g. `mlflow-artifacts:/1`.
    #[serde(default)]
    pub artifact_location: Option<String>,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
    /// Creation time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub creation_time: Option<i64>,
    /// Last update time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub last_update_time: Option<i64>,
    /// Experiment tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Arguments of `experiments/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateExperiment {
    /// Unique experiment name (at most 500 characters).
    pub name: String,
    /// Artifact root; the server chooses one when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_location: Option<String>,
    /// Initial tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl CreateExperiment {
    /// Arguments for an experiment with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// Arguments of `experiments/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchExperiments {
    /// Filter expression, e.g. `name LIKE 'demo-%'`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Ordering clauses, e.g. `name ASC`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
    /// Page size (the server's default is 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    /// Token from the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// Lifecycle stages to include.
    pub view_type: ViewType,
}
