{
  lib,
  buildPythonPackage,
  fetchPypi,
  mlflow-tracing,
  cachetools,
  click,
  cloudpickle,
  databricks-sdk,
  fastapi,
  gitpython,
  importlib-metadata,
  opentelemetry-api,
  opentelemetry-proto,
  opentelemetry-sdk,
  packaging,
  protobuf,
  pydantic,
  python-dotenv,
  pyyaml,
  requests,
  sqlparse,
  typing-extensions,
  uvicorn,
}:

buildPythonPackage rec {
  pname = "mlflow-skinny";
  version = "3.17.2";
  format = "wheel";

  src = fetchPypi {
    pname = "mlflow_skinny";
    inherit version format;
    dist = "py3";
    python = "py3";
    hash = "sha256-Mb6RkElCEszZR3QXD9Bvb+BNIJquOSPu/Rb5v3gw1jw=";
  };

  dependencies = [
    mlflow-tracing
    cachetools
    click
    cloudpickle
    databricks-sdk
    fastapi
    gitpython
    importlib-metadata
    opentelemetry-api
    opentelemetry-proto
    opentelemetry-sdk
    packaging
    protobuf
    pydantic
    python-dotenv
    pyyaml
    requests
    sqlparse
    typing-extensions
    uvicorn
  ];

  pythonRelaxDeps = true;

  pythonImportsCheck = [ "mlflow.tracking" ];

  meta = {
    description = "MLflow's tracking client, without the server";
    license = lib.licenses.asl20;
  };
}
