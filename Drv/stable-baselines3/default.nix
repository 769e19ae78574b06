{
  lib,
  buildPythonPackage,
  fetchPypi,
  setuptools,
  cloudpickle,
  gymnasium,
  matplotlib,
  numpy,
  pandas,
  torch,
}:

buildPythonPackage rec {
  pname = "stable-baselines3";
  version = "2.9.2";
  pyproject = true;

  src = fetchPypi {
    pname = "stable_baselines3";
    inherit version;
    hash = "sha256-ivJn6VEzQ/SBs/BoC3dArXmnRoc9sk8Yqfsu3L2aLfc=";
  };

  build-system = [ setuptools ];

  dependencies = [
    cloudpickle
    gymnasium
    matplotlib
    numpy
    pandas
    torch
  ];

  # nixpkgs may carry a neighbouring gymnasium or numpy; the library's own bounds are conservative.
  pythonRelaxDeps = true;

  pythonImportsCheck = [ "stable_baselines3" ];

  # Its test suite trains agents for many minutes; rl-module's own checks train each algorithm briefly.
  doCheck = false;

  meta = {
    description = "Reliable implementations of reinforcement learning algorithms in PyTorch";
    license = lib.licenses.mit;
  };
}
