//! Thunderline's bridge contracts (RunStartedV1, TrialReportedV1, RunFinalizedV1), parsed from the JSON the
//! stub sends: fields flat at top level, or nested under `payload`, or (start) Thunderline's later
//! `{spec, opts}` shape.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::{check_metric_name, flatten};
use super::{FieldError, Objective, RunId, RunStatus, TrialId, TrialStatus};

/// A validated RunStartedV1.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStarted {
    /// The run.
    pub run_id: RunId,
    /// Dataset reference for trainings of this run.
    pub dataset_id: Option<String>,
    /// Search space (validated when proposals are drawn).
    pub search_space: Option<Value>,
    /// Objective, when the caller named one.
    pub objective: Option<Objective>,
    /// Pulse the run belongs to.
    pub pulse_id: Option<String>,
    /// Budget map.
    pub budget: Map<String, Value>,
    /// Priors / overrides.
    pub parameters: Map<String, Value>,
    /// Temperature.
    pub tau: Option<f64>,
    /// Correlation id for tracing.
    pub correlation_id: Option<String>,
    /// Caller's timestamp (ISO-8601, kept verbatim).
    pub timestamp: Option<String>,
    /// Extra map.
    pub extra: Map<String, Value>,
    /// The payload as received.
    pub raw: Value,
}

/// A validated TrialReportedV1.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialReported {
    /// The trial.
    pub trial_id: TrialId,
    /// The run it belongs to.
    pub run_id: RunId,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Candidate id.
    pub candidate_id: Option<String>,
    /// Outcome.
    pub status: TrialStatus,
    /// Reported metrics (numbers are logged; other values are kept).
    pub metrics: Map<String, Value>,
    /// Parameters the trial ran with.
    pub parameters: Map<String, Value>,
    /// Where its artifacts are.
    pub artifact_uri: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// Rank among its batch.
    pub rank: Option<u64>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Whether spectral normalisation was on.
    pub spectral_norm: bool,
    /// MLflow run id the caller already has, if any.
    pub mlflow_run_id: Option<String>,
    /// The payload as received.
    pub raw: Value,
}

/// A validated RunFinalizedV1.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFinalized {
    /// The run.
    pub run_id: RunId,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Final status.
    pub status: RunStatus,
    /// Aggregate metrics reported by the caller.
    pub metrics: Map<String, Value>,
    /// Best trial named by the caller.
    pub best_trial_id: Option<String>,
    /// Duration named by the caller.
    pub duration_ms: Option<u64>,
    /// Exit code of the caller's process.
    pub returncode: Option<i64>,
    /// Artifact references.
    pub artifact_refs: Vec<Value>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Excerpt of the caller's stdout.
    pub stdout_excerpt: Option<String>,
    /// The payload as received.
    pub raw: Value,
}

const START_FIELDS: &[&str] = &[
    "run_id",
    "dataset_id",
    "search_space",
    "objective",
    "pulse_id",
    "budget",
    "parameters",
    "tau",
    "correlation_id",
    "timestamp",
    "extra",
];
const RECORD_FIELDS: &[&str] = &[
    "trial_id",
    "run_id",
    "pulse_id",
    "candidate_id",
    "status",
    "metrics",
    "parameters",
    "artifact_uri",
    "duration_ms",
    "rank",
    "warnings",
    "spectral_norm",
    "mlflow_run_id",
];
const FINALIZE_FIELDS: &[&str] = &[
    "run_id",
    "pulse_id",
    "status",
    "metrics",
    "best_trial_id",
    "duration_ms",
    "returncode",
    "artifact_refs",
    "warnings",
    "stdout_excerpt",
];

