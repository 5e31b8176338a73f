//! Round trip against a real MLflow server.
//!
//! ```text
//! MLFLOW_TRACKING_URI=http://127.0.0.1:55500 cargo run -p mlflow-client --example roundtrip -- FILE
//! ```
//!
//! Gets or creates the experiment `$MLFLOW_EXPERIMENT_NAME` (default `mlflow-client-roundtrip`), creates a
//! parent run and a child run nested under it, logs 5000 metric points (plus params and tags) through
//! batch logging, uploads FILE as an artifact of the parent run, downloads it back and prints one JSON
//! line `{"experiment_id", "run_id", "child_run_id", "sha256"}` (sha256 of the downloaded bytes).
//!
//! On failure it prints the typed error on stderr and exits with status 1 (2 for usage errors). Unless
//! `MLFLOW_HTTP_REQUEST_MAX_RETRIES` is set, it retries twice instead of MLflow's default 7, so an
//! unreachable server fails in seconds rather than minutes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use futures::StreamExt;
use mlflow_client::{
    ArtifactRoot, Config, CreateRun, Error, Metric, MlflowClient, Param, RunStatus, Tag, now_millis,
};
use sha2::{Digest, Sha256};

const METRIC_POINTS: i64 = 5000;

#[tokio::main]
async fn main() -> ExitCode {
    let Some(file) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: roundtrip FILE   (with MLFLOW_TRACKING_URI set)");
        return ExitCode::from(2);
    };
    let client = match client_from_env() {
        Ok(Some(client)) => client,
        Ok(None) => {
            eprintln!("error: MLFLOW_TRACKING_URI is not set");
            return ExitCode::from(2);
        }
        Err(e) => return fail(&e),
    };
    match roundtrip(&client, &file).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(error: &Error) -> ExitCode {
    eprintln!("error: {error}");
    eprintln!("detail: {error:?}");
    ExitCode::FAILURE
}

fn client_from_env() -> Result<Option<MlflowClient>, Error> {
    let Some(mut config) = Config::from_env()? else {
        return Ok(None);
    };
    if std::env::var_os("MLFLOW_HTTP_REQUEST_MAX_RETRIES").is_none() {
        config.retry.max_retries = 2;
    }
    MlflowClient::new(config).map(Some)
}

async fn roundtrip(client: &MlflowClient, file: &Path) -> Result<serde_json::Value, Error> {
    let experiment_name = std::env::var("MLFLOW_EXPERIMENT_NAME")
        .unwrap_or_else(|_| "mlflow-client-roundtrip".to_owned());
    let experiment_id = client.get_or_create_experiment(&experiment_name).await?;

    let parent = client
        .create_run(&CreateRun {
            run_name: Some("roundtrip-parent".into()),
            tags: vec![Tag::new("example", "roundtrip")],
            user_id: std::env::var("USER").ok(),
            ..CreateRun::in_experiment(&experiment_id)
        })
        .await?;
    let run_id = parent.info.run_id.clone();
    let child = client
        .create_run(&CreateRun {
            run_name: Some("roundtrip-child".into()),
            parent_run_id: Some(run_id.clone()),
            ..CreateRun::in_experiment(&experiment_id)
        })
        .await?;
    let child_run_id = child.info.run_id.clone();

    let metrics: Vec<Metric> = (0..METRIC_POINTS)
        .map(|step| {
            let x = step as f64;
            if step % 2 == 0 {
                Metric::new("loss", 1.0 / (1.0 + x / 100.0), step / 2)
            } else {
                Metric::new("accuracy", 1.0 - 0.5 / (1.0 + x / 100.0), step / 2)
            }
        })
        .collect();
    let params = [
        Param::new("learning_rate", "0.01"),
        Param::new("epochs", (METRIC_POINTS / 2).to_string()),
    ];
    let tags = [Tag::new("phase", "training")];
    client
        .log_batch(&child_run_id, &metrics, &params, &tags)
        .await?;
    client
        .log_batch(&run_id, &[], &[Param::new("children", "1")], &tags)
        .await?;

    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "artifact.bin".to_owned());
    let root = ArtifactRoot::uri(&parent.info.artifact_uri);
    let relative = format!("inputs/{name}");
    client.upload_artifact(&root, &relative, file).await?;

    let download = client.download_artifact(&root, &relative).await?;
    let mut hasher = Sha256::new();
    let mut stream = std::pin::pin!(download.into_stream());
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    let sha256 = hex::encode(hasher.finalize());

    let end = now_millis();
    client
        .update_run(&child_run_id, RunStatus::Finished, Some(end))
        .await?;
    client
        .update_run(&run_id, RunStatus::Finished, Some(end))
        .await?;

    Ok(serde_json::json!({
        "experiment_id": experiment_id,
        "run_id": run_id,
        "child_run_id": child_run_id,
        "sha256": sha256,
    }))
}
