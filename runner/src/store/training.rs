//! The training queue, kept in the `trials` table so it survives restarts and is shared by replicas: a trained
//! trial is `queued` (async) or `running` (claimed by a replica, with a heartbeat) until it finishes. Postgres
//! replicas claim with `FOR UPDATE SKIP LOCKED`, so each trial trains once; a claim whose heartbeat stops is
//! requeued, and failed after too many attempts.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::outbox::{OutboxEntry, enqueue_in};
use super::trials::{SOURCE_TRAINED, TrialRecord, load};
use super::{Store, now_ms, proposals, runs, to_text};
use crate::config::DatabaseKind;
use crate::domain::keys::params_key;
use crate::domain::{RunId, TrialId, TrialStatus};

/// Attempts before an abandoned training is marked failed.
pub const MAX_ATTEMPTS: i64 = 3;

/// A training to store before it runs.
#[derive(Debug, Clone)]
pub struct NewTraining<'a> {
    /// The trial.
    pub trial_id: &'a TrialId,
    /// Its run.
    pub run_id: &'a RunId,
    /// Parameters as sent.
    pub params: &'a Map<String, Value>,
    /// The whole `/train` request, replayed when the trial is (re)claimed.
    pub request: &'a Value,
    /// Claim it now for this replica (sync mode) rather than queue it.
    pub claim_for: Option<&'a str>,
    /// Outbox tasks to enqueue with it (only when it is stored now).
    pub outbox: &'a [OutboxEntry],
}

/// Result of storing a training.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// Stored now.
    Created(Box<TrialRecord>),
    /// The same request was stored before.
    Existing(Box<TrialRecord>),
    /// The trial id is taken by something else.
    Conflict(String),
}

/// A finished training, to store with its outbox tasks.
#[derive(Debug, Clone)]
pub struct TrainingResult {
    /// Final status (succeeded or failed).
    pub status: TrialStatus,
    /// Measured metrics.
    pub metrics: Map<String, Value>,
    /// Rows trained on.
    pub dataset_size: Option<i64>,
    /// Wall time.
    pub duration_ms: i64,
    /// Warnings (unknown params…).
    pub warnings: Vec<String>,
    /// Failure reason.
    pub error: Option<String>,
}

