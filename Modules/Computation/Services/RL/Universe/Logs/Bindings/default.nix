# Logs binds to Python logging bridged into the OpenTelemetry logs SDK; the endpoint honours
# OpenTelemetry's own variables.
{
  module = "rl_module.logs";
  binding = "opentelemetry.sdk._logs.LoggingHandler";
  envPrefix = "RL_LOGS_";
  env = {
    endpoint = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
  };
  envFallbacks = {
    endpoint = [ "OTEL_EXPORTER_OTLP_ENDPOINT" ];
  };
  flags = {
    enable = "--logs";
    level = "--log-level";
  };
  aliases = { };
}
