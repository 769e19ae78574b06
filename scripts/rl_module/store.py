"""Store: where runs and models are kept.

Every run has its own directory under store.modelDir, named by its run id:

    <modelDir>/<run id>/
      config.json                the resolved configuration, with the source of each value
      model.zip                  the final model (+ model.vecnormalize.pkl with normalization)
      best_model.zip             the best model of the periodic evaluations
      checkpoints/step-<n>.zip   every store.checkpointFreq steps
      progress.csv, progress.json  stable-baselines3's logger output
      evaluations.npz            the periodic evaluations (EvalCallback's log)
      train.log                  the run's events
      result.json                what the run produced (the summary, as data)
      run.lock                   held while a process trains the run (a second one is refused)

A model of DQN, SAC or TD3 may have its replay buffer beside it (`<model>.replay.npz`, plain arrays,
store.replayBuffer), so that a resumed run continues with the experience it had.

Files appear atomically: written to a temporary name in the same directory, fsynced, renamed. A reader
(the registry, a serving process) never sees half a model, and a model's normalization statistics are
on disk before the model itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import queue
import secrets
import signal
import threading
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlparse

from . import obs
from .artifact import beside
from .config import Config, UsageError, flatten
from .logs import event

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class SavedModel:
    path: Path
    sha256: str
    timesteps: int
    stats_sha256: str | None = None  # of the normalization statistics saved beside it, when there are some


@dataclass(frozen=True)
class ModelBytes:
    """A model file and the statistics beside it, read once: what is checked is what is loaded (a model
    file is code: unpickling it runs what it says)."""

    path: Path
    model: bytes
    stats: bytes | None


def read_model(path: Path) -> ModelBytes:
    """Read a model and its statistics once, checking nothing (a file the user names by path)."""
    stats = obs.stats_path(path)
    return ModelBytes(path, path.read_bytes(), stats.read_bytes() if stats.is_file() else None)


@dataclass(frozen=True)
class Run:
    id: str
    directory: Path

    @property
    def model_path(self) -> Path:
        return self.directory / "model.zip"

    @property
    def best_model_path(self) -> Path:
        return self.directory / "best_model.zip"

    def checkpoint_path(self, timesteps: int) -> Path:
        return self.directory / "checkpoints" / f"step-{timesteps}.zip"

    def lock(self) -> Any:
        """Hold the run's lock while training it: another process resuming the same run is refused, and
        the lock goes with the process however it ends (an advisory lock on an open file)."""
        import fcntl

        handle = open(self.directory / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise UsageError(f"run {self.id} is being trained by another process ({holder or 'pid unknown'})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        return handle


LOCK_FILE = "run.lock"
REPLAY_SUFFIX = ".replay.npz"
PICKLED_REPLAY_SUFFIX = ".replay.pkl"  # SB3's pickle, as rl-module saved it before: never loaded


def replay_path(model_path: str | Path) -> Path:
    """Where the replay buffer of a model lives: model.zip -> model.replay.npz."""
    return beside(model_path, REPLAY_SUFFIX)


def pickled_replay_path(model_path: str | Path) -> Path:
    return beside(model_path, PICKLED_REPLAY_SUFFIX)


def new_run(config: Config) -> Run:
    """A fresh run directory: <time>-<algorithm>-<env>-<random>, sortable and unique."""
    env_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.env.envId)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.agent.algorithm}-{env_name}-{secrets.token_hex(3)}"
    directory = Path(config.store.modelDir) / run_id
    directory.mkdir(parents=True, exist_ok=False)
    return Run(run_id, directory)


def _temporary_name(path: Path) -> Path:
    """A name beside `path` for what becomes `path` by rename (hidden, unique to this process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


@contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file that appears at `path` all at once when the block ends (temp name, fsync, rename, fsync the
    directory), or not at all: on any exception, a second signal's included, the temporary file goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> str:
    """Write `data` to `path` all at once; its sha256."""
    with atomic_file(path, mode) as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def write_json(path: Path, data: Any) -> None:
    """A run file that can carry configuration: owner-only."""
    atomic_write(path, (json.dumps(data, indent=2, default=str) + "\n").encode(), mode=0o600)


def save_model(model: BaseAlgorithm, path: Path, venv: VecEnv | None = None, replay: bool = False,
               onnx: bool = False) -> SavedModel:
    """Save a model atomically, and first what it needs beside it: its normalization statistics (plain
    arrays) and, with `replay` (an off-policy algorithm), its replay buffer. The model file carries its
    description (artifact.py), which names the statistics by sha256: what loads it never unpickles; with
    `onnx` (infer.export), its policy as ONNX too (portable.py)."""
    from . import artifact

    stats = obs.stats_bytes(venv) if venv is not None else None
    stats_digest = atomic_write(obs.stats_path(path), stats) if stats is not None else None
    if replay and getattr(model, "replay_buffer", None) is not None:
        arrays = artifact.replay_arrays(model.replay_buffer)  # type: ignore[attr-defined]
        if arrays is None:
            log.warning("the replay buffer (a %s) is not saved: only SB3's ReplayBuffer and DictReplayBuffer are",
                        type(model.replay_buffer).__name__)  # type: ignore[attr-defined]
        else:
            import numpy as np

            with atomic_file(replay_path(path)) as handle:  # streamed: a buffer can be gigabytes
                np.savez(handle, **arrays)
    digest = atomic_write(path, artifact.model_bytes(model, stats_digest, onnx=onnx, stats=stats))
    return SavedModel(path, digest, int(model.num_timesteps), stats_digest)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_model(source: Path, target: Path) -> None:
    """Give a model (and, first, the files beside it) a second name, atomically, without copying."""
    for src, dst in ((obs.stats_path(source), obs.stats_path(target)), (replay_path(source), replay_path(target)),
                     (source, target)):
        if not src.is_file():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_name(dst)
        os.link(src, temporary)
        os.replace(temporary, dst)


def saved_timesteps(path: Path) -> int:
    """The step count a saved model was trained to, read from the JSON part of SB3's zip (no unpickling)."""
    with zipfile.ZipFile(path) as archive:
        return int(json.loads(archive.read("data"))["num_timesteps"])


def newest_model(run: Run) -> tuple[Path, int] | None:
    """The run's saved model with the most steps (its final model, an interrupted one, or a checkpoint),
    with that step count; None when it saved none. A file that is not a readable model is passed over."""
    found: list[tuple[int, bool, Path]] = []
    for path in [run.model_path, *(run.directory / "checkpoints").glob("*.zip")]:
        try:
            found.append((saved_timesteps(path), path == run.model_path, path))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            continue
    if not found:
        return None
    timesteps, _, path = max(found)
    return path, timesteps


def find_run(config: Config) -> Run:
    """The run train.resume names: a run directory, a run id under store.modelDir, or `latest` (the run
    under store.modelDir whose config.json was written last)."""
    wanted: str = config.train.resume
    base = Path(config.store.modelDir)
    if wanted == "latest":
        runs = [d for d in base.glob("*") if (d / CONFIG_FILE).is_file()] if base.is_dir() else []
        if not runs:
            raise config.refuse("train.resume", f"finds no run under store.modelDir {base.resolve()}")
        directory = max(runs, key=lambda d: (d / CONFIG_FILE).stat().st_mtime)
    else:
        candidates = [Path(wanted), base / wanted]
        directory = next((c for c in candidates if (c / CONFIG_FILE).is_file()), None)  # type: ignore[assignment]
        if directory is None:
            raise config.refuse("train.resume", f"names no run: neither {Path(wanted).resolve()} nor "
                                f"{(base / wanted).resolve()} is a run directory (with a {CONFIG_FILE})")
    try:
        return Run(read_run_config(directory)["run"], directory.resolve())
    except ValueError as error:
        raise config.refuse("train.resume", f"names {directory.resolve()}, whose {error}") from None


def read_run_config(directory: Path) -> dict[str, Any]:
    """A run directory's config.json: {"run": id, "cwd": folder it started in, "options": {feature:
    {option: {"value", "source"}}}}; ValueError when the file is not that."""
    path = directory / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("run"), str) or not isinstance(
                data.get("options"), dict):
            raise ValueError("no run and options")
        flatten(data["options"])  # each feature a mapping
        return data
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{CONFIG_FILE} is not a run's configuration ({error})") from None


