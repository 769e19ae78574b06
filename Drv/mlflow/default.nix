{
  lib,
  buildPythonPackage,
  fetchPypi,
  mlflow-skinny,
  mlflow-tracing,
  alembic,
  docker,
  flask,
  graphene,
  gunicorn,
  matplotlib,
  numpy,
  pandas,
  pyarrow,
  scikit-learn,
  scipy,
  sqlalchemy,
}:

buildPythonPackage rec {
  pname = "mlflow";
  version = "3.17.2";
  format = "wheel";

  # The wheel, not the source: the web UI is built in MLflow's release process, not in its repository.
  src = fetchPypi {
    inherit pname version format;
    dist = "py3";
    python = "py3";
    hash = "sha256-TkTAN5G+tRjYsKQLCYLZWMJjTZAvRtZ9eQfIIQfyH6w=";
  };

  dependencies = [
    mlflow-skinny
    mlflow-tracing
    alembic
    docker
    flask
    graphene
    gunicorn
    matplotlib
    numpy
    pandas
    pyarrow
    scikit-learn
    scipy
    sqlalchemy
  ];

  pythonRelaxDeps = true;

  pythonImportsCheck = [ "mlflow" "mlflow.server" ];

  meta = {
    description = "Tracking server and client for machine learning experiments";
    license = lib.licenses.asl20;
    mainProgram = "mlflow";
  };
}
