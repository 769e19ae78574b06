"""Experiment stores against real services on loopback: an MLflow tracking server, W&B in offline mode,
an S3-compatible server (moto's standalone server) through boto3; and each one down."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, boto_credentials, command, environment, wait_for
from rl_module.registry import Registry

# Every test here needs a store's client library or server (MLflow, W&B, boto3 and moto, TensorBoard).
pytestmark = pytest.mark.service

BUDGET = ("--total-timesteps", "2048", "--eval-freq", "1024", "--checkpoint-freq", "1024", "--seed", "5",
          "--json")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = command("rl-train", *BUDGET, *args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def load_and_predict(path: Path) -> None:
    from stable_baselines3 import PPO

    model = PPO.load(str(path), device="cpu")
    action, _ = model.predict([0.0, 0.0, 0.0, 0.0], deterministic=True)
    assert int(action) in (0, 1)


def registry_rows(cwd: Path) -> list[Any]:
    with Registry(cwd / "rl_registry.db") as registry:
        return registry.models()


def local_models_intact(cwd: Path, result: dict[str, Any]) -> None:
    assert (cwd / result["model_path"]).is_file()
    rows = registry_rows(cwd)
    assert rows and all(Path(r.model_path).is_file() for r in rows)
    assert {r.id for r in rows} >= {result["model_id"]}


# -- MLflow ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health", server)
        yield uri
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


@pytest.mark.slow
def test_mlflow_gets_params_metrics_by_step_and_the_model(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    result = train(tmp_path, "--backend", "mlflow", "--tracking-uri", mlflow_server, "--experiment-name", "cartpole")
    assert result["store_failure"] is None and result["not_uploaded"] == []
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("cartpole")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == result["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["env.envId"] == "CartPole-v1" and run.data.params["env.seed"] == "5"
    assert run.data.tags["rl.registry.model_id"] == str(result["model_id"])
    history = client.get_metric_history(run.info.run_id, "train/value_loss")
    assert len(history) >= 2 and [m.step for m in history] == sorted(m.step for m in history)
    assert client.get_metric_history(run.info.run_id, "eval/mean_reward")[-1].step == 2048
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.zip", "config.json", "progress.csv", "learning_curve.png", "checkpoints"} <= names
    assert len(client.list_artifacts(run.info.run_id, "checkpoints")) == 2
    downloaded = Path(client.download_artifacts(run.info.run_id, "model.zip", str(tmp_path / "download")))
    load_and_predict(downloaded)
    # The registry's model_path is the local file; remote_uri says where MLflow's copy is.
    final = next(r for r in registry_rows(tmp_path) if r.id == result["model_id"])
    assert Path(final.model_path).is_file() and final.remote_uri.endswith("/model.zip")


@pytest.mark.slow
def test_mlflow_takes_the_runs_traces_over_otlp(mlflow_server, tmp_path):
    """MLflow 3's tracking server is an OTLP/HTTP trace backend (/v1/traces, with the experiment in the
    x-mlflow-experiment-id header, set through OpenTelemetry's own OTEL_EXPORTER_OTLP_TRACES_HEADERS)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("traces")
    env = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}"}
    result = train(tmp_path, "--no-registry", "--traces", "--traces-endpoint", f"{mlflow_server}/v1/traces",
                   "--traces-protocol", "http", env=env)
    (trace,) = client.search_traces(locations=[experiment])
    spans = trace.data.spans
    root = next(s for s in spans if s.parent_id is None)
    assert root.name == "rl.train" and root.attributes["rl.run.id"] == result["run_id"]
    names = {s.name for s in spans}
    assert {"rl.episode", "rl.eval", "rl.checkpoint"} <= names


# -- Weights & Biases (offline) -------------------------------------------------------------------

def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a .wandb file: W&B's header, then LevelDB's log format (32 KiB blocks of
    crc32 / length / type chunks) holding wandb_internal Record protobufs."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:
            position += left
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # FULL or LAST
            yield Record.FromString(pending)
            pending = b""


@pytest.mark.slow
def test_wandb_offline_keeps_config_metrics_and_the_model_artifact(tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = train(tmp_path, "--backend", "wandb", "--experiment-name", "cartpole", env=env)
    assert result["store_failure"] is None
    (run_file,) = (tmp_path / result["run_dir"]).glob("wandb/offline-run-*/run-*.wandb")
    records = list(wandb_records(run_file))
    kinds = {r.WhichOneof("record_type") for r in records}
    assert {"run", "history", "artifact"} <= kinds
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.run_id == result["run_id"] and run.project == "cartpole"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["env"]["envId"] == "CartPole-v1" and config["env"]["seed"] == 5
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    losses = [h for h in history if "train/value_loss" in h]
    assert len(losses) >= 2 and all(isinstance(h["train/value_loss"], float) for h in losses)
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert any(a.type == "model" and any(c.path == "model.zip" for c in a.manifest.contents) for a in artifacts)


# -- S3 (moto's standalone server) ----------------------------------------------------------------

@pytest.mark.slow
def test_s3_gets_the_run_directory_and_every_checkpoint(s3_server, tmp_path):
    import boto3

    env = {k: v for k, v in s3_server.items() if k != "endpoint"}
    result = train(tmp_path, "--backend", "s3", "--tracking-uri", "s3://runs/experiments",
                   "--endpoint-url", s3_server["endpoint"], env=env)
    assert result["store_failure"] is None
    client = boto3.client("s3", endpoint_url=s3_server["endpoint"], **boto_credentials(s3_server))
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="runs", Prefix="experiments/")["Contents"]}
    prefix = f"experiments/{result['run_id']}"
    assert {f"{prefix}/model.zip", f"{prefix}/config.json", f"{prefix}/progress.csv",
            f"{prefix}/checkpoints/step-1024.zip", f"{prefix}/checkpoints/step-2048.zip"} <= keys
    client.download_file("runs", f"{prefix}/model.zip", str(tmp_path / "copy.zip"))
    load_and_predict(tmp_path / "copy.zip")
    final = next(r for r in registry_rows(tmp_path) if r.id == result["model_id"])
    assert final.remote_uri == f"s3://runs/{prefix}/model.zip" and Path(final.model_path).is_file()


