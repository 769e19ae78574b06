# Agent binds to the stable-baselines3 algorithm classes.
{
  module = "rl_module.agent";
  binding = "stable_baselines3.{PPO,A2C,DQN,SAC,TD3}";
  envPrefix = "RL_AGENT_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
