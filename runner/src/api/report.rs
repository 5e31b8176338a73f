//! `GET /runs/{run_id}/report`: the run as a self-contained HTML page (see [`crate::report`]).

use axum::extract::State;
use axum::response::Html;

use super::AppState;
use super::path::PathId;
use crate::error::ApiError;
use crate::report::render_run_report;

/// `GET /runs/{run_id}/report`: summary, optimisation history, parallel coordinates and trial table.
#[utoipa::path(
    get,
    path = "/runs/{run_id}/report",
    operation_id = "run_report",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "A self-contained HTML page", content_type = "text/html", body = String),
        (status = 400, description = "The id cannot be decoded", body = super::schemas::ErrorBody),
        (status = 404, description = "Unknown run", body = super::schemas::ErrorBody),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    PathId(run_id): PathId,
) -> Result<Html<String>, ApiError> {
    let (run, trials) = super::runs::run_with_trials(&state, &run_id).await?;
    Ok(Html(render_run_report(&run, &trials)))
}
