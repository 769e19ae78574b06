# Sweep binds to Optuna's study (ask/tell), its samplers, pruners and RDB storage.
{
  module = "rl_module.sweep";
  binding = "optuna.study.Study.ask";
  envPrefix = "RL_SWEEP_";
  env = { };
  envFallbacks = { };
  flags = { };
  aliases = { };
}
