//! Logging and tracing.
//!
//! Logs are JSON lines on stderr through `tracing`, filtered by `RUST_LOG` / `LOG_LEVEL`. When an OTLP endpoint
//! is configured ([`OtelSettings`]), the same spans are also exported over OTLP (http/protobuf or gRPC), the
//! W3C `traceparent` / `tracestate` of callers and of outgoing MLflow calls is honoured and propagated, and every
//! log line inside a span carries its `trace_id` and `span_id`. Without an endpoint no exporter, propagator or
//! OpenTelemetry layer is installed.

mod export;
mod format;
pub mod http;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::OtelSettings;

pub use http::inject_trace_context;

/// Set once an OTLP exporter is installed; everything trace-related is skipped while it is false.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported over OTLP (and trace context propagated).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The installed tracing pipeline; keep it until the end of `main` and call [`Telemetry::shutdown`] there.
#[must_use = "spans are only flushed by Telemetry::shutdown"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether an OTLP exporter is installed.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes the spans still buffered and stops the exporter. The SDK's shutdown blocks until the batch thread
    /// has exported, and that export may need this runtime, so it runs on a blocking thread and is awaited.
    pub async fn shutdown(mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        EXPORTING.store(false, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing the OTLP trace exporter failed"),
            Err(e) => tracing::warn!(error = %e, "flushing the OTLP trace exporter panicked"),
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Not shut down through `shutdown` (an early return): flush from a plain thread so that neither a
            // runtime worker blocks nor a runtime is needed here.
            EXPORTING.store(false, Ordering::Relaxed);
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

/// Targets whose spans are never exported: the exporter's own transport, so exporting cannot feed itself.
fn export_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
}

/// Installs the global subscriber: `filter` (an `EnvFilter` directive; `info` when it does not parse), JSON lines
/// on stderr and, with `otel`, the OpenTelemetry layer exporting over OTLP. A second call installs nothing and
/// exports nothing.
///
/// With `otel` it must run inside the tokio runtime: the exporter sends through that runtime (see
/// `export.rs` for why). Fails when the exporter cannot be built.
pub fn init(filter: &str, otel: Option<&OtelSettings>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otel.map(export::tracer_provider).transpose()?;
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .event_format(format::WithTraceIds::new(
            tracing_subscriber::fmt::format()
                .json()
                .with_current_span(true)
                .with_span_list(false),
            provider.is_some(),
        ))
        .with_writer(std::io::stderr);
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("cerebros-runner"))
            .with_filter(export_filter())
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel_layer)
        .try_init()
        .is_ok();
    let provider = match provider {
        Some(p) if installed => {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            EXPORTING.store(true, Ordering::Relaxed);
            if let Some(otel) = otel {
                tracing::info!(
                    endpoint = %otel.traces_endpoint,
                    protocol = ?otel.protocol,
                    service = %otel.service_name,
                    "exporting traces over OTLP"
                );
            }
            Some(p)
        }
        Some(p) => {
            let _ = std::thread::spawn(move || p.shutdown()).join();
            None
        }
        None => None,
    };
    Ok(Telemetry { provider })
}
