# Eval binds to stable-baselines3's evaluate_policy.
{
  module = "rl_module.eval";
  binding = "stable_baselines3.common.evaluation.evaluate_policy";
  envPrefix = "RL_EVAL_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
