//! Run summaries: best trial by the run's objective, counts per status.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::domain::objective::direction_str;
use crate::domain::{Direction, Objective, TrialStatus};
use crate::store::{RunRecord, TrialRecord};

/// The best succeeded trial by `objective` (ties: the oldest).
pub fn best_trial<'a>(trials: &'a [TrialRecord], objective: &Objective) -> Option<&'a TrialRecord> {
    let mut best: Option<(&TrialRecord, f64)> = None;
    for t in trials.iter().filter(|t| t.status == TrialStatus::Succeeded) {
        let Some(v) = t.metric(&objective.metric) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, b)) => match objective.direction {
                Direction::Maximize => v > b,
                Direction::Minimize => v < b,
            },
        };
        if better {
            best = Some((t, v));
        }
    }
    best.map(|(t, _)| t)
}

/// The run as `GET /runs/{id}` shows it.
/// `n_pending` counts the run's unexpired proposals not yet reported by a trial.
pub fn run_json(run: &RunRecord, trials: &[TrialRecord], n_pending: usize) -> Value {
    let best = best_trial(trials, &run.objective);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in trials {
        *counts.entry(t.status.as_str()).or_default() += 1;
    }
    let n_complete = counts.get("succeeded").copied().unwrap_or(0);
    json!({
        "run_id": run.run_id,
        "status": run.status.as_str(),
        "started": run.started,
        "objective": {"metric": run.objective.metric, "direction": direction_str(run.objective.direction)},
        "direction": direction_str(run.objective.direction),
        "dataset_id": run.dataset_id,
        "search_space": run.search_space,
        "pulse_id": run.pulse_id,
        "correlation_id": run.correlation_id,
        "tau": run.tau,
        "budget": run.budget,
        "parameters": run.parameters,
        "extra": run.extra,
        "started_at": run.started_at,
        "n_trials": trials.len(),
        "n_complete": n_complete,
        "pending_proposals": n_pending,
        "trial_counts": counts,
        "best_trial_id": best.map(|t| t.trial_id.clone()),
        "best_value": best.and_then(|t| t.metric(&run.objective.metric)),
        "best_params": best.map(|t| Value::Object(t.parameters.clone())),
        "best_trial": best.map(TrialRecord::to_json),
        "final": run.is_finalized().then(|| json!({
            "status": run.status.as_str(),
            "metrics": run.final_metrics,
            "best_trial_id": run.final_best_trial_id,
            "duration_ms": run.final_duration_ms,
            "returncode": run.returncode,
            "artifact_refs": run.artifact_refs,
            "warnings": run.final_warnings,
            "stdout_excerpt": run.stdout_excerpt,
        })),
        "mlflow_run_id": run.mlflow_run_id,
        "created_at_ms": run.created_at_ms,
        "updated_at_ms": run.updated_at_ms,
        "finalized_at_ms": run.finalized_at_ms,
    })
}
