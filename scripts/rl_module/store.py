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

Files appear atomically: written to a temporary name in the same directory, fsynced, renamed. A reader
(the registry, a serving process) never sees half a model, and a model's normalization statistics are
on disk before the model itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import obs
from .config import Config
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


def new_run(config: Config) -> Run:
    """A fresh run directory: <time>-<algorithm>-<env>-<random>, sortable and unique."""
    env_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.env.envId)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.agent.algorithm}-{env_name}-{secrets.token_hex(3)}"
    directory = Path(config.store.modelDir) / run_id
    directory.mkdir(parents=True, exist_ok=False)
    return Run(run_id, directory)


def atomic_write(path: Path, data: bytes) -> str:
    """Write `data` to `path` all at once (temp name, fsync, rename, fsync the directory); its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
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
    return hashlib.sha256(data).hexdigest()


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def save_model(model: BaseAlgorithm, path: Path, venv: VecEnv | None = None) -> SavedModel:
    """Save a model (and its normalization statistics first) atomically."""
    stats = obs.stats_bytes(venv) if venv is not None else None
    if stats is not None:
        atomic_write(obs.stats_path(path), stats)
    buffer = io.BytesIO()
    model.save(buffer)
    digest = atomic_write(path, buffer.getvalue())
    return SavedModel(path, digest, int(model.num_timesteps))


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_config(model_path: str | Path) -> tuple[str, dict[str, Any]] | None:
    """The run id and option values of the run a model file belongs to (its config.json sits in the
    model's directory or, for a checkpoint, the one above), or None for a model from elsewhere."""
    path = Path(model_path).resolve()
    for directory in (path.parent, path.parent.parent):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            data = json.loads(candidate.read_text(encoding="utf-8"))
            values = {f"{feature}.{name}": entry["value"]
                      for feature, options in data["options"].items() for name, entry in options.items()}
            return data["run"], values
    return None


def _no_span(name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
    return nullcontext()


def checkpoint_callback(run: Run, every: int, on_saved: Callable[[SavedModel], object] | None = None,
                        span: Callable[[str, dict[str, Any]], AbstractContextManager[Any]] | None = None) -> Any:
    """A stable-baselines3 callback saving a checkpoint every `every` environment steps, atomically,
    inside `span` (an rl.checkpoint trace span). SB3's CheckpointCallback writes in place: a crash
    mid-write would leave a partial file."""
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_at = every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                while self.next_at <= self.num_timesteps:
                    self.next_at += every
                path = run.checkpoint_path(self.num_timesteps)
                attributes = {"rl.timesteps": self.num_timesteps, "rl.model.path": str(path)}
                with (span or _no_span)("rl.checkpoint", attributes):
                    saved = save_model(self.model, path, self.model.get_env())
                    log.info("checkpoint saved: %s (%d steps)", saved.path, saved.timesteps,
                             extra=event("rl.checkpoint.saved", model_path=str(path), timesteps=saved.timesteps))
                    if on_saved:
                        on_saved(saved)
            return True

    return AtomicCheckpoint()
