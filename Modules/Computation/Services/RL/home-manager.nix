# home-manager: the rl-* commands in home.packages and the rendered configuration as session variables
# (so that a shell's rl-* commands and scripts calling them see the same option space).
{ config, lib, pkgs, ... }:

let
  cfg = config.rl;
in
{
  _class = "homeManager";
  _file = ./home-manager.nix;

  imports = [ ./default.nix ];

  options.rl.package = lib.mkOption {
    type = lib.types.package;
    default = (import ./package.nix { inherit pkgs; environment = cfg.environment; }).all;
    defaultText = lib.literalExpression "the rl-* commands wrapped with config.rl.environment";
    description = "The rl-* commands, wrapped with the rendered configuration.";
  };

  config = lib.mkIf cfg.enable {
    home.packages = [ cfg.package ];
    home.sessionVariables = cfg.environment;
  };
}
