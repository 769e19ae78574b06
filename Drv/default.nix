# The project's Python packages, as an overlay of a nixpkgs Python package set:
#   python3.override { packageOverrides = import ./Drv; }
# Pinned to the versions the project tests with; every hash is `nix hash file` of the file PyPI serves.
final: prev: {
  stable-baselines3 = final.callPackage ./stable-baselines3 { };
  gym-anytrading = final.callPackage ./gym-anytrading { };
  # mlflow 3 is three packages of one version; nixpkgs builds it from the wheel because the web UI is
  # not in its source repository, and so do we.
  mlflow-tracing = final.callPackage ./mlflow-tracing { };
  mlflow-skinny = final.callPackage ./mlflow-skinny { };
  mlflow = final.callPackage ./mlflow { };
  rl-module = final.callPackage ./rl-module { };
  # rl-infer --serve --runtime onnx without torch: the same source, a smaller closure.
  rl-module-serve = final.callPackage ./rl-module { serving = true; };
}
