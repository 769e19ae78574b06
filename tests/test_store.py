"""Experiment stores against real services on loopback: an MLflow tracking server, W&B in offline mode,
an S3-compatible server (moto's standalone server) through boto3; and each one down."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from conftest import BIN, boto_credentials, command, environment
from rl_module.registry import Registry

# Every test here needs a store's client library or server (MLflow, W&B, boto3 and moto, TensorBoard).
pytestmark = pytest.mark.service

# The rollout these tests count in, whatever CartPole's preset: 8 envs x 32 steps, a PPO update every 256 steps
# (several per run, each logged), steps that reach every checkpoint period exactly.
ROLLOUT = ("--n-envs", "8", "--agent-kwargs", '{"n_steps": 32}')
BUDGET = ("--total-timesteps", "2048", "--eval-freq", "1024", "--checkpoint-freq", "1024", "--seed", "5", *ROLLOUT,
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

@dataclass
class Silent:
    """A tracking server that accepts connections and never answers: its URI, the connections it holds."""

    uri: str
    held: list[socket.socket]


@pytest.fixture
def silent_server() -> Iterator[Silent]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while len(held) < 64:
                held.append(listening.accept()[0])
        except OSError:  # closed at the end of the test
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield Silent(f"http://127.0.0.1:{listening.getsockname()[1]}", held)
    finally:
        try:
            listening.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        listening.close()
        for connection in held:
            connection.close()


class Lines:
    """A process's stderr read to its end in a thread, as it comes: the uploader and W&B's service inherit
    it, and a pipe nobody reads fills and blocks whoever writes to it next. Its end (EOF) means that
    every process holding it has ended."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether a line with `text` came within `timeout` (False at once when the stream ended)."""
        with self.changed:
            return self.changed.wait_for(lambda: any(text in line for line in self.lines)
                                         or not self.reader.is_alive(), timeout) and text in "".join(self.lines)

    @property
    def text(self) -> str:
        with self.changed:
            return "".join(self.lines)


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
def test_a_stopping_run_waits_for_a_hanging_store_only_so_long_and_lists_what_it_did_not_take(silent_server,
                                                                                                tmp_path):
    """A tracking server that accepts connections and never answers: the SIGTERM'd run still ends within
    the uploader's stop allowance, listing every file that was not uploaded."""
    from rl_module.store import STOP_UPLOAD_S

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}
    environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"  # the server hangs longer than any stop may wait
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "200000", "--checkpoint-freq", "1000", "--eval-freq", "0",
         *ROLLOUT, "--no-progress-bar", "--json", "--backend", "mlflow", "--tracking-uri", silent_server.uri],
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
        if process.poll() is None:
            process.kill()
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


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _uploader(pid: int) -> int:
    """The uploader process of the training process `pid` (multiprocessing's spawned child; the resource
    tracker beside it is not it)."""
    (found,) = [child for child in _descendants(pid) if b"spawn_main" in _cmdline(child)]
    return found


