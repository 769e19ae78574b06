# The rl-* commands of the project's Python package, each wrapped with the env vars a configuration
# renders (lib/render.nix envVars). --set-default: a variable already in the user's environment wins,
# as the option precedence says (Nix config < environment < flag).
{
  lib,
  makeWrapper,
  runCommand,
  symlinkJoin,
  rl-module,
  environment ? { },
  # A file outside the Nix store with the values that carry credentials (KEY=VALUE lines, as systemd's
  # EnvironmentFile=): read by every command when it starts, its variables set unless already set.
  environmentFile ? null,
}:

let
  names = [
    "rl-train"
    "rl-eval"
    "rl-infer"
    "rl-registry-list"
    "rl-registry-validate"
    "rl-registry-prune"
    "rl-registry-copy"
    "rl-registry-rules"
    "rl-sweep"
    "rl-load-best"
    "introspect-options"
  ];
  setDefaults = lib.concatStringsSep " " (
    lib.mapAttrsToList (name: value: "--set-default ${lib.escapeShellArg name} ${lib.escapeShellArg value}") environment
  );
  file = lib.escapeShellArg (toString environmentFile);
  readEnvironmentFile = lib.optionalString (environmentFile != null) ("--run " + lib.escapeShellArg ''
    if [ -r ${file} ]; then
      while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in "" | "#"*) continue ;; esac
        name=''${line%%=*}
        [ -z "''${!name+x}" ] && export "$name=''${line#*=}"
      done < ${file}
    fi
  '');
  wrap =
    name:
    runCommand name
      {
        nativeBuildInputs = [ makeWrapper ];
        meta.mainProgram = name;
      }
      ''
        makeWrapper ${rl-module}/bin/${name} $out/bin/${name} ${setDefaults} ${readEnvironmentFile}
      '';
  commands = lib.genAttrs names wrap;
in
commands
// {
  all = symlinkJoin {
    name = "rl-commands";
    paths = builtins.attrValues commands;
    meta.mainProgram = "rl-train";
  };
}
