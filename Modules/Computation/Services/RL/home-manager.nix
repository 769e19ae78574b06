# home-manager: the rl-* commands in home.packages and the rendered configuration as session variables
# (so that a shell's rl-* commands and scripts calling them see the same option space).
{ config, lib, ... }:

let
  cfg = config.rl;
in
{
  _class = "homeManager";
  _file = ./home-manager.nix;

  imports = [
    ./default.nix
    ./package-option.nix
  ];

  config = lib.mkIf cfg.enable {
    home.packages = [ cfg.package ];
    home.sessionVariables = cfg.environment;
  };
}