def run_config(model_path: str | Path) -> tuple[str, dict[str, Any]] | None:
    """The run id and option values of the run a model file belongs to (its config.json sits in the
    model's directory or, for a checkpoint, the one above), or None for a model from elsewhere."""
    path = Path(model_path).resolve()
    # A checkpoint's run is one folder up; any other model's is its own folder, never one further away.
    directory = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (directory / CONFIG_FILE).is_file():
        return None
    try:
        data = read_run_config(directory)
        values = {path: entry["value"] for path, entry in flatten(data["options"]).items()}
    except (ValueError, KeyError, TypeError) as error:
        log.warning("%s/%s: the model's options are not read from it", directory, error)
        return None
    return data["run"], values


def logger(run: Run) -> Any:
    """SB3's logger writing the run's progress.csv and progress.json (and TensorBoard events when it is
    installed). The files are continued, not truncated: a resumed run adds its rows below the first
    segment's (SB3's own writers open them with "w")."""
    from stable_baselines3.common.logger import CSVOutputFormat, JSONOutputFormat, Logger, make_output_format

    class ContinuedCSV(CSVOutputFormat):
        def __init__(self, filename: str) -> None:  # noqa: B027 - SB3's attributes, the file opened to continue
            existing = os.path.exists(filename)
            self.file = open(filename, "r+" if existing else "w+")  # noqa: SIM115 - closed by Logger.close
            header = self.file.readline().strip() if existing else ""
            self.keys: list[str] = header.split(",") if header else []
            self.file.seek(0, os.SEEK_END)
            self.separator, self.quotechar = ",", '"'

    class ContinuedJSON(JSONOutputFormat):
        def __init__(self, filename: str) -> None:
            self.file = open(filename, "a")  # noqa: SIM115 - closed by Logger.close

    folder = str(run.directory)
    formats = [ContinuedCSV(str(run.directory / "progress.csv")), ContinuedJSON(str(run.directory / "progress.json"))]
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append(make_output_format("tensorboard", folder))
    return Logger(folder, formats)


