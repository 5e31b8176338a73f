//! The `trials` table: reported trials (`/bridge/record`) and trained ones (`/train`), one row per trial id.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::outbox::{OutboxEntry, enqueue_in};
use super::{Store, from_text, now_ms, proposals, runs, to_text};
use crate::domain::contracts::TrialReported;
use crate::domain::keys::params_key;
use crate::domain::{RunId, TrialStatus};

/// Where a trial came from.
pub const SOURCE_REPORTED: &str = "reported";
/// A trial trained by this runner.
pub const SOURCE_TRAINED: &str = "trained";

/// A stored trial.
#[derive(Debug, Clone)]
pub struct TrialRecord {
    /// Insertion order (oldest first).
    pub seq: i64,
    /// The trial id.
    pub trial_id: String,
    /// Its run.
    pub run_id: String,
    /// `reported` or `trained`.
    pub source: String,
    /// Lifecycle status.
    pub status: TrialStatus,
    /// Parameters.
    pub parameters: Map<String, Value>,
    /// Metrics.
    pub metrics: Map<String, Value>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Candidate id.
    pub candidate_id: Option<String>,
    /// Artifact location.
    pub artifact_uri: Option<String>,
    /// Duration (ms).
    pub duration_ms: Option<i64>,
    /// Rank in its batch.
    pub rank: Option<i64>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Spectral normalisation flag.
    pub spectral_norm: bool,
    /// MLflow child run id.
    pub mlflow_run_id: Option<String>,
    /// Rows trained on.
    pub dataset_size: Option<i64>,
    /// Failure reason.
    pub error: Option<String>,
    /// The `/train` request, for queued trials.
    pub train_request: Value,
    /// Times a training was attempted.
    pub attempts: i64,
    /// Raw payload as received.
    pub raw_payload: Value,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Last update (ms).
    pub updated_at_ms: i64,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl TrialRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(Self {
            seq: row.try_get("seq")?,
            trial_id: row.try_get("trial_id")?,
            run_id: row.try_get("run_id")?,
            source: row.try_get("source")?,
            status: TrialStatus::from_stored(&status).unwrap_or(TrialStatus::Failed),
            parameters: object(from_text(row.try_get("parameters")?)),
            metrics: object(from_text(row.try_get("metrics")?)),
            pulse_id: row.try_get("pulse_id")?,
            candidate_id: row.try_get("candidate_id")?,
            artifact_uri: row.try_get("artifact_uri")?,
            duration_ms: row.try_get("duration_ms")?,
            rank: row.try_get("trial_rank")?,
            warnings: serde_json::from_value(from_text(row.try_get("warnings")?))
                .unwrap_or_default(),
            spectral_norm: row.try_get::<i64, _>("spectral_norm")? != 0,
            mlflow_run_id: row.try_get("mlflow_run_id")?,
            dataset_size: row.try_get("dataset_size")?,
            error: row.try_get("error")?,
            train_request: from_text(row.try_get("train_request")?),
            attempts: row.try_get("attempts")?,
            raw_payload: from_text(row.try_get("raw_payload")?),
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
        })
    }

    /// The trial as the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "trial_id": self.trial_id,
            "run_id": self.run_id,
            "status": self.status.as_str(),
            "source": self.source,
            "parameters": self.parameters,
            "metrics": self.metrics,
            "pulse_id": self.pulse_id,
            "candidate_id": self.candidate_id,
            "artifact_uri": self.artifact_uri,
            "duration_ms": self.duration_ms,
            "rank": self.rank,
            "warnings": self.warnings,
            "spectral_norm": self.spectral_norm,
            "mlflow_run_id": self.mlflow_run_id,
            "dataset_size": self.dataset_size,
            "error": self.error,
            "attempts": self.attempts,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        })
    }

    /// The numeric value of `metric`, if reported and finite.
    pub fn metric(&self, metric: &str) -> Option<f64> {
        self.metrics
            .get(metric)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
    }
}

/// Result of `/bridge/record`.
#[derive(Debug)]
pub enum RecordOutcome {
    /// Stored now (`created`) or already stored with the same content.
    Recorded {
        /// The stored trial.
        trial: Box<TrialRecord>,
        /// Whether this call created it.
        created: bool,
    },
    /// The trial id is taken by different content.
    Conflict(String),
}

fn content_hash(t: &TrialReported) -> String {
    let mut content = Map::new();
    content.insert("run_id".into(), json!(t.run_id.as_str()));
    content.insert("status".into(), json!(t.status.as_str()));
    content.insert("metrics".into(), Value::Object(t.metrics.clone()));
    content.insert("parameters".into(), Value::Object(t.parameters.clone()));
    content.insert("pulse_id".into(), json!(t.pulse_id));
    content.insert("candidate_id".into(), json!(t.candidate_id));
    content.insert("artifact_uri".into(), json!(t.artifact_uri));
    content.insert("duration_ms".into(), json!(t.duration_ms));
    content.insert("rank".into(), json!(t.rank));
    content.insert("warnings".into(), json!(t.warnings));
    content.insert("spectral_norm".into(), json!(t.spectral_norm));
    content.insert("mlflow_run_id".into(), json!(t.mlflow_run_id));
    hex::encode(Sha256::digest(params_key(&content).as_bytes()))
}

