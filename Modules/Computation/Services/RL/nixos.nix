# NixOS: the rl-* commands in environment.systemPackages, configured by rl.*; with rl.infer.serve, a
# hardened systemd service running `rl-infer --serve` (live hotswap to the registry's best model).
{ config, lib, ... }:

let
  cfg = config.rl;
in
{
  _class = "nixos";
  _file = ./nixos.nix;

  imports = [
    ./default.nix
    ./package-option.nix
  ];

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    systemd.services.rl-infer = lib.mkIf cfg.infer.serve {
      description = "RL Module inference server (rl-infer --serve)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      # The wrapped command already carries the configuration; the state directory holds the registry
      # (registry.dbPath, relative paths resolve there) and the models.
      serviceConfig = {
        ExecStart = "${lib.getExe' cfg.package "rl-infer"} --serve";
        DynamicUser = true;
        StateDirectory = "rl";
        WorkingDirectory = "/var/lib/rl";
        Restart = "on-failure";
        # Hardening: nothing but its state directory and the network it serves on.
        NoNewPrivileges = true;
        PrivateTmp = true;
        PrivateDevices = true; # relax (and add DeviceAllow) to serve on a GPU with infer.device = cuda
        ProtectSystem = "strict";
        ProtectHome = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        LockPersonality = true;
        SystemCallArchitectures = "native";
        # torch's JIT and numpy map executable memory: MemoryDenyWriteExecute stays off.
        MemoryDenyWriteExecute = false;
      } // lib.optionalAttrs (cfg.environmentFile != null) {
        EnvironmentFile = cfg.environmentFile; # read by systemd as root: the file may be root-only
      };
    };
  };
}
