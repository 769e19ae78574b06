# Traces: OpenTelemetry spans for the run, its episodes, evaluations and (sampled) steps.
{
  enable = {
    type = "bool";
    default = false;
    description = "Export traces.";
    example = true;
  };
  endpoint = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "OTLP endpoint for traces; null writes OTLP JSON lines into the run directory.";
    example = "http://localhost:4317";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  sampleRate = {
    type = { "numbers.between" = [ 0.0 1.0 ]; };
    default = 1.0;
    description = "Fraction of traces kept (parent-based trace-id ratio sampling).";
    example = 0.1;
  };
  traceEpisodes = {
    type = "bool";
    default = true;
    description = "A span per episode.";
    example = false;
  };
  traceSteps = {
    type = "bool";
    default = false;
    description = "A span per environment step (high volume).";
    example = true;
  };
  traceEvals = {
    type = "bool";
    default = true;
    description = "A span per evaluation.";
    example = false;
  };
  protocol = {
    type = { enum = [ "grpc" "http" ]; };
    default = "grpc";
    description = "OTLP transport: grpc, or http (protobuf over HTTP).";
    example = "http";
  };
}