/// Loads a trial inside a connection or transaction.
pub async fn load(
    conn: &mut AnyConnection,
    trial_id: &str,
) -> Result<Option<TrialRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM trials WHERE trial_id = $1")
        .bind(trial_id)
        .fetch_optional(conn)
        .await?
        .map(|row| TrialRecord::from_row(&row))
        .transpose()
}

impl Store {
    /// Records a reported trial. Idempotent: the same content again changes nothing; different content under
    /// the same trial id is a conflict. A trial this runner trained may be confirmed by a record with the same
    /// run and parameters.
    /// `outbox` is enqueued when the trial is created.
    pub async fn record_trial(
        &self,
        report: &TrialReported,
        outbox: &[OutboxEntry],
    ) -> Result<RecordOutcome, sqlx::Error> {
        let hash = content_hash(report);
        let key = params_key(&report.parameters);
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        runs::ensure(&mut tx, &report.run_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO trials (trial_id, run_id, source, status, parameters, params_key, metrics, pulse_id, \
             candidate_id, artifact_uri, duration_ms, trial_rank, warnings, spectral_norm, mlflow_run_id, \
             content_hash, raw_payload, attempts, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0, $18, $18) \
             ON CONFLICT (trial_id) DO NOTHING",
        )
        .bind(report.trial_id.as_str())
        .bind(report.run_id.as_str())
        .bind(SOURCE_REPORTED)
        .bind(report.status.as_str())
        .bind(to_text(&report.parameters))
        .bind(key.clone())
        .bind(to_text(&report.metrics))
        .bind(report.pulse_id.clone())
        .bind(report.candidate_id.clone())
        .bind(report.artifact_uri.clone())
        .bind(report.duration_ms.map(|d| d.min(i64::MAX as u64) as i64))
        .bind(report.rank.map(|r| r.min(i64::MAX as u64) as i64))
        .bind(to_text(&report.warnings))
        .bind(i64::from(report.spectral_norm))
        .bind(report.mlflow_run_id.clone())
        .bind(hash.clone())
        .bind(to_text(&report.raw))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if inserted {
            proposals::settle(
                &mut tx,
                report.run_id.as_str(),
                &key,
                report.trial_id.as_str(),
            )
            .await?;
            enqueue_in(&mut tx, outbox).await?;
        }
        let stored = load(&mut tx, report.trial_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        self.changed();
        if inserted {
            return Ok(RecordOutcome::Recorded {
                trial: Box::new(stored),
                created: true,
            });
        }
        let stored_hash: String =
            sqlx::query("SELECT content_hash FROM trials WHERE trial_id = $1")
                .bind(report.trial_id.as_str())
                .fetch_one(&self.pool)
                .await?
                .try_get("content_hash")?;
        let confirms_training = stored.source == SOURCE_TRAINED
            && stored.run_id == report.run_id.as_str()
            && params_key(&stored.parameters) == key;
        Ok(if stored_hash == hash || confirms_training {
            RecordOutcome::Recorded {
                trial: Box::new(stored),
                created: false,
            }
        } else if stored.run_id != report.run_id.as_str() {
            RecordOutcome::Conflict(format!(
                "trial {} already belongs to run {}",
                stored.trial_id, stored.run_id
            ))
        } else {
            RecordOutcome::Conflict(format!(
                "trial {} was already recorded with different content",
                stored.trial_id
            ))
        })
    }

    /// Loads a trial.
    pub async fn get_trial(&self, trial_id: &str) -> Result<Option<TrialRecord>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, trial_id).await
    }

    /// A page of a run's trials, oldest first, with the total count.
    pub async fn list_trials(
        &self,
        run_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TrialRecord>, i64), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM trials WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        let rows =
            sqlx::query("SELECT * FROM trials WHERE run_id = $1 ORDER BY seq LIMIT $2 OFFSET $3")
                .bind(run_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *conn)
                .await?;
        let trials = rows
            .iter()
            .map(TrialRecord::from_row)
            .collect::<Result<_, _>>()?;
        Ok((trials, total))
    }

    /// Every trial of a run, oldest first.
    pub async fn run_trials(&self, run_id: &RunId) -> Result<Vec<TrialRecord>, sqlx::Error> {
        sqlx::query("SELECT * FROM trials WHERE run_id = $1 ORDER BY seq")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(TrialRecord::from_row)
            .collect()
    }

    /// Remembers the MLflow child run of a trial.
    pub async fn set_trial_mlflow_id(
        &self,
        trial_id: &str,
        mlflow_run_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE trials SET mlflow_run_id = $2 WHERE trial_id = $1 AND mlflow_run_id IS NULL",
        )
        .bind(trial_id)
        .bind(mlflow_run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
