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
    /// The same parameters as JSON text: written once, for the database and for the caller's reply.
    pub json: Arc<str>,
}

impl NewProposal {
    /// A proposal of these parameters, with their JSON text.
    pub fn new(params: Arc<Map<String, Value>>) -> Self {
        let json = to_text(&*params).into();
        Self { params, json }
    }
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

/// One call's set, made ready to insert by the caller (so the single writer only binds or concatenates).
struct Job {
    run_id: String,
    created_at_ms: i64,
    /// The JSON array of the set's parameters.
    params: String,
    /// The set's `key_hashes` column.
    key_hashes: String,
    size: usize,
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
        let params: Vec<&Map<String, Value>> = rows.iter().map(|r| &*r.params).collect();
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                run_id: run_id.to_string(),
                created_at_ms,
                params: json_array(rows.iter().map(|r| &*r.json)),
                key_hashes: key_hashes(&params),
                size: rows.len(),
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
        let mut rows = jobs[0].size;
        while rows < ROWS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.size;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        match insert_all(&pool, kind, &jobs).await {
            Ok(ids) => {
                let mut ids = ids.into_iter();
                for job in jobs {
                    let mine: Vec<i64> = ids.by_ref().take(job.size).collect();
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

/// Stores every job as one proposal set, all in one transaction, and returns the ids of the jobs' proposals in
/// order (see [`proposal_id`]).
async fn insert_all(
    pool: &AnyPool,
    kind: DatabaseKind,
    jobs: &[Job],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut set_ids = match kind {
        DatabaseKind::Sqlite => insert_sqlite(pool, jobs).await?,
        DatabaseKind::Postgres => insert_postgres(pool, jobs).await?,
    };
    // RETURNING does not promise the row order; ids ascend with the insertion order.
    set_ids.sort_unstable();
    Ok(jobs
        .iter()
        .zip(set_ids)
        .flat_map(|(job, set_id)| (0..job.size).map(move |slot| proposal_id(set_id, slot)))
        .collect())
}

/// Most sets one SQLite insert statement binds (five values each).
const SETS_PER_SQLITE_STATEMENT: usize = 32;

/// SQLite: multi-row `VALUES` with bound columns, in statements of 32, 16, …, 1 sets (six shapes, so the
/// prepared statements are reused); one statement needs no explicit transaction.
async fn insert_sqlite(pool: &AnyPool, jobs: &[Job]) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(jobs.len());
    let mut chunks = Vec::new();
    let mut rest = jobs;
    while !rest.is_empty() {
        let take = SETS_PER_SQLITE_STATEMENT.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(take);
        chunks.push(chunk);
        rest = tail;
    }
    let mut tx = match chunks.len() {
        1 => None,
        _ => Some(pool.begin().await?),
    };
    for chunk in chunks {
        let sql = sqlite_insert_statement(chunk.len());
        let mut query = sqlx::query(sql);
        for job in chunk {
            query = query
                .bind(job.run_id.as_str())
                .bind(job.created_at_ms)
                .bind(job.params.as_str())
                .bind(job.key_hashes.as_str())
                .bind(job.size as i64);
        }
        let rows = match tx.as_mut() {
            Some(tx) => query.fetch_all(&mut **tx).await?,
            None => query.fetch_all(pool).await?,
        };
        for row in &rows {
            ids.push(row.try_get::<i64, _>("id")?);
        }
    }
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    Ok(ids)
}

/// The insert statement for `n` sets (a power of two up to [`SETS_PER_SQLITE_STATEMENT`]), built once.
fn sqlite_insert_statement(n: usize) -> &'static str {
    static STATEMENTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        (0..=SETS_PER_SQLITE_STATEMENT.ilog2())
            .map(|power| {
                let rows: Vec<String> = (0..1usize << power)
                    .map(|i| {
                        let b = 5 * i;
                        format!("(${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 5)
                    })
                    .collect();
                format!(
                    "INSERT INTO proposal_sets (run_id, created_at_ms, params, key_hashes, size, unsettled) \
                     VALUES {} RETURNING id",
                    rows.join(", ")
                )
            })
            .collect()
    });
    &statements[n.ilog2() as usize]
}

/// PostgreSQL: the sets travel as a single JSON array parameter (`[[run_id, created_at_ms, [params...],
/// key_hashes, size], ...]`) that the server unpacks itself: one round trip, one statement.
async fn insert_postgres(pool: &AnyPool, jobs: &[Job]) -> Result<Vec<i64>, sqlx::Error> {
    let elements: Vec<String> = jobs
        .iter()
        .map(|job| {
            format!(
                "[{},{},{},{},{}]",
                to_text(&job.run_id),
                job.created_at_ms,
                job.params,
                to_text(&job.key_hashes),
                job.size
            )
        })
        .collect();
    let sets = json_array(elements.iter().map(String::as_str));
    let returned = sqlx::query(
        "INSERT INTO proposal_sets (run_id, created_at_ms, params, key_hashes, size, unsettled) \
         SELECT r ->> 0, (r ->> 1)::bigint, (r -> 2)::text, r ->> 3, (r ->> 4)::bigint, (r ->> 4)::bigint \
         FROM json_array_elements($1::json) WITH ORDINALITY AS t(r, n) ORDER BY n RETURNING id",
    )
    .bind(sets)
    .fetch_all(pool)
    .await?;
    returned.iter().map(|r| r.try_get::<i64, _>("id")).collect()
}

/// A JSON array of the given JSON texts.
fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// The `key_hashes` column: each proposal's [`params_hash`] as `,h0,h1,...,`.
pub(crate) fn key_hashes(params: &[&Map<String, Value>]) -> String {
    params.iter().fold(String::from(","), |mut out, p| {
        out.push_str(&params_hash(&params_key(p)).to_string());
        out.push(',');
        out
    })
}
