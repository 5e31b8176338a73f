//! Pending proposals: candidates handed out by `/propose` and not yet reported by a trial. TPE treats them as
//! bad observations (the constant liar) until a trial with the same parameters settles them or they expire.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};

use super::proposal_writer::NewProposal;
use super::{Store, from_text, now_ms};

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

/// A stored, unsettled proposal.
#[derive(Debug, Clone)]
pub struct PendingProposal {
    /// Row id: ascending in creation order.
    pub id: i64,
    /// When it was proposed (ms since the epoch).
    pub created_at_ms: i64,
    /// Its parameters.
    pub params: Arc<Map<String, Value>>,
}

impl Store {
    /// Stores `(run_id, params)` proposals as pending through the group-commit writer and returns them as
    /// stored, once committed.
    pub async fn add_pending_batch(
        &self,
        proposals: Vec<NewProposal>,
    ) -> Result<Vec<PendingProposal>, sqlx::Error> {
        let params: Vec<Arc<Map<String, Value>>> =
            proposals.iter().map(|p| p.params.clone()).collect();
        let (ids, created_at_ms) = self.proposal_writer.store(proposals).await?;
        Ok(ids
            .into_iter()
            .zip(params)
            .map(|(id, params)| PendingProposal {
                id,
                created_at_ms,
                params,
            })
            .collect())
    }

    /// The newest [`MAX_PENDING`] unsettled proposals of a run created after `since_ms`, newest first.
    pub async fn pending(
        &self,
        run_id: &str,
        since_ms: i64,
    ) -> Result<Vec<PendingProposal>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, created_at_ms, params FROM proposals \
             WHERE run_id = $1 AND settled_at_ms IS NULL AND created_at_ms >= $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(run_id)
        .bind(since_ms)
        .bind(MAX_PENDING)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: Option<String> = row.try_get("params")?;
                Ok(PendingProposal {
                    id: row.try_get("id")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                    params: Arc::new(match from_text(text) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    }),
                })
            })
            .collect()
    }

    /// How many proposals of a run created after `since_ms` are still unsettled.
    pub async fn count_pending(&self, run_id: &str, since_ms: i64) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM proposals WHERE run_id = $1 AND settled_at_ms IS NULL AND created_at_ms >= $2",
        )
        .bind(run_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")
    }
}
