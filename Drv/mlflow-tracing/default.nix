{
  lib,
  buildPythonPackage,
  fetchPypi,
  cachetools,
  databricks-sdk,
  opentelemetry-api,
  opentelemetry-proto,
  opentelemetry-sdk,
  packaging,
  protobuf,
  pydantic,
}:

buildPythonPackage rec {
  pname = "mlflow-tracing";
  version = "3.17.2";
  format = "wheel";

  src = fetchPypi {
    pname = "mlflow_tracing";
    inherit version format;
    dist = "py3";
    python = "py3";
    hash = "sha256-FQKqiSFEy+k7DCpwa5VkARvpKQO7s0PRkDjc0yKuXnw=";
  };

  dependencies = [
    cachetools
    databricks-sdk
    opentelemetry-api
    opentelemetry-proto
    opentelemetry-sdk
    packaging
    protobuf
    pydantic
  ];

  pythonRelaxDeps = true;

  pythonImportsCheck = [ "mlflow.tracing" ];

  meta = {
    description = "MLflow's tracing SDK";
    license = lib.licenses.asl20;
  };
}
