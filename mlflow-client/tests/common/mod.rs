//! Shared helpers for the integration tests: a real MLflow server and unique names.
//!
//! When `MLFLOW_TRACKING_URI` is set, the tests use that server. Otherwise they run
//! `scripts/start-mlflow.sh` (which installs MLflow 3.17.2 into `.cache/venvs/mlflow` if needed and
//! starts the shared server) and read the URI it writes to `.cache/run/mlflow.env`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlflow_client::{Config, MlflowClient, RetryPolicy};

/// The workspace root (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent directory")
        .to_path_buf()
}

fn run_start_script(args: &[&str]) {
    let script = repo_root().join("scripts/start-mlflow.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} {args:?} failed ({status}); MLflow is required for these tests",
        script.display()
    );
}

/// URI of the MLflow server the tests use (started once per test binary when needed).
pub fn tracking_uri() -> &'static str {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| {
        if let Ok(uri) = std::env::var("MLFLOW_TRACKING_URI")
            && !uri.trim().is_empty()
        {
            return uri.trim().to_owned();
        }
        eprintln!(
            "MLFLOW_TRACKING_URI is unset: starting the shared server with scripts/start-mlflow.sh"
        );
        run_start_script(&[]);
        let env_file = repo_root().join(".cache/run/mlflow.env");
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", env_file.display()));
        text.lines()
            .find_map(|l| l.strip_prefix("export MLFLOW_TRACKING_URI="))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no MLFLOW_TRACKING_URI in {}", env_file.display()))
    })
}

/// A configuration for the shared server; auth variables from the environment are honoured.
pub fn config() -> Config {
    let uri = tracking_uri().to_owned();
    Config::from_lookup(|name| {
        if name == "MLFLOW_TRACKING_URI" {
            Some(uri.clone())
        } else {
            std::env::var(name).ok()
        }
    })
    .expect("valid configuration")
    .expect("tracking URI is set")
    .with_retry(RetryPolicy {
        max_retries: 3,
        backoff_factor: 0.2,
        backoff_jitter: 0.1,
        ..RetryPolicy::default()
    })
}

/// A client of the shared server.
pub fn client() -> MlflowClient {
    MlflowClient::new(config()).expect("client")
}

/// A name no other test (or earlier test run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after epoch")
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// An MLflow server of its own (for tests that kill it), stopped on drop.
pub struct PrivateServer {
    /// Base URI.
    pub uri: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PrivateServer {
    /// Starts `mlflow server` from the project venv on a free port with a temporary SQLite store.
    pub async fn start() -> PrivateServer {
        run_start_script(&["--install-only"]);
        let mlflow = repo_root().join(".cache/venvs/mlflow/bin/mlflow");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        let mut command = Command::new(&mlflow);
        command
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            .arg("--serve-artifacts")
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            .args(["--workers", "1"])
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("TMPDIR", dir.path().join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", mlflow.display()));
        let server = PrivateServer {
            uri: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(r) = http.get(format!("{}/health", server.uri)).send().await
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "private MLflow server did not become healthy; log: {}",
                std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Kills the server and all its workers at once (SIGKILL to the process group).
    pub fn kill(&mut self) {
        let pgid = self.child.id();
        let _ = Command::new("bash")
            .args(["-c", &format!("kill -KILL -- -{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
