# Store: where experiments (runs, metrics, models and checkpoints) are kept.
{
  backend = {
    type = { enum = [ "local" "s3" "mlflow" "wandb" ]; };
    default = "local";
    description = "Experiment store. Models are always kept locally too.";
    example = "mlflow";
  };
  trackingUri = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Where the backend keeps runs: an MLflow tracking URI, `s3://bucket/prefix`, or a W&B entity; null takes the backend's own default.";
    example = "http://localhost:5000";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  experimentName = {
    type = "nonEmptyStr";
    default = "rl-module";
    description = "Experiment name (the W&B project).";
    example = "cartpole-ppo";
  };
  modelDir = {
    type = "nonEmptyStr";
    default = "./models";
    description = "Directory that holds one folder per run: its config, model, checkpoints and logs.";
    example = "/var/lib/rl/models";
  };
  cacheDir = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Folder for model files fetched from a remote store (a registry row trained on another host), each checked against the row's sha256 before loading; null: `fetched` under modelDir.";
    example = "/var/cache/rl/models";
  };
  checkpointFreq = {
    type = "ints.unsigned";
    default = 10000;
    description = "Save a checkpoint every this many environment steps; 0 saves none.";
    example = 50000;
  };
  endpointUrl = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Endpoint of an S3-compatible server (MinIO, Ceph, ...) for backend = s3; null asks AWS.";
    example = "http://localhost:9000";
  };
  replayBuffer = {
    type = { enum = [ "none" "final" "checkpoints" ]; };
    default = "final";
    description = "Save the replay buffer of DQN, SAC and TD3 beside the model when the run stops or ends (final), also with every checkpoint (checkpoints), or never (none); a resumed run continues with it.";
    example = "checkpoints";
  };
}
