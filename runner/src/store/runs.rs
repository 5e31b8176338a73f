//! The `runs` table: one row per run id, created by `/bridge/start`, `/propose`, `/train` or a record.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::outbox::{OutboxEntry, enqueue_in};
use super::{Store, from_text, now_ms, to_text};
use crate::domain::contracts::{RunFinalized, RunStarted};
use crate::domain::objective::{direction_str, parse_direction};
use crate::domain::{Objective, RunId, RunStatus};

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// Lifecycle status.
    pub status: RunStatus,
    /// Whether `/bridge/start` was received.
    pub started: bool,
    /// What the run optimises.
    pub objective: Objective,
    /// Whether a caller named the objective (else it is the default).
    pub objective_explicit: bool,
    /// Dataset reference for trainings.
    pub dataset_id: Option<String>,
    /// Search space from `/bridge/start`.
    pub search_space: Option<Value>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Temperature.
    pub tau: Option<f64>,
    /// Budget map.
    pub budget: Value,
    /// Priors / overrides.
    pub parameters: Value,
    /// Extra map.
    pub extra: Value,
    /// Caller's start timestamp.
    pub started_at: Option<String>,
    /// Raw `/bridge/start` payload.
    pub start_payload: Value,
    /// Caller's final metrics.
    pub final_metrics: Value,
    /// Best trial at finalization.
    pub final_best_trial_id: Option<String>,
    /// Duration reported at finalization.
    pub final_duration_ms: Option<i64>,
    /// Caller's return code.
    pub returncode: Option<i64>,
    /// Artifact references.
    pub artifact_refs: Value,
    /// Warnings at finalization.
    pub final_warnings: Value,
    /// Caller's stdout excerpt.
    pub stdout_excerpt: Option<String>,
    /// Raw `/bridge/finalize` payload.
    pub finalize_payload: Value,
    /// MLflow parent run id, once created.
    pub mlflow_run_id: Option<String>,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Last update (ms).
    pub updated_at_ms: i64,
    /// Finalization time (ms).
    pub finalized_at_ms: Option<i64>,
}

impl RunRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let metric: String = row.try_get("objective_metric")?;
        let direction: String = row.try_get("objective_direction")?;
        let status: String = row.try_get("status")?;
        Ok(Self {
            run_id: row.try_get("run_id")?,
            status: RunStatus::from_stored(&status).unwrap_or(RunStatus::Running),
            started: row.try_get::<i64, _>("started")? != 0,
            objective: Objective {
                direction: parse_direction(&direction)
                    .unwrap_or_else(|| Objective::for_metric(&metric).direction),
                metric,
            },
            objective_explicit: row.try_get::<i64, _>("objective_explicit")? != 0,
            dataset_id: row.try_get("dataset_id")?,
            search_space: Some(from_text(row.try_get("search_space")?)).filter(|v| !v.is_null()),
            pulse_id: row.try_get("pulse_id")?,
            correlation_id: row.try_get("correlation_id")?,
            tau: row.try_get("tau")?,
            budget: from_text(row.try_get("budget")?),
            parameters: from_text(row.try_get("parameters")?),
            extra: from_text(row.try_get("extra")?),
            started_at: row.try_get("started_at")?,
            start_payload: from_text(row.try_get("start_payload")?),
            final_metrics: from_text(row.try_get("final_metrics")?),
            final_best_trial_id: row.try_get("final_best_trial_id")?,
            final_duration_ms: row.try_get("final_duration_ms")?,
            returncode: row.try_get("returncode")?,
            artifact_refs: from_text(row.try_get("artifact_refs")?),
            final_warnings: from_text(row.try_get("final_warnings")?),
            stdout_excerpt: row.try_get("stdout_excerpt")?,
            finalize_payload: from_text(row.try_get("finalize_payload")?),
            mlflow_run_id: row.try_get("mlflow_run_id")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            finalized_at_ms: row.try_get("finalized_at_ms")?,
        })
    }

    /// Whether `/bridge/finalize` was received.
    pub fn is_finalized(&self) -> bool {
        self.finalized_at_ms.is_some()
    }
}

