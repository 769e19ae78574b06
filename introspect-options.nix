# Prints the option tree of a module's Universe, builtins only:
#   nix-instantiate --eval --strict --json introspect-options.nix --argstr dir Modules/Computation/Services/RL
#   nix --extra-experimental-features nix-command eval --raw -f introspect-options.nix --argstr dir ...
{ dir ? "Modules/Computation/Services/RL" }:
let
  rl = import ./lib;
  # A relative dir is taken from where the command runs, as a shell user expects.
  absolute = if builtins.substring 0 1 dir == "/" then dir else "${builtins.getEnv "PWD"}/${dir}";
  trimmed = let n = builtins.stringLength dir; in
    if n > 1 && builtins.substring (n - 1) 1 dir == "/" then builtins.substring 0 (n - 1) dir else dir;
in
rl.introspect "${trimmed}/Universe/" (rl.read (/. + absolute))
