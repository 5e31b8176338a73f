//! `/train` and the bridge with real MLflow and S3: runs, metric histories and artifacts land where DESIGN
//! §2.6 says, and outages of either lose nothing.

use std::time::{Duration, Instant};

use mlflow_client::{ArtifactRoot, Config, MlflowClient, RunStatus};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, service_var, spawn_app_with, spawn_on};

fn mlflow() -> MlflowClient {
    MlflowClient::new(Config::new(&service_var("MLFLOW_TRACKING_URI")).unwrap()).unwrap()
}

fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("MINIO_ENDPOINT", service_var("MINIO_ENDPOINT")),
        ("MINIO_ACCESS_KEY", service_var("MINIO_ACCESS_KEY")),
        ("MINIO_SECRET_KEY", service_var("MINIO_SECRET_KEY")),
        ("MINIO_BUCKET", service_var("MINIO_BUCKET")),
    ]
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Waits until the trial shows both its MLflow run and its artifacts, or panics.
async fn wait_delivered(
    app: &TestApp,
    trial_id: &str,
    need_mlflow: bool,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, t) = app.get(&format!("/trials/{trial_id}")).await;
        if t["artifact_uri"].is_string() && (!need_mlflow || t["mlflow_run_id"].is_string()) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "trial {trial_id} not delivered: {t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_outbox_empty(app: &TestApp, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, ready) = app.get("/readyz").await;
        if ready["outbox"]["pending"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {ready}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trials_and_runs_are_mirrored_to_mlflow_with_artifacts() {
    let experiment = unique("thunderhelm-test");
    let uri = service_var("MLFLOW_TRACKING_URI");
    let mut env: Vec<(&str, String)> = vec![
        ("MLFLOW_TRACKING_URI", uri),
        ("MLFLOW_EXPERIMENT_NAME", experiment),
    ];
    env.extend(s3_env());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(Backend::Sqlite, &env_refs).await;
    let (s, _) = app
        .post(
            "/bridge/start",
            &json!({"run_id": "mirrored", "objective": "accuracy"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .post("/train", &json!({"trial_id": "mirrored-t1", "run_id": "mirrored", "dataset_id": "iris",
                                 "params": {"epochs": 12, "patience": null, "controller": {"smooth": 0.2}}}))
        .await;
    assert_eq!(s, 200, "{body}");
    // The reply waits for no delivery: what MLflow and S3 have not received yet is listed as pending.
    let pending: Vec<&str> = body["pending"]
        .as_array()
        .expect("pending listed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        body["artifact_uri"].is_string() || pending.contains(&"artifacts.trial"),
        "{body}"
    );
    assert!(
        body["mlflow_run_id"].is_string() || pending.contains(&"mlflow.trial_start"),
        "{body}"
    );
    wait_outbox_empty(&app, Duration::from_secs(60)).await;
    let trial = wait_delivered(&app, "mirrored-t1", true, Duration::from_secs(5)).await;
    if let Some(early) = body["mlflow_run_id"].as_str() {
        assert_eq!(
            trial["mlflow_run_id"], early,
            "the child run named in the reply is the one completed"
        );
    }
    let client = mlflow();
    let child = client
        .get_run(trial["mlflow_run_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(child.info.run_name.as_deref(), Some("mirrored-t1"));
    assert_eq!(child.info.status, RunStatus::Finished);
    let (_, run) = app.get("/runs/mirrored").await;
    assert_eq!(
        child.data.tag("mlflow.parentRunId"),
        run["mlflow_run_id"].as_str()
    );
    assert_eq!(child.data.tag("trial_id"), Some("mirrored-t1"));
    assert_eq!(child.data.param("controller.smooth"), Some("0.2"));
    let history = client
        .get_metric_history(&child.info.run_id, "val_loss")
        .await
        .unwrap();
    assert_eq!(history.len(), 12, "one val_loss point per epoch");
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    let files = client
        .list_artifacts(&ArtifactRoot::run(&child.info.run_id), None)
        .await
        .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for f in ["model.safetensors", "architecture.json", "metrics.json"] {
        assert!(names.contains(&f), "{names:?}");
    }
    // A reported trial becomes a child run too, and finalize closes the parent.
    app.post(
        "/bridge/record",
        &json!({"run_id": "mirrored", "trial_id": "mirrored-t2", "status": "failed",
                                       "metrics": {"accuracy": 0.1}, "parameters": {"lr": 0.5}}),
    )
    .await;
    app.post(
        "/bridge/finalize",
        &json!({"run_id": "mirrored", "status": "succeeded"}),
    )
    .await;
    wait_outbox_empty(&app, Duration::from_secs(60)).await;
    let (_, t2) = app.get("/trials/mirrored-t2").await;
    let failed = client
        .get_run(t2["mlflow_run_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(failed.info.status, RunStatus::Failed);
    let parent = client
        .get_run(run["mlflow_run_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(parent.info.status, RunStatus::Finished);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mlflow_artifacts_go_to_the_bucket() {
    let env = s3_env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(Backend::Sqlite, &env_refs).await;
    let run = unique("s3run");
    let (s, body) = app
        .post("/train", &json!({"trial_id": unique("s3trial"), "run_id": run, "dataset_id": "moons", "params": {"epochs": 5}}))
        .await;
    assert_eq!(s, 200, "{body}");
    let trial = wait_delivered(
        &app,
        body["trial_id"].as_str().unwrap(),
        false,
        Duration::from_secs(30),
    )
    .await;
    let uri = trial["artifact_uri"].as_str().unwrap();
    let bucket = service_var("MINIO_BUCKET");
    assert!(
        uri.starts_with(&format!("s3://{bucket}/cerebros/{run}/")),
        "{uri}"
    );
    let settings = runner::config::Settings::from_vars(
        &env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .unwrap();
    let store = runner::artifacts::ArtifactStore::from_settings(&settings)
        .await
        .unwrap();
    let model_uri = format!("{}/model.safetensors", uri.trim_end_matches('/'));
    let bytes = store.get_s3(&model_uri, 64 << 20).await.unwrap();
    assert_eq!(
        bytes.len() as f64,
        trial["metrics"]["artifact_bytes"].as_f64().unwrap()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_and_s3_outages_lose_nothing() {
    let experiment = unique("thunderhelm-outage");
    let dead = [
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:9".to_string()),
        ("MLFLOW_EXPERIMENT_NAME", experiment.clone()),
        ("MINIO_ENDPOINT", "http://127.0.0.1:9".to_string()),
        ("MINIO_ACCESS_KEY", service_var("MINIO_ACCESS_KEY")),
        ("MINIO_SECRET_KEY", service_var("MINIO_SECRET_KEY")),
        ("MINIO_BUCKET", service_var("MINIO_BUCKET")),
    ];
    let dead_refs: Vec<(&str, &str)> = dead.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(Backend::Sqlite, &dead_refs).await;
    let started = Instant::now();
    let (s, body) = app
        .post("/train", &json!({"trial_id": "outage-t1", "run_id": "outage", "dataset_id": "moons", "params": {"epochs": 5}}))
        .await;
    assert_eq!(s, 200, "training succeeds with MLflow and S3 down: {body}");
    assert_eq!(body["status"], "succeeded");
    assert!(
        !body["pending"].as_array().unwrap().is_empty(),
        "the reply says what is pending: {body}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let (s, _) = app
        .post(
            "/bridge/record",
            &json!({"run_id": "outage", "trial_id": "outage-t2", "metrics": {"accuracy": 0.4}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, ready) = app.get("/readyz").await;
    assert_eq!(
        s, 200,
        "an outage degrades readiness details, not the database check: {ready}"
    );
    assert!(ready["outbox"]["pending"].as_i64().unwrap() >= 3, "{ready}");
    let (url, dir) = app.stop().await;
    // Recovery: the same database, now with reachable services.
    let mut live = vec![
        ("MLFLOW_TRACKING_URI", service_var("MLFLOW_TRACKING_URI")),
        ("MLFLOW_EXPERIMENT_NAME", experiment),
    ];
    live.extend(s3_env());
    let live_refs: Vec<(&str, &str)> = live.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_on(url, dir, &live_refs).await;
    wait_outbox_empty(&app, Duration::from_secs(120)).await;
    let client = mlflow();
    for trial_id in ["outage-t1", "outage-t2"] {
        let (_, t) = app.get(&format!("/trials/{trial_id}")).await;
        let mirrored = client
            .get_run(
                t["mlflow_run_id"]
                    .as_str()
                    .expect("delivered after recovery"),
            )
            .await
            .unwrap();
        assert_eq!(mirrored.info.run_name.as_deref(), Some(trial_id));
    }
    let (_, t1) = app.get("/trials/outage-t1").await;
    let files = client
        .list_artifacts(
            &ArtifactRoot::run(t1["mlflow_run_id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert!(
        files.iter().any(|f| f.path == "model.safetensors"),
        "{files:?}"
    );
    app.stop().await;
}

/// With MLflow's artifact destination in S3 (the second MLflow of `scripts/test.sh`), a trained trial's files
/// are objects in that bucket, under MLflow's layout `<destination>/<experiment id>/<run id>/artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mlflow_on_s3_the_trial_files_are_objects_in_its_bucket() {
    let uri = service_var("THUNDERHELM_MLFLOW_S3_URI");
    let destination = service_var("THUNDERHELM_MLFLOW_S3_DESTINATION");
    assert!(destination.starts_with("s3://"), "{destination}");
    let mut env = vec![
        ("MLFLOW_TRACKING_URI", uri.clone()),
        ("MLFLOW_EXPERIMENT_NAME", unique("thunderhelm-s3dest")),
    ];
    env.extend(s3_env());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(Backend::Sqlite, &env_refs).await;
    let trial_id = unique("s3dest");
    let (s, body) = app
        .post(
            "/train",
            &json!({"trial_id": trial_id, "run_id": unique("s3dest-run"), "dataset_id": "moons",
                                 "params": {"epochs": 4}}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    wait_outbox_empty(&app, Duration::from_secs(60)).await;
    let trial = wait_delivered(&app, &trial_id, true, Duration::from_secs(5)).await;
    let root = trial["artifact_uri"].as_str().unwrap();
    let relative = root
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or_else(|| panic!("proxied artifact root expected: {root}"));
    let settings = runner::config::Settings::from_vars(
        &s3_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
    .unwrap();
    let store = runner::artifacts::ArtifactStore::from_settings(&settings)
        .await
        .unwrap();
    let prefix = format!("{}/{relative}", destination.trim_end_matches('/'));
    let model = store
        .get_s3(&format!("{prefix}/model.safetensors"), 64 << 20)
        .await
        .unwrap();
    assert_eq!(
        model.len() as f64,
        trial["metrics"]["artifact_bytes"].as_f64().unwrap()
    );
    let architecture = store
        .get_s3(&format!("{prefix}/architecture.json"), 1 << 20)
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&architecture).is_ok());
    let metrics = store
        .get_s3(&format!("{prefix}/metrics.json"), 1 << 20)
        .await
        .unwrap();
    let metrics: Value = serde_json::from_slice(&metrics).unwrap();
    assert_eq!(metrics["accuracy"], trial["metrics"]["accuracy"]);
    // MLflow serves the same bytes back through its proxy.
    let through_mlflow = MlflowClient::new(Config::new(&uri).unwrap())
        .unwrap()
        .download_artifact_bytes(&ArtifactRoot::uri(root), "model.safetensors")
        .await
        .unwrap();
    assert_eq!(through_mlflow, model);
    app.stop().await;
}
