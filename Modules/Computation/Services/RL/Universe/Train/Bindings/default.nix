# Train binds to the algorithm's learn() loop.
{
  module = "rl_module.train";
  binding = "stable_baselines3.common.base_class.BaseAlgorithm.learn";
  envPrefix = "RL_TRAIN_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