/// Lifts contract fields nested under `payload` (or Thunderline's `{spec, opts}`) to the top level.
/// Top-level fields win over nested ones.
fn lift(body: &Value, fields: &[&str]) -> Result<Map<String, Value>, FieldError> {
    let Value::Object(top) = body else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    let mut out = top.clone();
    let nested: Vec<Map<String, Value>> = ["payload", "spec", "opts"]
        .iter()
        .filter_map(|k| top.get(*k).and_then(Value::as_object))
        .filter(|inner| inner.keys().any(|k| fields.contains(&k.as_str())))
        .cloned()
        .collect();
    for inner in nested {
        for (k, v) in inner {
            if fields.contains(&k.as_str()) && out.get(&k).is_none_or(Value::is_null) {
                out.insert(k, v);
            }
        }
    }
    Ok(out)
}

fn from_map<T: for<'de> Deserialize<'de>>(map: Map<String, Value>) -> Result<T, FieldError> {
    from_object_at(None, map)
}

/// Deserializes an object's fields into `T`, naming the field at fault in the error: its path, prefixed by
/// `within.` when the object is the value of field `within` (`None`: the request body).
pub(crate) fn from_object_at<T: for<'de> Deserialize<'de>>(
    within: Option<&str>,
    map: Map<String, Value>,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // At the top level (an unknown field, say) serde names the field in backquotes.
        let name = if path == "." {
            inner.split('`').nth(1).map(str::to_string)
        } else {
            Some(path)
        };
        let field = match (within, name) {
            (None, name) => name.unwrap_or_else(|| "body".to_string()),
            (Some(within), Some(name)) => format!("{within}.{name}"),
            (Some(within), None) => within.to_string(),
        };
        FieldError::new(field, inner)
    })
}

/// A string-keyed object that may also be sent as `null`.
fn object_or_empty(field: &str, v: Option<Value>) -> Result<Map<String, Value>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(FieldError::new(field, "must be an object")),
    }
}

fn check_metrics(metrics: &Map<String, Value>) -> Result<(), FieldError> {
    for (k, v) in flatten(metrics) {
        check_metric_name(&format!("metrics.{k}"), &k)?;
        if let Value::Number(n) = &v
            && n.as_f64().is_none()
        {
            return Err(FieldError::new(
                format!("metrics.{k}"),
                "is not a representable number",
            ));
        }
    }
    Ok(())
}

fn check_param_names(field: &str, params: &Map<String, Value>) -> Result<(), FieldError> {
    for k in flatten(params).keys() {
        check_metric_name(&format!("{field}.{k}"), k)?;
    }
    Ok(())
}

/// Durations and ranks are stored as signed 64-bit integers: larger values are refused rather than clamped.
fn at_most_i64(field: &str, v: Option<u64>) -> Result<Option<u64>, FieldError> {
    match v {
        Some(n) if i64::try_from(n).is_err() => Err(FieldError::new(
            field,
            format!("must be at most {}", i64::MAX),
        )),
        other => Ok(other),
    }
}

fn warnings(field: &str, v: Option<Value>) -> Result<Vec<String>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(FieldError::new(format!("{field}[{i}]"), "must be a string")),
            })
            .collect(),
        Some(_) => Err(FieldError::new(field, "must be a list of strings")),
    }
}

#[derive(Deserialize)]
struct RawStart {
    run_id: String,
    dataset_id: Option<String>,
    search_space: Option<Value>,
    objective: Option<Value>,
    pulse_id: Option<String>,
    budget: Option<Value>,
    parameters: Option<Value>,
    tau: Option<f64>,
    correlation_id: Option<String>,
    timestamp: Option<String>,
    extra: Option<Value>,
}

/// Parses a `/bridge/start` body.
pub fn parse_run_started(body: &Value) -> Result<RunStarted, FieldError> {
    let raw: RawStart = from_map(lift(body, START_FIELDS)?)?;
    let objective = match raw.objective {
        None | Some(Value::Null) => None,
        Some(v) => Some(Objective::parse("objective", &v)?),
    };
    let search_space = raw
        .search_space
        .filter(|v| !v.is_null() && v != &Value::Object(Map::new()));
    let parameters = object_or_empty("parameters", raw.parameters)?;
    check_param_names("parameters", &parameters)?;
    Ok(RunStarted {
        run_id: RunId::parse(&raw.run_id)?,
        dataset_id: raw.dataset_id.filter(|d| !d.is_empty()),
        search_space,
        objective,
        pulse_id: raw.pulse_id,
        budget: object_or_empty("budget", raw.budget)?,
        parameters,
        tau: raw.tau,
        correlation_id: raw.correlation_id,
        timestamp: raw.timestamp,
        extra: object_or_empty("extra", raw.extra)?,
        raw: body.clone(),
    })
}

