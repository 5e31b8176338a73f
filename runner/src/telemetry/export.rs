//! The OTLP span exporter and the tracer provider around it.
//!
//! The SDK's batch span processor exports from its own OS thread, with a minimal executor that has no tokio
//! reactor. So:
//! - over HTTP the exporter gets [`RuntimeHttpClient`]: the workspace's async reqwest 0.12 client, whose sends are
//!   spawned on the runner's tokio runtime and awaited from the batch thread through their `JoinHandle`. (The
//!   reqwest clients of `opentelemetry-otlp` are reqwest 0.13 — a second HTTP stack — and the async one panics
//!   with "no reactor running" on that thread, the blocking one when built inside the runtime.)
//! - over gRPC the tonic channel is built here, inside the runtime, which runs its connection tasks; `https://`
//!   collectors are verified against the webpki roots (rustls with ring, as the rest of the workspace).

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::transport::ClientTlsConfig;

use crate::config::{OtelSettings, OtlpProtocol};

/// Largest collector reply read (the OTLP reply is a small protobuf message).
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A tracer provider exporting in batches to the configured collector. Must be called inside the tokio runtime.
pub(super) fn tracer_provider(otel: &OtelSettings) -> anyhow::Result<SdkTracerProvider> {
    let runtime = tokio::runtime::Handle::try_current()
        .context("OTLP trace export must be set up inside the tokio runtime")?;
    let exporter = match otel.protocol {
        OtlpProtocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_http_client(RuntimeHttpClient::new(runtime, otel.timeout)?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(otel.traces_endpoint.as_str())
            .with_timeout(otel.timeout)
            .build(),
        OtlpProtocol::Grpc => {
            let _inside = runtime.enter();
            let mut builder = SpanExporter::builder()
                .with_tonic()
                .with_protocol(Protocol::Grpc)
                .with_endpoint(otel.traces_endpoint.as_str())
                .with_timeout(otel.timeout);
            if otel.traces_endpoint.starts_with("https://") {
                builder = builder.with_tls_config(ClientTlsConfig::new().with_enabled_roots());
            }
            builder.build()
        }
    }
    .with_context(|| format!("OTLP trace exporter for {}", otel.traces_endpoint))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(otel))
        .build())
}

/// The resource every span is exported with: the `OTEL_RESOURCE_ATTRIBUTES`, the service name and version.
fn resource(otel: &OtelSettings) -> Resource {
    let mut attributes: Vec<KeyValue> = otel
        .resource_attributes
        .iter()
        .filter(|(k, _)| k != "service.name")
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    if !otel
        .resource_attributes
        .iter()
        .any(|(k, _)| k == "service.version")
    {
        attributes.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    Resource::builder_empty()
        .with_attributes(attributes)
        .with_service_name(otel.service_name.clone())
        .build()
}

/// An OTLP/HTTP client usable from the batch span processor's thread: each send runs on the tokio runtime.
#[derive(Debug)]
pub(super) struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeHttpClient {
    /// A client sending on `runtime`, each request bounded by `timeout`.
    pub(super) fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("cerebros-runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("HTTP client for the OTLP exporter")?;
        Ok(Self { client, runtime })
    }
}

#[async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        // A runtime that has shut down drops the task: the JoinHandle then reports it cancelled, never panics.
        self.runtime
            .spawn(async move {
                let mut reply = client.execute(request).await?;
                let status = reply.status();
                let headers = std::mem::take(reply.headers_mut());
                let mut body = Vec::new();
                while let Some(chunk) = reply.chunk().await? {
                    if body.len() + chunk.len() > MAX_REPLY_BYTES {
                        return Err::<_, HttpError>(
                            "OTLP collector reply larger than 4 MiB".into(),
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                let mut response = Response::builder().status(status).body(Bytes::from(body))?;
                *response.headers_mut() = headers;
                Ok(response)
            })
            .await?
    }
}
