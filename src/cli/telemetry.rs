//! Traces over OTLP/HTTP (protobuf), for `--otlp-endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`: a batch exporter that the command flushes
//! when it ends.

use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::error::Error;

/// The tracer provider exporting to the collector at `endpoint` (its base
/// URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it, or its traces URL).
pub(super) fn provider(endpoint: &str) -> Result<SdkTracerProvider, Error> {
    let base = endpoint.trim_end_matches('/');
    let traces = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(traces)
        .build()
        .map_err(|err| Error::usage(format!("cannot export traces to `{endpoint}`: {err}")))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("wfc")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build())
}
