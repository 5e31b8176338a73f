//! `POST /bridge/start`, `/bridge/record`, `/bridge/finalize`: Thunderline's bridge contracts, stored durably
//! and idempotently (Thunderline retries every error up to three times).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::json::JsonBody;
use super::schemas::{
    BridgeFinalizeBody, BridgeFinalizeReply, BridgeRecordBody, BridgeRecordReply, BridgeStartBody,
    BridgeStartReply, ErrorBody,
};
use super::summary::best_trial;
use crate::domain::contracts::{parse_run_finalized, parse_run_started, parse_trial_reported};
use crate::error::ApiError;
use crate::store::outbox::OutboxEntry;
use crate::store::runs::{FinalizeOutcome, StartOutcome};
use crate::store::trials::RecordOutcome;
use crate::tracking::{self, NewTask};

fn entries(state: &AppState, tasks: Vec<NewTask>) -> Vec<OutboxEntry> {
    if !state.tracker.mlflow_enabled() {
        return Vec::new();
    }
    tasks.into_iter().map(OutboxEntry::from).collect()
}

/// `POST /bridge/start` (RunStartedV1).
#[utoipa::path(
    post,
    path = "/bridge/start",
    operation_id = "bridge_start",
    tag = "bridge",
    request_body = BridgeStartBody,
    responses(
        (status = 200, description = "The run is started (again, idempotently, when the content is the same)", body = BridgeStartReply),
        (status = 409, description = "The run was already started with different content", body = ErrorBody),
        (status = 422, description = "A field is invalid (`field` names it)", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let started = parse_run_started(&body)?;
    if let Some(space) = &started.search_space {
        crate::search::SearchSpace::parse(space).map_err(|e| {
            crate::domain::FieldError::new(format!("search_space.{}", e.param), e.reason)
        })?;
    }
    let outbox = entries(&state, vec![tracking::run_task(started.run_id.as_str())]);
    let outcome = state.store.start_run(&started, &outbox).await?;
    state.tracker.nudge();
    match outcome {
        StartOutcome::Started(run) => Ok(Json(json!({
            "run_id": run.run_id,
            "status": "started",
            "mlflow_run_id": run.mlflow_run_id,
        }))),
        StartOutcome::Conflict(message) => Err(ApiError::Conflict(message)),
    }
}

/// `POST /bridge/record` (TrialReportedV1).
#[utoipa::path(
    post,
    path = "/bridge/record",
    operation_id = "bridge_record",
    tag = "bridge",
    request_body = BridgeRecordBody,
    responses(
        (status = 200, description = "The trial is stored (again, idempotently, when the content is the same)", body = BridgeRecordReply),
        (status = 409, description = "The trial id is taken by different content", body = ErrorBody),
        (status = 422, description = "A field is invalid (`field` names it)", body = ErrorBody),
    )
)]
pub async fn record(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let report = parse_trial_reported(&body)?;
    let outbox = entries(
        &state,
        vec![
            tracking::run_task(report.run_id.as_str()),
            tracking::trial_task(report.trial_id.as_str(), Vec::new()),
        ],
    );
    let outcome = state.store.record_trial(&report, &outbox).await?;
    state.tracker.nudge();
    match outcome {
        RecordOutcome::Recorded { trial, .. } => Ok(Json(json!({
            "run_id": trial.run_id,
            "trial": trial.trial_id,
            "trial_id": trial.trial_id,
            "status": trial.status.as_str(),
            "mlflow_run_id": trial.mlflow_run_id,
        }))),
        RecordOutcome::Conflict(message) => Err(ApiError::Conflict(message)),
    }
}

/// `POST /bridge/finalize` (RunFinalizedV1): the best trial among succeeded ones by the run's objective.
#[utoipa::path(
    post,
    path = "/bridge/finalize",
    operation_id = "bridge_finalize",
    tag = "bridge",
    request_body = BridgeFinalizeBody,
    responses(
        (status = 200, description = "The run is finalized (again, idempotently, when the content is the same)", body = BridgeFinalizeReply),
        (status = 409, description = "The run was already finalized differently", body = ErrorBody),
        (status = 422, description = "A field is invalid (`field` names it)", body = ErrorBody),
    )
)]
pub async fn finalize(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let fin = parse_run_finalized(&body)?;
    let run = state.store.ensure_run(&fin.run_id).await?;
    let trials = state.store.run_trials(&fin.run_id).await?;
    let best = best_trial(&trials, &run.objective);
    let outbox = entries(
        &state,
        vec![
            tracking::run_task(fin.run_id.as_str()),
            tracking::run_final_task(fin.run_id.as_str()),
        ],
    );
    let outcome = state
        .store
        .finalize_run(&fin, best.map(|t| t.trial_id.as_str()), &outbox)
        .await?;
    state.tracker.nudge();
    let run = match outcome {
        FinalizeOutcome::Finalized(run) => run,
        FinalizeOutcome::Conflict(message) => return Err(ApiError::Conflict(message)),
    };
    let metrics = match &run.final_metrics {
        Value::Object(m) if !m.is_empty() => Value::Object(m.clone()),
        _ => best.map_or_else(|| json!({}), |t| Value::Object(t.metrics.clone())),
    };
    Ok(Json(json!({
        "run_id": run.run_id,
        "status": run.status.as_str(),
        "duration_ms": run.final_duration_ms,
        "trials": trials.len(),
        "best_trial": best.map(|t| t.to_json()),
        "best_trial_id": best.map(|t| t.trial_id.clone()).or(run.final_best_trial_id.clone()),
        "metrics": metrics,
        "mlflow_run_id": run.mlflow_run_id,
    })))
}