def _all_gone(pids: set[int], seconds: float) -> list[bytes]:
    """The command lines of those of `pids` still alive after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    return [_cmdline(pid)[:200] for pid in pids if _alive(pid)]


@pytest.mark.parametrize("backend", ["mlflow", "wandb", "mlflow stuck in a call"])
def test_a_run_killed_with_sigkill_leaves_no_uploader_process_behind(backend, mlflow_server, silent_server, tmp_path):
    """The backend's calls run in a child process (and W&B's client starts a service of its own): when the
    training process dies without a word, every process it started ends too. Also when the child is in
    the middle of a call that would not return for minutes (a server that never answers): then only its
    watch on the training process ends it."""
    flags = {"mlflow": ["--tracking-uri", mlflow_server], "wandb": [],
             "mlflow stuck in a call": ["--tracking-uri", silent_server.uri]}[backend]
    environ = environment({"WANDB_MODE": "offline", "WANDB_SILENT": "true",
                           "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"})  # the silent server's call: far past the bound
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "500000", "--checkpoint-freq", "1000", "--eval-freq", "0",
         *ROLLOUT, "--no-progress-bar", "--backend", backend.split()[0], *flags], cwd=tmp_path, env=environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        stderr = Lines(process.stderr)
        assert stderr.wait_for("step-3000.zip", 180), stderr.text  # the uploader has been at work for a while
        children = _descendants(process.pid)
        assert _uploader(process.pid) in children, "the uploader runs in a child process"
        if backend == "wandb":  # its service too, before the kill: it is the grandchild that must end as well
            deadline = time.time() + 120
            while not any(b"wandb-core" in _cmdline(pid) for pid in children) and time.time() < deadline:
                time.sleep(0.5)
                children = _descendants(process.pid)
            assert any(b"wandb-core" in _cmdline(pid) for pid in children), "W&B's service started"
        if backend == "mlflow stuck in a call":  # the uploader is in a call the server never answers
            deadline = time.time() + 120
            while not silent_server.held and time.time() < deadline:
                time.sleep(0.2)
            assert silent_server.held, "the uploader called the server"
        process.kill()
        process.wait(timeout=10)
        left = _all_gone(children, 15)
        assert not left, left
        stderr.reader.join(5)  # the stderr the processes inherited: every one of them has let go of it
        assert not stderr.reader.is_alive()
        assert "Traceback" not in stderr.text, stderr.text
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_an_uploader_that_dies_is_a_store_failure_that_lists_what_it_lost(mlflow_server, tmp_path):
    """The uploader process killed under a running training (as the OOM killer does): the failure is
    reported once, the training goes on and ends at once (no wait for a child that is gone), and what was
    not uploaded is listed."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "4096", "--checkpoint-freq", "1024", "--eval-freq", "0",
         "--no-progress-bar", "--json", "--backend", "mlflow", "--tracking-uri", mlflow_server,
         "--experiment-name", "uploader-dies"], cwd=tmp_path, env=environment({}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        stderr = Lines(process.stderr)
        assert stderr.wait_for("step-1024.zip", 180), stderr.text
        os.kill(_uploader(process.pid), signal.SIGKILL)
        out = process.stdout.read()
        assert process.wait(timeout=60) == 0, stderr.text
        stderr.reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
    outcome = json.loads(out)
    assert outcome["store_failure"] == "the uploader process ended unexpectedly (killed by SIGKILL)"
    listed = {Path(p).name for p in outcome["not_uploaded"]}
    assert {"model.zip", "config.json", "result.json"} <= listed
    assert stderr.text.count("mlflow store failed") == 1 and "Traceback" not in stderr.text, stderr.text
    local_models_intact(tmp_path, outcome)
    assert time.monotonic() - started < 150


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2])
def test_a_stop_during_the_end_of_runs_wait_for_a_hanging_store_cuts_it(signals, silent_server, tmp_path):
    """A run that ended waits up to minutes for its store's uploads. A SIGTERM then cuts the wait to the
    stop allowance; a second one ends the uploader at once (the run stops with 143). Either way no
    process is left behind and what was not uploaded is listed."""
    from rl_module.store import STOP_UPLOAD_S

    environ = environment({"MLFLOW_HTTP_REQUEST_TIMEOUT": "120"})  # the server hangs longer than the test waits
    process = subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "2048", "--checkpoint-freq", "0", "--eval-freq", "0",
         "--no-progress-bar", "--json", "--backend", "mlflow", "--tracking-uri", silent_server.uri],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        stderr = Lines(process.stderr)
        assert stderr.wait_for("still uploading to the mlflow store: waiting up to", 110), stderr.text
        children = _descendants(process.pid)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        if signals == 2:
            assert stderr.wait_for("send it again", 10), stderr.text
            process.send_signal(signal.SIGTERM)
        out = process.stdout.read()
        code = process.wait(timeout=60)
        waited = time.monotonic() - signalled
        stderr.reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert not _all_gone(children, 10)
    assert not stderr.reader.is_alive() and "Traceback" not in stderr.text, stderr.text
    if signals == 1:
        assert code == 0, stderr.text  # the run had finished; only its wait was cut
        outcome = json.loads(out)
        assert outcome["store_failure"] == f"still uploading {STOP_UPLOAD_S:.0f} s after a stop signal"
        assert {"model.zip", "config.json", "result.json"} <= {Path(p).name for p in outcome["not_uploaded"]}
        assert STOP_UPLOAD_S - 1 < waited < STOP_UPLOAD_S + 20
    else:
        assert code == 143, stderr.text
        assert "stopped at once by a second SIGTERM" in stderr.text
        assert "mlflow store failed (still uploading when the run was stopped at once)" in stderr.text
        listed = next(line for line in stderr.lines if "not uploaded to the mlflow store:" in line)
        assert "model.zip" in listed and "result.json" in listed
        assert waited < STOP_UPLOAD_S + 10


class _Unreadable:
    """Pickles to a call of int() that fails in the uploader process, with a URL and its password in
    the message: a request the child cannot read."""

    def __reduce__(self) -> tuple[Any, ...]:
        return int, ("http://user:hunter2@127.0.0.1/",)


def test_a_request_the_uploader_cannot_read_is_a_store_failure_never_a_raw_traceback(mlflow_server, tmp_path,
                                                                                      capfd):
    """An error in the child's own loop (here: a request it cannot unpickle) is the store's failure like a
    backend's; the child prints no traceback (which would bypass the redaction of its password) and goes
    on to the end, skipping what follows."""
    from rl_module import spec
    from rl_module.cli.train import COMMAND as TRAIN
    from rl_module.config import ALL_FEATURES, resolve
    from rl_module.store import Run, Uploader

    # What the store's logger itself emits (not through propagation, which other in-process tests configure).
    records: list[logging.LogRecord] = []
    collect = logging.Handler(logging.WARNING)
    collect.emit = records.append  # type: ignore[method-assign]
    store_log = logging.getLogger("rl_module.store")
    level = store_log.level
    store_log.setLevel(logging.WARNING)
    store_log.addHandler(collect)
    options = spec.load()
    args = TRAIN.parser(options).parse_args(["--backend", "mlflow", "--tracking-uri", mlflow_server,
                                            "--experiment-name", "unreadable"])
    run = Run("unreadable", tmp_path)
    uploader = Uploader(run, resolve(options, ALL_FEATURES, args, {}))
    uploader.tag("note", _Unreadable())  # type: ignore[arg-type] - what no caller sends: the point
    (tmp_path / "model.zip").write_bytes(b"a model")
    uploader.upload(tmp_path / "model.zip")
    try:
        uploader.finish(run, succeeded=True, timeout=120)
    finally:
        store_log.removeHandler(collect)
        store_log.setLevel(level)
    assert uploader.failure is not None and uploader.failure.startswith("a request the uploader could not read: "
                                                                        "ValueError")
    assert uploader.not_uploaded == [str(tmp_path / "model.zip")]
    assert uploader._process.exitcode == 0  # it ended by itself, having drained its queue
    failed = [r for r in records if r.getMessage().startswith("mlflow store failed (a request the uploader")]
    assert len(failed) == 1, [r.getMessage() for r in records]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "hunter2" not in err, err
