//! Pending proposals: candidates handed out by `/propose` and not yet reported by a trial. TPE treats them as
//! bad observations (the constant liar) until a trial with the same parameters settles them or they expire.
//!
//! Each `/propose` call is stored as one *proposal set* (see `migrations/*/0003_proposal_sets.sql`): its
//! parameters as a JSON array, the hash of each one's canonical key, and a mask of the settled slots.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::proposal_writer::{MAX_SET_SIZE, NewProposal, key_hashes, proposal_id};
use super::{Store, from_text, now_ms};
use crate::domain::keys::{params_hash, params_key};

/// Most pending proposals TPE considers per run (the newest): a bound on the constant liar's cost when callers
/// abandon proposals faster than they expire.
pub const MAX_PENDING: i64 = 512;

/// Sets read per query while looking for a proposal by its parameters.
const SETS_PER_PAGE: i64 = 64;

/// An unsettled proposal found by its parameters.
struct Found {
    set_id: i64,
    slot: usize,
    run_id: String,
}

/// A stored set row as the lookups read it.
struct SetRow {
    id: i64,
    run_id: String,
    params: Vec<Value>,
    settled_mask: i64,
}

impl SetRow {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let text: Option<String> = row.try_get("params")?;
        Ok(Self {
            id: row.try_get("id")?,
            run_id: row.try_get("run_id")?,
            params: match from_text(text) {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
            settled_mask: row.try_get("settled_mask")?,
        })
    }

    fn is_settled(&self, slot: usize) -> bool {
        slot < MAX_SET_SIZE && self.settled_mask & (1_i64 << slot) != 0
    }

    /// The unsettled slots, each with its parameters.
    fn unsettled(&self) -> impl DoubleEndedIterator<Item = (usize, &Map<String, Value>)> {
        self.params
            .iter()
            .enumerate()
            .filter(|(slot, _)| !self.is_settled(*slot))
            .filter_map(|(slot, v)| v.as_object().map(|m| (slot, m)))
    }
}

/// The oldest unsettled proposal whose canonical parameters are `key`, in `run_id` or in any run.
async fn find_unsettled(
    conn: &mut AnyConnection,
    run_id: Option<&str>,
    key: &str,
) -> Result<Option<Found>, sqlx::Error> {
    let needle = format!(",{},", params_hash(key));
    // `instr`/`strpos` rather than LIKE: SQLite prepares a statement again whenever a LIKE pattern's binding
    // changes. Without a run, `$1` is bound to '' and only keeps the parameter numbers of the statements alike.
    macro_rules! lookup {
        ($run:literal, $contains:literal) => {
            concat!(
                "SELECT id, run_id, params, settled_mask FROM proposal_sets WHERE ",
                $run,
                " AND unsettled > 0 AND ",
                $contains,
                "(key_hashes, $2) > 0 AND id > $3 ORDER BY id LIMIT $4"
            )
        };
    }
    let postgres = conn.backend_name() == "PostgreSQL";
    let sql = match (postgres, run_id.is_some()) {
        (false, true) => lookup!("run_id = $1", "instr"),
        (false, false) => lookup!("$1 = ''", "instr"),
        (true, true) => lookup!("run_id = $1", "strpos"),
        (true, false) => lookup!("$1 = ''", "strpos"),
    };
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query(sql)
            .bind(run_id.unwrap_or(""))
            .bind(&needle)
            .bind(after)
            .bind(SETS_PER_PAGE)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let set = SetRow::read(row)?;
            after = set.id;
            let matching = set
                .unsettled()
                .find(|(_, p)| params_key(p) == key)
                .map(|(slot, _)| slot);
            if let Some(slot) = matching {
                return Ok(Some(Found {
                    set_id: set.id,
                    slot,
                    run_id: set.run_id,
                }));
            }
        }
        if rows.len() < SETS_PER_PAGE as usize {
            return Ok(None);
        }
    }
}

