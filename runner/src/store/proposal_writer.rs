//! Group commit for pending proposals: `/propose` calls hand their rows to one writer task, which stores
//! everything that queued up while the previous transaction ran in a single transaction, then answers each
//! caller with the ids of its rows. A caller's proposals are durable before its reply, as before, but
//! concurrent calls share one commit instead of fighting over the database's write lock.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{DatabaseKind, now_ms, to_text};
use crate::domain::keys::{params_hash, params_key};

/// Most proposals one transaction gathers before it commits.
const ROWS_PER_COMMIT: usize = 4096;
/// Most proposals one set (one `/propose` call) may hold: a slot is 6 bits of a proposal id.
pub const MAX_SET_SIZE: usize = 64;
/// Callers that may wait for the writer at once before `store` waits for room.
const QUEUE: usize = 1024;

/// A proposal's id: its set's id and its slot in the set, ascending in creation order.
pub fn proposal_id(set_id: i64, slot: usize) -> i64 {
    (set_id << 6) | slot as i64
}

/// One proposal to store as pending.
#[derive(Debug, Clone)]
pub struct NewProposal {
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
    run_id: String,
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
    pub fn spawn(pool: AnyPool, kind: DatabaseKind) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, kind, rx));
        Self { jobs }
    }

    /// Stores `rows` (at most [`MAX_SET_SIZE`]) as one set of pending proposals of `run_id` created now and
    /// returns their ids, in order, once committed.
    pub async fn store(
        &self,
        run_id: &str,
        rows: Vec<NewProposal>,
    ) -> Result<(Vec<i64>, i64), sqlx::Error> {
        if rows.is_empty() {
            return Ok((Vec::new(), now_ms()));
        }
        if rows.len() > MAX_SET_SIZE {
            return Err(sqlx::Error::Protocol(format!(
                "a proposal set holds at most {MAX_SET_SIZE} proposals, not {}",
                rows.len()
            )));
        }
        let created_at_ms = now_ms();
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                run_id: run_id.to_string(),
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

async fn run(pool: AnyPool, kind: DatabaseKind, mut rx: mpsc::Receiver<Job>) {
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
        match insert_all(&pool, kind, &jobs).await {
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

/// Stores every job as one proposal set, with one statement in one transaction, and returns the ids of the
/// jobs' proposals in order (see [`proposal_id`]).
///
/// The sets travel as a single JSON array parameter (`[[run_id, created_at_ms, [params...], key_hashes, size],
/// ...]`) that the database unpacks itself, instead of bound values per row; each set's parameter array is
/// stored as the text of its element, so it is written once, not escaped into a string and parsed again.
async fn insert_all(
    pool: &AnyPool,
    kind: DatabaseKind,
    jobs: &[Job],
) -> Result<Vec<i64>, sqlx::Error> {
    let sets: Vec<SetInsert> = jobs
        .iter()
        .map(|job| {
            let params: Vec<&Map<String, Value>> = job.rows.iter().map(|r| &*r.params).collect();
            SetInsert {
                run_id: &job.run_id,
                created_at_ms: job.created_at_ms,
                key_hashes: key_hashes(&params),
                params,
                size: job.rows.len(),
            }
        })
        .collect();
    let sql = match kind {
        DatabaseKind::Sqlite => {
            "INSERT INTO proposal_sets (run_id, created_at_ms, params, key_hashes, size, unsettled) \
             SELECT value ->> 0, value ->> 1, value -> 2, value ->> 3, value ->> 4, value ->> 4 \
             FROM json_each($1) ORDER BY key RETURNING id"
        }
        DatabaseKind::Postgres => {
            "INSERT INTO proposal_sets (run_id, created_at_ms, params, key_hashes, size, unsettled) \
             SELECT r ->> 0, (r ->> 1)::bigint, (r -> 2)::text, r ->> 3, (r ->> 4)::bigint, (r ->> 4)::bigint \
             FROM json_array_elements($1::json) WITH ORDINALITY AS t(r, n) ORDER BY n RETURNING id"
        }
    };
    let mut tx = pool.begin().await?;
    let returned = sqlx::query(sql)
        .bind(to_text(&sets))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut set_ids = returned
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING does not promise the row order; ids of one statement ascend with it.
    set_ids.sort_unstable();
    Ok(jobs
        .iter()
        .zip(set_ids)
        .flat_map(|(job, set_id)| (0..job.rows.len()).map(move |slot| proposal_id(set_id, slot)))
        .collect())
}

/// One set as the insert statement's JSON parameter carries it (an array, in column order).
struct SetInsert<'a> {
    run_id: &'a str,
    created_at_ms: i64,
    params: Vec<&'a Map<String, Value>>,
    key_hashes: String,
    size: usize,
}

impl serde::Serialize for SetInsert<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            self.run_id,
            self.created_at_ms,
            &self.params,
            &self.key_hashes,
            self.size,
        )
            .serialize(serializer)
    }
}

/// The `key_hashes` column: each proposal's [`params_hash`] as `,h0,h1,...,`.
pub(crate) fn key_hashes(params: &[&Map<String, Value>]) -> String {
    params.iter().fold(String::from(","), |mut out, p| {
        out.push_str(&params_hash(&params_key(p)).to_string());
        out.push(',');
        out
    })
}
