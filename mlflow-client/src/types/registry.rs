//! Model registry: registered models, model versions and aliases.

use serde::{Deserialize, Serialize};

use super::common::Tag;
use super::serde_helpers::deserialize_opt_i64;

/// A registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RegisteredModel {
    /// Unique name.
    pub name: String,
    /// Creation time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub creation_timestamp: Option<i64>,
    /// Last update time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub last_updated_timestamp: Option<i64>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Latest version per stage (legacy).
    #[serde(default)]
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Aliases pointing at versions.
    #[serde(default)]
    pub aliases: Vec<RegisteredModelAlias>,
}

/// An alias of a registered model pointing at one version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredModelAlias {
    /// Alias name, e.g. `champion`.
    pub alias: String,
    /// Version it points at.
    pub version: String,
}

/// A version of a registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersion {
    /// Registered model name.
    pub name: String,
    /// Version number (as a string, as MLflow sends it).
    pub version: String,
    /// Creation time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub creation_timestamp: Option<i64>,
    /// Last update time (ms since the epoch).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub last_updated_timestamp: Option<i64>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the model files are.
    #[serde(default)]
    pub source: String,
    /// Run that produced the model.
    #[serde(default)]
    pub run_id: Option<String>,
    /// `PENDING_REGISTRATION`, `FAILED_REGISTRATION` or `READY`.
    #[serde(default)]
    pub status: Option<String>,
    /// Details of the status.
    #[serde(default)]
    pub status_message: Option<String>,
    /// Legacy stage (`None`, `Staging`, `Production`, `Archived`).
    #[serde(default)]
    pub current_stage: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Aliases pointing at this version.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Arguments of `registered-models/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRegisteredModel {
    /// Unique name.
    pub name: String,
    /// Initial tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Arguments of `model-versions/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateModelVersion {
    /// Registered model to add the version to.
    pub name: String,
    /// Where the model files are, e.g. `runs:/<run_id>/model` or the run's artifact URI plus a path.
    pub source: String,
    /// Run that produced the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Initial tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Arguments of `registered-models/search` and `model-versions/search`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrySearch {
    /// Filter expression, e.g. `name LIKE 'demo-%'` or `name = 'm' and run_id = '…'`.
    pub filter: Option<String>,
    /// Page size.
    pub max_results: Option<u32>,
    /// Ordering clauses.
    pub order_by: Vec<String>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl RegistrySearch {
    /// Query parameters for a GET search.
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(f) = &self.filter {
            q.push(("filter", f.clone()));
        }
        if let Some(m) = self.max_results {
            q.push(("max_results", m.to_string()));
        }
        for o in &self.order_by {
            q.push(("order_by", o.clone()));
        }
        if let Some(t) = &self.page_token {
            q.push(("page_token", t.clone()));
        }
        q
    }
}
