# Evaluates the NixOS or home-manager module of RL Module with the real module system of a nixpkgs lib
# checkout (tests/test_nix_module.py passes its path). The host's own options (environment.*, home.*)
# are declared here as stand-ins, since NixOS and home-manager themselves are not at hand offline; pkgs
# is never forced unless the packages are asked for.
{ nixpkgsLib, target, settings, withPackage ? false }:

let
  lib = import (nixpkgsLib + "/lib");
  inherit (lib) mkOption types;
  host = {
    nixos = {
      module = ../../Modules/Computation/Services/RL/nixos.nix;
      options.environment.systemPackages = mkOption { type = types.listOf types.raw; default = [ ]; };
      options.systemd.services = mkOption { type = types.attrsOf types.raw; default = { }; };
      options.services.postgresql = mkOption { type = types.raw; default = { }; };
    };
    homeManager = {
      module = ../../Modules/Computation/Services/RL/home-manager.nix;
      options.home = {
        packages = mkOption { type = types.listOf types.raw; default = [ ]; };
        sessionVariables = mkOption { type = types.attrsOf types.str; default = { }; };
      };
      options.systemd.user.services = mkOption { type = types.attrsOf types.raw; default = { }; };
    };
  }.${target};
  evaluated = lib.evalModules {
    class = target;
    modules = [
      host.module
      { inherit (host) options; }
      { _module.args.pkgs = throw "pkgs is not available in this evaluation"; }
      { _file = "the test settings"; rl = builtins.fromJSON settings; }
      # A stand-in for the wrapped commands (building them needs pkgs): units name their paths.
      (if withPackage then {
        rl.package = { type = "derivation"; name = "rl-commands"; outPath = "/nix/store/00000000000000000000000000000000-rl-commands"; };
        rl.servePackage = { type = "derivation"; name = "rl-infer"; outPath = "/nix/store/11111111111111111111111111111111-rl-infer"; };
      } else { })
    ];
  };
in
{
  environment = evaluated.config.rl.environment;
  environmentFile = evaluated.config.rl.environmentFile;
  enabled = evaluated.config.rl.enable;
  sessionVariables = if target == "homeManager" then evaluated.config.home.sessionVariables else null;
  options = builtins.attrNames evaluated.options.rl;
  nEnvsType = evaluated.options.rl.env.nEnvs.type.description;
  # Every rl-* unit as systemd would get it (ExecStart only with the stand-in package), and PostgreSQL.
  units = if target == "nixos" then
    builtins.mapAttrs (name: unit: {
      inherit (unit) wantedBy after;
      serviceConfig = if withPackage then unit.serviceConfig else builtins.removeAttrs unit.serviceConfig [ "ExecStart" ];
    }) evaluated.config.systemd.services
  else null;
  postgresql = if target == "nixos" then evaluated.config.services.postgresql else null;
  userUnits = if target == "homeManager" && withPackage then evaluated.config.systemd.user.services else null;
  # The inference service, without forcing its ExecStart (that needs pkgs).
  service = if target == "nixos" && evaluated.config.systemd.services ? rl-infer then
    let unit = evaluated.config.systemd.services.rl-infer; in {
      inherit (unit) wantedBy;
      inherit (unit.serviceConfig) DynamicUser StateDirectory ProtectSystem;
      EnvironmentFile = unit.serviceConfig.EnvironmentFile or null;
      keys = builtins.attrNames unit.serviceConfig;
    }
  else null;
}
