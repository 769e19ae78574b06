# Train: the training loop and its hyperparameters.
{
  totalTimesteps = {
    type = "ints.positive";
    default = 100000;
    description = "Environment steps to train for (summed over all environment copies).";
    example = 1000000;
  };
  learningRate = {
    # A string so that "3e-4" reads as written (Nix has no float literal in that notation);
    # "lin_" makes it decay linearly to zero over training.
    type = { strMatching = "(lin_)?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"; };
    default = "3e-4";
    description = "Learning rate as a number in a string; `lin_<rate>` decays it linearly to 0.";
    example = "lin_1e-3";
  };
  batchSize = {
    type = "ints.positive";
    default = 64;
    description = "Minibatch size for each gradient step.";
    example = 256;
  };
  gamma = {
    type = { "numbers.between" = [ 0.0 1.0 ]; };
    default = 0.99;
    description = "Discount factor.";
    example = 0.98;
  };
  preset = {
    type = "bool";
    default = true;
    description = "Start from the tuned hyperparameters for this algorithm and env when there are some; what you set wins.";
    example = false;
  };
  evalFreq = {
    type = "ints.unsigned";
    default = 10000;
    description = "Evaluate every this many environment steps during training; 0 evaluates only at the end.";
    example = 25000;
  };
  stopOnReward = {
    type = "bool";
    default = false;
    description = "End training as soon as the model would validate: a periodic evaluation reaches registry.minReward (or the env's reward threshold) and the last registry.convergenceWindow evaluations have converged.";
    example = true;
  };
  threads = {
    type = "ints.positive";
    default = 1;
    description = "Torch threads for training on the CPU (one is fastest for small networks).";
    example = 4;
  };
  fusedOptimizer = {
    type = "bool";
    default = true;
    description = "Step the optimizer with torch's fused implementation where it has one (Adam, AdamW and SGD on the CPU or a CUDA GPU; not A2C's RMSprop): the same update up to float rounding, one kernel per step where the default runs a dozen small ones per weight tensor; PPO with small batches trains 10-25 % faster on the CPU. false builds stable-baselines3's default optimizer, bit for bit.";
    example = false;
  };
  device = {
    type = { enum = [ "auto" "cpu" "cuda" "mps" ]; };
    default = "auto";
    description = "Torch device for training; auto takes the GPU for CNN policies when there is one, else the CPU.";
    example = "cuda";
  };
  progressBar = {
    type = { nullOr = "bool"; };
    default = null;
    description = "Show a progress bar; null shows one when the output is a terminal.";
    example = false;
  };
  resume = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Continue a stopped or finished run from its newest saved model: a run id, a run directory, or `latest`; its config.json decides every option but train.totalTimesteps (which may only grow) and what cannot change the learning (telemetry, logs, progress bar, threads, checkpointFreq).";
    example = "latest";
  };
}
