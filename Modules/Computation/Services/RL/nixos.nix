# NixOS: the rl-* commands in environment.systemPackages, configured by rl.*.
# (Serving inference as a systemd service comes with rl-infer --serve.)
{ config, lib, pkgs, ... }:

let
  cfg = config.rl;
in
{
  _class = "nixos";
  _file = ./nixos.nix;

  imports = [ ./default.nix ];

  options.rl.package = lib.mkOption {
    type = lib.types.package;
    default = (import ./package.nix { inherit pkgs; environment = cfg.environment; }).all;
    defaultText = lib.literalExpression "the rl-* commands wrapped with config.rl.environment";
    description = "The rl-* commands, wrapped with the rendered configuration.";
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
  };
}
