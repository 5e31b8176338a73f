//! Building and running the application: storage, router, listener and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use crate::api::{self, AppContext, AppState};
use crate::artifacts::ArtifactStore;
use crate::config::Settings;
use crate::datasets::DatasetResolver;
use crate::metrics::Metrics;
use crate::search_state::SearchStates;
use crate::store::Store;
use crate::tracking::Tracker;
use crate::training::Trainer;

/// A runner bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    stop: CancellationToken,
}

impl Application {
    /// Opens the database (running migrations) and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let store = Store::connect(&settings.database).await?;
        let artifacts = ArtifactStore::from_settings(&settings).await?;
        let tracker = Tracker::new(store.clone(), &settings, artifacts.clone()).await?;
        let resolver = DatasetResolver::new(
            &settings.dataset_dirs,
            &settings.dataset_http_allow,
            artifacts.clone(),
        );
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let trainer = Trainer::new(
            store.clone(),
            resolver,
            tracker.clone(),
            settings.train_concurrency,
            settings.train_queue,
            settings.claim_lease,
            settings.train_time_limit,
            stop.clone(),
            metrics.clone(),
        );
        let listener = TcpListener::bind(settings.bind).await?;
        tracing::info!(
            addr = %listener.local_addr()?,
            database = %settings.database.redacted(),
            mlflow = settings.mlflow.as_ref().map(|m| m.tracking_uri.as_str()),
            s3 = settings.s3.as_ref().map(|s| s.endpoint.as_str()),
            "cerebros-runner listening"
        );
        Ok(Self {
            listener,
            state: AppState::new(AppContext {
                store,
                settings: Arc::new(settings),
                trainer,
                tracker,
                artifacts,
                metrics,
                search_states: Arc::new(SearchStates::new()),
            }),
            stop,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let mut background = self.state.trainer.spawn_background();
        background.push(self.state.tracker.spawn_worker(self.stop.clone()));
        background.push(crate::expiry::spawn(
            store.clone(),
            self.state.settings.pending_ttl,
            self.stop.clone(),
        ));
        let app = api::router(self.state);
        let stop = self.stop.clone();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await?;
        self.stop.cancel();
        for task in background {
            let _ = task.await;
        }
        store.close().await;
        tracing::info!("cerebros-runner stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
