//! `cerebros-runner`: starts the HTTP service from the environment (DESIGN §2.1).

use anyhow::Context;
use runner::config::Settings;
use runner::startup::{Application, shutdown_signal};

/// mimalloc: per-thread free lists suit a server that allocates small JSON values on every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("cerebros-runner {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let settings = Settings::from_env().context("configuration")?;
    let telemetry = runner::telemetry::init(&settings.log_filter, settings.otel.as_ref())
        .context("telemetry")?;
    let served = match Application::build(settings).await.context("startup") {
        Ok(app) => app.run_until(shutdown_signal()).await,
        Err(e) => Err(e),
    };
    // After the server and its workers have stopped: flush the spans still buffered.
    telemetry.shutdown().await;
    served
}
