//! `cerebros-runner`: starts the HTTP service from the environment (DESIGN §2.1).

use anyhow::Context;
use runner::config::Settings;
use runner::startup::{Application, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("cerebros-runner {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let settings = Settings::from_env().context("configuration")?;
    runner::telemetry::init(&settings.log_filter);
    let app = Application::build(settings).await.context("startup")?;
    app.run_until(shutdown_signal()).await
}
