# Metrics: OpenTelemetry metric streams from training and evaluation.
{
  enable = {
    type = "bool";
    default = false;
    description = "Export metrics.";
    example = true;
  };
  endpoint = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "OTLP endpoint for metrics; null writes OTLP JSON lines into the run directory.";
    example = "http://localhost:4317";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  protocol = {
    type = { enum = [ "grpc" "http" ]; };
    default = "grpc";
    description = "OTLP transport: grpc, or http (protobuf over HTTP).";
    example = "http";
  };
  exportInterval = {
    type = "numbers.positive";
    default = 10;
    description = "Seconds between metric exports.";
    example = 5;
  };
  trackReward = {
    type = "bool";
    default = true;
    description = "Record episode reward and length.";
    example = false;
  };
  trackLoss = {
    type = "bool";
    default = true;
    description = "Record policy and value losses.";
    example = false;
  };
  trackEntropy = {
    type = "bool";
    default = true;
    description = "Record policy entropy.";
    example = false;
  };
  trackFps = {
    type = "bool";
    default = true;
    description = "Record training throughput (environment steps per second).";
    example = false;
  };
  granularity = {
    type = { enum = [ "episode" "step" ]; };
    default = "episode";
    description = "Record rewards per episode, or also every step (rl.env.step.reward; high volume).";
    example = "step";
  };
  prometheusPort = {
    type = { nullOr = "port"; };
    default = null;
    description = "Also serve the metrics for Prometheus to scrape on this port (0 picks a free one); null serves none.";
    example = 9464;
  };
  prometheusAddress = {
    type = "nonEmptyStr";
    default = "127.0.0.1";
    description = "Address the Prometheus endpoint listens on.";
    example = "0.0.0.0";
  };
}
