//! The three contract ops and how a payload becomes the flat body of a `/bridge/*` request.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::input::json_type;
use super::settings::Settings;
use crate::contracts::{RunFinalizedV1, RunStartedV1, TrialReportedV1};

/// An op the runner has an endpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeOp {
    /// `start_run` → `POST /bridge/start`.
    StartRun,
    /// `record_trial` → `POST /bridge/record`.
    RecordTrial,
    /// `finalize_run` → `POST /bridge/finalize`.
    FinalizeRun,
}

impl BridgeOp {
    /// The op named `name`, if it is one of the three.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "start_run" => Some(Self::StartRun),
            "record_trial" => Some(Self::RecordTrial),
            "finalize_run" => Some(Self::FinalizeRun),
            _ => None,
        }
    }

    /// The runner's endpoint for the op.
    pub fn path(self) -> &'static str {
        match self {
            Self::StartRun => "/bridge/start",
            Self::RecordTrial => "/bridge/record",
            Self::FinalizeRun => "/bridge/finalize",
        }
    }
}

/// A payload that cannot become the op's contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

/// Checks `body` against the op's contract and returns it flat, ready for the runner.
///
/// Missing ids and statuses are taken from the per-op variables the invoker sets (`CEREBROS_BRIDGE_RUN_ID`, …).
/// A `start_run` body in Thunderline's later `{spec, opts}` shape is mapped onto RunStartedV1 first; `now` is
/// the timestamp it gets, since that shape has none.
pub fn contract_body(
    op: BridgeOp,
    body: Value,
    settings: &Settings,
    now: &str,
) -> Result<Value, PayloadError> {
    let mut body = match body {
        Value::Object(object) => object,
        other => {
            return Err(PayloadError(format!(
                "the {op:?} payload must be a JSON object, not a {}",
                json_type(&other)
            )));
        }
    };
    match op {
        BridgeOp::StartRun => {
            if is_spec_opts(&body) {
                body = map_spec_opts(body, now);
            }
            fill(&mut body, "run_id", settings.run_id.as_deref());
            fill(&mut body, "correlation_id", settings.correlation.as_deref());
            round_trip::<RunStartedV1>(body, "start_run")
        }
        BridgeOp::RecordTrial => {
            fill(&mut body, "run_id", settings.run_id.as_deref());
            fill(&mut body, "trial_id", settings.trial_id.as_deref());
            round_trip::<TrialReportedV1>(body, "record_trial")
        }
        BridgeOp::FinalizeRun => {
            fill(&mut body, "run_id", settings.run_id.as_deref());
            fill(&mut body, "status", settings.status.as_deref());
            round_trip::<RunFinalizedV1>(body, "finalize_run")
        }
    }
}

/// Whether a start_run body is `{spec, opts}` rather than the contract (it has no `run_id` of its own).
fn is_spec_opts(body: &Map<String, Value>) -> bool {
    !body.contains_key("run_id") && (body.contains_key("spec") || body.contains_key("opts"))
}

/// Maps `{spec: {dataset_id, search_space, objective}, opts: {run_id, budget, parameters, tau, …}}` onto
/// RunStartedV1 fields; keys neither names go to `extra`, so nothing is dropped.
fn map_spec_opts(mut body: Map<String, Value>, now: &str) -> Map<String, Value> {
    let mut spec = take_object(&mut body, "spec");
    let mut opts = take_object(&mut body, "opts");
    let mut out = Map::new();
    for key in [
        "run_id",
        "pulse_id",
        "correlation_id",
        "timestamp",
        "budget",
        "parameters",
        "tau",
    ] {
        if let Some(value) = opts.remove(key).or_else(|| spec.remove(key)) {
            out.insert(key.to_owned(), value);
        }
    }
    for key in ["dataset_id", "search_space", "objective"] {
        if let Some(value) = spec.remove(key).or_else(|| opts.remove(key)) {
            out.insert(key.to_owned(), value);
        }
    }
    let mut extra = match opts.remove("extra") {
        Some(Value::Object(extra)) => extra,
        _ => Map::new(),
    };
    extra.extend(spec);
    extra.extend(opts);
    extra.extend(body);
    extra.insert("source".into(), Value::String("spec_opts".into()));
    out.insert("extra".into(), Value::Object(extra));
    out.entry("timestamp")
        .or_insert_with(|| Value::String(now.to_owned()));
    out
}

