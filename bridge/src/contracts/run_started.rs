//! `RunStartedV1`: what `start_run` carries, sent flat to `POST /bridge/start`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::null_as_default;
use super::{Objective, RunId};

/// A run is starting (Thunderline's `CerebrosBridge.Contracts.RunStartedV1`).
///
/// Fields the contract does not name are kept in `other` and forwarded, so nothing the caller sent is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStartedV1 {
    /// The run.
    pub run_id: RunId,
    /// Dataset the run trains on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    /// Search space in the map or the list dialect; `null` when the caller gave none.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub search_space: Value,
    /// What the run optimises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Thunderline pulse that triggered the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_id: Option<String>,
    /// Limits (`max_trials`, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub budget: Map<String, Value>,
    /// Priors and overrides.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: Map<String, Value>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    /// Correlation id for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// ISO-8601 time of the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Free-form extras.
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra: Map<String, Value>,
    /// Fields outside the contract, forwarded as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RunStartedV1 {
    /// A start with only the run id set.
    pub fn new(run_id: RunId) -> Self {
        Self {
            run_id,
            dataset_id: None,
            search_space: Value::Null,
            objective: None,
            pulse_id: None,
            budget: Map::new(),
            parameters: Map::new(),
            tau: None,
            correlation_id: None,
            timestamp: None,
            extra: Map::new(),
            other: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_elixir_encoding_parses_with_nil_maps() {
        let started: RunStartedV1 = serde_json::from_value(json!({
            "run_id": "r-01", "pulse_id": null, "budget": null, "parameters": {"lr": 0.1},
            "tau": null, "correlation_id": "c-1", "timestamp": "2025-09-27T18:38:59.123456Z",
            "extra": {}, "objective": "accuracy"
        }))
        .unwrap();
        assert_eq!(started.run_id.as_str(), "r-01");
        assert!(started.budget.is_empty());
        assert_eq!(started.parameters["lr"], json!(0.1));
        assert_eq!(
            started.objective,
            Some(Objective::Metric("accuracy".into()))
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let started: RunStartedV1 =
            serde_json::from_value(json!({"run_id": "r", "seed": 7})).unwrap();
        let back = serde_json::to_value(&started).unwrap();
        assert_eq!(back["seed"], json!(7));
        assert_eq!(back["run_id"], json!("r"));
    }

    #[test]
    fn a_missing_run_id_is_an_error() {
        assert!(serde_json::from_value::<RunStartedV1>(json!({"budget": {}})).is_err());
    }
}
