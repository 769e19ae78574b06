# The project's Python package set (Drv/) on a nixpkgs, and the rl-* commands wrapped with an
# environment: { rl-train = <drv>; ...; all = <all commands>; python = <python with rl-module>;
# serve = <rl-infer of rl-module-serve: no torch, for infer.runtime onnx> }
{ pkgs, environment ? { }, environmentFile ? null }:

let
  python = pkgs.python3.override { packageOverrides = import ../../../../Drv; };
in
pkgs.callPackage ../../../../Drv/commands.nix {
  inherit environment environmentFile;
  inherit (python.pkgs) rl-module;
}
// {
  inherit python;
  serve =
    (pkgs.callPackage ../../../../Drv/commands.nix {
      inherit environment environmentFile;
      rl-module = python.pkgs.rl-module-serve;
    }).rl-infer;
}
