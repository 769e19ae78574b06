{
  lib,
  buildPythonPackage,
  setuptools,
  gymnasium,
  matplotlib,
  numpy,
  opentelemetry-api,
  opentelemetry-exporter-otlp-proto-grpc,
  opentelemetry-exporter-otlp-proto-http,
  opentelemetry-exporter-prometheus,
  opentelemetry-instrumentation-logging,
  opentelemetry-proto,
  opentelemetry-sdk,
  psycopg,
  rich,
  stable-baselines3,
  torch,
  tqdm,
  grpcio,
  hypothesis,
  pytestCheckHook,
}:

buildPythonPackage {
  pname = "rl-module";
  version = "0.1.0";
  pyproject = true;

  # The Python package and what its tests read (the Universe and lib/ for the drift tests).
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../pyproject.toml
      ../../README.md
      ../../scripts
      ../../tests
      ../../lib
      ../../Modules
      ../../introspect-options.nix
    ];
  };

  build-system = [ setuptools ];

  dependencies = [
    gymnasium
    matplotlib
    numpy
    opentelemetry-api
    opentelemetry-exporter-otlp-proto-grpc
    opentelemetry-exporter-otlp-proto-http
    opentelemetry-exporter-prometheus
    opentelemetry-instrumentation-logging
    opentelemetry-sdk
    # A registry shared by many machines (a PostgreSQL URL): imported only when one is configured.
    psycopg
    rich
    stable-baselines3
    torch
    tqdm
  ];

  # pyproject.toml pins the versions CI tests with; nixpkgs brings its own, close ones.
  pythonRelaxDeps = true;

  nativeCheckInputs = [
    grpcio
    hypothesis
    opentelemetry-proto
    pytestCheckHook
  ];

  preCheck = ''
    export HOME=$TMPDIR
    export PATH=$out/bin:$PATH
  '';

  # Tests marked `service` need a server or a tool the sandbox has not (an MLflow server, moto, W&B,
  # Prometheus, nu); CI runs them. Tests needing nix-instantiate skip themselves and say so. Lint
  # tests need ruff and mypy, which the devShell has.
  disabledTestMarks = [ "service" ];
  disabledTestPaths = [ "tests/test_lint.py" ];

  pythonImportsCheck = [ "rl_module" ];

  meta = {
    description = "A declarative reinforcement-learning pipeline with built-in observability";
    license = lib.licenses.mit;
    mainProgram = "rl-train";
  };
}
