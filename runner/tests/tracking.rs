//! The tracking outbox against a real MLflow server (`scripts/start-mlflow.sh`): runs and trials mirrored as
//! parent and child runs, artifacts uploaded through MLflow's proxy, redeliveries without duplicates, an outage
//! survived, replicas sharing a Postgres outbox, and the local artifact store when tracking is off.

use std::collections::HashMap;
use std::time::Duration;

use mlflow_client::{ArtifactRoot, Config, MlflowClient, Run, RunStatus, SearchRuns};
use runner::artifacts::ArtifactStore;
use runner::config::Settings;
use runner::domain::contracts::{parse_run_finalized, parse_run_started, parse_trial_reported};
use runner::store::Store;
use runner::store::outbox::OutboxEntry;
use runner::tracking::{self, KIND_TAG, Tracker};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[path = "common/services.rs"]
mod services;
use services::{fresh_postgres_database, service_var};

/// Longest wait for the outbox to drain in a test (a bound on waiting, not a speed claim).
const DRAIN_LIMIT: Duration = Duration::from_secs(90);

/// The MLflow server of the test suite: `MLFLOW_TRACKING_URI`, else the one `scripts/start-mlflow.sh` wrote.
fn tracking_uri() -> String {
    service_var("MLFLOW_TRACKING_URI").trim().to_string()
}

fn client(uri: &str) -> MlflowClient {
    MlflowClient::new(Config::new(uri).expect("MLflow URI")).expect("MLflow client")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A runner's database, data dir and settings.
struct Env {
    settings: Settings,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn env_with(database_url: Option<String>, mlflow_uri: Option<&str>, experiment: &str) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars = HashMap::new();
    vars.insert(
        "RUNNER_DATA_DIR".to_string(),
        dir.path().display().to_string(),
    );
    vars.insert(
        "RUNNER_DATABASE_URL".to_string(),
        database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("runner.db").display())),
    );
    if let Some(uri) = mlflow_uri {
        vars.insert("MLFLOW_TRACKING_URI".to_string(), uri.to_string());
        vars.insert("MLFLOW_EXPERIMENT_NAME".to_string(), experiment.to_string());
    }
    let settings = Settings::from_vars(&vars).expect("settings");
    let store = Store::connect(&settings.database).await.expect("store");
    Env {
        settings,
        store,
        _dir: dir,
    }
}

/// The same database and data dir with another MLflow URI (a restarted runner).
fn with_mlflow(settings: &Settings, uri: &str) -> Settings {
    let mut s = settings.clone();
    if let Some(m) = s.mlflow.as_mut() {
        m.tracking_uri = uri.to_string();
    }
    s
}

async fn tracker(store: &Store, settings: &Settings) -> Tracker {
    let artifacts = ArtifactStore::from_settings(settings)
        .await
        .expect("artifact store");
    Tracker::new(store.clone(), settings, artifacts)
        .await
        .expect("tracker")
}

fn entries(tasks: Vec<tracking::NewTask>) -> Vec<OutboxEntry> {
    tasks.into_iter().map(OutboxEntry::from).collect()
}

