//! The bridge endpoints: contracts, idempotency, conflicts, best-trial selection.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

fn record(run: &str, trial: &str, status: &str, accuracy: f64) -> Value {
    json!({"run_id": run, "trial_id": trial, "status": status, "metrics": {"accuracy": accuracy, "val_loss": 1.0 - accuracy},
           "parameters": {"lr": accuracy / 10.0}, "warnings": [], "spectral_norm": false})
}

async fn start_record_finalize_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, body) = app
        .post("/bridge/start", &json!({"run_id": "r1", "timestamp": "2025-09-27T18:38:59.123456Z", "budget": {"max_trials": 3}}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "started");
    assert_eq!(body["run_id"], "r1");
    assert!(body.get("mlflow_run_id").is_some());
    for (i, acc) in [0.5, 0.9, 0.7].iter().enumerate() {
        let (s, body) = app
            .post(
                "/bridge/record",
                &record("r1", &format!("t{i}"), "succeeded", *acc),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["trial"], format!("t{i}"));
        assert_eq!(body["status"], "succeeded");
    }
    // A failed trial with a higher accuracy must not win.
    app.post("/bridge/record", &record("r1", "t-failed", "failed", 0.99))
        .await;
    let (s, fin) = app
        .post(
            "/bridge/finalize",
            &json!({"run_id": "r1", "status": "succeeded"}),
        )
        .await;
    assert_eq!(s, 200, "{fin}");
    assert_eq!(fin["trials"], 4);
    assert_eq!(fin["best_trial_id"], "t1");
    assert_eq!(fin["best_trial"]["trial_id"], "t1");
    assert_eq!(fin["status"], "succeeded");
    assert!(fin["duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(fin["metrics"]["accuracy"], 0.9);
    // Finalize is idempotent.
    let (s2, fin2) = app
        .post(
            "/bridge/finalize",
            &json!({"run_id": "r1", "status": "SUCCEEDED"}),
        )
        .await;
    assert_eq!((s2, &fin2["duration_ms"]), (200, &fin["duration_ms"]));
    let (s3, _) = app
        .post(
            "/bridge/finalize",
            &json!({"run_id": "r1", "status": "failed"}),
        )
        .await;
    assert_eq!(s3, 409);
    app.stop().await;
}
both_backends!(start_record_finalize_round_trip);

async fn the_objective_decides_the_best_trial(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, _) = app
        .post(
            "/bridge/start",
            &json!({"run_id": "r", "objective": {"metric": "val_loss", "direction": "minimize"}}),
        )
        .await;
    assert_eq!(s, 200);
    for (t, acc) in [("a", 0.6), ("b", 0.8), ("c", 0.7)] {
        app.post("/bridge/record", &record("r", t, "succeeded", acc))
            .await;
    }
    let (_, fin) = app.post("/bridge/finalize", &json!({"run_id": "r"})).await;
    assert_eq!(fin["best_trial_id"], "b");
    let (_, run) = app.get("/runs/r").await;
    assert_eq!(run["direction"], "minimize");
    assert_eq!(run["objective"]["metric"], "val_loss");
    assert_eq!(run["best_params"]["lr"], 0.08);
    assert!((run["best_value"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(
        (run["n_trials"].as_u64(), run["n_complete"].as_u64()),
        (Some(3), Some(3))
    );
    app.stop().await;
}
both_backends!(the_objective_decides_the_best_trial);

async fn concurrent_identical_records_leave_one_trial(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = record("conc", "same-trial", "succeeded", 0.8);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = app.client.clone();
        let url = app.url("/bridge/record");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (_, trials) = app.get("/runs/conc/trials").await;
    assert_eq!(trials["total"], 1);
    assert_eq!(trials["trials"].as_array().unwrap().len(), 1);
    app.stop().await;
}
both_backends!(concurrent_identical_records_leave_one_trial);

async fn a_reused_trial_id_with_other_content_is_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.post("/bridge/record", &record("r", "t", "succeeded", 0.5))
            .await
            .0,
        200
    );
    assert_eq!(
        app.post("/bridge/record", &record("r", "t", "succeeded", 0.5))
            .await
            .0,
        200
    );
    let (s, body) = app
        .post("/bridge/record", &record("r", "t", "succeeded", 0.6))
        .await;
    assert_eq!(s, 409);
    assert_eq!(body["error"]["code"], "conflict");
    let (s, _) = app
        .post(
            "/bridge/record",
            &record("other-run", "t", "succeeded", 0.5),
        )
        .await;
    assert_eq!(s, 409);
    let (_, trial) = app.get("/trials/t").await;
    assert_eq!(trial["metrics"]["accuracy"], 0.5);
    app.stop().await;
}
both_backends!(a_reused_trial_id_with_other_content_is_a_conflict);

async fn repeated_starts_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = json!({"run_id": "r", "dataset_id": "iris", "objective": "loss", "parameters": {"mutation_rate": 0.1}});
    assert_eq!(app.post("/bridge/start", &start).await.0, 200);
    assert_eq!(app.post("/bridge/start", &start).await.0, 200);
    let (_, run) = app.get("/runs/r").await;
    assert_eq!(run["direction"], "minimize");
    let mut changed = start.clone();
    changed["dataset_id"] = json!("digits");
    let (s, body) = app.post("/bridge/start", &changed).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dataset_id")
    );
    app.stop().await;
}
both_backends!(repeated_starts_change_nothing);

async fn run_and_trial_ids_are_separate_key_spaces(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.post("/bridge/start", &json!({"run_id": "x"})).await.0,
        200
    );
    assert_eq!(
        app.post("/bridge/record", &record("x", "x", "succeeded", 0.3))
            .await
            .0,
        200
    );
    let (s, run) = app.get("/runs/x").await;
    assert_eq!((s, run["n_trials"].as_u64()), (200, Some(1)));
    let (s, trial) = app.get("/trials/x").await;
    assert_eq!((s, trial["run_id"].as_str()), (200, Some("x")));
    app.stop().await;
}
both_backends!(run_and_trial_ids_are_separate_key_spaces);

async fn nested_payloads_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, _) = app
        .post("/bridge/start", &json!({"run_id": "n", "payload": {"run_id": "n", "dataset_id": "iris", "objective": "accuracy"}}))
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .post("/bridge/record", &json!({"run_id": "n", "payload": {"trial_id": "t", "status": "Canceled", "metrics": {}}}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (_, run) = app.get("/runs/n").await;
    assert_eq!(run["dataset_id"], "iris");
    app.stop().await;
}
both_backends!(nested_payloads_are_accepted);
