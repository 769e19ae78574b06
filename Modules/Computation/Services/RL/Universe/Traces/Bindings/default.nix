# Traces binds to the OpenTelemetry tracing SDK; the endpoint honours OpenTelemetry's own variables.
{
  module = "rl_module.traces";
  binding = "opentelemetry.sdk.trace.TracerProvider";
  envPrefix = "RL_TRACES_";
  env = {
    endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    protocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
  };
  envFallbacks = {
    endpoint = [ "OTEL_EXPORTER_OTLP_ENDPOINT" ];
    protocol = [ "OTEL_EXPORTER_OTLP_PROTOCOL" ];
  };
  flags = {
    enable = "--traces";
    sampleRate = "--trace-sample-rate";
  };
  aliases = {
    # OpenTelemetry spells the HTTP transport "http/protobuf".
    protocol = { "http/protobuf" = "http"; };
  };
}
