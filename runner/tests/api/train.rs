//! `/train` with the embedded defaults: real training on the shared datasets, local artifacts, bad input,
//! async mode, the queue limit, and replicas sharing one Postgres.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, data_dir, spawn_app_with, wait_trial};

fn dirs() -> String {
    data_dir().display().to_string()
}

async fn trains_the_shared_datasets(backend: Backend) {
    let app = spawn_app_with(backend, &[("RUNNER_DATASET_DIRS", &dirs())]).await;
    let digits = format!("file://{}/digits.csv", dirs());
    let (s, body) = app
        .post("/train", &json!({"trial_id": "digits-1", "run_id": "nas", "dataset_id": digits,
            "params": {"levels": 2, "units_per_level": 1, "neurons_per_unit": [128, 64], "lr": 0.001,
                       "epochs": 20, "batch_size": 32, "p_lateral_connection": 0, "predecessor_affinity": 1.0,
                       "dropout": 0, "normalization": false, "head": "kgam"}}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "succeeded");
    assert!(
        body["metrics"]["accuracy"].as_f64().unwrap() > 0.93,
        "{body}"
    );
    for m in [
        "loss",
        "val_loss",
        "latency_ms",
        "param_count",
        "artifact_bytes",
        "train_seconds",
        "epochs_run",
    ] {
        assert!(body["metrics"][m].is_number(), "missing {m}: {body}");
    }
    assert_eq!(body["dataset_size"], 1797);
    assert!(body["warnings"].to_string().contains("head"), "{body}");
    let uri = body["artifact_uri"]
        .as_str()
        .expect("artifacts written locally");
    let dir = uri.trim_start_matches("file://");
    for f in ["model.safetensors", "architecture.json", "metrics.json"] {
        assert!(std::path::Path::new(dir).join(f).exists(), "{dir}/{f}");
    }
    let iris = std::fs::read_to_string(data_dir().join("iris.csv")).unwrap();
    let rows: Vec<Value> = iris
        .lines()
        .skip(1)
        .map(|l| {
            Value::Array(
                l.split(',')
                    .map(|c| json!(c.parse::<f64>().unwrap()))
                    .collect(),
            )
        })
        .collect();
    let (s, body) = app
        .post("/train", &json!({"trial_id": "iris-inline", "run_id": "nas", "dataset": rows, "params": {"epochs": 60}}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body["metrics"]["accuracy"].as_f64().unwrap() > 0.85,
        "{body}"
    );
    let diabetes = format!("file://{}/diabetes.csv", dirs());
    let (s, body) = app
        .post(
            "/train",
            &json!({"trial_id": "diabetes", "run_id": "reg", "dataset_id": diabetes,
                                 "params": {"epochs": 80, "lr": 0.005}}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    for m in ["rmse", "mae", "r2"] {
        assert!(body["metrics"][m].is_number(), "missing {m}: {body}");
    }
    assert!(
        body["metrics"]["r2"].as_f64().unwrap() > 0.1,
        "better than predicting the mean: {body}"
    );
    // Same request again: the stored result, not a second training.
    let (s, again) = app
        .post(
            "/train",
            &json!({"trial_id": "diabetes", "run_id": "reg", "dataset_id": diabetes,
                                 "params": {"epochs": 80, "lr": 0.005}}),
        )
        .await;
    assert_eq!((s, &again["metrics"]), (200, &body["metrics"]));
    let (s, _) = app
        .post(
            "/train",
            &json!({"trial_id": "diabetes", "params": {"epochs": 3}, "dataset_id": "moons"}),
        )
        .await;
    assert_eq!(s, 409);
    app.stop().await;
}
both_backends!(trains_the_shared_datasets);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_training_input_is_a_422_naming_the_problem() {
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("single.csv"), "label\n1\n2\n").unwrap();
    let allowed = format!("{}:{}", dirs(), own.path().display());
    let app = spawn_app_with(Backend::Sqlite, &[("RUNNER_DATASET_DIRS", &allowed)]).await;
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "a,label\n1,0\n2,1\n3,0\n4,1\n").unwrap();
    let single_column = format!("file://{}/single.csv", own.path().display());
    let cases = [
        (
            json!({"trial_id": "b1", "dataset_id": "moons", "params": {"epochs": -3}}),
            "params.epochs",
        ),
        (
            json!({"trial_id": "b2", "dataset_id": "moons", "params": {"learning_rate": 0}}),
            "params.learning_rate",
        ),
        (
            json!({"trial_id": "b3", "dataset_id": "moons", "params": {"activation": "sparkle"}}),
            "params.activation",
        ),
        (
            json!({"trial_id": "b4", "dataset": [[1, 2, 0], [1, 1]]}),
            "dataset",
        ),
        (
            json!({"trial_id": "b5", "dataset_id": format!("file://{}/missing.csv", dirs())}),
            "dataset",
        ),
        (json!({"trial_id": "b6", "dataset": []}), "dataset"),
        (
            json!({"trial_id": "b7", "dataset_id": single_column}),
            "dataset",
        ),
        (
            json!({"trial_id": "b8", "dataset_id": format!("file://{}", outside.path().display())}),
            "dataset",
        ),
        (
            json!({"trial_id": "b9", "dataset_id": "http://example.com/data.csv"}),
            "dataset",
        ),
        (
            json!({"trial_id": "b10", "dataset": ["moons", "feature-view-7f3a"]}),
            "dataset",
        ),
        (json!({"trial_id": "b11"}), "dataset"),
        (json!({"trial_id": 5, "dataset_id": "moons"}), "trial_id"),
    ];
    for (body, field) in cases {
        let (s, reply) = app.post("/train", &body).await;
        assert_eq!(s, 422, "{body} -> {reply}");
        assert_eq!(reply["error"]["field"], field, "{body} -> {reply}");
    }
    let (_, reply) = app
        .post(
            "/train",
            &json!({"trial_id": "b12", "dataset": ["feature-view-7f3a"]}),
        )
        .await;
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("feature-view-7f3a"),
        "{reply}"
    );
    let (_, reply) = app.post("/train", &json!({"trial_id": "b13", "dataset_id": format!("file://{}", outside.path().display())})).await;
    assert!(
        !reply.to_string().contains("1,0"),
        "error must not echo file content: {reply}"
    );
    assert_eq!(app.get("/healthz").await.0, 200);
    app.stop().await;
}

async fn async_training_answers_202_and_finishes(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let resp = app
        .client
        .post(app.url("/train"))
        .json(&json!({"trial_id": "a1", "run_id": "async", "dataset_id": "moons", "mode": "async", "params": {"epochs": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(resp.headers()["location"], "/trials/a1");
    let t = wait_trial(&app, "a1", std::time::Duration::from_secs(60)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(t["metrics"]["accuracy"].as_f64().unwrap() > 0.7);
    app.stop().await;
}
both_backends!(async_training_answers_202_and_finishes);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RUNNER_TRAIN_CONCURRENCY", "1"),
            ("RUNNER_TRAIN_QUEUE", "2"),
        ],
    )
    .await;
    let slow = json!({"levels": 3, "neurons_per_unit": 256, "epochs": 400, "patience": null});
    let mut statuses = Vec::new();
    for i in 0..6 {
        let resp = app
            .client
            .post(app.url("/train"))
            .json(&json!({"trial_id": format!("q{i}"), "dataset_id": "spirals", "mode": "async", "params": slow}))
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        statuses.push(resp.status().as_u16());
    }
    assert!(
        statuses.contains(&202) && statuses.contains(&429),
        "{statuses:?}"
    );
    let (_, t) = app.get("/trials/q5").await;
    assert_eq!(
        t["error"]["code"], "not_found",
        "a refused training is not stored"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_train_each_trial_once() {
    let url = crate::helpers::fresh_postgres_database().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a =
        crate::helpers::spawn_on(url.clone(), dir_a, &[("RUNNER_TRAIN_CONCURRENCY", "1")]).await;
    let b = crate::helpers::spawn_on(url, dir_b, &[("RUNNER_TRAIN_CONCURRENCY", "1")]).await;
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (s, body) = app
            .post(
                "/train",
                &json!({"trial_id": format!("r{i}"), "run_id": "shared", "dataset_id": "moons",
                                     "mode": "async", "params": {"epochs": 15, "seed": i}}),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }
    for i in 0..8 {
        let t = wait_trial(&a, &format!("r{i}"), std::time::Duration::from_secs(120)).await;
        assert_eq!(t["status"], "succeeded", "{t}");
        assert_eq!(t["attempts"], 1, "trained exactly once: {t}");
    }
    let (_, run) = b.get("/runs/shared").await;
    assert_eq!(run["n_complete"], 8);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_over_the_time_limit_stops_and_fails_saying_why() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RUNNER_DATASET_DIRS", &dirs()),
            ("RUNNER_TRAIN_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let digits = format!("file://{}/digits.csv", dirs());
    let started = std::time::Instant::now();
    let (s, body) = app
        .post(
            "/train",
            &json!({"trial_id": "slow", "run_id": "limits", "dataset_id": digits,
                    "params": {"levels": 2, "units_per_level": 2, "neurons_per_unit": 64,
                               "epochs": 10000, "batch_size": 8}}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("time limit of 1 s") && error.contains("RUNNER_TRAIN_TIMEOUT_SECS"),
        "{body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "stopped near the limit, not after 10000 epochs"
    );
    let (_, trial) = app.get("/trials/slow").await;
    assert_eq!(trial["status"], "failed", "{trial}");
    app.stop().await;
}
