{
  lib,
  buildPythonPackage,
  setuptools,
  boto3,
  gymnasium,
  matplotlib,
  mlflow,
  mlflow-skinny,
  model-signing,
  numpy,
  onnx,
  onnxruntime,
  opentelemetry-api,
  opentelemetry-exporter-otlp-proto-grpc,
  opentelemetry-exporter-otlp-proto-http,
  opentelemetry-exporter-prometheus,
  opentelemetry-instrumentation-logging,
  opentelemetry-proto,
  opentelemetry-sdk,
  optuna,
  optuna-dashboard,
  psycopg,
  pyopenssl,
  rich,
  stable-baselines3,
  torch,
  tqdm,
  uvicorn,
  grpcio,
  hypothesis,
  pytestCheckHook,
  # rl-module-serve: what `rl-infer --serve --runtime onnx` needs, and no torch, stable-baselines3 or
  # matplotlib (the policy runs on onnxruntime from the ONNX file inside each model).
  serving ? false,
}:

buildPythonPackage {
  pname = if serving then "rl-module-serve" else "rl-module";
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
    numpy
    # infer.runtime onnx; the full package exports models to ONNX with torch, which imports onnx to do so.
    onnxruntime
    opentelemetry-api
    opentelemetry-exporter-otlp-proto-grpc
    opentelemetry-exporter-otlp-proto-http
    opentelemetry-exporter-prometheus
    opentelemetry-instrumentation-logging
    opentelemetry-sdk
    # A registry shared by many machines (a PostgreSQL URL) and the models' copies in S3 that every host
    # fetches: imported only when configured.
    psycopg
    boto3
    # Model signatures: sweep units sign with registry.signingKeyFile and servers verify under
    # registry.trustedKeys, so both packages carry OpenSSF model-signing; its 1.1.1 imports OpenSSL
    # (pyopenssl) without declaring it.
    model-signing
    pyopenssl
    rich
    tqdm
    uvicorn
  ]
  # A server fetches models kept in MLflow with the tracking client alone (no web UI, no pandas).
  ++ lib.optionals serving [ mlflow-skinny ]
  ++ lib.optionals (!serving) [
    matplotlib
    # store.backend mlflow, which the NixOS units' trainers may be given.
    mlflow
    onnx
    # rl-sweep, which the NixOS module's sweep units run, and optuna-dashboard to watch a study.
    optuna
    optuna-dashboard
    stable-baselines3
    torch
  ];

  # The serving package is checked by what it imports; the full package's tests cover its code.
  doCheck = !serving;

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

  pythonImportsCheck = [ "rl_module" ] ++ lib.optionals serving [ "rl_module.server" "rl_module.portable" ];

  meta = {
    description = "A declarative reinforcement-learning pipeline with built-in observability";
    license = lib.licenses.mit;
    mainProgram = "rl-train";
  };
}
