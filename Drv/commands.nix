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
  # A file outside the Nix store with the values that carry credentials (KEY=VALUE lines, the subset of
  # systemd's EnvironmentFile= that read-environment-file.sh reads): read by every command when it starts,
  # its variables set unless already set.
  environmentFile ? null,
}:

let
  names = [
    "rl-train"
    "rl-eval"
    "rl-infer"
    "rl-export"
    "rl-registry-list"
    "rl-registry-validate"
    "rl-registry-prune"
    "rl-registry-copy"
    "rl-registry-rules"
    "rl-registry-convert"
    "rl-keygen"
    "rl-sweep"
    "rl-load-best"
    "introspect-options"
  ];
  setDefaults = lib.concatStringsSep " " (
    lib.mapAttrsToList (name: value: "--set-default ${lib.escapeShellArg name} ${lib.escapeShellArg value}") environment
  );
  # The loader (read-environment-file.sh says which lines it reads, as systemd does) after the file's path.
  readEnvironmentFile = lib.optionalString (environmentFile != null) (
    "--run "
    + lib.escapeShellArg (
      "__rl_file=${lib.escapeShellArg (toString environmentFile)}\n" + builtins.readFile ./read-environment-file.sh
    )
  );
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
