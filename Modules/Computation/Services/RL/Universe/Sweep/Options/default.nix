# Sweep: hyperparameter search on Optuna. Every trial is an ordinary run (its own run directory, its
# registry rows with the study and trial number); the study lives in a database many hosts share.
{
  studyName = {
    type = "nonEmptyStr";
    default = "rl-sweep";
    description = "Name of the study: running rl-sweep again with it (on this host or another) continues it.";
    example = "ppo-cartpole";
  };
  trials = {
    type = "ints.positive";
    default = 20;
    description = "Trials the whole study runs (finished or pruned), across every worker and host.";
    example = 100;
  };
  workers = {
    type = "ints.positive";
    default = 1;
    description = "Worker processes on this host, each running one trial at a time.";
    example = 2;
  };
  sampler = {
    type = { enum = [ "tpe" "random" "cmaes" "qmc" ]; };
    default = "tpe";
    description = "How the next trial's values are chosen: Optuna's TPE, random search, CMA-ES, or quasi-Monte Carlo.";
    example = "random";
  };
  pruner = {
    type = { enum = [ "median" "halving" "hyperband" "none" ]; };
    default = "median";
    description = "Which trials stop early on their intermediate evaluations: below the median, successive halving, Hyperband, or none.";
    example = "hyperband";
  };
  storage = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Where the study lives (an Optuna RDB storage URL); null: the registry's own database (registry.dbPath).";
    example = "postgresql://rl@db.internal:5432/rl";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  objective = {
    type = { enum = [ "reward" "time-to-threshold" "steps-to-threshold" ]; };
    default = "reward";
    description = "What a trial scores: `reward`, its final evaluation's mean reward (maximized); `time-to-threshold`, the wall seconds from the start of its learning to its first evaluation that would validate the model by the registry's rules for the env (mean reward >= the threshold and the last registry.convergenceWindow evaluations agreeing, as train.stopOnReward decides, which ends the trial there; minimized); `steps-to-threshold`, the env steps to that evaluation (minimized). A trial that never validates scores a penalty: its budget x (1 + gap), gap = (threshold - its best evaluation) / max(|threshold|, 1), its budget being the steps it was given, or in seconds the longer of its own learning time and the longest of any trial finished before it: above every trial that validated before it (a cheap miss never outscores a costly hit), and lower the closer it came, so the sampler learns from a near miss. The pruner is shown, at each evaluation, that penalty as it stands (in seconds, the longer of its pace so far extrapolated to its whole trial and that longest learning time): a value of the same kind and direction as the result, never below it in steps, so trials at the same step are compared like with like.";
    example = "time-to-threshold";
  };
  trialTimesteps = {
    type = "ints.positive";
    default = 20000;
    description = "Environment steps each trial trains.";
    example = 100000;
  };
  evaluations = {
    type = "ints.positive";
    default = 5;
    description = "Intermediate evaluations per trial, each reported to the pruner.";
    example = 10;
  };
  space = {
    type = "attrs";
    default = { };
    description = "The search space over the algorithm's default one (Spaces/): { \"<option or agent.kwargs.<key>>\" = { float = [ low high ]; log = true; } | { int = [ low high ]; step = 1; } | { choices = [ ... ]; }; } (powerOf = 2 on an int searches an exponent; oneMinus = true on a float, 1 - the value); a parameter set to null is left out.";
    example = { "train.gamma" = { float = [ 0.95 0.999 ]; }; "agent.kwargs.n_epochs" = { choices = [ 5 10 ]; }; };
  };
  baseSpace = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "The named space (Spaces/) that sweep.space is laid over; null: the algorithm's own; `empty`: sweep.space alone.";
    example = "ppo-zoo";
  };
  failureLimit = {
    type = "ints.positive";
    default = 10;
    description = "Trials in a row that may fail (an error, or a worker that died) before the study stops with the first one's error, exit 1: a space in which nothing can train ends instead of running forever.";
    example = 3;
  };
  heartbeat = {
    type = "ints.positive";
    default = 10;
    description = "Seconds between a running trial's heartbeats; a trial silent for three of them (a killed worker, a lost host) is failed and retried.";
    example = 30;
  };
}
