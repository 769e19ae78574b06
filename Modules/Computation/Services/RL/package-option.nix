# rl.package for the targets that install commands (NixOS, home-manager): the rl-* commands wrapped with
# the rendered configuration.
{ config, lib, pkgs, ... }:

let
  # Built once for both options: the full commands and the torch-free serving package.
  wrapped = import ./package.nix {
    inherit pkgs;
    inherit (config.rl) environment environmentFile;
  };
in
{
  _file = ./package-option.nix;

  options.rl.package = lib.mkOption {
    type = lib.types.package;
    default = wrapped.all;
    defaultText = lib.literalExpression "the rl-* commands wrapped with config.rl.environment";
    description = "The rl-* commands, wrapped with the rendered configuration.";
  };

  options.rl.servePackage = lib.mkOption {
    type = lib.types.package;
    default = wrapped.serve;
    defaultText = lib.literalExpression "rl-infer of rl-module-serve (no torch), wrapped with config.rl.environment";
    description = "The rl-infer command the serving unit runs when rl.infer.runtime is onnx: a package without torch or stable-baselines3.";
  };
}
