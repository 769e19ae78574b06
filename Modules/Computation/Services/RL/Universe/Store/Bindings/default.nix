# Store binds to the algorithm's save()/load() and the tracking clients.
{
  module = "rl_module.store";
  binding = "stable_baselines3.common.base_class.BaseAlgorithm.save";
  envPrefix = "RL_STORE_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
