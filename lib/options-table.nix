# The README options table of the RL module:
#   nix-instantiate --eval --strict --json lib/options-table.nix
let
  rl = import ./.;
in
rl.optionsTable (rl.read ../Modules/Computation/Services/RL)
