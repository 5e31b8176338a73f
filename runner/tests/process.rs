//! The runner binary as an operator runs it: graceful SIGTERM, and kill -9 losing nothing.

#[path = "common/binary.rs"]
mod binary;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use binary::{free_port, wait_healthy};

fn start(data_dir: &std::path::Path, port: u16) -> Child {
    start_with(data_dir, port, &[])
}

fn start_with(data_dir: &std::path::Path, port: u16, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cerebros-runner"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(extra.iter().copied())
        .env("RUNNER_DATA_DIR", data_dir)
        .env("RUNNER_BIND", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUNNER_DATASET_DIRS", data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cerebros-runner")
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_training_finish_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(dir.path(), port);
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let train = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post(format!("http://127.0.0.1:{port}/train"))
                .json(&json!({"trial_id": "slow", "run_id": "r", "dataset_id": "moons",
                              "params": {"epochs": 300, "neurons_per_unit": 64, "levels": 3, "patience": null}}))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "-TERM");
    let resp = train.await.unwrap().expect("in-flight request completes");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(dir.path(), port);
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let body = json!({"run_id": "crash", "trial_id": format!("c{i}"), "metrics": {"accuracy": 0.5}});
                match client
                    .post(format!("http://127.0.0.1:{port}/bridge/record"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => acknowledged.push(format!("c{i}")),
                    _ => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&child, "-KILL");
    let _ = child.wait();
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() > 10,
        "only {} writes before the kill",
        acknowledged.len()
    );
    let port = free_port();
    let mut child = start(dir.path(), port);
    wait_healthy(&client, port).await;
    for trial in &acknowledged {
        let resp = client
            .get(format!("http://127.0.0.1:{port}/trials/{trial}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "acknowledged trial {trial} was lost"
        );
    }
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_training_killed_with_its_runner_is_trained_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lease = [("RUNNER_CLAIM_LEASE_SECS", "2")];
    let port = free_port();
    let mut child = start_with(dir.path(), port, &lease);
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let resp = client
        .post(format!("http://127.0.0.1:{port}/train"))
        .json(&json!({"trial_id": "victim", "run_id": "k9", "dataset_id": "spirals", "mode": "async",
                      "params": {"epochs": 150, "levels": 3, "neurons_per_unit": 128, "patience": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let trial_url = format!("http://127.0.0.1:{port}/trials/victim");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t: Value = client
            .get(&trial_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if t["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, "-KILL");
    let _ = child.wait();
    let port = free_port();
    let mut child = start_with(dir.path(), port, &lease);
    wait_healthy(&client, port).await;
    let trial_url = format!("http://127.0.0.1:{port}/trials/victim");
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let t: Value = client
            .get(&trial_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if t["status"] == "succeeded" || t["status"] == "failed" {
            break t;
        }
        assert!(Instant::now() < deadline, "stuck after restart: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(
        finished["attempts"], 2,
        "claimed once before the kill and once after: {finished}"
    );
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
