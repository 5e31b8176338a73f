//! Pending proposals: candidates handed out by `/propose` and not yet reported by a trial. TPE treats them as
//! bad observations (the constant liar) until a trial with the same parameters settles them or they expire.

use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};

use super::{Store, from_text, now_ms, to_text};
use crate::domain::keys::params_key;

/// Most pending proposals TPE considers per run (the newest): a bound on the constant liar's cost when callers
/// abandon proposals faster than they expire.
pub const MAX_PENDING: i64 = 512;

/// Marks the oldest pending proposal of `run_id` with these parameters as settled by `trial_id`.
pub async fn settle(
    conn: &mut AnyConnection,
    run_id: &str,
    key: &str,
    trial_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE proposals SET settled_at_ms = $4, settled_by = $3 WHERE id = \
         (SELECT id FROM proposals WHERE run_id = $1 AND params_key = $2 AND settled_at_ms IS NULL ORDER BY id LIMIT 1)",
    )
    .bind(run_id)
    .bind(key)
    .bind(trial_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Stores `(run_id, params)` proposals as pending, in one transaction.
    pub async fn add_pending_batch(
        &self,
        proposals: &[(String, Map<String, Value>)],
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for (run_id, params) in proposals {
            sqlx::query("INSERT INTO proposals (run_id, params, params_key, created_at_ms) VALUES ($1, $2, $3, $4)")
                .bind(run_id.as_str())
                .bind(to_text(params))
                .bind(params_key(params))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// The newest [`MAX_PENDING`] unsettled proposals of a run created after `since_ms`.
    pub async fn pending(
        &self,
        run_id: &str,
        since_ms: i64,
    ) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT params FROM proposals WHERE run_id = $1 AND settled_at_ms IS NULL AND created_at_ms >= $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(run_id)
        .bind(since_ms)
        .bind(MAX_PENDING)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: Option<String> = row.try_get("params")?;
                Ok(match from_text(text) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                })
            })
            .collect()
    }
}