/// Thunderline accepts `spectral_norm` as a bool, `"true"`/`"false"` or 1/0.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlexBool {
    Bool(bool),
    Text(String),
    Int(i64),
}

#[derive(Deserialize)]
struct RawRecord {
    trial_id: String,
    run_id: String,
    pulse_id: Option<String>,
    candidate_id: Option<String>,
    status: Option<String>,
    metrics: Option<Value>,
    parameters: Option<Value>,
    artifact_uri: Option<String>,
    duration_ms: Option<u64>,
    rank: Option<u64>,
    warnings: Option<Value>,
    spectral_norm: Option<FlexBool>,
    mlflow_run_id: Option<String>,
}

/// Parses a `/bridge/record` body.
pub fn parse_trial_reported(body: &Value) -> Result<TrialReported, FieldError> {
    let raw: RawRecord = from_map(lift(body, RECORD_FIELDS)?)?;
    let status = match raw.status.as_deref() {
        None => TrialStatus::Succeeded,
        Some(s) => TrialStatus::parse_reported(s)?,
    };
    let metrics = object_or_empty("metrics", raw.metrics)?;
    check_metrics(&metrics)?;
    let parameters = object_or_empty("parameters", raw.parameters)?;
    check_param_names("parameters", &parameters)?;
    let spectral_norm = match raw.spectral_norm {
        None => false,
        Some(FlexBool::Bool(b)) => b,
        Some(FlexBool::Int(i)) if i == 0 || i == 1 => i == 1,
        Some(FlexBool::Text(t)) if t.eq_ignore_ascii_case("true") => true,
        Some(FlexBool::Text(t)) if t.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(FieldError::new(
                "spectral_norm",
                "must be true, false, \"true\", \"false\", 1 or 0",
            ));
        }
    };
    Ok(TrialReported {
        trial_id: TrialId::parse(&raw.trial_id)?,
        run_id: RunId::parse(&raw.run_id)?,
        pulse_id: raw.pulse_id,
        candidate_id: raw.candidate_id,
        status,
        metrics,
        parameters,
        artifact_uri: raw.artifact_uri,
        duration_ms: at_most_i64("duration_ms", raw.duration_ms)?,
        rank: at_most_i64("rank", raw.rank)?,
        warnings: warnings("warnings", raw.warnings)?,
        spectral_norm,
        mlflow_run_id: raw.mlflow_run_id,
        raw: body.clone(),
    })
}

#[derive(Deserialize)]
struct RawFinalize {
    run_id: String,
    pulse_id: Option<String>,
    status: Option<String>,
    metrics: Option<Value>,
    best_trial_id: Option<String>,
    duration_ms: Option<u64>,
    returncode: Option<i64>,
    artifact_refs: Option<Vec<Value>>,
    warnings: Option<Value>,
    stdout_excerpt: Option<String>,
}

