//! Benchmark: log N metric points with `log_batch` and upload/download an M MiB artifact, counting the
//! HTTP requests sent, the wall time and the client's CPU time of each step. Prints one JSON line per repetition.
//!
//! ```text
//! MLFLOW_TRACKING_URI=http://127.0.0.1:55500 \
//!   cargo run --release -p mlflow-client --example bench -- [POINTS=10000] [MIB=64] [REPEAT=3]
//! ```
//!
//! The Python side is `bench/mlflow_python_baseline.py`; results are in `docs/benchmarks/mlflow-client.md`.

use std::io::Write;
use std::time::Instant;

use mlflow_client::{ArtifactRoot, CreateRun, Error, Metric, MlflowClient};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (points, mib, repeat) = (arg(1, 10_000), arg(2, 64), arg(3, 3));
    let client = MlflowClient::from_env()?.ok_or("MLFLOW_TRACKING_URI is not set")?;
    let experiment = client
        .get_or_create_experiment("mlflow-client-bench")
        .await?;

    let dir = std::env::temp_dir().join(format!("mlflow-client-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let blob = dir.join("blob.bin");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&blob)?);
    for _ in 0..(mib * 1024 * 1024 / 8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        file.write_all(&state.to_le_bytes())?;
    }
    file.flush()?;
    drop(file);

    for rep in 0..repeat {
        let run = client
            .create_run(&CreateRun {
                run_name: Some(format!("rust-{rep}")),
                ..CreateRun::in_experiment(&experiment)
            })
            .await?;
        let run_id = run.info.run_id;
        let metrics: Vec<Metric> = (0..points)
            .map(|i| Metric::new("loss", 1.0 / (i as f64 + 1.0), i as i64))
            .collect();

        let (metrics_requests, metrics_ms, metrics_cpu_ms) = measure(&client, async {
            client
                .log_batch(&run_id, &metrics, &[], &[])
                .await
                .map(drop)
        })
        .await?;
        let root = ArtifactRoot::run(&run_id);
        let (upload_requests, upload_ms, upload_cpu_ms) = measure(&client, async {
            client
                .upload_artifact(&root, "bench/blob.bin", blob.as_path())
                .await
        })
        .await?;
        let back = dir.join("back.bin");
        let (download_requests, download_ms, download_cpu_ms) = measure(&client, async {
            client
                .download_artifact_to_file(&root, "bench/blob.bin", &back)
                .await
                .map(drop)
        })
        .await?;
        if std::fs::metadata(&back)?.len() != std::fs::metadata(&blob)?.len() {
            return Err("downloaded size differs".into());
        }
        println!(
            "{}",
            serde_json::json!({
                "client": "rust",
                "rep": rep,
                "points": points,
                "metrics_requests": metrics_requests,
                "metrics_ms": metrics_ms,
                "metrics_cpu_ms": metrics_cpu_ms,
                "artifact_mib": mib,
                "upload_requests": upload_requests,
                "upload_ms": upload_ms,
                "upload_cpu_ms": upload_cpu_ms,
                "download_requests": download_requests,
                "download_ms": download_ms,
                "download_cpu_ms": download_cpu_ms,
            })
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Requests sent, wall milliseconds and CPU milliseconds of this process (user + system) for `step`.
async fn measure(
    client: &MlflowClient,
    step: impl std::future::Future<Output = Result<(), Error>>,
) -> Result<(u64, f64, f64), Error> {
    let before = client.requests_total();
    let cpu_before = cpu_ms();
    let started = Instant::now();
    step.await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((
        client.requests_total() - before,
        (ms * 10.0).round() / 10.0,
        cpu_ms() - cpu_before,
    ))
}

/// CPU time of this process in milliseconds from `/proc/self/stat` (utime + stime, 100 ticks per second
/// on Linux); 0 where that file does not exist.
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}