fn file(name: &str, content_type: &str, bytes: &[u8]) -> Value {
    use base64::Engine;
    json!({"name": name, "content_type": content_type,
           "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

fn history() -> Vec<Value> {
    (1..=3)
        .map(|e| {
            let e = f64::from(e);
            json!({"epoch": e as i64, "loss": 1.0 / e, "val_loss": 1.2 / e, "val_metric": 0.5 + 0.1 * e,
                   "val_metric_name": "accuracy"})
        })
        .collect()
}

/// Model bytes that are not valid UTF-8, to catch any text mangling on the way.
fn model_bytes() -> Vec<u8> {
    (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Stores a started run, a reported trial, and every task about them; finalizes the run.
async fn seed(store: &Store, run_id: &str, trial_id: &str) {
    let start = parse_run_started(&json!({
        "run_id": run_id, "objective": "accuracy", "dataset_id": "iris",
        "budget": {"max_trials": 4}, "parameters": {"controller": {"smooth": 0.5}, "head": "kgam"}
    }))
    .expect("start");
    store
        .start_run(&start, &entries(vec![tracking::run_task(run_id)]))
        .await
        .expect("start_run");
    let report = parse_trial_reported(&json!({
        "run_id": run_id, "trial_id": trial_id, "status": "succeeded",
        "metrics": {"accuracy": 0.9, "loss": 0.25, "converged": true, "note": "fine"},
        "parameters": {"lr": 0.01, "net": {"units": 32, "activation": "relu"}, "layers": [2, 3]}
    }))
    .expect("record");
    let files = vec![
        file(
            "model.safetensors",
            "application/octet-stream",
            &model_bytes(),
        ),
        file("architecture.json", "application/json", br#"{"levels":2}"#),
        file("metrics.json", "application/json", br#"{"accuracy":0.9}"#),
    ];
    store
        .record_trial(
            &report,
            &entries(vec![
                tracking::run_task(run_id),
                tracking::trial_task(trial_id, history()),
                tracking::artifacts_task(run_id, trial_id, files),
            ]),
        )
        .await
        .expect("record_trial");
    let fin = parse_run_finalized(
        &json!({"run_id": run_id, "status": "succeeded", "metrics": {"trials": 1}}),
    )
    .expect("finalize");
    store
        .finalize_run(
            &fin,
            Some(trial_id),
            &entries(vec![tracking::run_final_task(run_id)]),
        )
        .await
        .expect("finalize_run");
}

/// Runs the worker until nothing is pending, then stops it.
async fn drain(tracker: &Tracker, store: &Store) {
    let stop = CancellationToken::new();
    let worker = tracker.spawn_worker(stop.clone());
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    loop {
        let backlog = store.backlog().await.expect("backlog");
        if backlog.pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox not drained within {DRAIN_LIMIT:?}: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops promptly")
        .expect("worker task");
}

/// Every active run of the experiment with `thunderhelm.kind = kind` and `tag = value`.
async fn runs_tagged(
    mlflow: &MlflowClient,
    experiment: &str,
    kind: &str,
    tag: &str,
    value: &str,
) -> Vec<Run> {
    let experiment_id = mlflow
        .get_experiment_by_name(experiment)
        .await
        .expect("experiment lookup")
        .expect("experiment exists")
        .experiment_id;
    let runs = mlflow
        .search_all_runs(&SearchRuns {
            experiment_ids: vec![experiment_id],
            filter: Some(format!("tags.`{KIND_TAG}` = '{kind}'")),
            ..SearchRuns::default()
        })
        .await
        .expect("search runs");
    runs.into_iter()
        .filter(|r| r.data.tag(tag) == Some(value))
        .collect()
}

#[tokio::test]
async fn runs_and_trials_are_mirrored_with_history_and_artifacts() {
    let uri = tracking_uri();
    let experiment = unique("thunderhelm-tracking");
    let env = env_with(None, Some(&uri), &experiment).await;
    let (run_id, trial_id) = (unique("run"), unique("trial"));
    seed(&env.store, &run_id, &trial_id).await;
    let tracker = tracker(&env.store, &env.settings).await;
    assert!(tracker.mlflow_enabled());
    drain(&tracker, &env.store).await;

    let mlflow = client(&uri);
    let run = env.store.get_run(&run_id).await.unwrap().unwrap();
    let parent = mlflow
        .get_run(run.mlflow_run_id.as_deref().expect("parent id stored"))
        .await
        .unwrap();
    assert_eq!(parent.info.run_name.as_deref(), Some(run_id.as_str()));
    assert_eq!(parent.data.tag("run_id"), Some(run_id.as_str()));
    assert_eq!(parent.data.tag(KIND_TAG), Some("run"));
    assert_eq!(parent.data.tag("dataset_id"), Some("iris"));
    assert_eq!(
        parent.data.param("parameters.controller.smooth"),
        Some("0.5")
    );
    assert_eq!(parent.data.param("parameters.head"), Some("kgam"));
    assert_eq!(parent.data.param("budget.max_trials"), Some("4"));
    assert_eq!(parent.data.param("objective.metric"), Some("accuracy"));
    assert_eq!(parent.data.param("objective.direction"), Some("maximize"));
    assert_eq!(parent.data.metric("best_accuracy"), Some(0.9));
    assert_eq!(parent.data.metric("trials"), Some(1.0));
    assert_eq!(parent.data.tag("best_trial_id"), Some(trial_id.as_str()));
    assert_eq!(parent.info.status, RunStatus::Finished);

    let trial = env.store.get_trial(&trial_id).await.unwrap().unwrap();
    let child_id = trial.mlflow_run_id.clone().expect("child id stored");
    let child = mlflow.get_run(&child_id).await.unwrap();
    assert_eq!(child.info.run_name.as_deref(), Some(trial_id.as_str()));
    assert_eq!(child.info.experiment_id, parent.info.experiment_id);
    assert_eq!(
        child.data.tag("mlflow.parentRunId"),
        Some(parent.info.run_id.as_str())
    );
    assert_eq!(child.data.tag("trial_id"), Some(trial_id.as_str()));
    assert_eq!(child.data.tag("run_id"), Some(run_id.as_str()));
    assert_eq!(child.data.tag("status"), Some("succeeded"));
    assert_eq!(child.data.tag("source"), Some("reported"));
    assert_eq!(child.data.param("lr"), Some("0.01"));
    assert_eq!(child.data.param("net.units"), Some("32"));
    assert_eq!(child.data.param("net.activation"), Some("relu"));
    assert_eq!(child.data.param("layers"), Some("[2,3]"));
    assert_eq!(child.data.metric("accuracy"), Some(0.9));
    assert_eq!(child.data.metric("converged"), Some(1.0));
    assert_eq!(
        child.data.metric("note"),
        None,
        "non-numeric metrics are not logged"
    );
    assert_eq!(child.info.status, RunStatus::Finished);
    assert!(child.info.end_time.is_some());

    let val = mlflow
        .get_metric_history(&child_id, "val_accuracy")
        .await
        .unwrap();
    let mut points: Vec<(i64, f64)> = val.iter().map(|m| (m.step, m.value)).collect();
    points.sort_by_key(|p| p.0);
    assert_eq!(points.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!((points[2].1 - 0.8).abs() < 1e-9, "{points:?}");
    let loss = mlflow.get_metric_history(&child_id, "loss").await.unwrap();
    assert!(
        loss.iter()
            .any(|m| m.step == 3 && (m.value - 0.25).abs() < 1e-12),
        "final loss at the last epoch"
    );
    assert!(
        loss.iter()
            .any(|m| m.step == 1 && (m.value - 1.0).abs() < 1e-12),
        "epoch 1 loss"
    );

    let listed = mlflow
        .list_artifacts(&ArtifactRoot::run(&child_id), None)
        .await
        .unwrap();
    let mut names: Vec<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["architecture.json", "metrics.json", "model.safetensors"]
    );
    let model = mlflow
        .download_artifact_bytes(&ArtifactRoot::run(&child_id), "model.safetensors")
        .await
        .unwrap();
    assert_eq!(model.as_ref(), model_bytes().as_slice());
    assert_eq!(
        trial.artifact_uri.as_deref(),
        Some(child.info.artifact_uri.as_str())
    );
    assert!(
        child.info.artifact_uri.starts_with("mlflow-artifacts:"),
        "{}",
        child.info.artifact_uri
    );

    let stats = tracker.stats();
    for kind in tracking::KINDS {
        // A reported trial has no `mlflow.trial_start` task (only a sync training enqueues one).
        let expected = u64::from(kind != tracking::KIND_TRIAL_START);
        assert_eq!(stats.kinds[kind].delivered, expected, "{kind}: {stats:?}");
    }
    assert!(stats.mlflow_requests > 0);
    let ready = tracker.readiness().await;
    assert_eq!(ready["mlflow"]["status"], "ok", "{ready}");
    assert_eq!(ready["artifacts"]["status"], "ok", "{ready}");
}

#[tokio::test]
async fn redelivery_after_a_crash_creates_no_duplicates() {
    let uri = tracking_uri();
    let experiment = unique("thunderhelm-tracking");
    let env = env_with(None, Some(&uri), &experiment).await;
    // A quote in the run id exercises the search filter's quoting; a 256-character trial id (the longest
    // allowed) exceeds MLflow's run-name column and is cut there, but not in the identity tag.
    let run_id = unique("run'quoted");
    let trial_id = format!("{}{}", unique("trial"), "x".repeat(218));
    assert_eq!(trial_id.len(), 256);
    seed(&env.store, &run_id, &trial_id).await;
    drain(&tracker(&env.store, &env.settings).await, &env.store).await;
    let parent_id = env
        .store
        .get_run(&run_id)
        .await
        .unwrap()
        .unwrap()
        .mlflow_run_id
        .unwrap();
    let child_id = env
        .store
        .get_trial(&trial_id)
        .await
        .unwrap()
        .unwrap()
        .mlflow_run_id
        .unwrap();

    // A crash after MLflow accepted everything but before the ids and the deliveries were recorded.
    for sql in [
        "UPDATE outbox SET delivered_at_ms = NULL, next_attempt_at_ms = 0",
        "UPDATE runs SET mlflow_run_id = NULL",
        "UPDATE trials SET mlflow_run_id = NULL, artifact_uri = NULL",
    ] {
        sqlx::query(sql).execute(env.store.pool()).await.unwrap();
    }
    let restarted = tracker(&env.store, &env.settings).await;
    let report = restarted
        .deliver_for_trial(&trial_id, Duration::from_secs(60))
        .await;
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!(report.mlflow_run_id.as_deref(), Some(child_id.as_str()));
    drain(&restarted, &env.store).await;

    let mlflow = client(&uri);
    let parents = runs_tagged(&mlflow, &experiment, "run", "run_id", &run_id).await;
    let children = runs_tagged(&mlflow, &experiment, "trial", "trial_id", &trial_id).await;
    assert_eq!(
        parents
            .iter()
            .map(|r| r.info.run_id.as_str())
            .collect::<Vec<_>>(),
        [parent_id.as_str()]
    );
    assert_eq!(
        children
            .iter()
            .map(|r| r.info.run_id.as_str())
            .collect::<Vec<_>>(),
        [child_id.as_str()]
    );
    assert_eq!(children[0].info.run_name.as_deref(), Some(&trial_id[..250]));
    assert_eq!(
        env.store
            .get_run(&run_id)
            .await
            .unwrap()
            .unwrap()
            .mlflow_run_id
            .as_deref(),
        Some(parent_id.as_str())
    );
    let history = mlflow
        .get_metric_history(&child_id, "val_accuracy")
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        3,
        "a repeated delivery logs no second copy of the history: {history:?}"
    );
    let listed = mlflow
        .list_artifacts(&ArtifactRoot::run(&child_id), None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn an_outage_keeps_tasks_pending_until_mlflow_is_back() {
    let uri = tracking_uri();
    let experiment = unique("thunderhelm-tracking");
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let env = env_with(None, Some(&dead), &experiment).await;
    let (run_id, trial_id) = (unique("run"), unique("trial"));
    seed(&env.store, &run_id, &trial_id).await;

    let down = tracker(&env.store, &env.settings).await;
    let report = down
        .deliver_for_trial(&trial_id, Duration::from_secs(20))
        .await;
    assert_eq!(report.mlflow_run_id, None);
    assert_eq!(
        report.pending,
        ["mlflow.run", "mlflow.trial", "artifacts.trial"]
    );
    let ready = down.readiness().await;
    assert_eq!(ready["mlflow"]["status"], "down", "{ready}");

    // The worker keeps retrying with backoff; the parent task accumulates attempts.
    let stop = CancellationToken::new();
    let worker = down.spawn_worker(stop.clone());
    let key = tracking::dedupe_key(tracking::KIND_RUN, &run_id);
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    let state = loop {
        let state = env
            .store
            .outbox_task_state(&key)
            .await
            .unwrap()
            .expect("task stored");
        if state.attempts >= 2 {
            break state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retry within {DRAIN_LIMIT:?}: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(state.delivered_at_ms, None);
    let error = state.last_error.expect("last error recorded");
    assert!(error.contains("transport"), "{error}");
    for kind in [
        tracking::KIND_TRIAL,
        tracking::KIND_ARTIFACTS,
        tracking::KIND_RUN_FINAL,
    ] {
        let id = if kind == tracking::KIND_RUN_FINAL {
            &run_id
        } else {
            &trial_id
        };
        let s = env
            .store
            .outbox_task_state(&tracking::dedupe_key(kind, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.delivered_at_ms, None, "{kind} stays pending");
    }
    assert!(down.stats().kinds[tracking::KIND_RUN].failed >= 2);
    assert_eq!(env.store.backlog().await.unwrap().pending, 4);

    // A restart with MLflow reachable delivers everything.
    let up = tracker(&env.store, &with_mlflow(&env.settings, &uri)).await;
    let report = up
        .deliver_for_trial(&trial_id, Duration::from_secs(60))
        .await;
    assert!(report.pending.is_empty(), "{report:?}");
    let child_id = report.mlflow_run_id.expect("child run created");
    assert!(report.artifact_uri.is_some());
    drain(&up, &env.store).await;
    let mlflow = client(&uri);
    let child = mlflow.get_run(&child_id).await.unwrap();
    assert_eq!(child.data.tag("trial_id"), Some(trial_id.as_str()));
    let parent_id = env
        .store
        .get_run(&run_id)
        .await
        .unwrap()
        .unwrap()
        .mlflow_run_id
        .unwrap();
    assert_eq!(
        child.data.tag("mlflow.parentRunId"),
        Some(parent_id.as_str())
    );
    assert_eq!(
        mlflow.get_run(&parent_id).await.unwrap().info.status,
        RunStatus::Finished
    );
    let state = env.store.outbox_task_state(&key).await.unwrap().unwrap();
    assert!(
        state.delivered_at_ms.is_some() && state.attempts >= 2,
        "{state:?}"
    );
}

#[tokio::test]
async fn replicas_sharing_a_postgres_outbox_deliver_each_task_once() {
    let uri = tracking_uri();
    let experiment = unique("thunderhelm-tracking");
    let db_url = fresh_postgres_database().await;

    let env = env_with(Some(db_url.clone()), Some(&uri), &experiment).await;
    let run_id = unique("run");
    let trials: Vec<String> = (0..6).map(|i| format!("{run_id}-t{i}")).collect();
    for trial_id in &trials {
        seed_trial_only(&env.store, &run_id, trial_id).await;
    }
    // Two replicas, each with its own connection pool, polling the same outbox at once.
    let second = Store::connect(&env.settings.database)
        .await
        .expect("second store");
    let a = tracker(&env.store, &env.settings).await;
    let b = tracker(&second, &env.settings).await;
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let (wa, wb) = (
        a.spawn_worker(stop_a.clone()),
        b.spawn_worker(stop_b.clone()),
    );
    drain(&a, &env.store).await;
    stop_a.cancel();
    stop_b.cancel();
    wa.await.unwrap();
    wb.await.unwrap();

    let mlflow = client(&uri);
    assert_eq!(
        runs_tagged(&mlflow, &experiment, "run", "run_id", &run_id)
            .await
            .len(),
        1
    );
    for trial_id in &trials {
        assert_eq!(
            runs_tagged(&mlflow, &experiment, "trial", "trial_id", trial_id)
                .await
                .len(),
            1,
            "{trial_id}"
        );
    }
    let delivered = |t: &Tracker| t.stats().kinds.values().map(|k| k.delivered).sum::<u64>();
    assert_eq!(
        delivered(&a) + delivered(&b),
        1 + 2 * trials.len() as u64,
        "each task delivered exactly once"
    );
}

/// A reported trial with its `mlflow.trial` and `artifacts.trial` tasks (the run is created implicitly).
async fn seed_trial_only(store: &Store, run_id: &str, trial_id: &str) {
    let report = parse_trial_reported(&json!({
        "run_id": run_id, "trial_id": trial_id, "status": "failed", "metrics": {"accuracy": 0.1},
        "parameters": {"lr": 0.1, "trial": trial_id}
    }))
    .expect("record");
    let files = vec![file(
        "metrics.json",
        "application/json",
        br#"{"accuracy":0.1}"#,
    )];
    store
        .record_trial(
            &report,
            &entries(vec![
                tracking::run_task(run_id),
                tracking::trial_task(trial_id, Vec::new()),
                tracking::artifacts_task(run_id, trial_id, files),
            ]),
        )
        .await
        .expect("record_trial");
}

#[tokio::test]
async fn without_mlflow_artifacts_go_to_the_artifact_store() {
    let env = env_with(None, None, "unused").await;
    let (run_id, trial_id) = (unique("run"), unique("trial"));
    seed(&env.store, &run_id, &trial_id).await;
    let tracker = tracker(&env.store, &env.settings).await;
    assert!(!tracker.mlflow_enabled());
    let report = tracker
        .deliver_for_trial(&trial_id, Duration::from_secs(30))
        .await;
    assert!(report.pending.is_empty(), "{report:?}");
    let dir = env
        .settings
        .artifact_dir
        .join("cerebros")
        .join(&run_id)
        .join(&trial_id);
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        model_bytes()
    );
    assert_eq!(
        std::fs::read(dir.join("architecture.json")).unwrap(),
        br#"{"levels":2}"#
    );
    let uri = report.artifact_uri.expect("artifact uri recorded");
    assert!(
        uri.starts_with("file://") && uri.ends_with(&format!("cerebros/{run_id}/{trial_id}")),
        "{uri}"
    );
    assert_eq!(report.mlflow_run_id, None);
    // MLflow tasks left from a configuration with tracking on are closed, with the reason kept.
    let state = env
        .store
        .outbox_task_state(&tracking::dedupe_key(tracking::KIND_TRIAL, &trial_id))
        .await
        .unwrap()
        .unwrap();
    assert!(state.delivered_at_ms.is_some());
    assert!(
        state
            .last_error
            .unwrap_or_default()
            .contains("tracking is off")
    );
    assert_eq!(tracker.readiness().await["mlflow"]["status"], "disabled");
}
