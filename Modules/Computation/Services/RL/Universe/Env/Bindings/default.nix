# Env binds to Gymnasium's registry through stable-baselines3's vectorized-environment helper.
{
  module = "rl_module.env";
  binding = "stable_baselines3.common.env_util.make_vec_env";
  envPrefix = "RL_ENV_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
