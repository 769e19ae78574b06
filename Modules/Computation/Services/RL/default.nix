# The RL module's options, generated from the Universe: rl.enable, rl.<feature>.<option> (real
# lib.mkOption with lib.types, through lib/module-options.nix), and rl.environment, the env vars the
# configuration renders. Shared by the NixOS, home-manager and flake-parts modules beside this file.
{ config, lib, options, ... }:

let
  rlLib = import ../../../../lib;
  universe = rlLib.read ./.;
  cfg = config.rl;

  # What the configuration sets: an option left at its default stays out of the environment, so that
  # training presets still apply to it (defaults are mkOptionDefault, priority 1500).
  setByUser = builtins.mapAttrs
    (key: feature: lib.filterAttrs (name: _: options.rl.${key}.${name}.highestPrio < 1500) feature)
    (lib.getAttrs (map (f: f.key) universe.features) cfg);
in
{
  options.rl = import ../../../../lib/module-options.nix { inherit lib; } universe // {
    enable = lib.mkEnableOption "RL Module: training, evaluation, inference and the model registry";

    services.sweep.enable = lib.mkEnableOption ''
      sweep workers: rl.sweep.workers instances of the unit `rl-sweep@N` (a system unit on NixOS, a user
      unit on home-manager), each running one rl-sweep worker of the study rl.sweep.studyName; point
      rl.registry.dbPath at a PostgreSQL every host reaches, so that several hosts run one study'';

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.externalPath;
      default = null;
      example = "/run/secrets/rl.env";
      description = ''
        A file outside the Nix store with the values that carry credentials, as `KEY=VALUE` lines (systemd's
        `EnvironmentFile=` format): `RL_REGISTRY_DB=postgresql://rl:…@db/rl`, `PGPASSWORD=…`,
        `AWS_SECRET_ACCESS_KEY=…`. Services read it through systemd, the wrapped commands when they start;
        a variable already set in the environment wins. Options that may carry a credential are refused
        when their value does (the rendered configuration is world-readable in the store).
      '';
    };

    environment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      readOnly = true;
      description = "The env vars this configuration renders (`RL_*`, `OTEL_*`), as the commands receive them.";
    };
  };

  config.rl.environment = rlLib.envVars universe setByUser;
}
