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

    environment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      readOnly = true;
      description = "The env vars this configuration renders (`RL_*`, `OTEL_*`), as the commands receive them.";
    };
  };

  config.rl.environment = rlLib.envVars universe setByUser;
}
