# Logs binds to Python logging bridged into the OpenTelemetry logs SDK; the endpoint honours
# OpenTelemetry's own variables.
{
  module = "rl_module.logs";
  binding = "opentelemetry.instrumentation.logging.handler.LoggingHandler";
  envPrefix = "RL_LOGS_";
  env = {
    endpoint = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
    protocol = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
  };
  envFallbacks = {
    endpoint = [ "OTEL_EXPORTER_OTLP_ENDPOINT" ];
    protocol = [ "OTEL_EXPORTER_OTLP_PROTOCOL" ];
  };
  flags = {
    enable = "--logs";
    level = "--log-level";
  };
  aliases = {
    # OpenTelemetry spells the HTTP transport "http/protobuf".
    protocol = { "http/protobuf" = "http"; };
  };
}
