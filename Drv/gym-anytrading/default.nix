{
  lib,
  buildPythonPackage,
  fetchPypi,
  setuptools,
  gymnasium,
  matplotlib,
  numpy,
  pandas,
}:

buildPythonPackage rec {
  pname = "gym-anytrading";
  version = "2.0.0";
  pyproject = true;

  src = fetchPypi {
    pname = "gym_anytrading";
    inherit version;
    hash = "sha256-936F+xB4Xo4STT9uiz92gnwRqvCxazb9t+8mrrXnNKY=";
  };

  build-system = [ setuptools ];

  dependencies = [
    gymnasium
    matplotlib
    numpy
    pandas
  ];

  pythonRelaxDeps = true;

  pythonImportsCheck = [ "gym_anytrading" ];

  # The sdist ships no tests.
  doCheck = false;

  meta = {
    description = "Trading environments (forex-v0, stocks-v0) for Gymnasium, with their bundled data";
    license = lib.licenses.mit;
  };
}
