{
  description = "RL Module: a declarative reinforcement-learning pipeline with built-in observability";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-parts.url = "github:hercules-ci/flake-parts";
    flake-parts.inputs.nixpkgs-lib.follows = "nixpkgs";
  };

  outputs =
    inputs@{ flake-parts, ... }:
    flake-parts.lib.mkFlake { inherit inputs; } {
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];

      # The project uses its own module, with defaults: `nix run .#rl-train` trains CartPole-v1.
      imports = [ ./Modules/Computation/Services/RL/flake-module.nix ];
      rl.enable = true;

      flake = {
        flakeModules.rl = ./Modules/Computation/Services/RL/flake-module.nix;
        nixosModules.rl = ./Modules/Computation/Services/RL/nixos.nix;
        homeManagerModules.rl = ./Modules/Computation/Services/RL/home-manager.nix;
        # Builtins only: read, render and document the Universe (see lib/default.nix).
        lib = import ./lib;
      };

      perSystem = { pkgs, ... }: {
        formatter = pkgs.nixfmt-rfc-style;
      };
    };
}
