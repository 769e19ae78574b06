# Infer binds to the policy's predict().
{
  module = "rl_module.infer";
  binding = "stable_baselines3.common.base_class.BaseAlgorithm.predict";
  envPrefix = "RL_INFER_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
