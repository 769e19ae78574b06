# flake-parts: the same rl.* options at the top of a flake, and per system the wrapped rl-* commands
# as packages and apps, a devShell, and the test suite as a check.
{ config, lib, flake-parts-lib, ... }:

let
  cfg = config.rl;
in
{
  _class = "flake";
  _file = ./flake-module.nix;

  imports = [ ./default.nix ];

  options.perSystem = flake-parts-lib.mkPerSystemOption ({ pkgs, ... }: {
    options.rl.commands = lib.mkOption {
      type = lib.types.lazyAttrsOf lib.types.raw;
      readOnly = true;
      description = "The rl-* commands wrapped with the top-level rl.* configuration, and the Python set.";
    };
    config.rl.commands = import ./package.nix { inherit pkgs; environment = cfg.environment; };
  });

  config.perSystem = { config, pkgs, ... }:
    let
      commands = config.rl.commands;
      # Listed, not read off `commands`: the packages' names must not force nixpkgs (Drv/commands.nix's list).
      names = [ "rl-train" "rl-eval" "rl-infer" "rl-registry-list" "rl-registry-validate" "rl-registry-prune"
                "rl-registry-copy" "rl-registry-rules" "rl-registry-convert" "rl-keygen" "rl-sweep" "rl-load-best"
                "introspect-options" ];
    in
    {
      config = lib.mkIf cfg.enable {
      packages = lib.genAttrs names (name: commands.${name}) // { default = commands.all; };
      apps = lib.genAttrs names (name: {
        type = "app";
        program = lib.getExe commands.${name};
      });
      devShells.rl = pkgs.mkShell {
        packages = [
          (commands.python.withPackages (ps: [ ps.rl-module ps.pytest ps.hypothesis ps.mlflow ]))
          pkgs.nushell
          pkgs.sqlite
        ];
      };
      checks.rl-module = commands.python.pkgs.rl-module.overridePythonAttrs { doCheck = true; };
      };
    };
}
