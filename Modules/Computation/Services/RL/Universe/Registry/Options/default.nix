# Registry: the record of every model (a SQLite file, or PostgreSQL for many machines), the rules that validate one, and pruning.
{
  enable = {
    type = "bool";
    default = true;
    description = "Record models in the registry.";
    example = false;
  };
  dbPath = {
    type = "nonEmptyStr";
    default = "./rl_registry.db";
    description = "The registry's database: a SQLite file, or a PostgreSQL URL (`postgresql://user@host:5432/rl`) shared by many machines. Keep its password in libpq's PGPASSWORD, PGPASSFILE or PGSERVICEFILE (one in the URL works too, and is masked wherever the URL is written down).";
    example = "/var/lib/rl/registry.db";
    secret = true; # may carry a credential: never rendered with one (rl.environmentFile carries it)
  };
  minReward = {
    type = { nullOr = "number"; };
    default = null;
    description = "Mean evaluation reward a model needs to be validated; null takes the env's reward threshold.";
    example = 195.0;
  };
  minEpisodes = {
    type = "ints.positive";
    default = 10;
    description = "A model must have trained at least this many (mean-length) episodes to be validated.";
    example = 20;
  };
  keepTopN = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "Keep only the N best models (by mean reward) per env and algorithm; null keeps all.";
    example = 10;
  };
  maxAge = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "Remove models older than this many days; null keeps them.";
    example = 30;
  };
  convergenceWindow = {
    type = { nullOr = "ints.positive"; };
    default = 3;
    description = "Training converged when the run's last this-many evaluations up to the model agree (see convergenceTolerance); null skips the rule.";
    example = 5;
  };
  signingKeyFile = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "An EC P-256 private key (PEM; `rl-keygen` makes one) with which trainers and sweep workers sign every model they register (OpenSSF model-signing). A path outside the Nix store: the NixOS units load it as a systemd credential.";
    example = "/run/keys/rl-signing.pem";
  };
  trustedKeys = {
    type = { listOf = "nonEmptyStr"; };
    default = [ ];
    description = "Public keys (PEM files) of the trainers whose models this host loads: when set, every command and the server load only models whose signature verifies against one of them; empty loads unsigned models too.";
    example = [ "/etc/rl/trainer-gpu-1.pub.pem" ];
  };
  convergenceTolerance = {
    type = "numbers.positive";
    default = 0.1;
    description = "Largest spread of those evaluations' mean rewards, as a fraction of their mean's magnitude.";
    example = 0.05;
  };
}
