# Metrics binds to the OpenTelemetry metrics SDK. The endpoint honours OpenTelemetry's own variables:
# the signal's variable first, then the generic OTEL_EXPORTER_OTLP_ENDPOINT, as OpenTelemetry documents.
{
  module = "rl_module.metrics";
  binding = "opentelemetry.sdk.metrics.MeterProvider";
  envPrefix = "RL_METRICS_";
  env = {
    endpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
    protocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
  };
  envFallbacks = {
    endpoint = [ "OTEL_EXPORTER_OTLP_ENDPOINT" ];
    protocol = [ "OTEL_EXPORTER_OTLP_PROTOCOL" ];
  };
  flags = {
    enable = "--metrics";
  };
  aliases = {
    # OpenTelemetry spells the HTTP transport "http/protobuf".
    protocol = { "http/protobuf" = "http"; };
  };
}
