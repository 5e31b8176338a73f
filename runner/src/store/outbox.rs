//! The delivery outbox: MLflow and S3 writes recorded in the same database as the results they describe, and
//! delivered by a background worker with retries, so an outage of either never loses anything.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{Store, from_text, now_ms, to_text};

/// A task to enqueue in the same transaction as the result it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// What to deliver (`mlflow.run`, `mlflow.trial`, `artifacts.trial`, `mlflow.run_final`).
    pub kind: String,
    /// At most one task per key is ever enqueued.
    pub dedupe_key: String,
    /// Task data.
    pub payload: Value,
}

/// Enqueues entries inside an open transaction, skipping keys already present.
pub async fn enqueue_in(
    conn: &mut AnyConnection,
    entries: &[OutboxEntry],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for e in entries {
        sqlx::query(
            "INSERT INTO outbox (kind, dedupe_key, payload, attempts, next_attempt_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(e.kind.as_str())
        .bind(e.dedupe_key.as_str())
        .bind(to_text(&e.payload))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A task waiting for delivery.
#[derive(Debug, Clone)]
pub struct OutboxTask {
    /// Row id.
    pub id: i64,
    /// What to deliver (`mlflow.run_started`, `artifact.upload`, …).
    pub kind: String,
    /// Task data.
    pub payload: Value,
    /// Attempts so far.
    pub attempts: i64,
}

/// Counts of the outbox, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct OutboxBacklog {
    /// Tasks not yet delivered.
    pub pending: i64,
    /// Of those, tasks that failed at least once.
    pub retrying: i64,
    /// Age of the oldest pending task in milliseconds.
    pub oldest_age_ms: i64,
}

impl Store {
    /// Due tasks, oldest first.
    pub async fn due_tasks(&self, limit: i64) -> Result<Vec<OutboxTask>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, kind, payload, attempts FROM outbox WHERE delivered_at_ms IS NULL AND next_attempt_at_ms <= $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxTask {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    payload: from_text(row.try_get("payload")?),
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Marks a task delivered.
    pub async fn mark_delivered(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE outbox SET delivered_at_ms = $2, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_in_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at_ms = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(error.chars().take(2000).collect::<String>())
        .bind(now_ms() + retry_in_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Postpones a task without counting an attempt (its prerequisite is not delivered yet).
    pub async fn postpone(&self, id: i64, retry_in_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE outbox SET next_attempt_at_ms = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms() + retry_in_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The current backlog.
    pub async fn backlog(&self) -> Result<OutboxBacklog, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying, \
             COALESCE(MIN(created_at_ms), 0) AS oldest FROM outbox WHERE delivered_at_ms IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let pending: i64 = row.try_get("pending")?;
        let oldest: i64 = row.try_get("oldest")?;
        Ok(OutboxBacklog {
            pending,
            retrying: row.try_get("retrying")?,
            oldest_age_ms: if pending > 0 { now_ms() - oldest } else { 0 },
        })
    }
}
