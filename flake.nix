{
  description = "RL Module: a declarative reinforcement-learning pipeline with built-in observability";

  # The Universe and its library need no inputs; the flake-parts flake with packages, apps, devShells,
  # checks and the NixOS / home-manager modules builds on this (see the Nix issue).
  outputs = { self }: {
    lib = import ./lib;
    universe = (import ./lib).read ./Modules/Computation/Services/RL;
  };
}