/// Result of `/bridge/start`.
#[derive(Debug)]
pub enum StartOutcome {
    /// The run is started (now, or already with the same content).
    Started(Box<RunRecord>),
    /// The run was already started with different content.
    Conflict(String),
}

/// Result of `/bridge/finalize`.
#[derive(Debug)]
pub enum FinalizeOutcome {
    /// The run is finalized (now, or already with the same status).
    Finalized(Box<RunRecord>),
    /// The run was already finalized with another status.
    Conflict(String),
}

/// Creates the run with default settings if it does not exist yet.
pub async fn ensure(conn: &mut AnyConnection, run_id: &RunId) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let default = Objective::default();
    sqlx::query(
        "INSERT INTO runs (run_id, status, started, objective_metric, objective_direction, objective_explicit, \
         created_at_ms, updated_at_ms) VALUES ($1, 'running', 0, $2, $3, 0, $4, $4) ON CONFLICT (run_id) DO NOTHING",
    )
    .bind(run_id.as_str())
    .bind(default.metric)
    .bind(direction_str(default.direction))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Loads a run inside a connection or transaction.
pub async fn load(
    conn: &mut AnyConnection,
    run_id: &str,
) -> Result<Option<RunRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM runs WHERE run_id = $1")
        .bind(run_id)
        .fetch_optional(conn)
        .await?
        .map(|row| RunRecord::from_row(&row))
        .transpose()
}

fn start_conflict(stored: &RunRecord, start: &RunStarted) -> Option<String> {
    let mut differs = Vec::new();
    if stored.dataset_id != start.dataset_id {
        differs.push("dataset_id");
    }
    if stored.search_space != start.search_space {
        differs.push("search_space");
    }
    if let Some(objective) = &start.objective
        && stored.objective_explicit
        && &stored.objective != objective
    {
        differs.push("objective");
    }
    if stored.budget != Value::Object(start.budget.clone()) {
        differs.push("budget");
    }
    if stored.parameters != Value::Object(start.parameters.clone()) {
        differs.push("parameters");
    }
    (!differs.is_empty()).then(|| {
        format!(
            "run {} was already started with different {}",
            stored.run_id,
            differs.join(", ")
        )
    })
}

