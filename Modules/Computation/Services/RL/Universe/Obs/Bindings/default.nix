# Obs binds to stable-baselines3's vectorized-environment wrappers over gymnasium spaces.
{
  module = "rl_module.obs";
  binding = "stable_baselines3.common.vec_env.VecNormalize";
  envPrefix = "RL_OBS_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
