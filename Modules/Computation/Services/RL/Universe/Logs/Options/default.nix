# Logs: structured events (checkpoints, registrations, validations, hotswaps, errors).
{
  enable = {
    type = "bool";
    default = false;
    description = "Export logs through OpenTelemetry.";
    example = true;
  };
  endpoint = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "OTLP endpoint for logs; null writes OTLP JSON lines into the run directory.";
    example = "http://localhost:4317";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  level = {
    type = { enum = [ "debug" "info" "warn" "error" ]; };
    default = "info";
    description = "Lowest level of events that are emitted.";
    example = "debug";
  };
  protocol = {
    type = { enum = [ "grpc" "http" ]; };
    default = "grpc";
    description = "OTLP transport: grpc, or http (protobuf over HTTP).";
    example = "http";
  };
}