fn request_hash(request: &Value) -> String {
    let key = match request {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove("mode");
            params_key(&m)
        }
        other => other.to_string(),
    };
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Store {
    /// Stores a training as queued, or as running for `claim_for`; idempotent on the same request.
    pub async fn submit_training(&self, t: &NewTraining<'_>) -> Result<SubmitOutcome, sqlx::Error> {
        let hash = request_hash(t.request);
        let now = now_ms();
        let (status, claimed_by, claimed_at, attempts) = match t.claim_for {
            Some(replica) => (
                TrialStatus::Running,
                Some(replica.to_string()),
                Some(now),
                1i64,
            ),
            None => (TrialStatus::Queued, None, None, 0),
        };
        let mut tx = self.pool.begin().await?;
        runs::ensure(&mut tx, t.run_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO trials (trial_id, run_id, source, status, parameters, params_key, metrics, warnings, \
             spectral_norm, content_hash, raw_payload, train_request, claimed_by, claimed_at_ms, attempts, \
             created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, '{}', '[]', 0, $7, $8, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (trial_id) DO NOTHING",
        )
        .bind(t.trial_id.as_str())
        .bind(t.run_id.as_str())
        .bind(SOURCE_TRAINED)
        .bind(status.as_str())
        .bind(to_text(t.params))
        .bind(params_key(t.params))
        .bind(hash.clone())
        .bind(to_text(t.request))
        .bind(claimed_by)
        .bind(claimed_at)
        .bind(attempts)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if inserted {
            enqueue_in(&mut tx, t.outbox).await?;
        }
        let stored = load(&mut tx, t.trial_id.as_str())
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let stored_hash: String =
            sqlx::query("SELECT content_hash FROM trials WHERE trial_id = $1")
                .bind(t.trial_id.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("content_hash")?;
        tx.commit().await?;
        self.changed();
        Ok(if inserted {
            SubmitOutcome::Created(Box::new(stored))
        } else if stored.source == SOURCE_TRAINED && stored_hash == hash {
            SubmitOutcome::Existing(Box::new(stored))
        } else {
            SubmitOutcome::Conflict(format!(
                "trial {} already exists with a different request",
                stored.trial_id
            ))
        })
    }

    /// Claims the oldest queued training for `replica`, in one statement (no read-then-write upgrade).
    pub async fn claim_training(&self, replica: &str) -> Result<Option<TrialRecord>, sqlx::Error> {
        let lock = match self.kind {
            DatabaseKind::Postgres => " FOR UPDATE SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        };
        let sql = format!(
            "UPDATE trials SET status = 'running', claimed_by = $1, claimed_at_ms = $2, attempts = attempts + 1, \
             updated_at_ms = $2 WHERE status = 'queued' AND seq = \
             (SELECT seq FROM trials WHERE status = 'queued' ORDER BY seq LIMIT 1{lock}) RETURNING *"
        );
        sqlx::query(&sql)
            .bind(replica)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| TrialRecord::from_row(&row))
            .transpose()
    }

    /// Renews a claim; false when the claim was lost (taken back after a missed lease).
    pub async fn heartbeat(&self, trial_id: &str, replica: &str) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE trials SET claimed_at_ms = $3 WHERE trial_id = $1 AND claimed_by = $2 AND status = 'running'",
        )
        .bind(trial_id)
        .bind(replica)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Stores a finished training with its outbox tasks, if `replica` still holds the claim.
    pub async fn complete_training(
        &self,
        trial_id: &str,
        replica: &str,
        result: &TrainingResult,
        outbox: &[OutboxEntry],
    ) -> Result<Option<TrialRecord>, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE trials SET status = $3, metrics = $4, dataset_size = $5, duration_ms = $6, warnings = $7, \
             error = $8, claimed_by = NULL, updated_at_ms = $9 \
             WHERE trial_id = $1 AND claimed_by = $2 AND status = 'running'",
        )
        .bind(trial_id)
        .bind(replica)
        .bind(result.status.as_str())
        .bind(to_text(&result.metrics))
        .bind(result.dataset_size)
        .bind(result.duration_ms)
        .bind(to_text(&result.warnings))
        .bind(result.error.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.commit().await?;
            self.changed();
            return Ok(None);
        }
        let trial = load(&mut tx, trial_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        proposals::settle(
            &mut tx,
            &trial.run_id,
            &params_key(&trial.parameters),
            trial_id,
        )
        .await?;
        enqueue_in(&mut tx, outbox).await?;
        tx.commit().await?;
        self.changed();
        Ok(Some(trial))
    }

    /// Puts a claimed training back in the queue (shutdown before it finished), without counting the attempt.
    pub async fn requeue_training(&self, trial_id: &str, replica: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE trials SET status = 'queued', claimed_by = NULL, attempts = attempts - 1, updated_at_ms = $3 \
             WHERE trial_id = $1 AND claimed_by = $2 AND status = 'running'",
        )
        .bind(trial_id)
        .bind(replica)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes back claims whose heartbeat is older than `lease_ms`: requeued, or failed after
    /// [`MAX_ATTEMPTS`]. Returns how many trials were requeued and failed.
    pub async fn reap_abandoned(&self, lease_ms: i64) -> Result<(u64, u64), sqlx::Error> {
        let now = now_ms();
        let cutoff = now - lease_ms;
        let failed = sqlx::query(
            "UPDATE trials SET status = 'failed', claimed_by = NULL, updated_at_ms = $2, \
             error = 'training abandoned: the replica running it stopped responding too many times' \
             WHERE status = 'running' AND claimed_at_ms < $1 AND attempts >= $3",
        )
        .bind(cutoff)
        .bind(now)
        .bind(MAX_ATTEMPTS)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let requeued = sqlx::query(
            "UPDATE trials SET status = 'queued', claimed_by = NULL, updated_at_ms = $2 \
             WHERE status = 'running' AND claimed_at_ms < $1",
        )
        .bind(cutoff)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if failed > 0 {
            self.changed();
        }
        Ok((requeued, failed))
    }

    /// Trainings waiting in the queue (all replicas).
    pub async fn queued_trainings(&self) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM trials WHERE status = 'queued'")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")
    }
}
