"""Registry: every model recorded in SQLite, validated by rules, pruned, and the best validated one
handed to inference (hotswap).

The seed's `models` table and its three indexes are the contract; this module adds columns and tables
through numbered migrations (PRAGMA user_version), never removing or renaming one. The database runs in
WAL mode with a busy timeout, and every write is a short IMMEDIATE transaction, so that trainers,
validators and a serving process share one file. A row is written only after its model file is
completely on disk (see store.atomic_write), and rows are deleted before their files.

This module imports only the standard library: rl-registry-list must start fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from .artifact import pickled_stats_path, stats_path
from .config import DEFAULT, Config, Failure
from .databases import Database, Unavailable, connect, is_url
from .logs import event
from .store import ModelBytes, Run, SavedModel, link_model, pickled_replay_path, replay_path, saved_timesteps

log = logging.getLogger(__name__)
T = TypeVar("T")

DAY_S = 86_400

# Each migration is a list of statements, applied once, in order, in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the seed's contract (IF NOT EXISTS: a database made from the seed's SQL is adopted as it is).
    (
        """CREATE TABLE IF NOT EXISTS models (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_path TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            env_id TEXT NOT NULL,
            timestamp INTEGER NOT NULL,
            total_timesteps INTEGER,
            mean_reward REAL,
            std_reward REAL,
            mean_episode_length REAL,
            hyperparams TEXT,
            git_commit TEXT,
            validated BOOLEAN DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS idx_timestamp ON models(timestamp)",
        "CREATE INDEX IF NOT EXISTS idx_mean_reward ON models(mean_reward)",
        "CREATE INDEX IF NOT EXISTS idx_validated ON models(validated)",
    ),
    # 2: integrity, provenance, and the evaluation history the convergence rule reads.
    (
        "ALTER TABLE models ADD COLUMN sha256 TEXT",  # of the model file, checked before every load
        "ALTER TABLE models ADD COLUMN run_id TEXT",
        "ALTER TABLE models ADD COLUMN kind TEXT",  # checkpoint | final | interrupted | imported
        "ALTER TABLE models ADD COLUMN eval_episodes INTEGER",
        "ALTER TABLE models ADD COLUMN validation TEXT",  # JSON: the rules as last checked
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            timesteps INTEGER NOT NULL,
            mean_reward REAL NOT NULL,
            std_reward REAL NOT NULL,
            mean_episode_length REAL NOT NULL,
            episodes INTEGER NOT NULL,
            timestamp INTEGER NOT NULL
        )""",
        "CREATE INDEX idx_evaluations_run ON evaluations(run_id, timesteps)",
        # The hotswap query, with and without its env/algorithm filter, reads one index entry.
        "CREATE INDEX idx_best ON models(validated, mean_reward)",
        "CREATE INDEX idx_best_env ON models(env_id, algorithm, validated, mean_reward)",
        "CREATE INDEX idx_run ON models(run_id, total_timesteps)",
    ),
    # 3: where an experiment store keeps its copy of the model file (model_path stays the local file).
    ("ALTER TABLE models ADD COLUMN remote_uri TEXT",),
    # 4: algorithm names compare case-insensitively (other tools write 'PPO'): the filtered hotswap query
    # reads one entry of this index.
    ("CREATE INDEX idx_best_env_algorithm ON models(env_id, lower(algorithm), validated, mean_reward)",),
    # 5: the normalization statistics beside a model are unpickled too: they get their own checksum.
    ("ALTER TABLE models ADD COLUMN stats_sha256 TEXT",),
    # 6: a sweep's trials are ordinary runs, recorded with their study and trial number.
    ("ALTER TABLE models ADD COLUMN study TEXT", "ALTER TABLE models ADD COLUMN trial INTEGER",
     "CREATE INDEX idx_study ON models(study, trial)"),
    # 7: the validation rules are the registry's, one row per env: every host judges a model by the same
    # rules, whatever its own options say (the reward threshold is stored resolved, not looked up again).
    ("""CREATE TABLE validation_rules (
            env_id TEXT PRIMARY KEY,
            min_reward REAL,
            min_reward_source TEXT NOT NULL,
            min_episodes INTEGER NOT NULL,
            convergence_window INTEGER,
            convergence_tolerance REAL NOT NULL,
            set_by TEXT NOT NULL,
            timestamp INTEGER NOT NULL
        )""",),
    # 8: the trainer's signature of the model file (OpenSSF model-signing's bundle, JSON), when it signs.
    ("ALTER TABLE models ADD COLUMN signature TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = ("id", "model_path", "algorithm", "env_id", "timestamp", "total_timesteps", "mean_reward",
           "std_reward", "mean_episode_length", "hyperparams", "git_commit", "validated", "sha256", "run_id",
           "kind", "eval_episodes", "validation", "remote_uri", "stats_sha256", "study", "trial", "signature")

EVALUATION_COLUMNS = ("id", "run_id", "timesteps", "mean_reward", "std_reward", "mean_episode_length", "episodes",
                      "timestamp")


class RegistryError(Failure):
    """A registry problem the user must hear about (a refused model, a database from the future)."""


class Unreachable(RegistryError):
    """The database could not be opened at all (no server, a wrong password, not a database file)."""


class NoModel(RegistryError):
    """Nothing to load: no registry file, or no validated model in it (for the env and algorithm asked
    for). Exit 1; a server waits instead."""


@dataclass(frozen=True)
class Model:
    id: int
    model_path: str
    algorithm: str
    env_id: str
    timestamp: int
    total_timesteps: int | None
    mean_reward: float | None
    std_reward: float | None
    mean_episode_length: float | None
    hyperparams: str | None
    git_commit: str | None
    validated: bool
    sha256: str | None
    run_id: str | None
    kind: str | None
    eval_episodes: int | None
    validation: str | None
    remote_uri: str | None
    stats_sha256: str | None = None
    study: str | None = None  # the sweep (Optuna study) whose trial trained it
    trial: int | None = None
    signature: str | None = None  # model-signing's bundle (JSON) of the model file, when its trainer signs

    @property
    def signed_by(self) -> str | None:
        """The id of the key that signed it (what the signature says: verified only against trusted keys)."""
        from .artifact import Signature

        return Signature(self.signature).key_id if self.signature else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hyperparams"] = json.loads(self.hyperparams) if self.hyperparams else None
        data["validation"] = json.loads(self.validation) if self.validation else None
        data["signature"] = None if self.signature is None else "present"
        data["signed_by"] = self.signed_by
        return data


@dataclass(frozen=True)
class Evaluation:
    mean_reward: float
    std_reward: float
    mean_episode_length: float
    episodes: int


@dataclass(frozen=True)
class Rules:
    """The validation rules with their thresholds, and where the reward threshold came from. `given` names
    the options a user set to propose them (`registry.minReward from flag --min-reward`): what is said
    when the registry's own rules differ."""

    min_reward: float | None
    min_reward_source: str
    min_episodes: int
    convergence_window: int | None
    convergence_tolerance: float
    given: tuple[str, ...] = field(default=(), compare=False)

    def thresholds(self) -> tuple[float | None, int, int | None, float]:
        """What decides a verdict (where a threshold came from does not)."""
        return self.min_reward, self.min_episodes, self.convergence_window, self.convergence_tolerance

    def describe(self) -> str:
        reward = "none" if self.min_reward is None else f"{self.min_reward:g}"
        window = "off" if self.convergence_window is None else str(self.convergence_window)
        return (f"minReward {reward}, minEpisodes {self.min_episodes}, convergenceWindow {window}, "
                f"convergenceTolerance {self.convergence_tolerance:g}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["given"]
        return data


# The options that propose rules, and the Rules field each one sets.
RULE_OPTIONS = {"registry.minReward": "min_reward", "registry.minEpisodes": "min_episodes",
                "registry.convergenceWindow": "convergence_window",
                "registry.convergenceTolerance": "convergence_tolerance"}


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Validation:
    model_id: int
    valid: bool
    checks: tuple[Check, ...]
    rules: Rules

    def failing(self) -> list[str]:
        return [c.rule for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "valid": self.valid, "rules": self.rules.as_dict(),
                "checks": [asdict(c) for c in self.checks]}


def reward_threshold(env_id: str) -> float | None:
    """Gymnasium's registered reward_threshold for an env id (imports gymnasium, not torch)."""
    try:
        import gymnasium as gym

        from .env import canonical_id

        return gym.spec(canonical_id(env_id)).reward_threshold
    except Exception:  # an unregistered or custom env simply has no threshold
        return None


def rules(min_reward: float | None, min_episodes: int, convergence_window: int | None,
          convergence_tolerance: float, env_id: str) -> Rules:
    """The rules for models of `env_id`: registry.minReward, else Gymnasium's reward threshold."""
    if min_reward is not None:
        return Rules(float(min_reward), "registry.minReward", min_episodes, convergence_window,
                     convergence_tolerance)
    threshold = reward_threshold(env_id)
    source = (f"Gymnasium's reward_threshold for {env_id} (registry.minReward is unset)" if threshold is not None
              else f"none: registry.minReward is unset and {env_id} registers no reward_threshold")
    return Rules(threshold, source, min_episodes, convergence_window, convergence_tolerance)


def check_model(model: Model, rules: Rules, history: Sequence[float]) -> tuple[Check, ...]:
    """The seed's rules, plus convergence over the run's evaluation history.

    Stability with negative rewards: the seed's `std < 0.5 * mean` can never hold when mean < 0, and
    trading or control envs reward in the negative. The rule is a bound on the coefficient of variation,
    so it is applied to the magnitude: std < 0.5 * |mean|. A mean of exactly 0 cannot pass: relative
    spread is undefined there, and such a model has shown nothing stable.
    """
    if model.mean_reward is None or model.std_reward is None or model.mean_episode_length is None:
        missing = f"not evaluated yet (rl-eval --model-id {model.id})"
        return (Check("evaluated", False, missing),)
    mean, std, length = model.mean_reward, model.std_reward, model.mean_episode_length
    checks = [Check("evaluated", True, f"{model.eval_episodes or '?'} episodes")]
    if rules.min_reward is None:  # no bar is not a bar passed: the user must say what good enough is
        checks.append(Check("reward", False, "no threshold: set registry.minReward (--min-reward); "
                                             f"{model.env_id} registers no reward_threshold"))
    else:
        checks.append(Check("reward", mean >= rules.min_reward, f"mean {mean:.2f} >= {rules.min_reward:g}"))
    needed = rules.min_episodes * length
    steps = model.total_timesteps or 0
    checks.append(Check("experience", steps >= needed,
                        f"timesteps {steps} >= minEpisodes {rules.min_episodes} x mean length {length:.1f}"
                        f" = {needed:.0f}"))
    checks.append(Check("stability", std < 0.5 * abs(mean), f"std {std:.2f} < 0.5 x |mean| = {0.5 * abs(mean):.2f}"))
    if rules.convergence_window is not None:
        window = rules.convergence_window
        recent = list(history)[-window:]
        if len(recent) < window:
            checks.append(Check("convergence", False,
                                f"{len(recent)} of the last {window} evaluations needed are recorded"))
        else:
            spread, scale = max(recent) - min(recent), max(abs(statistics.fmean(recent)), 1e-9)
            checks.append(Check(
                "convergence", spread <= rules.convergence_tolerance * scale,
                f"last {window} evaluations spread {spread:.2f} <= {rules.convergence_tolerance:g} x |their mean|"
                f" = {rules.convergence_tolerance * scale:.2f}"))
    return tuple(checks)


def converged(history: Sequence[float], window: int | None, tolerance: float) -> bool:
    """The convergence rule on its own: the last `window` evaluations spread by at most `tolerance` x
    |their mean| (always true without a window)."""
    if window is None:
        return True
    recent = list(history)[-window:]
    if len(recent) < window:
        return False
    return max(recent) - min(recent) <= tolerance * max(abs(statistics.fmean(recent)), 1e-9)


def git_commit(directory: str | Path = ".") -> str | None:
    """HEAD of the git work tree around `directory`, with -dirty when it has changes; None outside one."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


@dataclass(frozen=True)
class ModelFiles:
    """Where this host reads model files from: store.modelDir (what it trained) and store.cacheDir (copies
    of models trained elsewhere, fetched from the store that recorded them). A row naming a file outside
    both folders is read from its remote copy, or refused: the registry's paths are data, not orders."""

    model_dir: Path
    cache_dir: Path
    fetch: Callable[[str, Path], None]  # remote URI -> local file (store.fetch with this host's store options)
    trusted_keys: tuple[Path, ...] = ()  # registry.trustedKeys: only models one of them signed are loaded

    @classmethod
    def of(cls, config: Config) -> ModelFiles:
        from .store import fetch

        model_dir = Path(config.store.modelDir).resolve()
        cache_dir = Path(config.store.cacheDir).resolve() if config.store.cacheDir else model_dir / "fetched"
        trusted = tuple(Path(key) for key in config.registry.trustedKeys) if "registry.trustedKeys" in config.settings \
            else ()
        from .artifact import ArtifactError, check_key

        for key in trusted:
            try:
                check_key(key, private=False)
            except ArtifactError as error:
                raise config.refuse("registry.trustedKeys", str(error)) from None
        return cls(model_dir, cache_dir, lambda uri, target: fetch(config, uri, target), trusted)

    def locate(self, model: Model) -> Path:
        path = Path(model.model_path)
        if path.is_file() and any(_inside(model.model_path, folder) for folder in (self.model_dir, self.cache_dir)):
            return path
        if model.remote_uri is not None:
            return self._fetched(model)
        if path.is_file():
            raise RegistryError(f"model {model.id} refused: its file {path} is outside store.modelDir {self.model_dir}"
                                f" and store.cacheDir {self.cache_dir}, and it has no remote copy; rl-module loads "
                                "models only from those folders (set store.modelDir to where it was trained)")
        raise RegistryError(f"model {model.id} refused: its file {path} is not on this host and it has no remote "
                            "copy (store.backend s3 or mlflow records one when the run ends)")

    def _fetched(self, model: Model) -> Path:
        """The remote copy (and its statistics) in the cache, under the registered checksum: a copy already
        there is used again, and it is checked like any file before loading (a copy that fails is deleted
        there, so that the next attempt fetches it again). What the row says is checked before it becomes a
        path: a checksum is 64 hex digits, a file name a plain name, and the result lies inside the cache."""
        uri = str(model.remote_uri)
        target = self.cached(model)
        try:
            if not target.is_file():
                self.fetch(uri, target)
            stats = stats_path(target)
            if model.stats_sha256 is not None and not stats.is_file():
                self.fetch(uri.rsplit("/", 1)[0] + "/" + stats.name, stats)
        except Exception as error:  # the store's own message: missing object, no credentials, server down
            raise RegistryError(f"model {model.id} refused: its file is not on this host and fetching {uri} "
                                f"failed: {type(error).__name__}: {error}") from None
        return target

    def cached(self, model: Model) -> Path:
        """Where the cache keeps a model's remote copy: <cacheDir>/<sha256>/<file name>, once the row's
        checksum and file name are known to be what they claim to be."""
        if model.sha256 is None:
            raise RegistryError(f"model {model.id} refused: the registry has no checksum for it")
        if not SHA256.fullmatch(model.sha256):
            raise RegistryError(f"model {model.id} refused: its recorded sha256 {model.sha256[:80]!r} is not 64 "
                                "lowercase hex digits (the row was not written by rl-module)")
        name = PurePosixPath(model.model_path).name
        if not _plain_name(name) or not _plain_name(stats_path(name).name):
            raise RegistryError(f"model {model.id} refused: its file name {name[:80]!r} is not a plain file name")
        target = self.cache_dir / model.sha256 / name
        if not target.resolve().is_relative_to(self.cache_dir.resolve()):  # a link planted in the cache
            raise RegistryError(f"model {model.id} refused: {target} leads outside store.cacheDir {self.cache_dir}")
        return target

    def forget(self, model: Model, path: Path) -> bool:
        """Delete this host's fetched copy of a model (and its statistics) when `path` is one, so that the
        next attempt fetches it again; whether it was one."""
        if model.remote_uri is None or path.parent.parent != self.cache_dir:
            return False
        for stale in (path, stats_path(path)):
            stale.unlink(missing_ok=True)
        return True


SHA256 = re.compile(r"[0-9a-f]{64}")


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def read_verified(model: Model, files: ModelFiles | None = None) -> ModelBytes:
    """The model's file and the statistics beside it, read once and loaded from those very bytes, if they
    are the bytes that were registered; RegistryError otherwise. A file the model needs without a
    recorded checksum is refused too: unpickling unchecked bytes would run whatever they say. With
    `files`, the file is looked for only where this host keeps models, and fetched from its remote copy
    when it is not here; a fetched copy that fails its checks is deleted, and fetched again next time."""
    path = files.locate(model) if files is not None else Path(model.model_path)
    try:
        checked = _checked(model, path)
    except RegistryError as error:
        if files is None or not files.forget(model, path):
            raise
        raise RegistryError(f"{error}; the copy fetched from {model.remote_uri} was deleted and is fetched again "
                            "on the next attempt") from None
    from . import artifact

    try:  # what the bytes are, now that they are the registered ones: data, signed by a trusted key
        artifact.check_stats(checked.model, checked.stats)
        if files is not None and files.trusted_keys:
            artifact.verify(checked.model, model.signature, files.trusted_keys)
    except artifact.ArtifactError as error:
        old = "without a description" in str(error)
        hint = f"; if you trust it, convert it: rl-registry-convert {model.id}" if old else ""
        raise RegistryError(f"model {model.id} refused: {error}{hint}") from None
    return checked


def _checked(model: Model, path: Path) -> ModelBytes:
    if not path.is_file():
        raise RegistryError(f"model {model.id} refused: its file {path} is missing")
    if model.sha256 is None:
        raise RegistryError(f"model {model.id} refused: the registry has no checksum for {path}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise RegistryError(f"model {model.id} refused: {path} does not match the checksum recorded when it "
                            "was registered (the file was changed or replaced)")
    stats_file = stats_path(path)
    stats = stats_file.read_bytes() if stats_file.is_file() else None
    if stats is None and pickled_stats_path(path).is_file():
        raise RegistryError(f"model {model.id} refused: its normalization statistics are a pickle (saved by an older "
                            f"rl-module), which loading would run; if you trust it, convert it: rl-registry-convert "
                            f"{model.id}")
    if stats is None and model.stats_sha256 is not None:
        raise RegistryError(f"model {model.id} refused: its normalization statistics {stats_file} are missing")
    if stats is not None and model.stats_sha256 is None:
        raise RegistryError(f"model {model.id} refused: {stats_file} lies beside it and the registry recorded no "
                            "checksum for it (it was not saved with the model, or by an older rl-module)")
    if stats is not None and hashlib.sha256(stats).hexdigest() != model.stats_sha256:
        raise RegistryError(f"model {model.id} refused: {stats_file} does not match the checksum recorded when "
                            "the model was registered (the file was changed or replaced)")
    return ModelBytes(path, data, stats)


def verify(model: Model, files: ModelFiles | None = None) -> Path:
    """The model's file, if it and its statistics are the very files that were registered; RegistryError
    otherwise. (A check; loading goes through read_verified, which loads the bytes it checked.)"""
    return read_verified(model, files).path


def open_registry(config: Config, *, create: bool = True) -> Registry:
    """The registry registry.dbPath names, its model files found through store.modelDir or fetched into
    the cache. A command that only reads (create=False) does not create one: an empty registry would only
    hide the mistake. Every problem is one line naming the option, where its value came from (any password
    masked), and what to do."""
    target = config.registry.dbPath
    origin = f"registry.dbPath from {config.source('registry.dbPath')}"
    hint = "point --registry-db or RL_REGISTRY_DB at the registry your runs write"
    if not is_url(target) and not create and not Path(target).is_file():
        raise NoModel(f"no registry at {Path(target).resolve()} ({origin}): nothing was recorded there; {hint}")
    try:
        registry = Registry(target, create=create)
    except NoModel as error:
        raise NoModel(f"{error} ({origin}); {hint}") from None
    except RegistryError as error:
        advice = ("; check that the server runs, and the URL's host, port, database, user and password "
                  "(or PGPASSWORD, PGPASSFILE, PGSERVICEFILE)" if isinstance(error, Unreachable) and is_url(target)
                  else "")
        raise RegistryError(f"option {origin}: {error}{advice}") from None
    if create:  # a command that records: refused now, not after the work whose result it could not record
        try:
            registry.db.check_writable()
        except Unavailable as error:
            registry.close()
            raise RegistryError(f"option {origin}: {error}") from None
    if "store.modelDir" in config.settings:  # a command that loads or checks model files (not rl-registry-list)
        try:
            registry.files = ModelFiles.of(config)
        except BaseException:
            registry.close()
            raise
    return registry


def open_target(target: str) -> Registry:
    """A registry named on the command line (not through registry.dbPath), opened or created."""
    try:
        return Registry(target)
    except RegistryError as error:
        raise RegistryError(f"TARGET: {error}") from None


def copy_registry(source: Registry, target: Registry) -> tuple[int, int]:
    """Every model row and evaluation of `source` into `target`, which must hold no models: ids stay as
    they are (users and scripts refer to them), in one transaction (all or nothing). Model files are
    not copied: rows keep their paths and remote copies. Returns (models, evaluations)."""
    if target.models(limit=1):
        raise RegistryError(f"{target.where} already holds models: rl-registry-copy fills an empty registry only "
                            "(ids would collide)")
    models = source.db.execute(f"SELECT {', '.join(COLUMNS)} FROM models ORDER BY id").fetchall()
    evaluations = source.db.execute(f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations ORDER BY id").fetchall()
    with target._write() as db:
        db.execute("DELETE FROM evaluations")  # a half-copied registry's leftovers (there are no models)
        for row in models:
            values = [row[c] for c in COLUMNS]
            values[COLUMNS.index("validated")] = bool(values[COLUMNS.index("validated")])
            db.execute(f"INSERT INTO models ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values)
        for row in evaluations:
            db.execute(f"INSERT INTO evaluations ({', '.join(EVALUATION_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(EVALUATION_COLUMNS))})", [row[c] for c in EVALUATION_COLUMNS])
        db.identities_follow(("models", "evaluations"))
        db.announce()
    return len(models), len(evaluations)


def existing(config: Config) -> Registry:
    """The registry, for a command that only reads it (NoModel when there is none)."""
    return open_registry(config, create=False)


class Registry:
    """One connection to the registry: a SQLite file or a PostgreSQL URL (see databases.py)."""

    def __init__(self, target: str | Path, *, create: bool = True) -> None:
        try:
            self.db: Database = connect(target)
        except Unavailable as error:
            raise Unreachable(str(error)) from None
        self.where = self.db.where
        self.files: ModelFiles | None = None  # set by open_registry: where this host reads model files
        self.path = Path(target) if not is_url(target) else None
        try:
            self._migrate(create)
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Database]:
        self.db.begin()
        try:
            yield self.db
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    def _migrate(self, create: bool) -> None:
        version = self.db.schema_version()
        if version > SCHEMA_VERSION:
            raise RegistryError(f"the registry {self.where} has schema version {version}; this rl-module knows up "
                                f"to {SCHEMA_VERSION}: upgrade rl-module")
        if version == SCHEMA_VERSION:
            return
        tables = self.db.tables()
        if "models" in tables:
            missing = [c for c in COLUMNS[:12] if c not in self.db.columns("models")]
            if missing:
                raise RegistryError(f"{self.where} is not a registry: its models table lacks {', '.join(missing)}")
        elif tables - {"evaluations", "registry_schema", "validation_rules"}:
            raise RegistryError(f"{self.where} is not a registry: it holds other tables ({', '.join(sorted(tables))})"
                                " and no models table; give the registry a database of its own")
        elif not create:
            raise NoModel(f"no registry in {self.where}: nothing was recorded there")
        with self._write() as db:
            db.lock_migrations()
            version = db.schema_version()  # another process may have migrated meanwhile
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    db.execute(db.ddl(statement))
            if version < SCHEMA_VERSION:
                db.set_schema_version(SCHEMA_VERSION)

    def schema_version(self) -> int:
        return self.db.schema_version()

    @staticmethod
    def _model(row: Any) -> Model | None:
        if row is None:
            return None
        values = {name: row[name] for name in COLUMNS}
        values["validated"] = bool(values["validated"])
        return Model(**values)

    # -- records ----------------------------------------------------------------------------------

    def register(self, *, model_path: str | Path, sha256: str, algorithm: str, env_id: str, total_timesteps: int,
                 run_id: str | None, kind: str, hyperparams: dict[str, Any] | None, git_commit: str | None,
                 evaluation: Evaluation | None = None, stats_sha256: str | None = None,
                 study: str | None = None, trial: int | None = None, signature: str | None = None) -> int:
        """Record a model whose file is already complete on disk; returns its id. The path is stored
        absolute, so that any process, from any directory, finds the file."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO models (model_path, algorithm, env_id, timestamp, total_timesteps, mean_reward,"
                " std_reward, mean_episode_length, hyperparams, git_commit, validated, sha256, run_id, kind,"
                " eval_episodes, stats_sha256, study, trial, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (str(Path(model_path).resolve()), algorithm, env_id, int(time.time()), total_timesteps,
                 evaluation.mean_reward if evaluation else None, evaluation.std_reward if evaluation else None,
                 evaluation.mean_episode_length if evaluation else None,
                 json.dumps(hyperparams) if hyperparams is not None else None, git_commit, sha256, run_id, kind,
                 evaluation.episodes if evaluation else None, stats_sha256, study, trial, signature),
            )
            return int(cursor.fetchone()["id"])

    def set_evaluation(self, model_id: int, evaluation: Evaluation) -> None:
        with self._write() as db:
            db.execute("UPDATE models SET mean_reward = ?, std_reward = ?, mean_episode_length = ?, eval_episodes = ?"
                       " WHERE id = ?", (evaluation.mean_reward, evaluation.std_reward,
                                         evaluation.mean_episode_length, evaluation.episodes, model_id))

    def set_remote(self, uploaded: dict[str, str]) -> int:
        """Record where a store copied model files (local path -> URI); returns the rows updated."""
        with self._write() as db:
            return sum(db.execute("UPDATE models SET remote_uri = ? WHERE model_path = ?",
                                  (uri, str(Path(path).resolve()))).rowcount for path, uri in uploaded.items() if uri)

    def converted(self, model_id: int, sha256: str, stats_sha256: str | None, signature: str | None) -> None:
        """The model's file was rewritten as data (rl-registry-convert): its new checksums and signature.
        A remote copy, still the old file, is no longer recorded."""
        with self._write() as db:
            db.execute("UPDATE models SET sha256 = ?, stats_sha256 = ?, signature = ?, remote_uri = NULL WHERE id = ?",
                       (sha256, stats_sha256, signature, model_id))
            db.announce()

    def relocate(self, old_path: str | Path, new_path: str | Path) -> int:
        """Rows of a file that now lives elsewhere (the same bytes, linked there) follow it; the count."""
        with self._write() as db:
            return db.execute("UPDATE models SET model_path = ? WHERE model_path = ?",
                              (str(Path(new_path).resolve()), str(Path(old_path).resolve()))).rowcount

    def record_evaluation(self, run_id: str, timesteps: int, evaluation: Evaluation) -> None:
        with self._write() as db:
            db.execute("INSERT INTO evaluations (run_id, timesteps, mean_reward, std_reward, mean_episode_length,"
                       " episodes, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, timesteps, evaluation.mean_reward, evaluation.std_reward,
                        evaluation.mean_episode_length, evaluation.episodes, int(time.time())))

    def history(self, run_id: str | None, up_to: int | None) -> list[float]:
        """Mean rewards of the run's evaluations up to `up_to` timesteps, oldest first."""
        if run_id is None:
            return []
        rows = self.db.execute("SELECT mean_reward FROM evaluations WHERE run_id = ? AND timesteps <= ?"
                                " ORDER BY timesteps, id", (run_id, up_to if up_to is not None else 2**62))
        return [float(r["mean_reward"]) for r in rows]

    def get(self, model_id: int) -> Model | None:
        return self._model(self.db.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone())

    def at(self, run_id: str, timesteps: int, kind: str = "checkpoint") -> Model | None:
        return self._model(self.db.execute(
            "SELECT * FROM models WHERE run_id = ? AND total_timesteps = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            (run_id, timesteps, kind)).fetchone())

    def models(self, *, validated: bool = False, env_id: str | None = None, algorithm: str | None = None,
               limit: int | None = None) -> list[Model]:
        """Models, best mean reward first (unevaluated last, newest first among equals)."""
        where, params = self._filters(validated, env_id, algorithm)
        # Validated rows all have a reward: their order is the best-model indexes' own (read, not sorted).
        order = "mean_reward DESC, id DESC" if validated else "mean_reward IS NULL, mean_reward DESC, id DESC"
        sql = f"SELECT * FROM models{where} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [m for m in map(self._model, self.db.execute(sql, params)) if m is not None]

    @staticmethod
    def _filters(validated: bool, env_id: str | None, algorithm: str | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if validated:
            clauses.append("validated = TRUE AND mean_reward IS NOT NULL")
        if env_id is not None:
            clauses.append("env_id = ?")
            params.append(env_id)
        if algorithm is not None:  # as other tools spell it too: 'PPO' is ppo
            clauses.append("lower(algorithm) = ?")
            params.append(algorithm.lower())
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def best(self, env_id: str | None = None, algorithm: str | None = None) -> Model | None:
        """The hotswap query: the validated model with the highest mean reward."""
        where, params = self._filters(True, env_id, algorithm)
        return self._model(self.db.execute(
            f"SELECT * FROM models{where} ORDER BY mean_reward DESC LIMIT 1", params).fetchone())

    def best_loadable(self, env_id: str | None = None,
                      algorithm: str | None = None) -> tuple[Model, ModelBytes] | None:
        """The best validated model whose file is intact; a missing or changed file is skipped (and
        logged), never loaded; `refused` keeps why, for nothing_loadable()."""
        offset = 0
        self.refused: list[str] = []
        while True:
            where, params = self._filters(True, env_id, algorithm)
            rows = self.db.execute(f"SELECT * FROM models{where} ORDER BY mean_reward DESC LIMIT 16 OFFSET ?",
                                    [*params, offset]).fetchall()
            if not rows:
                return None
            for model in map(self._model, rows):
                if model is None:
                    continue
                try:
                    return model, read_verified(model, self.files)
                except RegistryError as error:
                    self.refused.append(str(error))
                    log.warning("%s", error, extra=event("rl.model.refused", model_id=model.id))
            offset += len(rows)

    def nothing_loadable(self, wanted: str = "") -> str:
        """What to say when best_loadable() found nothing: no validated model (`wanted`: the filter), or
        validated models of which none can be loaded on this host, and what to do."""
        refused = getattr(self, "refused", [])
        if not refused:
            return f"no validated model in the registry {self.where}{wanted}"
        count = f"{len(refused)} validated model{'s' if len(refused) != 1 else ''}"
        return (f"the registry {self.where} has {count}{wanted}, and none can be loaded here (the best: "
                f"{refused[0]}); run from the folder they were trained in, or name it with --model-dir "
                f"(store.modelDir)")

    def wait_for_change(self, timeout: float, stop: threading.Event) -> bool:
        """Whether the best model may have changed, after at most `timeout` seconds (False on a stop):
        PostgreSQL's NOTIFY at once, SQLite's commit counter polled."""
        return self.db.wait_for_change(timeout, stop)

    # -- validation -------------------------------------------------------------------------------
    #
    # One truth for every host: a model is judged by the registry's rules for its env (the
    # validation_rules table), on the evaluation the registry records. A command's own registry.* options
    # only propose rules for an env the registry has none for yet; this host's copy of the file never
    # enters the verdict (a host that cannot read it cannot load it: best_loadable skips it there, and
    # every other host still can).

    def rules(self, env_id: str, proposed: Rules | None = None, proposer: str = "rl-module") -> Rules:
        """The registry's validation rules for `env_id`. A registry without rules for that env takes the
        proposed ones (the first command that judges a model of the env sets them, once, for every host;
        rl-registry-rules changes them). Options that proposed other rules hear that they do not judge."""
        stored = self._stored_rules(env_id)
        if stored is None and proposed is not None:
            self._write_rules(env_id, proposed, proposer, replace_existing=False)
            stored = self._stored_rules(env_id)
        if stored is None:
            raise RegistryError(f"the registry {self.where} has no validation rules for {env_id}: set them with "
                                f"rl-registry-rules --set --env-id {env_id}")
        rules_, set_by = stored
        if proposed is not None and proposed.given and proposed.thresholds() != rules_.thresholds():
            _tell_rules_differ(self.where, env_id, proposed, rules_, set_by)
        return rules_

    def all_rules(self) -> list[tuple[str, Rules, str, int]]:
        """Every env's rules: (env id, rules, who set them, when)."""
        return [(row["env_id"], _rules_of(row), row["set_by"], int(row["timestamp"]))
                for row in self.db.execute("SELECT * FROM validation_rules ORDER BY env_id")]

    def set_rules(self, env_id: str, rules_: Rules, set_by: str) -> list[tuple[Model, bool]]:
        """Make `rules_` the registry's rules for `env_id`, and judge that env's evaluated models again by
        them; returns the models whose verdict changed, with their new verdict."""
        self._write_rules(env_id, rules_, set_by, replace_existing=True)
        changed = []
        for model in self.models(env_id=env_id):
            if model.mean_reward is None:
                continue
            if self.validate(model.id, rules_).valid != model.validated:
                changed.append((model, not model.validated))
        return changed

    def _stored_rules(self, env_id: str) -> tuple[Rules, str] | None:
        row = self.db.execute("SELECT * FROM validation_rules WHERE env_id = ?", (env_id,)).fetchone()
        return None if row is None else (_rules_of(row), row["set_by"])

    def _write_rules(self, env_id: str, rules_: Rules, set_by: str, *, replace_existing: bool) -> None:
        conflict = ("DO UPDATE SET min_reward = excluded.min_reward, min_reward_source = excluded.min_reward_source,"
                    " min_episodes = excluded.min_episodes, convergence_window = excluded.convergence_window,"
                    " convergence_tolerance = excluded.convergence_tolerance, set_by = excluded.set_by,"
                    " timestamp = excluded.timestamp" if replace_existing else "DO NOTHING")
        with self._write() as db:
            db.execute("INSERT INTO validation_rules (env_id, min_reward, min_reward_source, min_episodes,"
                       " convergence_window, convergence_tolerance, set_by, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                       f" ON CONFLICT (env_id) {conflict}",
                       (env_id, rules_.min_reward, rules_.min_reward_source, rules_.min_episodes,
                        rules_.convergence_window, rules_.convergence_tolerance, set_by, int(time.time())))

    def validate(self, model_id: int, proposed: Rules | None = None) -> Validation:
        """Judge a model by the registry's rules for its env (recording `proposed` as those rules where
        there are none yet) and record the verdict; a verdict that may change the best model is announced
        to the servers that listen. The model's file is not read: see check_file."""
        model = self.get(model_id)
        if model is None:
            raise RegistryError(f"no model with id {model_id} in {self.where}")
        rules_ = self.rules(model.env_id, proposed)
        checks = check_model(model, rules_, self.history(model.run_id, model.total_timesteps))
        validation = Validation(model_id, all(c.passed for c in checks), checks, rules_)
        with self._write() as db:
            db.execute("UPDATE models SET validated = ?, validation = ? WHERE id = ?",
                       (validation.valid, json.dumps(validation.as_dict()), model_id))
            if validation.valid or model.validated:
                db.announce()
        if validation.valid:
            log.info("model %d validated", model_id, extra=event("rl.model.validated", model_id=model_id))
        else:
            failing = ", ".join(validation.failing())
            log.info("model %d rejected: %s", model_id, failing,
                     extra=event("rl.model.rejected", model_id=model_id, validation_failing=failing))
        return validation

    def check_file(self, model: Model) -> Check:
        """Whether this host can read the model's registered bytes (its own file, or a fetched copy): said
        beside a verdict, never part of it (another host may well read them)."""
        try:
            path = verify(model, self.files)
        except RegistryError as error:
            return Check("file on this host", False, str(error).split(": ", 1)[1])
        return Check("file on this host", True, f"{path} matches its recorded sha256")

    # -- pruning ----------------------------------------------------------------------------------

    def prune(self, keep_top_n: int | None, max_age_days: int | None, *, dry_run: bool = False,
              model_dir: str | Path | None = None) -> list[Model]:
        """Remove rows (then their files) beyond the top N by mean reward per env and algorithm, and rows
        older than max_age_days. The best validated model, overall and per env and algorithm, stays, and
        so does the model a stopped run resumes from."""
        if keep_top_n is None and max_age_days is None:
            return []
        with self._write() as db:
            protected = {r["id"] for r in db.execute(
                "SELECT id FROM models m WHERE validated = TRUE AND id = (SELECT id FROM models WHERE validated = TRUE"
                " AND env_id = m.env_id AND lower(algorithm) = lower(m.algorithm) ORDER BY mean_reward DESC LIMIT 1)")}
            overall = self.best()
            if overall is not None:
                protected.add(overall.id)
            # A stopped run's newest model is what it resumes from: it stays until the run goes past it.
            protected.update(r["id"] for r in db.execute(
                "SELECT id FROM models m WHERE kind = 'interrupted' AND NOT EXISTS (SELECT 1 FROM models n"
                " WHERE n.run_id = m.run_id AND n.total_timesteps > m.total_timesteps)"))
            doomed: dict[int, Model] = {}
            if keep_top_n is not None:
                rows = db.execute(
                    "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY env_id, lower(algorithm) ORDER BY"
                    " mean_reward IS NULL, mean_reward DESC, id DESC) AS rank FROM models) AS ranked WHERE rank > ?",
                    (keep_top_n,))
                doomed.update((m.id, m) for m in map(self._model, rows) if m is not None)
            if max_age_days is not None:
                rows = db.execute("SELECT * FROM models WHERE timestamp < ?",
                                  (int(time.time()) - max_age_days * DAY_S,))
                doomed.update((m.id, m) for m in map(self._model, rows) if m is not None)
            removed = [m for i, m in sorted(doomed.items()) if i not in protected]
            if model_dir is not None:  # a row names a file to delete: only ever one inside the model folder
                outside = [m for m in removed if not _inside(m.model_path, model_dir)]
                removed = [m for m in removed if m not in outside]
                for model in outside:
                    log.warning("model %d not pruned: its file %s is outside store.modelDir %s; rl-module "
                                "deletes nothing there", model.id, model.model_path, Path(model_dir).resolve(),
                                extra=event("rl.model.refused", model_id=model.id))
            if not dry_run:
                for model in removed:
                    db.execute("DELETE FROM models WHERE id = ?", (model.id,))
        if not dry_run:  # rows first, files after: a crash in between leaves a stray file, never a bad row
            for model in removed:
                _remove_files(model.model_path)
                log.info("model %d pruned: %s", model.id, model.model_path,
                         extra=event("rl.model.pruned", model_id=model.id, model_path=model.model_path))
        return removed


def _rules_of(row: Any) -> Rules:
    window = row["convergence_window"]
    return Rules(None if row["min_reward"] is None else float(row["min_reward"]), row["min_reward_source"],
                 int(row["min_episodes"]), None if window is None else int(window),
                 float(row["convergence_tolerance"]))


_TOLD: set[tuple[str, str, tuple[Any, ...]]] = set()  # what this process has said already (once per run)


def _tell_rules_differ(where: str, env_id: str, proposed: Rules, rules_: Rules, set_by: str) -> None:
    """A command given other rules says so, once, and how to make them the registry's."""
    told = (where, env_id, proposed.thresholds())
    if told in _TOLD:
        return
    _TOLD.add(told)
    from .spec import load

    spec = load()
    differing = [(path, getattr(proposed, name)) for path, name in RULE_OPTIONS.items()
                 if getattr(proposed, name) != getattr(rules_, name)
                 and any(given.startswith(path + " ") for given in proposed.given)]
    if not differing:
        return
    shown = "; ".join(given for given in proposed.given if any(given.startswith(p + " ") for p, _ in differing))
    flags = " ".join(f"{spec.option(path).flag} {'null' if value is None else f'{value:g}'}"
                     for path, value in differing)
    log.warning("%s: not used: the registry %s judges %s models by its own rules, on every host: %s (set by %s); "
                "to change them for every host: rl-registry-rules --set --env-id %s %s", shown, where, env_id,
                rules_.describe(), set_by, env_id, flags, extra=event("rl.registry.rules_differ", env_id=env_id))


def _inside(path: str, folder: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def _remove_files(model_path: str) -> None:
    Path(model_path).unlink(missing_ok=True)
    stats_path(model_path).unlink(missing_ok=True)
    replay_path(model_path).unlink(missing_ok=True)
    pickled_replay_path(model_path).unlink(missing_ok=True)


# How long a trainer waits for a registry database that went away (a PostgreSQL restart), reconnecting.
RECONNECT_S = 300.0


class Recorder:
    """What training writes to the registry: a row per checkpoint (validated = 0), each periodic
    evaluation (the convergence rule's history, and the metrics of a checkpoint taken at the same step),
    and the final model, validated; pruning after each registration. A database that goes away mid-run
    (a server restart) is reconnected to, for up to RECONNECT_S, and the write made again: training
    waits for its record instead of failing."""

    def __init__(self, config: Config, run_id: str, trial: tuple[str, int] | None = None) -> None:
        self.config = config
        self.run_id = run_id
        self.study: str | None = trial[0] if trial is not None else None
        self.trial: int | None = trial[1] if trial is not None else None
        self.registry = open_registry(config)
        self.rules = self.registry.rules(config.env.envId, rules_for(config, config.env.envId),
                                         proposer=f"rl-train run {run_id} on {socket.gethostname()}")
        self.git_commit = git_commit()
        self.hyperparams = config.public_values()

    def close(self) -> None:
        self.registry.close()

    def _durably(self, write: Callable[[], T]) -> T:
        deadline, delay = time.monotonic() + RECONNECT_S, 1.0
        while True:
            try:
                return write()
            except Exception as error:
                if not self.registry.db.lost(error) or time.monotonic() > deadline:
                    raise
                log.warning("the registry %s went away (%s); reconnecting in %g s", self.registry.where,
                            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, delay,
                            extra=event("rl.registry.reconnecting"))
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                try:
                    reopened = open_registry(self.config)
                except RegistryError:
                    continue  # still away: the next write finds the old connection closed, and waits again
                self.registry.close()
                self.registry = reopened

    def _register(self, saved: SavedModel, kind: str, evaluation: Evaluation | None) -> int:
        signature = None
        if self.config.registry.signingKeyFile is not None:  # the zip names its statistics: one signature covers both
            from .artifact import sign

            signature = sign(saved.path.read_bytes(), self.config.registry.signingKeyFile).text
        model_id = self.registry.register(
            model_path=saved.path, sha256=saved.sha256, algorithm=self.config.agent.algorithm,
            env_id=self.config.env.envId, total_timesteps=saved.timesteps, run_id=self.run_id, kind=kind,
            hyperparams=self.hyperparams, git_commit=self.git_commit, evaluation=evaluation,
            stats_sha256=saved.stats_sha256, study=self.study, trial=self.trial, signature=signature)
        log.info("model %d registered: %s %s at %d steps", model_id, kind, saved.path, saved.timesteps,
                 extra=event("rl.model.registered", model_id=model_id, model_kind=kind, model_path=str(saved.path),
                             timesteps=saved.timesteps))
        return model_id

    def checkpoint(self, saved: SavedModel) -> int:
        model_id = self._durably(lambda: self._register(saved, "checkpoint", None))
        self.prune()
        return model_id

    def evaluation(self, timesteps: int, evaluation: Evaluation) -> None:
        self._durably(lambda: self._evaluation(timesteps, evaluation))

    def _evaluation(self, timesteps: int, evaluation: Evaluation) -> None:
        self.registry.record_evaluation(self.run_id, timesteps, evaluation)
        checkpoint = self.registry.at(self.run_id, timesteps)
        if checkpoint is not None:  # evaluated the very weights that checkpoint holds
            self.registry.set_evaluation(checkpoint.id, evaluation)
            self.registry.validate(checkpoint.id, self.rules)

    def final(self, saved: SavedModel, evaluation: Evaluation | None) -> Validation:
        """The final model; without an evaluation (a stop cut it short) it is recorded, not validated
        (rl-eval --model-id evaluates it later)."""
        model_id = self._durably(lambda: self._register(saved, "final", evaluation))
        validation = self._durably(lambda: self.registry.validate(model_id, self.rules))
        self.prune()
        return validation

    def stopped(self, saved: SavedModel) -> int:
        """The model saved where a signal stopped the run: not evaluated, the newest to resume from."""
        model_id = self._durably(lambda: self._register(saved, "interrupted", None))
        self.prune()
        return model_id

    def keep_previous_final(self, run: Run) -> None:
        """Before a resumed run replaces model.zip: the previous final model stays, under
        checkpoints/final-<steps>.zip (a hard link, made before its rows are moved to it, so that a row
        never names a missing or different file)."""
        if not run.model_path.is_file():
            return
        kept = run.directory / "checkpoints" / f"final-{saved_timesteps(run.model_path)}.zip"
        link_model(run.model_path, kept)
        self.registry.relocate(run.model_path, kept)

    def prune(self) -> None:
        self._durably(lambda: self.registry.prune(self.config.registry.keepTopN, self.config.registry.maxAge,
                                                  model_dir=self.config.store.modelDir))


def rules_for(config: Config, env_id: str) -> Rules:
    """The rules this command's options propose for `env_id`; the registry's own rules, where it has them,
    are what judges (Registry.rules)."""
    r = config.registry
    proposed = rules(r.minReward, r.minEpisodes, r.convergenceWindow, r.convergenceTolerance, env_id)
    given = tuple(f"{path} from {config.source(path)}" for path in RULE_OPTIONS
                  if config.source(path) != DEFAULT and not config.source(path).startswith("preset"))
    return replace(proposed, given=given)
