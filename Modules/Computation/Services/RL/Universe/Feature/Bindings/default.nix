# Feature binds to stable-baselines3's features extractors. The seed names its prefix RL_FEAT_.
{
  module = "rl_module.feature";
  binding = "stable_baselines3.common.torch_layers.BaseFeaturesExtractor";
  envPrefix = "RL_FEAT_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
