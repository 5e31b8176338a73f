//! `GET /runs`, `GET|DELETE /runs/{run_id}`, `GET /runs/{run_id}/trials`, `GET /trials/{trial_id}`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::pagination::Page;
use super::summary::run_json;
use crate::domain::RunId;
use crate::error::ApiError;
use crate::store::{RunRecord, TrialRecord, now_ms};

/// `GET /runs?limit&offset`: runs, newest first.
pub async fn list(State(state): State<AppState>, query: RawQuery) -> Result<Json<Value>, ApiError> {
    let page = Page::parse(&query)?;
    let (runs, total) = state.store.list_runs(page.limit, page.offset).await?;
    let mut items = Vec::with_capacity(runs.len());
    for run in &runs {
        let trials = state.store.run_trials(&RunId::parse(&run.run_id)?).await?;
        items.push(run_json(
            run,
            &trials,
            pending_count(&state, &run.run_id).await?,
        ));
    }
    Ok(Json(
        json!({"runs": items, "total": total, "limit": page.limit, "offset": page.offset}),
    ))
}

/// A run and all its trials, or 404.
pub(crate) async fn run_with_trials(
    state: &AppState,
    run_id: &str,
) -> Result<(RunRecord, Vec<TrialRecord>), ApiError> {
    let run = state
        .store
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown run {run_id:?}")))?;
    let trials = state.store.run_trials(&RunId::parse(&run.run_id)?).await?;
    Ok((run, trials))
}

/// `GET /runs/{run_id}`: the run with its best trial and counts.
pub async fn get(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (run, trials) = run_with_trials(&state, &run_id).await?;
    Ok(Json(run_json(
        &run,
        &trials,
        pending_count(&state, &run.run_id).await?,
    )))
}

/// Unexpired proposals of a run not yet reported by a trial.
async fn pending_count(state: &AppState, run_id: &str) -> Result<usize, ApiError> {
    let ttl_ms = i64::try_from(state.settings.pending_ttl.as_millis()).unwrap_or(i64::MAX);
    let n = state
        .store
        .count_pending(run_id, now_ms().saturating_sub(ttl_ms))
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `DELETE /runs/{run_id}`: forgets a run, its trials and proposals.
pub async fn delete(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_run(&run_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("unknown run {run_id:?}")))
    }
}

/// `GET /runs/{run_id}/trials?limit&offset`: a page of trials, oldest first.
pub async fn trials(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = Page::parse(&query)?;
    if state.store.get_run(&run_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("unknown run {run_id:?}")));
    }
    let (trials, total) = state
        .store
        .list_trials(&run_id, page.limit, page.offset)
        .await?;
    Ok(Json(json!({
        "run_id": run_id,
        "trials": trials.iter().map(TrialRecord::to_json).collect::<Vec<_>>(),
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    })))
}

/// `GET /trials/{trial_id}`.
pub async fn trial(
    State(state): State<AppState>,
    Path(trial_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .get_trial(&trial_id)
        .await?
        .map(|t| Json(t.to_json()))
        .ok_or_else(|| ApiError::NotFound(format!("unknown trial {trial_id:?}")))
}
