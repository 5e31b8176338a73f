//! The JSON log line, plus the OpenTelemetry `trace_id` and `span_id` of the span it was written in.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a JSON event formatter; when `enabled`, appends `"trace_id"` and `"span_id"` to every line written
/// inside a span the OpenTelemetry layer records.
pub(super) struct WithTraceIds<F> {
    inner: F,
    enabled: bool,
}

impl<F> WithTraceIds<F> {
    /// Wraps `inner`; with `enabled` false it is `inner` unchanged.
    pub(super) fn new(inner: F, enabled: bool) -> Self {
        Self { inner, enabled }
    }
}

/// The ids of the innermost span of the event's scope that has an OpenTelemetry context.
fn trace_ids<S, N>(ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> Option<(String, String)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    // The SDK's own diagnostics may be written while it holds a span's data; never look spans up for them.
    if event.metadata().target().starts_with("opentelemetry") {
        return None;
    }
    let scope = ctx.event_scope()?;
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    scope
        .filter_map(|span| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch))
        .map(|cx| cx.span().span_context().clone())
        .find(|sc| sc.is_valid())
        .map(|sc| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.enabled {
            return self.inner.format_event(ctx, writer, event);
        }
        let Some((trace_id, span_id)) = trace_ids(ctx, event) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end();
        match body.strip_suffix('}') {
            Some(open) => writeln!(
                writer,
                "{open},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            None => writer.write_str(&line),
        }
    }
}
