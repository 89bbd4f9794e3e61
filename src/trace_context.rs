//! W3C trace context (`traceparent`, `tracestate`): what wfc sends so that
//! a server it calls joins the current trace, and the trace a request or a
//! job it receives continues. Empty when nothing exports traces.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The headers that carry the current span's trace context.
#[must_use]
pub fn current() -> HashMap<String, String> {
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut headers);
    headers
}

/// The trace that `headers` (lower-case names) name, to continue.
#[must_use]
pub fn continued(headers: &HashMap<String, String>) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(headers)
}
