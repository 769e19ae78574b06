# The JSON spec of the RL module's Universe:
#   nix-instantiate --eval --strict --json lib/spec.nix
let
  rl = import ./.;
in
rl.spec (rl.read ../Modules/Computation/Services/RL)
