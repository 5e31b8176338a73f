//! Group commit for pending proposals: `/propose` calls hand their rows to one writer task, which stores
//! everything that queued up while the previous transaction ran in a single transaction, then answers each
//! caller with the ids of its rows. A caller's proposals are durable before its reply, as before, but
//! concurrent calls share one commit instead of fighting over the database's write lock.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{now_ms, to_text};
use crate::domain::keys::params_key;

/// Most rows one INSERT statement carries (4 bound values each, far below both backends' limits).
const ROWS_PER_STATEMENT: usize = 128;
/// Most rows one transaction gathers before it commits.
const ROWS_PER_COMMIT: usize = 4096;
/// Callers that may wait for the writer at once before `store` waits for room.
const QUEUE: usize = 1024;

/// One proposal to store as pending.
#[derive(Debug, Clone)]
pub struct NewProposal {
    /// The run it belongs to.
    pub run_id: String,
    /// Its parameters.
    pub params: Arc<Map<String, Value>>,
}

/// Why a group commit failed; every caller of the failed transaction gets it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storing pending proposals failed: {0}")]
pub struct WriteError(Arc<sqlx::Error>);

impl From<WriteError> for sqlx::Error {
    fn from(e: WriteError) -> Self {
        sqlx::Error::Protocol(e.to_string())
    }
}

struct Job {
    rows: Vec<NewProposal>,
    created_at_ms: i64,
    done: oneshot::Sender<Result<Vec<i64>, WriteError>>,
}

/// Handle to the writer task; cheap to clone. The task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct ProposalWriter {
    jobs: mpsc::Sender<Job>,
}

impl ProposalWriter {
    /// Starts the writer task on `pool` (must be called inside a Tokio runtime).
    pub fn spawn(pool: AnyPool) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Self { jobs }
    }

    /// Stores `rows` as pending proposals created now and returns their ids, in order, once committed.
    pub async fn store(&self, rows: Vec<NewProposal>) -> Result<(Vec<i64>, i64), sqlx::Error> {
        if rows.is_empty() {
            return Ok((Vec::new(), now_ms()));
        }
        let created_at_ms = now_ms();
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                rows,
                created_at_ms,
                done,
            })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let ids = answer.await.map_err(|_| sqlx::Error::PoolClosed)??;
        Ok((ids, created_at_ms))
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut rows = jobs[0].rows.len();
        while rows < ROWS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        match insert_all(&pool, &jobs).await {
            Ok(ids) => {
                let mut ids = ids.into_iter();
                for job in jobs {
                    let mine: Vec<i64> = ids.by_ref().take(job.rows.len()).collect();
                    let _ = job.done.send(Ok(mine));
                }
            }
            Err(e) => {
                let e = WriteError(Arc::new(e));
                for job in jobs {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Inserts every job's rows in one transaction; the ids come back in insertion order.
async fn insert_all(pool: &AnyPool, jobs: &[Job]) -> Result<Vec<i64>, sqlx::Error> {
    let all: Vec<(&NewProposal, i64)> = jobs
        .iter()
        .flat_map(|job| job.rows.iter().map(move |row| (row, job.created_at_ms)))
        .collect();
    let mut ids = Vec::with_capacity(all.len());
    let mut tx = pool.begin().await?;
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO proposals (run_id, params, params_key, created_at_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        sql.push_str(" RETURNING id");
        let mut query = sqlx::query(&sql);
        for (row, created) in chunk {
            query = query
                .bind(row.run_id.as_str())
                .bind(to_text(&*row.params))
                .bind(params_key(&row.params))
                .bind(*created);
        }
        let returned = query.fetch_all(&mut *tx).await?;
        let mut chunk_ids = returned
            .iter()
            .map(|r| r.try_get::<i64, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING does not promise the VALUES order; ids of one statement ascend with it.
        chunk_ids.sort_unstable();
        ids.extend(chunk_ids);
    }
    tx.commit().await?;
    Ok(ids)
}
