# Store binds to the algorithm's save()/load() and the tracking clients (MLflow, W&B, boto3).
{
  module = "rl_module.store";
  binding = "stable_baselines3.common.base_class.BaseAlgorithm.save";
  envPrefix = "RL_STORE_";
  env = { };
  envFallbacks = {
    # boto3's own variables for an S3-compatible endpoint.
    endpointUrl = [ "AWS_ENDPOINT_URL_S3" "AWS_ENDPOINT_URL" ];
  };
  flags = { };
  aliases = { };
}
