//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::schemas::{Health, Readiness};

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers; reports the outbox backlog (an MLflow or S3 outage shows here as a
/// growing backlog, without making the runner unready).
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answers", body = Readiness),
        (status = 503, description = "Not ready: the database does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match state.store.ping().await {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": "error", "error": e.to_string()}),
    };
    let db_ok = database["status"] == "ok";
    let outbox = match state.store.backlog().await {
        Ok(b) => json!(b),
        Err(e) => json!({"error": e.to_string()}),
    };
    let dependencies = state.tracker.readiness().await;
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if db_ok { "ready" } else { "unavailable" },
            "checks": {"database": database, "dependencies": dependencies},
            "outbox": outbox,
            "training": state.trainer.load(),
        })),
    )
}