# -- outages --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend,args,env", [
    ("mlflow", ("--tracking-uri", "http://127.0.0.1:{port}"), {}),
    ("s3", ("--tracking-uri", "s3://runs/x", "--endpoint-url", "http://127.0.0.1:{port}"),
     {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
      "AWS_MAX_ATTEMPTS": "1"}),
    ("wandb", ("--tracking-uri", "nobody"), {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:{port}",
                                             "WANDB_API_KEY": "x" * 40, "WANDB_INIT_TIMEOUT": "5"}),
])
@pytest.mark.slow
def test_a_store_that_is_down_costs_nothing_but_the_upload(backend, args, env, tmp_path):
    port = str(free_port())
    args = tuple(a.replace("{port}", port) for a in args)
    env = {k: v.replace("{port}", port) for k, v in env.items()}
    started = time.time()
    result = command("rl-train", *BUDGET, "--backend", backend, *args, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["store_failure"], "the failure is reported in the result"
    assert outcome["not_uploaded"] and any(p.endswith("model.zip") for p in outcome["not_uploaded"])
    assert result.stderr.count(f"{backend} store failed") == 1
    local_models_intact(tmp_path, outcome)
    assert time.time() - started < 120
    summary = command("rl-train", *BUDGET[:-1], "--backend", backend, *args, cwd=tmp_path, env=env, timeout=300)
    assert "not uploaded" in summary.stdout


def test_the_local_store_has_tensorboard_events_a_learning_curve_and_registry_plots(tmp_path):
    result = train(tmp_path, "--eval-freq", "512")
    run_dir = tmp_path / result["run_dir"]
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(run_dir.glob("**/events.out.tfevents.*")), "TensorBoard event files (tensorboard is installed)"
    second = train(tmp_path, "--seed", "6")
    assert second["run_id"] != result["run_id"]
    plotted = command("rl-registry-list", "--top-n", "2", "--plot", str(tmp_path / "top.png"), cwd=tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    assert "learning curves of 2 models" in plotted.stderr
    from PIL import Image

    with Image.open(tmp_path / "top.png") as image:
        assert image.width > 2 * image.height  # two panels side by side


@pytest.mark.slow
def test_a_stopping_run_waits_for_a_hanging_store_only_so_long_and_lists_what_it_did_not_take(tmp_path):
    """A tracking server that accepts connections and never answers: the SIGTERM'd run still ends within
    the uploader's stop allowance, listing every file that was not uploaded."""
    import signal
    import threading

    from conftest import BIN
    from rl_module.train import STOP_UPLOAD_S

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(silent.accept()[0]) for _ in range(64)], daemon=True).start()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}
    environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"  # the server hangs longer than any stop may wait
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "200000", "--checkpoint-freq", "1000", "--eval-freq", "0",
         "--no-progress-bar", "--json", "--backend", "mlflow", "--tracking-uri",
         f"http://127.0.0.1:{silent.getsockname()[1]}"],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "step-3000.zip" in line:
                break
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        waited = time.monotonic() - signalled
    finally:
        silent.close()
    assert process.returncode == 143, err
    outcome = json.loads(out)
    assert outcome["status"] == "interrupted"
    assert f"still uploading after {STOP_UPLOAD_S:.0f} s" in outcome["store_failure"]
    listed = [Path(p).name for p in outcome["not_uploaded"]]
    assert {"step-1000.zip", "step-3000.zip", f"stopped-{outcome['timesteps']}.zip", "result.json"} <= set(listed)
    assert waited < 30  # bounded by the allowance, not by the server's 60 s
    local_models_intact(tmp_path, outcome)


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc; a zombie counts as gone)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("backend", ["mlflow", "wandb"])
def test_a_run_killed_with_sigkill_leaves_no_uploader_process_behind(backend, mlflow_server, tmp_path):
    """The backend's calls run in a child process (and W&B's client starts a service of its own): when the
    training process dies without a word, every process it started ends too."""
    flags = ["--tracking-uri", mlflow_server] if backend == "mlflow" else []
    environ = environment({"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "500000", "--checkpoint-freq", "1000", "--eval-freq", "0",
         "--no-progress-bar", "--backend", backend, *flags], cwd=tmp_path, env=environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "step-3000.zip" in line:  # the uploader has been at work for a while
                break
        children = _descendants(process.pid)
        assert children, "the uploader runs in a child process"
        process.kill()
        process.wait(timeout=10)
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        left = [pid for pid in children if _alive(pid)]
        assert not left, [(Path(f"/proc/{pid}/cmdline").read_bytes()[:200]) for pid in left]
    finally:
        if process.poll() is None:
            process.kill()