/// Marks the oldest pending proposal of `run_id` with these parameters as settled by `trial_id`.
pub async fn settle(
    conn: &mut AnyConnection,
    run_id: &str,
    key: &str,
    trial_id: &str,
) -> Result<(), sqlx::Error> {
    let Some(found) = find_unsettled(conn, Some(run_id), key).await? else {
        return Ok(());
    };
    let bit = 1_i64 << found.slot;
    let marked = sqlx::query(
        "UPDATE proposal_sets SET unsettled = unsettled - 1, settled_mask = settled_mask | $2 \
         WHERE id = $1 AND (settled_mask & $2) = 0",
    )
    .bind(found.set_id)
    .bind(bit)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if marked > 0 {
        sqlx::query(
            "INSERT INTO proposal_settlements (set_id, slot, trial_id, settled_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(found.set_id)
        .bind(found.slot as i64)
        .bind(trial_id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The open sets without key hashes (what the partial index `proposal_sets_unhashed` holds).
const UNHASHED_SETS: &str = "SELECT id, run_id, params, settled_mask FROM proposal_sets WHERE key_hashes = '' AND unsettled > 0";

/// Fills in `key_hashes` for sets stored before it existed (run once at startup, after the migrations), so
/// that [`settle`] finds them. The partial index `proposal_sets_unhashed` holds exactly these sets, so the
/// check costs nothing once they are hashed.
pub async fn hash_unhashed(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(UNHASHED_SETS).fetch_all(pool).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for row in &rows {
        let set = SetRow::read(row)?;
        let params: Vec<&Map<String, Value>> =
            set.params.iter().filter_map(Value::as_object).collect();
        sqlx::query("UPDATE proposal_sets SET key_hashes = $1 WHERE id = $2")
            .bind(key_hashes(&params))
            .bind(set.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// A stored, unsettled proposal.
#[derive(Debug, Clone)]
pub struct PendingProposal {
    /// Proposal id: ascending in creation order.
    pub id: i64,
    /// When it was proposed (ms since the epoch).
    pub created_at_ms: i64,
    /// Its parameters.
    pub params: Arc<Map<String, Value>>,
}

impl Store {
    /// Stores the proposals of one `/propose` call of `run_id` as pending through the group-commit writer and
    /// returns them as stored, once committed.
    pub async fn add_pending_batch(
        &self,
        run_id: &str,
        proposals: Vec<NewProposal>,
    ) -> Result<Vec<PendingProposal>, sqlx::Error> {
        let params: Vec<Arc<Map<String, Value>>> =
            proposals.iter().map(|p| p.params.clone()).collect();
        let (ids, created_at_ms) = self.proposal_writer.store(run_id, proposals).await?;
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
            "SELECT id, run_id, created_at_ms, params, settled_mask FROM proposal_sets \
             WHERE run_id = $1 AND unsettled > 0 AND created_at_ms >= $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(run_id)
        .bind(since_ms)
        .bind(MAX_PENDING)
        .fetch_all(&self.pool)
        .await?;
        let mut pending = Vec::new();
        for row in &rows {
            let set = SetRow::read(row)?;
            let created_at_ms: i64 = row.try_get("created_at_ms")?;
            pending.extend(set.unsettled().rev().map(|(slot, p)| PendingProposal {
                id: proposal_id(set.id, slot),
                created_at_ms,
                params: Arc::new(p.clone()),
            }));
        }
        pending.truncate(MAX_PENDING as usize);
        Ok(pending)
    }

    /// How many proposals of a run created after `since_ms` are still unsettled.
    pub async fn count_pending(&self, run_id: &str, since_ms: i64) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "SELECT CAST(COALESCE(SUM(unsettled), 0) AS BIGINT) AS n FROM proposal_sets \
             WHERE run_id = $1 AND unsettled > 0 AND created_at_ms >= $2",
        )
        .bind(run_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")
    }

    /// Closes every set created before `cutoff_ms` (its unreported proposals expired): it leaves the open-set
    /// index, so settling, the run lookup and the startup check no longer read it, and `settled_mask` keeps the
    /// record of which of its proposals were settled. Returns the number of sets closed.
    pub async fn close_expired(&self, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "UPDATE proposal_sets SET unsettled = 0 WHERE unsettled > 0 AND created_at_ms < $1",
        )
        .bind(cutoff_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The run of the oldest unsettled proposal with exactly these parameters, among all runs.
    pub async fn run_of_pending(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let found = find_unsettled(&mut conn, None, &params_key(params)).await?;
        Ok(found.map(|f| f.run_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use serde_json::json;
    use sqlx::any::AnyPoolOptions;

    /// A store on a new SQLite file (kept while the returned directory lives).
    async fn fresh_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url =
            DatabaseUrl::parse(&format!("sqlite://{}/runner.db", dir.path().display())).unwrap();
        let store = Store::connect(&url).await.unwrap();
        (dir, store)
    }

    /// A proposal of the parameters in `params` (a JSON object).
    fn proposal(params: Value) -> NewProposal {
        NewProposal::new(Arc::new(params.as_object().unwrap().clone()))
    }

    /// A SQLite database at the schema of the release before proposal sets, holding one settled and one
    /// unsettled proposal of run `old`.
    async fn database_before_proposal_sets(dir: &std::path::Path) -> String {
        let url = format!("sqlite://{}/runner.db?mode=rwc", dir.display());
        let old = dir.join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        for name in ["0001_initial.sql", "0002_recent_pending.sql"] {
            let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
            std::fs::copy(from.join(name), old.join(name)).unwrap();
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for (params, settled) in [
            (json!({"lr": 0.1}), true),
            (json!({"lr": 0.01, "units": 64}), false),
        ] {
            sqlx::query(
                "INSERT INTO proposals (run_id, params, params_key, created_at_ms, settled_at_ms, settled_by) \
                 VALUES ('old', $1, $2, $3, $4, $5)",
            )
            .bind(params.to_string())
            .bind(params_key(params.as_object().unwrap()))
            .bind(now_ms())
            .bind(settled.then(now_ms))
            .bind(settled.then_some("t0"))
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
        url
    }

    #[tokio::test]
    async fn proposals_stored_before_proposal_sets_are_kept_and_settle_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let url = database_before_proposal_sets(dir.path()).await;
        let store = Store::connect(&DatabaseUrl::parse(&url).unwrap())
            .await
            .unwrap();
        let pending = store.pending("old", 0).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            Value::Object((*pending[0].params).clone()),
            json!({"lr": 0.01, "units": 64})
        );
        let settlements: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM proposal_settlements WHERE trial_id = 't0'")
                .fetch_one(store.pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(settlements, 1, "the old settlement is kept");

        let mut conn = store.pool().acquire().await.unwrap();
        let key = params_key(json!({"units": 64.0, "lr": 0.01}).as_object().unwrap());
        settle(&mut conn, "old", &key, "t1").await.unwrap();
        drop(conn);
        assert_eq!(store.count_pending("old", 0).await.unwrap(), 0);
        // New sets get ids above the migrated ones.
        let new = store
            .add_pending_batch("old", vec![NewProposal::new(Arc::new(Map::new()))])
            .await
            .unwrap();
        assert!(new[0].id > pending[0].id);
    }

    #[tokio::test]
    async fn the_oldest_unsettled_duplicate_settles_first() {
        let (_dir, store) = fresh_store().await;
        let same = Arc::new(json!({"x": 1}).as_object().unwrap().clone());
        let other = Arc::new(json!({"x": 2}).as_object().unwrap().clone());
        let batch = |params: Vec<Arc<Map<String, Value>>>| {
            params.into_iter().map(NewProposal::new).collect::<Vec<_>>()
        };
        let first = store
            .add_pending_batch("r", batch(vec![other.clone(), same.clone()]))
            .await
            .unwrap();
        let second = store
            .add_pending_batch("r", batch(vec![same.clone()]))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        settle(&mut conn, "r", &params_key(&same), "t1")
            .await
            .unwrap();
        drop(conn);
        let left: Vec<i64> = store
            .pending("r", 0)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(
            left,
            vec![second[0].id, first[0].id],
            "newest first, the older duplicate settled"
        );
        assert_eq!(
            store.run_of_pending(&same).await.unwrap().as_deref(),
            Some("r")
        );
        assert_eq!(store.run_of_pending(&Map::new()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_calls_committed_together_keep_their_own_proposals() {
        let (_dir, store) = fresh_store().await;
        // 77 calls queue up while the writer is busy: statements of 32, 32, 8, 4 and 1 sets.
        let calls = (0..77).map(|call| {
            let store = store.clone();
            async move {
                let batch = (0..1 + call % 5)
                    .map(|slot| proposal(json!({"call": call, "slot": slot})))
                    .collect();
                (
                    call,
                    store
                        .add_pending_batch(&format!("r{}", call % 3), batch)
                        .await
                        .unwrap(),
                )
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut ids = std::collections::HashSet::new();
        for (call, stored) in &results {
            assert_eq!(stored.len(), 1 + call % 5);
            for (slot, p) in stored.iter().enumerate() {
                assert!(ids.insert(p.id), "proposal ids are unique");
                assert_eq!(
                    Value::Object((*p.params).clone()),
                    json!({"call": call, "slot": slot})
                );
            }
        }
        for run in 0..3 {
            let stored: std::collections::HashSet<i64> = store
                .pending(&format!("r{run}"), 0)
                .await
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect();
            let handed_out: std::collections::HashSet<i64> = results
                .iter()
                .filter(|(call, _)| call % 3 == run)
                .flat_map(|(_, stored)| stored.iter().map(|p| p.id))
                .collect();
            assert_eq!(
                stored, handed_out,
                "run r{run} reads back what its calls were given"
            );
        }
    }

    #[tokio::test]
    async fn the_startup_check_for_unhashed_sets_reads_only_its_index() {
        let (_dir, store) = fresh_store().await;
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {UNHASHED_SETS}"))
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("proposal_sets_unhashed")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn expired_sets_close_and_keep_their_settlements() {
        let (_dir, store) = fresh_store().await;
        store
            .add_pending_batch(
                "r",
                vec![proposal(json!({"x": 1})), proposal(json!({"x": 2}))],
            )
            .await
            .unwrap();
        store
            .add_pending_batch("r", vec![proposal(json!({"x": 3}))])
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let one = params_key(json!({"x": 1}).as_object().unwrap());
        settle(&mut conn, "r", &one, "t1").await.unwrap();
        drop(conn);

        assert_eq!(
            store.close_expired(0).await.unwrap(),
            0,
            "nothing is that old"
        );
        assert_eq!(store.count_pending("r", 0).await.unwrap(), 2);

        assert_eq!(store.close_expired(now_ms() + 1).await.unwrap(), 2);
        assert_eq!(store.count_pending("r", 0).await.unwrap(), 0);
        assert!(store.pending("r", 0).await.unwrap().is_empty());
        let three = json!({"x": 3}).as_object().unwrap().clone();
        assert_eq!(store.run_of_pending(&three).await.unwrap(), None);
        let settled: Vec<(i64, i64)> =
            sqlx::query("SELECT settled_mask, unsettled FROM proposal_sets ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.try_get("settled_mask").unwrap(),
                        r.try_get("unsettled").unwrap(),
                    )
                })
                .collect();
        assert_eq!(
            settled,
            vec![(1, 0), (0, 0)],
            "the settled slot stays recorded"
        );
        assert_eq!(
            store.close_expired(now_ms() + 1).await.unwrap(),
            0,
            "closed once"
        );
    }
}
