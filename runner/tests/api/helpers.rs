//! `spawn_app`: the real runner on a random port, against a fresh SQLite file or a fresh Postgres database.

use std::collections::HashMap;
use std::net::SocketAddr;

use runner::config::Settings;
use runner::startup::Application;
use serde_json::Value;

pub use crate::services::{fresh_postgres_database, service_var};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running runner and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Database URL for a backend inside `data_dir`.
pub async fn database_url(backend: Backend, data_dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.join("runner.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    }
}

/// Starts the runner with extra environment variables.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = database_url(backend, data_dir.path()).await;
    spawn_on(database_url, data_dir, extra).await
}

/// Starts the runner on an existing database and data dir.
pub async fn spawn_on(
    database_url: String,
    data_dir: tempfile::TempDir,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("RUNNER_BIND".into(), "127.0.0.1".into());
    vars.insert("PORT".into(), "0".into());
    vars.insert(
        "RUNNER_DATA_DIR".into(),
        data_dir.path().display().to_string(),
    );
    vars.insert("RUNNER_DATABASE_URL".into(), database_url.clone());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_vars(&vars).expect("test settings");
    let app = Application::build(settings).await.expect("build app");
    let addr = app.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        database_url,
        data_dir,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// Starts the runner with no extra settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

impl TestApp {
    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs JSON and returns status and body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GETs and returns status and body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server gracefully and returns its data dir and database URL for a restart.
    pub async fn stop(mut self) -> (String, tempfile::TempDir) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        (self.database_url, self.data_dir)
    }
}

/// Generates a SQLite and a Postgres variant of an async test case `fn(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// The shared datasets of the repository (`tests/data`).
pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .canonicalize()
        .unwrap()
}

/// Polls a trial until it reaches a final status.
pub async fn wait_trial(app: &TestApp, trial_id: &str, timeout: std::time::Duration) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (_, t) = app.get(&format!("/trials/{trial_id}")).await;
        if matches!(
            t["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trial {trial_id} did not finish: {t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
