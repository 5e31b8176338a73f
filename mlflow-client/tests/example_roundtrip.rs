//! Runs `examples/roundtrip.rs` (built by `cargo test -p mlflow-client`) against the real server and
//! checks what it printed against what the server holds.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use mlflow_client::{ArtifactRoot, PARENT_RUN_ID_TAG};
use sha2::{Digest, Sha256};

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = profile_dir.join("examples/roundtrip");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test -p mlflow-client` (which builds the examples) or \
         `cargo build -p mlflow-client --example roundtrip` first",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn roundtrip_example_prints_what_the_server_holds() {
    let client = common::client();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payload.bin");
    let content: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(&content))
        .expect("write payload");
    let expected_sha = hex::encode(Sha256::digest(&content));

    let experiment = common::unique("example-roundtrip");
    let output = Command::new(example_binary())
        .arg(&file)
        .env("MLFLOW_TRACKING_URI", common::tracking_uri())
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .output()
        .expect("run example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "example failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON line");
    let field = |k: &str| {
        line[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {line}"))
            .to_owned()
    };
    let (experiment_id, run_id, child_run_id) = (
        field("experiment_id"),
        field("run_id"),
        field("child_run_id"),
    );
    assert_eq!(field("sha256"), expected_sha);

    let exp = client
        .get_experiment_by_name(&experiment)
        .await
        .expect("lookup")
        .expect("experiment exists");
    assert_eq!(exp.experiment_id, experiment_id);
    let child = client.get_run(&child_run_id).await.expect("child");
    assert_eq!(child.data.tag(PARENT_RUN_ID_TAG), Some(run_id.as_str()));
    let points = client
        .get_metric_history(&child_run_id, "loss")
        .await
        .expect("loss")
        .len()
        + client
            .get_metric_history(&child_run_id, "accuracy")
            .await
            .expect("acc")
            .len();
    assert!(points >= 5000, "{points} metric points");
    assert!(!child.data.params.is_empty() && child.data.tag("phase").is_some());
    let stored = client
        .download_artifact_bytes(&ArtifactRoot::run(&run_id), "inputs/payload.bin")
        .await
        .expect("artifact of the parent run");
    assert_eq!(hex::encode(Sha256::digest(&stored)), expected_sha);
}

#[test]
fn roundtrip_example_fails_with_the_typed_error_when_unreachable() {
    let port = common::free_port();
    let output = Command::new(example_binary())
        .arg("/dev/null")
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        .output()
        .expect("run example");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("transport error after 2 attempt(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("Transport {"), "{stderr}");
}
