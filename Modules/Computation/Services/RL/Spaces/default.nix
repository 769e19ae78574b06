# The default search space of each algorithm for rl-sweep, after what RL Baselines3 Zoo tunes
# (rl_zoo3/hyperparams_opt.py). A parameter is an option of the Universe or a key of agent.kwargs
# (`agent.kwargs.<key>`), checked against the Universe by lib/universe.nix:
#   { float = [ low high ]; log = true; }   a number (log: sampled on a log scale; low > 0)
#   { int = [ low high ]; step = 8; }        an integer (log = true also works)
#   { int = [ 5 12 ]; powerOf = 2; }          2 to an integer power: 32 ... 4096 (the exponent is searched)
#   { float = [ 1.0e-4 0.03 ]; log = true; oneMinus = true; }   1 - the number: 0.97 ... 0.9999 (a discount
#                                             factor searched as its distance from 1, on a log scale)
#   { choices = [ ... ]; }                    one of the values
# train.learningRate also takes `schedule = [ "constant" "lin" ];`: lin_ decays it to zero.
# A user's sweep.space is laid over this one: it adds, replaces or (with null) removes parameters.
let
  # Shared by the on-policy algorithms.
  onPolicy = {
    "train.learningRate" = { float = [ 1.0e-5 1.0e-2 ]; log = true; schedule = [ "constant" "lin" ]; };
    "train.gamma" = { choices = [ 0.9 0.95 0.98 0.99 0.995 0.999 0.9999 ]; };
    "agent.kwargs.gae_lambda" = { choices = [ 0.8 0.9 0.92 0.95 0.98 0.99 1.0 ]; };
    "agent.kwargs.ent_coef" = { float = [ 1.0e-8 0.1 ]; log = true; };
    "agent.kwargs.vf_coef" = { float = [ 0.0 1.0 ]; };
    "agent.kwargs.max_grad_norm" = { choices = [ 0.3 0.5 0.6 0.7 0.8 0.9 1 2 5 ]; };
    "agent.netArch" = { choices = [ [ 64 ] [ 64 64 ] [ 256 256 ] ]; };
  };
  offPolicy = {
    "train.learningRate" = { float = [ 1.0e-5 1.0e-2 ]; log = true; schedule = [ "constant" "lin" ]; };
    "train.gamma" = { choices = [ 0.9 0.95 0.98 0.99 0.995 0.999 0.9999 ]; };
    "train.batchSize" = { choices = [ 16 32 64 100 128 256 512 ]; };
    "agent.kwargs.buffer_size" = { choices = [ 10000 100000 1000000 ]; };
    "agent.kwargs.learning_starts" = { choices = [ 0 1000 10000 ]; };
    "agent.kwargs.train_freq" = { choices = [ 1 4 8 16 64 ]; };
    "agent.kwargs.tau" = { choices = [ 0.001 0.005 0.01 0.02 0.05 ]; };
    "agent.netArch" = { choices = [ [ 64 64 ] [ 256 256 ] [ 400 300 ] ]; };
  };
in
{
  ppo = onPolicy // {
    "agent.kwargs.n_steps" = { choices = [ 8 16 32 64 128 256 512 1024 2048 ]; };
    "train.batchSize" = { choices = [ 8 16 32 64 128 256 512 ]; };
    "agent.kwargs.n_epochs" = { choices = [ 1 5 10 20 ]; };
    "agent.kwargs.clip_range" = { choices = [ 0.1 0.2 0.3 0.4 ]; };
  };
  a2c = onPolicy // {
    "agent.kwargs.n_steps" = { choices = [ 8 16 32 64 128 256 512 1024 2048 ]; };
    "agent.kwargs.normalize_advantage" = { choices = [ false true ]; };
  };
  dqn = builtins.removeAttrs offPolicy [ "agent.kwargs.tau" ] // {
    "agent.kwargs.exploration_fraction" = { float = [ 0.0 0.5 ]; };
    "agent.kwargs.exploration_final_eps" = { float = [ 0.0 0.2 ]; };
    "agent.kwargs.target_update_interval" = { choices = [ 1 1000 5000 10000 15000 20000 ]; };
    "agent.kwargs.gradient_steps" = { choices = [ (-1) 1 4 ]; };
  };
  sac = offPolicy // {
    "agent.kwargs.gradient_steps" = { choices = [ 1 4 8 ]; };
    "agent.kwargs.ent_coef" = { choices = [ "auto" 0.5 0.1 0.05 0.01 0.0001 ]; };
  };
  td3 = offPolicy // {
    "agent.kwargs.gradient_steps" = { choices = [ 1 4 8 ]; };
    "agent.kwargs.policy_delay" = { choices = [ 1 2 3 ]; };
  };
  # RL Baselines3 Zoo 2.9.2's own PPO space (rl_zoo3/hyperparams_opt.py, sample_ppo_params), for comparing
  # against `-optimize` (bench/sweep.py): the same parameters, ranges and scales. The zoo's net_arch names
  # tiny, small and medium are the sizes below.
  ppo-zoo = {
    "train.batchSize" = { int = [ 2 10 ]; powerOf = 2; };
    "agent.kwargs.n_steps" = { int = [ 5 12 ]; powerOf = 2; };
    "train.gamma" = { float = [ 1.0e-4 0.03 ]; log = true; oneMinus = true; };
    "agent.kwargs.gae_lambda" = { float = [ 1.0e-4 0.1 ]; log = true; oneMinus = true; };
    "train.learningRate" = { float = [ 1.0e-5 0.002 ]; log = true; };
    "agent.kwargs.ent_coef" = { float = [ 1.0e-8 0.1 ]; log = true; };
    "agent.kwargs.clip_range" = { choices = [ 0.1 0.2 0.3 0.4 ]; };
    "agent.kwargs.n_epochs" = { choices = [ 1 5 10 20 ]; };
    "agent.kwargs.max_grad_norm" = { float = [ 0.3 2 ]; };
    "agent.netArch" = { choices = [ [ 64 ] [ 64 64 ] [ 256 256 ] ]; };
    "agent.activation" = { choices = [ "tanh" "relu" ]; };
  };
  # Nothing: sweep.space alone is searched (`--base-space empty`).
  empty = { };
}
