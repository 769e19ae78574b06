# The RL module's Nix library, builtins only (nixpkgs is not needed to read, render or document the
# Universe). The one part that needs nixpkgs' lib — turning the Universe into lib.mkOption declarations —
# is lib/module-options.nix, taken separately.
let
  universe = import ./universe.nix;
  values = import ./values.nix;
  render = import ./render.nix;
in
{
  inherit (universe) read;
  inherit (values) toEnv toNix;
  inherit (render) envVars flag flagTable spec optionsTable introspect;
}