def _no_span(name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
    return nullcontext()


def checkpoint_callback(run: Run, every: int, on_saved: Callable[[SavedModel], object] | None = None,
                        span: Callable[[str, dict[str, Any]], AbstractContextManager[Any]] | None = None,
                        after: int = 0, replay: bool = False, onnx: bool = False) -> Any:
    """A stable-baselines3 callback saving a checkpoint every `every` environment steps (the first one
    past `after`, where a resumed run starts), atomically, inside `span` (an rl.checkpoint trace span);
    with `replay`, the replay buffer beside it. SB3's CheckpointCallback writes in place: a crash
    mid-write would leave a partial file."""
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_at = (after // every + 1) * every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                while self.next_at <= self.num_timesteps:
                    self.next_at += every
                path = run.checkpoint_path(self.num_timesteps)
                attributes = {"rl.timesteps": self.num_timesteps, "rl.model.path": str(path)}
                with (span or _no_span)("rl.checkpoint", attributes):
                    saved = save_model(self.model, path, self.model.get_env(), replay, onnx)
                    log.info("checkpoint saved: %s (%d steps)", saved.path, saved.timesteps,
                             extra=event("rl.checkpoint.saved", model_path=str(path), timesteps=saved.timesteps))
                    if on_saved:
                        on_saved(saved)
            return True

    return AtomicCheckpoint()


# -- experiment stores ---------------------------------------------------------------------------
# The run directory is always the local store. store.backend adds a place that keeps copies: MLflow,
# Weights & Biases, or an S3 bucket. A backend never costs the training: its calls run in a child process
# of their own (Uploader); the first failure is reported once with the backend's own message, the backend
# is dropped for the rest of the run, and the summary lists what was not uploaded.

EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb"), "s3": ("boto3", "s3")}
# What of the run directory is uploaded when the run ends (models and checkpoints go as they are written).
RUN_FILES = ("config.json", "result.json", "progress.csv", "progress.json", "evaluations.npz", "train.log",
             "learning_curve.png", "metrics.otlp.jsonl", "traces.otlp.jsonl", "logs.otlp.jsonl")


class ExperimentStore(ABC):
    """One experiment-tracking backend; every method may raise (the Uploader catches)."""

    name: str = ""

    @abstractmethod
    def start(self, run: Run, config: Config) -> None: ...

    def log_metrics(self, values: dict[str, float], step: int) -> None:  # noqa: B027 - optional hook
        """Metrics by step; backends without a metrics store keep them in the uploaded progress files."""

    def log_metric_steps(self, steps: list[tuple[dict[str, float], int]]) -> None:
        """Several steps' metrics at once (the uploader gathers them for up to METRICS_EVERY_S)."""
        for values, step in steps:
            self.log_metrics(values, step)

    @abstractmethod
    def upload(self, path: Path, folder: str) -> str:
        """Copy a file of the run; returns where the copy is (a URI)."""

    def tag(self, key: str, value: str) -> None:  # noqa: B027 - optional hook
        """Label the run (MLflow tags); backends without tags ignore it."""

    @abstractmethod
    def finish(self, succeeded: bool) -> None: ...


class MLflowStore(ExperimentStore):
    name = "mlflow"

    def __init__(self, tracking_uri: str | None, experiment: str) -> None:
        # Fail fast when the server is down: MLflow retries each request for minutes by default.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        # stdout carries the command's summary or JSON; MLflow would print the run's URL into it.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment = experiment
        self.run_id = ""
        self.artifact_uri = ""

    def start(self, run: Run, config: Config) -> None:
        from mlflow.entities import Param

        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        created = self.client.create_run(experiment_id, run_name=run.id, tags={"rl.run.id": run.id})
        self.run_id, self.artifact_uri = created.info.run_id, created.info.artifact_uri
        params = [Param(path, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
                  for path, value in flatten(config.public_values()).items()]
        self.client.log_batch(self.run_id, params=params)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        self.log_metric_steps([(values, step)])

    def log_metric_steps(self, steps: list[tuple[dict[str, float], int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for values, step in steps for k, v in values.items()]
        for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 1000])

    def upload(self, path: Path, folder: str) -> str:
        self.client.log_artifact(self.run_id, str(path), artifact_path=folder or None)
        return "/".join(p for p in (self.artifact_uri, folder, path.name) if p)

    def tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, succeeded: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if succeeded else "FAILED")


class WandbStore(ExperimentStore):
    """Weights & Biases; WANDB_MODE=offline keeps the run on disk (under the run directory) for a
    later `wandb sync`."""

    name = "wandb"

    def __init__(self, entity: str | None, project: str) -> None:
        # stdout carries the command's summary or JSON: W&B must neither print into it nor capture it.
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ.setdefault("WANDB_CONSOLE", "off")
        import wandb

        self.wandb = wandb
        self.entity, self.project = entity, project
        self.run: Any = None

    def start(self, run: Run, config: Config) -> None:
        # W&B records the command line, the program and the machine's metadata with the run (its run file
        # is uploaded by `wandb sync`): a password or token given as a flag would be in it. The
        # configuration it gets is the masked one; the rest it does not collect.
        settings = self.wandb.Settings(x_disable_meta=True, save_code=False, disable_code=True, disable_git=True)
        self.run = self.wandb.init(project=self.project, entity=self.entity, name=run.id, id=run.id,
                                   dir=str(run.directory), config=config.public_values(), reinit="create_new",
                                   settings=settings)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def upload(self, path: Path, folder: str) -> str:
        kind = "checkpoint" if folder == "checkpoints" else "model"
        name = f"{self.run.id}-{path.stem}".replace("/", "-")
        artifact = self.wandb.Artifact(name, type=kind, metadata={"folder": folder})
        artifact.add_file(str(path))
        self.run.log_artifact(artifact)
        return f"wandb-artifact://{self.entity or '-'}/{self.project}/{name}:latest"

    def finish(self, succeeded: bool) -> None:
        self.run.finish(exit_code=0 if succeeded else 1)


class MissingBucket(Exception):
    """The S3 bucket store.trackingUri names is not there (a bucket is made by its owner, never by a run)."""


class S3Store(ExperimentStore):
    """An S3 bucket (or an S3-compatible server through store.endpointUrl): s3://bucket/prefix/<run>/..."""

    name = "s3"

    def __init__(self, uri: str, endpoint_url: str | None) -> None:
        import boto3

        parsed = urlparse(uri)
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)
        self.run_prefix = ""

    def start(self, run: Run, config: Config) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket"):
                raise
            raise MissingBucket(f"bucket {self.bucket!r} does not exist (store.trackingUri s3://{self.bucket}/...): "
                                "rl-module never creates one, it must exist before a run uploads to it; create it "
                                f"(aws s3 mb s3://{self.bucket}) or name an existing bucket") from None
        self.run_prefix = "/".join(p for p in (self.prefix, run.id) if p)

    def upload(self, path: Path, folder: str) -> str:
        key = "/".join(p for p in (self.run_prefix, folder, path.name) if p)
        self.client.upload_file(str(path), self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def finish(self, succeeded: bool) -> None:
        pass


def fetch(config: Config, uri: str, target: Path) -> None:
    """A model file's remote copy (as a store recorded it in the registry) into `target`, atomically: S3
    through boto3 (store.endpointUrl for S3-compatible servers), anything else through MLflow's artifact
    download (store.trackingUri when the backend is mlflow). The caller checks the bytes before loading."""
    if uri.startswith("s3://"):
        import boto3

        parsed = urlparse(uri)
        client = boto3.client("s3", endpoint_url=config.store.endpointUrl)
        with atomic_file(target, 0o600) as handle:
            client.download_fileobj(parsed.netloc, parsed.path.lstrip("/"), handle)
        return
    if uri.startswith("wandb-artifact://"):
        raise ValueError("models kept only as W&B artifacts are not fetched; use store.backend s3 or mlflow on "
                         "the hosts that train for many machines")
    import tempfile

    from mlflow.artifacts import download_artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as folder:
        tracking_uri = config.store.trackingUri if config.store.backend == "mlflow" else None
        downloaded = Path(download_artifacts(artifact_uri=uri, dst_path=folder, tracking_uri=tracking_uri))
        with atomic_file(target, 0o600) as handle:
            handle.write(downloaded.read_bytes())


def check_backend(config: Config) -> None:
    """Refuse a store that cannot work before any training: a missing client library, a bad URI."""
    backend = config.store.backend
    if backend == "local":
        return
    module, extra = EXTRAS[backend]
    if importlib.util.find_spec(module) is None:
        raise config.refuse("store.backend", f"needs {module}: pip install 'rl-module[{extra}]'")
    uri = config.store.trackingUri
    if backend == "s3" and (uri is None or not uri.startswith("s3://") or not urlparse(uri).netloc):
        raise UsageError(f"option store.trackingUri from {config.source('store.trackingUri')}: {uri!r} is not "
                         "allowed; store.backend s3 needs s3://bucket[/prefix]")


def open_backend(config: Config) -> ExperimentStore | None:
    """The configured backend (not yet started), or None for the local store alone."""
    backend = config.store.backend
    if backend == "mlflow":
        return MLflowStore(config.store.trackingUri, config.store.experimentName)
    if backend == "wandb":
        return WandbStore(config.store.trackingUri, config.store.experimentName)
    if backend == "s3":
        return S3Store(config.store.trackingUri, config.store.endpointUrl)
    return None


# What a stopping run waits for its experiment store (the rest is listed as not uploaded), also when the
# stop comes while the end of a run is already waiting for its uploads.
STOP_UPLOAD_S = 5.0


class Uploader:
    """Runs a backend's calls in a child process of its own, in order: the training process only puts
    each call on a queue. A backend client's Python work (its import, building each metric batch, HTTP,
    hashing a file for upload) would otherwise take the interpreter lock from the learning loop: in a
    thread it cost MLflow a third of the training speed (bench/README.md, Experiment stores).

    The first failure is reported once (with the backend's own message) and the backend is dropped:
    later calls are skipped, and every file not copied is listed in `not_uploaded`. A child that ends
    before its time (a crash, the OOM killer, a failed start) is such a failure too. The child ignores
    Ctrl-C and SIGTERM (they stop the training, which then lets the uploads drain within a bound), is
    killed when that bound passes, and ends by itself when the training process dies."""

    def __init__(self, run: Run, config: Config) -> None:
        self.name = config.store.backend
        self.failure: str | None = None
        self.uploaded: dict[str, str] = {}  # local path -> remote URI
        self.not_uploaded: list[str] = []
        self._pending: dict[int, str] = {}  # uploads sent and not yet answered: call number -> local path
        self._numbers = 0
        self._lock = threading.Lock()
        self._finished = False  # the run's last calls are queued: nothing more is taken
        self._gone = False  # the child ended (or never started): a call is listed at once, not queued
        self._ended = False  # finish saw the child end (by itself or killed): a second finish does nothing
        self._process: Any = None
        if self.name == "local":
            return
        import multiprocessing
        import pickle

        # spawn, never fork: the training process holds torch's threads and the telemetry exporters' ones.
        # (spawn starts multiprocessing's resource-tracker process too; it ends with the last process
        # holding its pipe, so neither a finished nor a killed run leaves it behind.)
        context = multiprocessing.get_context("spawn")
        child_requests, self._requests = context.Pipe(duplex=False)
        self._replies, child_replies = context.Pipe(duplex=False)
        self._outbox: queue.Queue[tuple[int, str, str, tuple[Any, ...]] | None] = queue.Queue()
        try:
            # The run and its configuration go as bytes, read inside the child's own error handling: a
            # failure there is reported like any other, never as a raw traceback.
            payload = pickle.dumps((run, config))
            self._process = context.Process(target=_upload_in_child, name=f"rl-store-{self.name}",
                                            args=(child_requests, child_replies, payload, os.getpid()))
            self._process.start()
        except Exception as error:  # no process to be had (out of memory, too many processes): train on
            self._process, self._gone = None, True
            self._fail(f"the uploader process did not start: {type(error).__name__}: {error}")
            return
        finally:
            child_requests.close()  # the child's ends: once it is gone, reading its answers ends
            child_replies.close()
        self._sender = threading.Thread(target=self._send, name=f"rl-store-{self.name}-send", daemon=True)
        self._collector = threading.Thread(target=self._collect, name=f"rl-store-{self.name}", daemon=True)
        self._sender.start()
        self._collector.start()
        self._submit("start", "start", ())

    def _fail(self, failure: str) -> None:
        """The store's first failure, reported once; the run goes on locally."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = failure
        log.warning("%s store failed (%s); the run goes on locally, nothing more is sent there", self.name, failure,
                    extra=event("rl.store.failed", backend=self.name, error=failure))

    def _list_pending(self) -> None:
        """Everything sent and not answered is not uploaded (the child is gone)."""
        with self._lock:
            self._gone = True
            self.not_uploaded += [path for _, path in sorted(self._pending.items())]
            self._pending.clear()

    def _submit(self, what: str, method: str, args: tuple[Any, ...], path: str | None = None) -> None:
        if self.name == "local" or self._finished:
            return
        with self._lock:
            if self._gone:  # nothing reaches the store any more: listed now, not queued without end
                if path is not None:
                    self.not_uploaded.append(path)
                return
            self._numbers += 1
            number = self._numbers
            if path is not None:
                self._pending[number] = path
        self._outbox.put((number, what, method, args))

    def _send(self) -> None:
        """The calls to the child, in order (a write can wait while the child is busy: here, not in training)."""
        try:
            while (item := self._outbox.get()) is not None:
                self._requests.send(item)
        except OSError:  # the child is gone: what was not sent stays pending and is listed
            pass
        finally:
            self._requests.close()

    def _collect(self) -> None:
        """The child's answers, as they come: what was uploaded, what was not, the first failure; and
        whether the child ended by itself (its last word) or died."""
        while True:
            try:
                reply = self._replies.recv()
            except (EOFError, OSError):
                break
            kind, number = reply[0], reply[1]
            if kind == "ended":  # it drained its queue and ends
                return
            with self._lock:
                path = self._pending.pop(number, None)
                if kind == "done" and path is not None and reply[2] is not None:
                    self.uploaded[path] = reply[2]
                elif kind in ("failed", "skipped") and path is not None:
                    self.not_uploaded.append(path)
            if kind == "failed":
                self._fail(reply[2])
        # The pipe ended without the child's last word: it crashed, was killed (the OOM killer; or finish,
        # which has said why already), or never got going.
        self._process.join(1)
        code = self._process.exitcode
        how = ("its exit status unknown" if code is None else f"killed by {signal.Signals(-code).name}" if code < 0
               else f"exit status {code}")
        self._fail(f"the uploader process ended unexpectedly ({how})")
        self._list_pending()

    def metrics(self, values: dict[str, float], step: int) -> None:
        if values:
            self._submit("metrics", "log_metrics", (values, step))

    def upload(self, path: Path, folder: str = "") -> None:
        self._submit(f"upload {path.name}", "upload", (str(path), folder), str(path))

    def upload_model(self, path: Path, folder: str = "") -> None:
        """A model file and, first, its normalization statistics when it has them."""
        stats = obs.stats_path(path)
        if stats.exists():
            self.upload(stats, folder)
        self.upload(path, folder)

    def tag(self, key: str, value: str) -> None:
        self._submit("tag", "tag", (key, value))

    def finish(self, run: Run, succeeded: bool, timeout: float = 300.0) -> None:
        """Upload the run's files, end the remote run, and wait (bounded) for the child to drain its queue;
        past the bound it is killed and what it had not answered is listed. The calls are queued once;
        once the child has ended, a second call does nothing."""
        if self.name == "local":
            return
        if not self._finished:
            for name in RUN_FILES:
                if (run.directory / name).exists():
                    self.upload(run.directory / name)
            self._submit("finish", "finish", (succeeded,))
            self._finished = True
            self._outbox.put(None)
        if self._process is not None and not self._ended:
            self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        """Wait up to `timeout` for the child to end by itself. The stop signals still reach the training's
        own handler meanwhile, and also cut the wait: the first one to STOP_UPLOAD_S from then (an end-of-run
        wait is up to minutes), a second one at once (stopping.Stopped, raised in here). Whichever way
        the wait ends, the child is gone when this returns or raises, and what it did not answer is listed."""
        started = time.monotonic()
        deadline = started + timeout
        why = f"still uploading after {timeout:.0f} s"

        def cut(signum: int, frame: Any) -> None:
            nonlocal deadline, why
            if time.monotonic() + STOP_UPLOAD_S < deadline:
                deadline = time.monotonic() + STOP_UPLOAD_S
                why = f"still uploading {STOP_UPLOAD_S:.0f} s after a stop signal"
            previous[signum](signum, frame)

        previous: dict[int, Callable[[int, Any], Any]] = {}
        if threading.current_thread() is threading.main_thread():  # only there can Python handle signals
            for signum in (signal.SIGTERM, signal.SIGINT):
                handler = signal.getsignal(signum)
                if callable(handler):  # the training's GracefulStop (or Python's KeyboardInterrupt)
                    previous[signum] = handler
                    signal.signal(signum, cut)
        told, stopped = False, False
        try:
            # In short slices: a signal's handler runs in between, and may move the deadline.
            while self._process.is_alive() and (left := deadline - time.monotonic()) > 0:
                if not told and time.monotonic() - started >= 1.0:
                    told = True
                    cuts = f" (a stop signal cuts it to {STOP_UPLOAD_S:.0f} s)" if left > STOP_UPLOAD_S else ""
                    log.info("still uploading to the %s store: waiting up to %.0f s more%s", self.name, left, cuts)
                self._process.join(min(left, 0.25))
        except BaseException:  # a second signal (or Ctrl-C without GracefulStop): end the child at once
            why, stopped = "still uploading when the run was stopped at once", True
            raise
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self._end(why, stopped)

    def _end(self, why: str, stopped: bool) -> None:
        """The child killed if it still runs (it ignores SIGTERM, which systemd sends the whole unit: only
        SIGKILL ends it), its last answers read, what it did not answer listed."""
        if self._process.is_alive():
            self._fail(why)  # before the kill: the pipe's end then is no surprise
            self._process.kill()
            self._process.join(5)
        self._collector.join(5)  # the answers the child sent before it ended (EOF follows its end)
        self._list_pending()
        if stopped and self.not_uploaded:  # the run ends with Stopped: no summary follows to list them
            log.warning("not uploaded to the %s store: %s", self.name, ", ".join(self.not_uploaded))
        self._replies.close()
        self._ended = True


# Metrics go to the backend at most this often, gathered: one call (and one commit, for MLflow's own store)
# instead of one per logger dump.
METRICS_EVERY_S = 1.0


def _upload_in_child(requests: Any, replies: Any, payload: bytes, parent: int) -> None:
    """The uploader's child process. Signals are for the training process, which ends this one. Nothing
    leaves it unredacted: the clients' warnings go through the redaction filter, and an error of this
    loop itself is the store's failure, sent to the training process (multiprocessing would print its
    traceback raw, with whatever URL and password it quotes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .redact import Filter

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # the clients' own warnings
    for handler in logging.getLogger().handlers:
        handler.addFilter(Filter())
    logging.captureWarnings(True)  # Python's warnings too, through the same filter
    threading.excepthook = _thread_failed

    def orphaned() -> None:  # the training process died (SIGKILL, OOM) in the middle of a call
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()
    try:  # uploads are background work: on a machine with few cores, the training comes first
        os.nice(10)
    except OSError:
        pass
    try:
        _serve(requests, replies, payload)
    except (BrokenPipeError, ConnectionResetError):  # the training process no longer listens: no one to tell
        pass
    except BaseException as error:  # this loop's own error, reported as the store's failure
        failure = f"the uploader process failed: {type(error).__name__}: {error}"
        try:
            replies.send(("failed", 0, failure))
        except OSError:
            log.warning("%s", failure)


def _thread_failed(hook: threading.ExceptHookArgs) -> None:
    """A client's thread that fails, in one filtered line (Python would print its traceback raw)."""
    if hook.exc_type is SystemExit:  # as Python's own hook: a thread's sys.exit is no error
        return
    log.warning("%s: %s: %s", hook.thread.name if hook.thread else "a thread", hook.exc_type.__name__, hook.exc_value)


def _serve(requests: Any, replies: Any, payload: bytes) -> None:
    """The backend opened here (importing a client takes seconds), then each call in order, answered by
    number, until the training process closes its end; then the last word, "ended"."""
    import pickle

    run, config = pickle.loads(payload)
    backend: ExperimentStore | None = None
    failure: str | None = None
    metrics: list[tuple[dict[str, float], int]] = []  # gathered since they were last sent
    sent_at = time.monotonic()

    def fail(number: int, message: str) -> None:  # the first failure, sent once; later calls are skipped
        nonlocal failure
        failure = message
        replies.send(("failed", number, failure))

    def call(number: int, what: str, method: str, args: tuple[Any, ...]) -> None:
        nonlocal backend
        if failure is not None:
            replies.send(("skipped", number))
            return
        try:
            result: Any = None
            if method == "start":
                backend = open_backend(config)
                if backend is not None:
                    backend.start(run, config)
            elif backend is None:
                raise RuntimeError("the store did not start")
            elif method == "upload":
                path, folder = Path(args[0]), args[1]
                # Pruned from the registry before its turn came: nothing to copy.
                result = backend.upload(path, folder) if path.exists() else None
            else:
                getattr(backend, method)(*args)
            replies.send(("done", number, result))
        except Exception as error:  # the backend's own message, once; training goes on
            fail(number, f"{what}: {type(error).__name__}: {error}")

    def send_metrics() -> None:
        nonlocal sent_at
        if metrics:
            call(0, "metrics", "log_metric_steps", (list(metrics),))
            metrics.clear()
        sent_at = time.monotonic()

    while True:
        if metrics and not requests.poll(max(0.0, sent_at + METRICS_EVERY_S - time.monotonic())):
            send_metrics()
            continue
        try:
            data = requests.recv_bytes()
        except EOFError:  # the training process is done with us (or gone)
            send_metrics()
            replies.send(("ended", 0))
            return
        try:
            number, what, method, args = pickle.loads(data)
        except Exception as error:  # a request this process cannot read: a failure like a backend's
            if failure is None:
                fail(0, f"a request the uploader could not read: {type(error).__name__}: {error}")
            continue
        if method == "log_metrics":
            metrics.append(args)
            if time.monotonic() - sent_at >= METRICS_EVERY_S:
                send_metrics()
            continue
        send_metrics()  # in order: the metrics before what follows them
        call(number, what, method, args)


def logger_writer(uploader: Uploader) -> Any:
    """A KVWriter beside SB3's csv/json writers sending every dump's numbers to the backend by step."""
    from stable_baselines3.common.logger import KVWriter

    class StoreWriter(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            uploader.metrics({k: float(v) for k, v in key_values.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)}, step)

        def close(self) -> None:
            pass

    return StoreWriter()
