# The wrapper scripts Drv/commands.nix writes for the rl-* commands, evaluated with stand-ins for the
# nixpkgs builders (runCommand returns its script as text), so that a test can read every line a
# wrapper would hold without building anything.
{ nixpkgsLib, environment, environmentFile ? null }:

let
  lib = import (nixpkgsLib + "/lib");
  commands = import ../../Drv/commands.nix {
    inherit lib environmentFile;
    environment = builtins.fromJSON environment;
    makeWrapper = "makeWrapper";
    runCommand = name: _attrs: script: { inherit name script; };
    symlinkJoin = attrs: attrs;
    rl-module = "/nix/store/00000000000000000000000000000000-rl-module";
  };
in
map (name: commands.${name}.script) (builtins.filter (name: name != "all") (builtins.attrNames commands))
