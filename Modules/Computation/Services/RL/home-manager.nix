# home-manager: the rl-* commands in home.packages and the rendered configuration as session variables
# (so that a shell's rl-* commands and scripts calling them see the same option space); with
# rl.services.sweep.enable, sweep workers as systemd user units `rl-sweep@N` (a workstation lending its
# spare time to a study). Serving and the registry's database belong to hosts: see nixos.nix.
{ config, lib, ... }:

let
  cfg = config.rl;
  rlLib = import ../../../../lib;
  # One worker per unit: rl.sweep.workers is the number of units.
  oneWorker = "${rlLib.flag (rlLib.read ./.) "sweep.workers"} 1";
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

    systemd.user.services = lib.mkIf cfg.services.sweep.enable (lib.listToAttrs (map
      (n: lib.nameValuePair "rl-sweep@${toString n}" {
        Unit = {
          Description = "RL Module sweep worker ${toString n} of ${cfg.sweep.studyName}";
          After = [ "network-online.target" ];
        };
        Service = {
          ExecStart = "${lib.getExe' cfg.package "rl-sweep"} ${oneWorker}";
          StateDirectory = "rl"; # ~/.local/state/rl: the runs, the models, a SQLite registry
          WorkingDirectory = "%S/rl";
          # SIGTERM stops the trial where it is (saved, queued again); exit 143 is that, not a failure.
          KillSignal = "SIGTERM";
          SuccessExitStatus = "130 143";
          TimeoutStopSec = 120;
          Restart = "on-failure";
          RestartSec = 10;
        } // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
        Install.WantedBy = [ "default.target" ];
      })
      (lib.range 1 cfg.sweep.workers)));
  };
}
