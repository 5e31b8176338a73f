//! Pure translation of stored runs and trials into MLflow params, metrics, tags, statuses and search filters.

use mlflow_client::{Metric, Param, RunStatus as MlflowStatus, Tag};
use serde_json::{Map, Value};

use super::tasks::EpochPoint;
use crate::domain::keys::flatten;
use crate::domain::{RunStatus, TrialStatus};

/// MLflow's longest param value.
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// MLflow's longest tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 5000;
/// MLflow's longest param, metric or tag key.
pub const MAX_KEY_CHARS: usize = 250;
/// Longest run name MLflow's SQL store keeps (its `runs.name` column).
pub const MAX_RUN_NAME_CHARS: usize = 250;

/// Tag naming which Thunderhelm entity an MLflow run mirrors (`run` or `trial`).
pub const KIND_TAG: &str = "thunderhelm.kind";

/// A key MLflow accepts: characters outside letters, digits and `_ - . / space :` become `_`, `..` segments and
/// leading `/` are neutralised, and it is cut to 250 characters.
pub fn sanitize_key(key: &str) -> String {
    let cleaned: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let segments: Vec<&str> = cleaned
        .trim_start_matches('/')
        .split('/')
        .map(|s| if s == ".." { "__" } else { s })
        .collect();
    let joined = segments.join("/");
    let key = if joined.is_empty() {
        "_".to_string()
    } else {
        joined
    };
    truncate_chars(&key, MAX_KEY_CHARS)
}

/// `text` cut to at most `max` characters.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// A JSON value as a param value: strings verbatim, everything else as compact JSON, cut to 6000 characters.
pub fn param_value(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    truncate_chars(&text, MAX_PARAM_VALUE_CHARS)
}

/// Params from a JSON object flattened with dots, each key under `prefix.` when a prefix is given.
/// The first of several keys that sanitise to the same name wins.
pub fn params_from(prefix: Option<&str>, map: &Map<String, Value>, out: &mut Vec<Param>) {
    for (key, value) in flatten(map) {
        let full = match prefix {
            Some(p) => format!("{p}.{key}"),
            None => key,
        };
        let key = sanitize_key(&full);
        if !out.iter().any(|p| p.key == key) {
            out.push(Param::new(key, param_value(&value)));
        }
    }
}

/// A metric value: finite numbers, and booleans as 0/1; anything else is not a metric.
pub fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// Numeric entries of a metrics object as metric points at `step`, stamped `timestamp`.
pub fn metrics_from(map: &Map<String, Value>, step: i64, timestamp: i64) -> Vec<Metric> {
    map.iter()
        .filter_map(|(key, value)| {
            numeric(value).map(|v| Metric {
                key: sanitize_key(key),
                value: v,
                timestamp,
                step,
            })
        })
        .collect()
}

/// Per-epoch `loss`, `val_loss` and `val_<metric>` points with `step = epoch`, stamped `timestamp`.
pub fn history_metrics(history: &[EpochPoint], timestamp: i64) -> Vec<Metric> {
    let mut out = Vec::new();
    for point in history {
        let val_name = format!(
            "val_{}",
            point
                .val_metric_name
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or("metric")
        );
        for (key, value) in [
            ("loss".to_string(), point.loss),
            ("val_loss".to_string(), point.val_loss),
            (val_name, point.val_metric),
        ] {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                out.push(Metric {
                    key: sanitize_key(&key),
                    value: v,
                    timestamp,
                    step: point.epoch,
                });
            }
        }
    }
    out
}

/// The MLflow status of a finished trial (`None` while it is queued or running).
pub fn trial_status(status: TrialStatus) -> Option<MlflowStatus> {
    match status {
        TrialStatus::Queued | TrialStatus::Running => None,
        TrialStatus::Succeeded => Some(MlflowStatus::Finished),
        TrialStatus::Failed => Some(MlflowStatus::Failed),
        TrialStatus::Cancelled | TrialStatus::Skipped => Some(MlflowStatus::Killed),
    }
}

/// The MLflow status of a finalized run (`None` while it runs).
pub fn run_status(status: RunStatus) -> Option<MlflowStatus> {
    match status {
        RunStatus::Running => None,
        RunStatus::Succeeded => Some(MlflowStatus::Finished),
        RunStatus::Failed | RunStatus::Timeout => Some(MlflowStatus::Failed),
        RunStatus::Cancelled => Some(MlflowStatus::Killed),
    }
}

/// A tag with its value cut to MLflow's limit.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::new(
        sanitize_key(key),
        truncate_chars(value, MAX_TAG_VALUE_CHARS),
    )
}

/// A quoted string literal for MLflow's search syntax, or `None` when `value` holds both quote characters
/// (MLflow's filter grammar has no escape for that case).
pub fn filter_literal(value: &str) -> Option<String> {
    if !value.contains('\'') {
        Some(format!("'{value}'"))
    } else if !value.contains('"') {
        Some(format!("\"{value}\""))
    } else {
        None
    }
}