impl Store {
    /// Records `/bridge/start`; idempotent for identical content. `outbox` is enqueued with the first start.
    pub async fn start_run(
        &self,
        start: &RunStarted,
        outbox: &[OutboxEntry],
    ) -> Result<StartOutcome, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        ensure(&mut tx, &start.run_id).await?;
        let stored = load(&mut tx, start.run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        if stored.started {
            tx.commit().await?;
            self.changed();
            return Ok(match start_conflict(&stored, start) {
                Some(message) => StartOutcome::Conflict(message),
                None => StartOutcome::Started(Box::new(stored)),
            });
        }
        let (metric, direction, explicit) = match &start.objective {
            Some(o) => (o.metric.clone(), direction_str(o.direction), 1i64),
            None => (
                stored.objective.metric.clone(),
                direction_str(stored.objective.direction),
                i64::from(stored.objective_explicit),
            ),
        };
        sqlx::query(
            "UPDATE runs SET started = 1, objective_metric = $2, objective_direction = $3, objective_explicit = $4, \
             dataset_id = $5, search_space = $6, pulse_id = $7, correlation_id = $8, tau = $9, budget = $10, \
             parameters = $11, extra = $12, started_at = $13, start_payload = $14, updated_at_ms = $15 \
             WHERE run_id = $1",
        )
        .bind(start.run_id.as_str())
        .bind(metric)
        .bind(direction)
        .bind(explicit)
        .bind(start.dataset_id.clone())
        .bind(start.search_space.as_ref().map(to_text))
        .bind(start.pulse_id.clone())
        .bind(start.correlation_id.clone())
        .bind(start.tau)
        .bind(to_text(&start.budget))
        .bind(to_text(&start.parameters))
        .bind(to_text(&start.extra))
        .bind(start.timestamp.clone())
        .bind(to_text(&start.raw))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        enqueue_in(&mut tx, outbox).await?;
        let run = load(&mut tx, start.run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        self.changed();
        Ok(StartOutcome::Started(Box::new(run)))
    }

    /// Sets the run's objective when no caller named one yet; returns the run's objective afterwards.
    pub async fn adopt_objective(
        &self,
        run_id: &RunId,
        objective: &Objective,
    ) -> Result<Objective, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        ensure(&mut tx, run_id).await?;
        sqlx::query(
            "UPDATE runs SET objective_metric = $2, objective_direction = $3, objective_explicit = 1, updated_at_ms = $4 \
             WHERE run_id = $1 AND objective_explicit = 0",
        )
        .bind(run_id.as_str())
        .bind(objective.metric.clone())
        .bind(direction_str(objective.direction))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let run = load(&mut tx, run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        self.changed();
        Ok(run.objective)
    }

    /// Creates the run if needed and returns it.
    pub async fn ensure_run(&self, run_id: &RunId) -> Result<RunRecord, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        ensure(&mut conn, run_id).await?;
        load(&mut conn, run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Records `/bridge/finalize`; the first finalization wins, a repeat with the same status is a no-op.
    pub async fn finalize_run(
        &self,
        fin: &RunFinalized,
        best_trial_id: Option<&str>,
        outbox: &[OutboxEntry],
    ) -> Result<FinalizeOutcome, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        ensure(&mut tx, &fin.run_id).await?;
        let stored = load(&mut tx, fin.run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        if stored.is_finalized() {
            tx.commit().await?;
            self.changed();
            return Ok(if stored.status == fin.status {
                FinalizeOutcome::Finalized(Box::new(stored))
            } else {
                FinalizeOutcome::Conflict(format!(
                    "run {} was already finalized as {}",
                    stored.run_id,
                    stored.status.as_str()
                ))
            });
        }
        let now = now_ms();
        let duration = fin
            .duration_ms
            .map(|d| d.min(i64::MAX as u64) as i64)
            .unwrap_or((now - stored.created_at_ms).max(0));
        let best = fin
            .best_trial_id
            .clone()
            .or(best_trial_id.map(str::to_string));
        sqlx::query(
            "UPDATE runs SET status = $2, final_status = $2, final_metrics = $3, final_best_trial_id = $4, \
             final_duration_ms = $5, returncode = $6, artifact_refs = $7, final_warnings = $8, stdout_excerpt = $9, \
             finalize_payload = $10, finalized_at_ms = $11, updated_at_ms = $11, \
             pulse_id = COALESCE(pulse_id, $12) WHERE run_id = $1",
        )
        .bind(fin.run_id.as_str())
        .bind(fin.status.as_str())
        .bind(to_text(&fin.metrics))
        .bind(best)
        .bind(duration)
        .bind(fin.returncode)
        .bind(to_text(&fin.artifact_refs))
        .bind(to_text(&fin.warnings))
        .bind(fin.stdout_excerpt.clone())
        .bind(to_text(&fin.raw))
        .bind(now)
        .bind(fin.pulse_id.clone())
        .execute(&mut *tx)
        .await?;
        enqueue_in(&mut tx, outbox).await?;
        let run = load(&mut tx, fin.run_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        self.changed();
        Ok(FinalizeOutcome::Finalized(Box::new(run)))
    }

    /// Loads a run.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, run_id).await
    }

    /// Lists runs, newest first, with the total count.
    pub async fn list_runs(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RunRecord>, i64), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM runs")
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(
            "SELECT * FROM runs ORDER BY created_at_ms DESC, run_id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
        let runs = rows
            .iter()
            .map(RunRecord::from_row)
            .collect::<Result<_, _>>()?;
        Ok((runs, total))
    }

    /// Deletes a run with its trials and proposals; false when it did not exist.
    pub async fn delete_run(&self, run_id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM trials WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM proposal_settlements WHERE set_id IN (SELECT id FROM proposal_sets WHERE run_id = $1)",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM proposal_sets WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM runs WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        self.changed();
        Ok(deleted > 0)
    }

    /// Remembers the MLflow parent run of a run.
    pub async fn set_run_mlflow_id(
        &self,
        run_id: &str,
        mlflow_run_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE runs SET mlflow_run_id = $2 WHERE run_id = $1 AND mlflow_run_id IS NULL",
        )
        .bind(run_id)
        .bind(mlflow_run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A JSON object from a stored map column (empty when absent).
pub fn object_of(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}
