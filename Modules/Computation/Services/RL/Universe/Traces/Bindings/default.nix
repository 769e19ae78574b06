# Traces binds to the OpenTelemetry tracing SDK; the endpoint honours OpenTelemetry's own variables.
{
  module = "rl_module.traces";
  binding = "opentelemetry.sdk.trace.TracerProvider";
  envPrefix = "RL_TRACES_";
  env = {
    endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  };
  envFallbacks = {
    endpoint = [ "OTEL_EXPORTER_OTLP_ENDPOINT" ];
  };
  flags = {
    enable = "--traces";
    sampleRate = "--trace-sample-rate";
  };
  aliases = { };
}