/// `tags.`k` = 'v' AND …` for the pairs, or `None` when a value cannot be written as a literal.
pub fn tags_filter(pairs: &[(&str, &str)]) -> Option<String> {
    let clauses: Option<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| filter_literal(v).map(|lit| format!("tags.`{k}` = {lit}")))
        .collect();
    clauses.map(|c| c.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn params_are_flattened_with_dots_and_stringified() {
        let mut out = Vec::new();
        let map = object(
            json!({"lr": 0.01, "controller": {"smooth": 0.5, "kind": "pid"}, "layers": [1, 2], "on": true, "s": "x"}),
        );
        params_from(None, &map, &mut out);
        let get = |k: &str| out.iter().find(|p| p.key == k).map(|p| p.value.as_str());
        assert_eq!(get("lr"), Some("0.01"));
        assert_eq!(get("controller.smooth"), Some("0.5"));
        assert_eq!(get("controller.kind"), Some("pid"));
        assert_eq!(get("layers"), Some("[1,2]"));
        assert_eq!(get("on"), Some("true"));
        assert_eq!(get("s"), Some("x"));
        let mut prefixed = Vec::new();
        params_from(
            Some("budget"),
            &object(json!({"max_trials": 8})),
            &mut prefixed,
        );
        assert_eq!(prefixed[0].key, "budget.max_trials");
    }

    #[test]
    fn long_values_and_bad_keys_are_made_acceptable() {
        let long = "é".repeat(7000);
        assert_eq!(
            param_value(&json!(long)).chars().count(),
            MAX_PARAM_VALUE_CHARS
        );
        assert_eq!(sanitize_key("a$b"), "a_b");
        assert_eq!(sanitize_key("/abs/../x"), "abs/__/x");
        assert_eq!(sanitize_key(&"k".repeat(300)).len(), MAX_KEY_CHARS);
        assert_eq!(sanitize_key(""), "_");
        let mut out = Vec::new();
        params_from(None, &object(json!({"a$": 1, "a%": 2})), &mut out);
        assert_eq!(out.len(), 1, "colliding sanitised keys keep the first");
    }

    #[test]
    fn metrics_keep_numbers_and_booleans_only() {
        let m = metrics_from(
            &object(json!({"accuracy": 0.9, "ok": true, "bad": false, "note": "x", "n": null})),
            3,
            7,
        );
        let mut keys: Vec<(&str, f64)> = m.iter().map(|m| (m.key.as_str(), m.value)).collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(keys, [("accuracy", 0.9), ("bad", 0.0), ("ok", 1.0)]);
        assert!(m.iter().all(|m| m.step == 3 && m.timestamp == 7));
    }

    #[test]
    fn history_becomes_stepped_series() {
        let history = vec![
            EpochPoint {
                epoch: 1,
                loss: Some(1.0),
                val_loss: Some(1.1),
                val_metric: Some(0.5),
                val_metric_name: Some("accuracy".into()),
            },
            EpochPoint {
                epoch: 2,
                loss: Some(0.5),
                val_loss: None,
                val_metric: Some(f64::NAN),
                val_metric_name: None,
            },
        ];
        let m = history_metrics(&history, 10);
        let got: Vec<(&str, i64, f64)> = m
            .iter()
            .map(|m| (m.key.as_str(), m.step, m.value))
            .collect();
        assert_eq!(
            got,
            [
                ("loss", 1, 1.0),
                ("val_loss", 1, 1.1),
                ("val_accuracy", 1, 0.5),
                ("loss", 2, 0.5)
            ]
        );
    }

    #[test]
    fn statuses_map_to_mlflow() {
        assert_eq!(
            trial_status(TrialStatus::Succeeded),
            Some(MlflowStatus::Finished)
        );
        assert_eq!(
            trial_status(TrialStatus::Failed),
            Some(MlflowStatus::Failed)
        );
        assert_eq!(
            trial_status(TrialStatus::Skipped),
            Some(MlflowStatus::Killed)
        );
        assert_eq!(
            trial_status(TrialStatus::Cancelled),
            Some(MlflowStatus::Killed)
        );
        assert_eq!(trial_status(TrialStatus::Running), None);
        assert_eq!(run_status(RunStatus::Timeout), Some(MlflowStatus::Failed));
        assert_eq!(run_status(RunStatus::Cancelled), Some(MlflowStatus::Killed));
        assert_eq!(
            run_status(RunStatus::Succeeded),
            Some(MlflowStatus::Finished)
        );
        assert_eq!(run_status(RunStatus::Running), None);
    }

    #[test]
    fn filters_quote_values_safely() {
        assert_eq!(
            tags_filter(&[("run_id", "r-1"), (KIND_TAG, "run")]).unwrap(),
            "tags.`run_id` = 'r-1' AND tags.`thunderhelm.kind` = 'run'"
        );
        assert_eq!(filter_literal("it's").unwrap(), "\"it's\"");
        assert_eq!(filter_literal("a'b\"c"), None);
        assert_eq!(tags_filter(&[("run_id", "a'b\"c")]), None);
    }
}
