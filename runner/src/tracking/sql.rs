//! Tracking-specific SQL on the runner's store: claiming outbox tasks across replicas, dropping undeliverable
//! ones, looking tasks up by dedupe key, and recording a trial's artifact location.
//!
//! Every statement is plain SQL with `$n` placeholders, valid on both SQLite and PostgreSQL.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::outbox::OutboxTask;
use crate::store::{Store, now_ms};

/// The stored state of one outbox task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskState {
    /// Row id.
    pub id: i64,
    /// Task kind.
    pub kind: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the next attempt may start (ms since the epoch).
    pub next_attempt_at_ms: i64,
    /// When it was delivered (or dropped as undeliverable).
    pub delivered_at_ms: Option<i64>,
}

fn task_from_row(row: &AnyRow) -> Result<OutboxTask, sqlx::Error> {
    let payload: Option<String> = row.try_get("payload")?;
    Ok(OutboxTask {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: payload
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null),
        attempts: row.try_get("attempts")?,
    })
}

impl Store {
    /// Claims an undelivered task whose next attempt is due by `due_by_ms`, reserving it until `lease_until_ms`.
    /// True when this caller won the claim: the update is conditional, so of several replicas racing for the
    /// same row exactly one sees a changed row.
    pub async fn claim_outbox_task(
        &self,
        id: i64,
        due_by_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let changed = sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $2 \
             WHERE id = $1 AND delivered_at_ms IS NULL AND next_attempt_at_ms <= $3",
        )
        .bind(id)
        .bind(lease_until_ms)
        .bind(due_by_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Closes a task that can never be delivered (its run or trial is gone, its payload is malformed), keeping
    /// the reason in `last_error`.
    pub async fn drop_outbox_task(&self, id: i64, reason: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET delivered_at_ms = $2, attempts = attempts + 1, last_error = $3 \
             WHERE id = $1 AND delivered_at_ms IS NULL",
        )
        .bind(id)
        .bind(now_ms())
        .bind(format!(
            "dropped: {}",
            reason.chars().take(1990).collect::<String>()
        ))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The task with `dedupe_key`, with whether it is delivered.
    pub async fn outbox_task_by_key(
        &self,
        dedupe_key: &str,
    ) -> Result<Option<(OutboxTask, bool)>, sqlx::Error> {
        sqlx::query(
            "SELECT id, kind, payload, attempts, delivered_at_ms FROM outbox WHERE dedupe_key = $1",
        )
        .bind(dedupe_key)
        .fetch_optional(self.pool())
        .await?
        .map(|row| {
            let delivered: Option<i64> = row.try_get("delivered_at_ms")?;
            Ok((task_from_row(&row)?, delivered.is_some()))
        })
        .transpose()
    }

    /// Attempts, last error and timing of the task with `dedupe_key`.
    pub async fn outbox_task_state(
        &self,
        dedupe_key: &str,
    ) -> Result<Option<TaskState>, sqlx::Error> {
        sqlx::query(
            "SELECT id, kind, attempts, last_error, next_attempt_at_ms, delivered_at_ms FROM outbox \
             WHERE dedupe_key = $1",
        )
        .bind(dedupe_key)
        .fetch_optional(self.pool())
        .await?
        .map(|row| {
            Ok(TaskState {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
                next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
                delivered_at_ms: row.try_get("delivered_at_ms")?,
            })
        })
        .transpose()
    }

    /// Records where a trial's artifacts were written.
    pub async fn set_trial_artifact_uri(
        &self,
        trial_id: &str,
        artifact_uri: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE trials SET artifact_uri = $2 WHERE trial_id = $1")
            .bind(trial_id)
            .bind(artifact_uri)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