fn take_object(body: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match body.remove(key) {
        Some(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

/// Sets `key` from the environment when the payload lacks it or has it `null`.
fn fill(body: &mut Map<String, Value>, key: &str, fallback: Option<&str>) {
    let missing = body.get(key).is_none_or(Value::is_null);
    if let (true, Some(value)) = (missing, fallback) {
        body.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(
    body: Map<String, Value>,
    op: &str,
) -> Result<Value, PayloadError> {
    let contract: T = serde_json::from_value(Value::Object(body))
        .map_err(|e| PayloadError(format!("invalid {op} payload: {e}")))?;
    serde_json::to_value(contract).map_err(|e| PayloadError(format!("invalid {op} payload: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2025-12-06T00:00:00Z";

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::from_lookup(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn op_names_map_to_the_bridge_endpoints() {
        assert_eq!(
            BridgeOp::parse("start_run").map(BridgeOp::path),
            Some("/bridge/start")
        );
        assert_eq!(
            BridgeOp::parse("record_trial").map(BridgeOp::path),
            Some("/bridge/record")
        );
        assert_eq!(
            BridgeOp::parse("finalize_run").map(BridgeOp::path),
            Some("/bridge/finalize")
        );
        assert_eq!(BridgeOp::parse("run_nas"), None);
    }

    #[test]
    fn a_contract_body_stays_flat_with_its_fields() {
        let body = json!({"trial_id": "t-01", "run_id": "r-01", "status": "succeeded",
            "metrics": {"accuracy": 0.91}, "parameters": {"lr": 0.001}, "rank": 1});
        let out = contract_body(BridgeOp::RecordTrial, body, &settings(&[]), NOW).unwrap();
        assert_eq!(out["run_id"], json!("r-01"));
        assert_eq!(out["trial_id"], json!("t-01"));
        assert_eq!(out["metrics"]["accuracy"], json!(0.91));
        assert!(out.get("payload").is_none());
    }

    #[test]
    fn missing_ids_come_from_the_per_op_variables() {
        let env = settings(&[
            ("CEREBROS_BRIDGE_RUN_ID", "r-env"),
            ("CEREBROS_BRIDGE_TRIAL_ID", "t-env"),
            ("CEREBROS_BRIDGE_STATUS", "failed"),
        ]);
        let record =
            contract_body(BridgeOp::RecordTrial, json!({"run_id": null}), &env, NOW).unwrap();
        assert_eq!(
            (record["run_id"].as_str(), record["trial_id"].as_str()),
            (Some("r-env"), Some("t-env"))
        );
        let finalize =
            contract_body(BridgeOp::FinalizeRun, json!({"run_id": "r"}), &env, NOW).unwrap();
        assert_eq!(
            (finalize["run_id"].as_str(), finalize["status"].as_str()),
            (Some("r"), Some("failed"))
        );
    }

    #[test]
    fn a_payload_without_a_run_id_is_refused() {
        let err = contract_body(BridgeOp::StartRun, json!({}), &settings(&[]), NOW).unwrap_err();
        assert!(err.0.contains("run_id"), "{err}");
    }

    #[test]
    fn a_bad_status_is_refused_by_name() {
        let body = json!({"run_id": "r", "trial_id": "t", "status": "weird"});
        let err = contract_body(BridgeOp::RecordTrial, body, &settings(&[]), NOW).unwrap_err();
        assert!(err.0.contains("weird"), "{err}");
    }

    #[test]
    fn a_non_object_payload_is_refused() {
        let err =
            contract_body(BridgeOp::FinalizeRun, json!([1]), &settings(&[]), NOW).unwrap_err();
        assert!(err.0.contains("array"), "{err}");
    }

    #[test]
    fn the_spec_opts_start_is_mapped_onto_the_contract() {
        let body = json!({
            "spec": {"dataset_id": "iris", "search_space": {"lr": {"loguniform": [1e-4, 1e-1]}},
                     "objective": "accuracy", "notes": "n"},
            "opts": {"run_id": "r-9", "budget": {"max_trials": 10},
                     "parameters": {"mutation_rate": 0.1}, "tau": 1.0, "population": 4}
        });
        let env = settings(&[("CEREBROS_BRIDGE_CORRELATION", "c-1")]);
        let out = contract_body(BridgeOp::StartRun, body, &env, NOW).unwrap();
        assert_eq!(out["run_id"], json!("r-9"));
        assert_eq!(out["dataset_id"], json!("iris"));
        assert_eq!(out["objective"], json!("accuracy"));
        assert_eq!(out["search_space"]["lr"]["loguniform"][1], json!(1e-1));
        assert_eq!(out["budget"]["max_trials"], json!(10));
        assert_eq!(out["parameters"]["mutation_rate"], json!(0.1));
        assert_eq!(out["tau"], json!(1.0));
        assert_eq!(out["correlation_id"], json!("c-1"));
        assert_eq!(out["timestamp"], json!(NOW));
        assert_eq!(out["extra"]["notes"], json!("n"));
        assert_eq!(out["extra"]["population"], json!(4));
        assert!(out.get("spec").is_none() && out.get("opts").is_none());
    }

    #[test]
    fn the_spec_opts_start_takes_the_run_id_from_the_environment() {
        let env = settings(&[("CEREBROS_BRIDGE_RUN_ID", "r-env")]);
        let out = contract_body(
            BridgeOp::StartRun,
            json!({"spec": {"dataset_id": "d"}}),
            &env,
            NOW,
        )
        .unwrap();
        assert_eq!(out["run_id"], json!("r-env"));
    }
}
