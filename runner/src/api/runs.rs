//! `GET /runs`, `GET|DELETE /runs/{run_id}`, `GET /runs/{run_id}/trials`, `GET /trials/{trial_id}`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::pagination::{Page, PageQuery};
use super::path::PathId;
use super::schemas::{ErrorBody, Run, RunPage, Trial, TrialPage};
use super::summary::run_json;
use crate::domain::RunId;
use crate::error::ApiError;
use crate::store::{RunRecord, TrialRecord, now_ms};

/// `GET /runs?limit&offset`: runs, newest first.
#[utoipa::path(
    get,
    path = "/runs",
    operation_id = "list_runs",
    tag = "runs",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of runs, newest first", body = RunPage),
        (status = 422, description = "`limit` or `offset` is invalid", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/runs/{run_id}",
    operation_id = "get_run",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 400, description = "The id cannot be decoded", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathId(run_id): PathId,
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
#[utoipa::path(
    delete,
    path = "/runs/{run_id}",
    operation_id = "delete_run",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, description = "The id cannot be decoded", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    PathId(run_id): PathId,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_run(&run_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("unknown run {run_id:?}")))
    }
}

/// `GET /runs/{run_id}/trials?limit&offset`: a page of trials, oldest first.
#[utoipa::path(
    get,
    path = "/runs/{run_id}/trials",
    operation_id = "list_trials",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run"), PageQuery),
    responses(
        (status = 200, description = "A page of the run's trials, oldest first", body = TrialPage),
        (status = 400, description = "The id cannot be decoded", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
        (status = 422, description = "`limit` or `offset` is invalid", body = ErrorBody),
    )
)]
pub async fn trials(
    State(state): State<AppState>,
    PathId(run_id): PathId,
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
#[utoipa::path(
    get,
    path = "/trials/{trial_id}",
    operation_id = "get_trial",
    tag = "runs",
    params(("trial_id" = String, Path, description = "The trial")),
    responses(
        (status = 200, description = "The trial", body = Trial),
        (status = 400, description = "The id cannot be decoded", body = ErrorBody),
        (status = 404, description = "Unknown trial", body = ErrorBody),
    )
)]
pub async fn trial(
    State(state): State<AppState>,
    PathId(trial_id): PathId,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .get_trial(&trial_id)
        .await?
        .map(|t| Json(t.to_json()))
        .ok_or_else(|| ApiError::NotFound(format!("unknown trial {trial_id:?}")))
}
