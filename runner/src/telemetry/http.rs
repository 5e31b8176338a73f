//! HTTP server spans and W3C trace-context propagation (`traceparent`, `tracestate`).

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, Response};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::exporting;

/// The server span of one request, named `METHOD /route` (just `METHOD` for an unknown route) with OpenTelemetry's HTTP attributes and the request
/// id; its parent is the caller's `traceparent` when tracing is on.
pub fn request_span<B>(req: &Request<B>, request_id_header: &str) -> Span {
    let method = req.method().as_str();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let request_id = req
        .headers()
        .get(request_id_header)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        otel.name = %route.map_or_else(|| method.to_string(), |r| format!("{method} {r}")),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        url.path = %req.uri().path(),
        http.response.status_code = Empty,
        request_id = %request_id,
    );
    if exporting() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the reply's status on the request span (5xx marks the span as an error).
pub fn record_response<B>(response: &Response<B>, _latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// Writes the current span's `traceparent` (and `tracestate`) into `headers`; does nothing unless tracing is on.
/// Installed as the MLflow client's header injector.
pub fn inject_trace_context(headers: &mut HeaderMap) {
    if !exporting() {
        return;
    }
    let cx = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}
