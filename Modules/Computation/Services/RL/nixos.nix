# NixOS: the rl-* commands in environment.systemPackages, configured by rl.*; the services a fleet runs:
#   - rl.infer.serve: `rl-infer --serve` (live hotswap to the registry's best model; it starts before any
#     model exists and waits for the first one),
#   - rl.services.sweep.enable: rl.sweep.workers instances of `rl-sweep@N`, each one worker of the study
#     rl.sweep.studyName, against the registry (and study) every host shares,
#   - rl.services.postgresql.enable: a local PostgreSQL holding the registry, on the host that keeps it,
#   - rl.services.registryRules.enable (on by default there): rl.registry's validation rules for
#     rl.env.envId made the registry's, the rules every host's models are judged by (rl-registry-rules --set).
# Every unit shares one hardening block and the state directory; rl.environmentFile carries credentials.
{ config, lib, ... }:

let
  cfg = config.rl;
  rlLib = import ../../../../lib;
  flag = rlLib.flag (rlLib.read ./.);
  # One worker per unit: rl.sweep.workers is the number of units.
  oneWorker = "${flag "sweep.workers"} 1";
  gpu = cfg.train.device == "cuda" || cfg.infer.device == "cuda";
  hardening = {
    DynamicUser = true;
    # A fixed name for the dynamic user: a local PostgreSQL lets the role of the same name in (peer).
    User = "rl";
    StateDirectory = "rl";
    WorkingDirectory = "/var/lib/rl";
    NoNewPrivileges = true;
    PrivateTmp = true;
    PrivateDevices = !gpu; # train.device = cuda: the NVIDIA devices, and nothing else
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
  } // lib.optionalAttrs gpu {
    DeviceAllow = [ "char-nvidia-frontend rw" "char-nvidia-caps rw" "char-nvidia-uvm rw" ];
  } // lib.optionalAttrs (cfg.environmentFile != null) {
    EnvironmentFile = cfg.environmentFile; # read by systemd as root: the file may be root-only
  };
  database = lib.optional cfg.services.postgresql.enable "postgresql.service";
  # The units that register models sign them: the private key stays where it is, outside the store and
  # readable by root alone; systemd hands each unit a copy of its own (a credential), and only those units.
  signingKey = cfg.registry.signingKeyFile;
  signing = lib.optionalAttrs (signingKey != null) {
    LoadCredential = [ "rl-signing-key:${lib.throwIf (lib.hasPrefix builtins.storeDir signingKey)
      "rl.registry.signingKeyFile: ${signingKey} is in the Nix store, which every user can read; give the path of a file outside it (for example /run/keys/rl-signing.pem)"
      signingKey}" ];
    # Set before the wrapper's defaults, which leave a variable already set alone.
    Environment = [ "RL_REGISTRY_SIGNING_KEY_FILE=%d/rl-signing-key" ];
  };
  # What every unit shares: started at boot, once the network (and a local database) is up.
  unit = description: serviceConfig: {
    inherit description;
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ] ++ database;
    serviceConfig = hardening // serviceConfig;
  };
in
{
  _class = "nixos";
  _file = ./nixos.nix;

  imports = [
    ./default.nix
    ./package-option.nix
  ];

  options.rl.services = {
    postgresql.enable = lib.mkEnableOption ''
      a local PostgreSQL (services.postgresql) with a database and a role `rl` for the registry; the units
      on this host reach it as `postgresql:///rl?host=/run/postgresql` (set rl.registry.dbPath to it)'';
    registryRules.enable = lib.mkOption {
      type = lib.types.bool;
      default = cfg.services.postgresql.enable;
      defaultText = lib.literalExpression "config.rl.services.postgresql.enable";
      description = ''
        Make this host's `rl.registry` validation rules (minReward, minEpisodes, convergenceWindow,
        convergenceTolerance) the registry's rules for `rl.env.envId` at every start: the rules every host's
        models are judged by, whatever that host's own options say (`rl-registry-rules --set`; the env's
        evaluated models are judged again when they change).'';
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    systemd.services = lib.optionalAttrs cfg.infer.serve {
      # The wrapped command already carries the configuration; relative paths resolve in the state
      # directory. With no model yet it stays up, answering 503 on /readyz until the first one.
      rl-infer = unit "RL Module inference server (rl-infer --serve)" {
        # infer.runtime = onnx: rl-module-serve's closure, without torch (a smaller, faster-starting unit).
        ExecStart = "${lib.getExe' (if cfg.infer.runtime == "onnx" then cfg.servePackage else cfg.package) "rl-infer"} ${flag "infer.serve"}";
        Restart = "on-failure";
      };
    } // lib.optionalAttrs cfg.services.registryRules.enable {
      # Once per boot (or switch), after the database: the registry's rules are this configuration's.
      rl-registry-rules = unit "RL Module validation rules for ${cfg.env.envId} (rl-registry-rules --set)" {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${lib.getExe' cfg.package "rl-registry-rules"} --set";
        # A database still starting: again, until it answers.
        Restart = "on-failure";
        RestartSec = 5;
      };
    } // lib.optionalAttrs cfg.services.sweep.enable (lib.listToAttrs (map
      (n: lib.nameValuePair "rl-sweep@${toString n}" (unit "RL Module sweep worker ${toString n} of ${cfg.sweep.studyName}" ({
        ExecStart = "${lib.getExe' cfg.package "rl-sweep"} ${oneWorker}";
        # SIGTERM stops the trial where it is (saved, queued again); exit 143 is that, not a failure.
        KillSignal = "SIGTERM";
        SuccessExitStatus = [ 130 143 ];
        TimeoutStopSec = 120;
        # Done when the study has its trials (exit 0); a crash or a lost database: again.
        Restart = "on-failure";
        RestartSec = 10;
      } // signing)))
      (lib.range 1 cfg.sweep.workers)));

    services.postgresql = lib.mkIf cfg.services.postgresql.enable {
      enable = true;
      ensureDatabases = [ "rl" ];
      ensureUsers = [ { name = "rl"; ensureDBOwnership = true; } ];
    };
  };
}