/// Parses a `/bridge/finalize` body.
pub fn parse_run_finalized(body: &Value) -> Result<RunFinalized, FieldError> {
    let raw: RawFinalize = from_map(lift(body, FINALIZE_FIELDS)?)?;
    let status = match raw.status.as_deref() {
        None => RunStatus::Succeeded,
        Some(s) => RunStatus::parse_final(s)?,
    };
    let metrics = object_or_empty("metrics", raw.metrics)?;
    check_metrics(&metrics)?;
    Ok(RunFinalized {
        run_id: RunId::parse(&raw.run_id)?,
        pulse_id: raw.pulse_id,
        status,
        metrics,
        best_trial_id: raw.best_trial_id,
        duration_ms: at_most_i64("duration_ms", raw.duration_ms)?,
        returncode: raw.returncode,
        artifact_refs: raw.artifact_refs.unwrap_or_default(),
        warnings: warnings("warnings", raw.warnings)?,
        stdout_excerpt: raw.stdout_excerpt,
        raw: body.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flat_record_as_the_stub_sends_it_parses() {
        let body = json!({"run_id":"r-01","trial_id":"t-01","pulse_id":null,"candidate_id":null,
            "status":"succeeded","metrics":{"accuracy":0.91,"latency_ms":31.2},
            "parameters":{"lr":0.001,"head":"kgam"},"artifact_uri":null,"duration_ms":5400,"rank":1,
            "warnings":[],"spectral_norm":false,"mlflow_run_id":null});
        let t = parse_trial_reported(&body).unwrap();
        assert_eq!(t.trial_id.as_str(), "t-01");
        assert_eq!(t.status, TrialStatus::Succeeded);
        assert_eq!(t.duration_ms, Some(5400));
    }

    #[test]
    fn durations_and_ranks_beyond_i64_are_refused_not_clamped() {
        let big = json!(9_223_372_036_854_775_808_u64);
        let e = parse_trial_reported(&json!({"run_id":"r","trial_id":"t","rank":big}))
            .err()
            .unwrap();
        assert_eq!(e.field, "rank");
        let e = parse_run_finalized(&json!({"run_id":"r","payload":{"duration_ms":big}}))
            .err()
            .unwrap();
        assert_eq!(e.field, "duration_ms");
        let ok = parse_run_finalized(&json!({"run_id":"r","duration_ms":i64::MAX})).unwrap();
        assert_eq!(ok.duration_ms, Some(i64::MAX as u64));
    }

    #[test]
    fn a_record_nested_under_payload_parses() {
        let body = json!({"run_id":"r","payload":{"trial_id":"t","status":"CANCELED","spectral_norm":"true"}});
        let t = parse_trial_reported(&body).unwrap();
        assert_eq!((t.status, t.spectral_norm), (TrialStatus::Cancelled, true));
    }

    #[test]
    fn a_missing_trial_id_names_the_field() {
        let e = parse_trial_reported(&json!({"run_id":"r"})).unwrap_err();
        assert_eq!(e.field, "trial_id");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let e = parse_trial_reported(&json!({"run_id":"r","trial_id":"t","duration_ms":-5}))
            .unwrap_err();
        assert_eq!(e.field, "duration_ms");
        let e =
            parse_trial_reported(&json!({"run_id":"r","trial_id":"t","metrics":[1]})).unwrap_err();
        assert_eq!(e.field, "metrics");
    }

    #[test]
    fn an_unknown_status_is_rejected() {
        let e =
            parse_trial_reported(&json!({"run_id":"r","trial_id":"t","status":"ok"})).unwrap_err();
        assert_eq!(e.field, "status");
    }

    #[test]
    fn the_later_spec_opts_start_shape_is_lifted() {
        let body = json!({"spec":{"dataset_id":"iris","search_space":{"lr":{"uniform":[0,1]}},"objective":"val_loss"},
            "opts":{"run_id":"r9","budget":{"max_trials":10}}});
        let s = parse_run_started(&body).unwrap();
        assert_eq!(s.run_id.as_str(), "r9");
        assert_eq!(s.dataset_id.as_deref(), Some("iris"));
        assert_eq!(s.objective.unwrap().metric, "val_loss");
    }

    #[test]
    fn finalize_keeps_its_own_payload_field() {
        let body = json!({"run_id":"r","status":"timeout","payload":{"note":"x"}});
        let f = parse_run_finalized(&body).unwrap();
        assert_eq!(f.status, RunStatus::Timeout);
    }

    #[test]
    fn bad_metric_names_are_rejected() {
        let e = parse_trial_reported(&json!({"run_id":"r","trial_id":"t","metrics":{"a;b":1}}))
            .unwrap_err();
        assert_eq!(e.field, "metrics.a;b");
    }
}
