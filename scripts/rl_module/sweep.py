"""rl-sweep: hyperparameter search on Optuna, one study shared by any number of processes and hosts.

The study lives in an Optuna RDB storage: by default the registry's own database (the same SQLite file,
or the same PostgreSQL server for many hosts). Each worker is a process (stable-baselines3 holds the GIL)
that asks the study for a trial, trains it as an ordinary run (its own run directory; registry rows with
the study and trial number), reports every periodic evaluation to the pruner, and tells the result.

The total is exact across hosts: a trial is in the study's budget when fewer than sweep.trials trials
before it (by number) are finished, pruned, running or waiting; one asked beyond that is closed at once
as surplus. A worker that dies mid-trial stops its heartbeat; the next worker to look fails that trial
and Optuna's RetryFailedTrialCallback queues it again with the same values. SIGTERM or Ctrl-C stops each
worker's run as rl-train stops (the model saved where it is); its trial is queued again, so running the
command again continues the study.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import redact
from . import spec as spec_module
from .config import Config, UsageError
from .databases import is_url
from .logs import event

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

KINDS = ("float", "int", "choices")
SCHEDULES = ("constant", "lin")
SURPLUS = "surplus"  # a trial asked beyond the study's budget: closed at once, not counted
POLL_S = 1.0


# -- the search space ---------------------------------------------------------------------------------

def space_of(config: Config) -> dict[str, dict[str, Any]]:
    """sweep.space laid over the named base space (sweep.baseSpace, else the algorithm's), each parameter
    checked; UsageError naming the option and its source for anything malformed."""
    spaces = spec_module.load().spaces
    base = config.sweep.baseSpace or config.agent.algorithm
    if base not in spaces:
        raise config.refuse("sweep.baseSpace", f"names no space; the spaces: {', '.join(sorted(spaces))}")
    space = dict(spaces[base])
    for path, parameter in config.sweep.space.items():
        if parameter is None:
            space.pop(path, None)
        else:
            space[path] = parameter
    if not space:
        raise config.refuse("sweep.space", "leaves nothing to search (and sweep.baseSpace adds nothing)")
    from .agent import accepted_kwargs

    takes = accepted_kwargs(config.agent.algorithm)
    for path, parameter in space.items():
        _check(config, path, parameter, takes)
    return space


def _check(config: Config, path: str, parameter: Any, takes: set[str]) -> None:
    def bad(reason: str) -> UsageError:
        origin = config.source("sweep.space") if path in config.sweep.space else \
            f"space {config.sweep.baseSpace or config.agent.algorithm} (Spaces/)"
        return UsageError(f"option sweep.space from {origin}: parameter {path} {reason}")

    if path.startswith("agent.kwargs."):
        if path.removeprefix("agent.kwargs.") not in takes:
            raise bad(f"is not an argument of {config.agent.algorithm}; it takes {', '.join(sorted(takes))}")
    else:
        try:
            option = spec_module.load().option(path)
        except KeyError:
            raise bad("is neither an option nor agent.kwargs.<key>") from None
        if option.feature in ("sweep", "registry", "store", "metrics", "traces", "logs", "infer"):
            raise bad("is not a hyperparameter: a sweep searches over env, agent, train, obs and feature options")
    if not isinstance(parameter, dict) or sum(k in parameter for k in KINDS) != 1:
        raise bad("must give exactly one of float = [ low high ], int = [ low high ], choices = [ ... ]")
    if "choices" in parameter:
        choices = parameter["choices"]
        if not isinstance(choices, list) or not choices:
            raise bad("has an empty choice list")
        values = choices
    else:
        kind = "float" if "float" in parameter else "int"
        bounds = parameter[kind]
        number = (int,) if kind == "int" else (int, float)
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(
                isinstance(b, number) and not isinstance(b, bool) for b in bounds)):
            raise bad(f"{kind} must be [ low high ] with {'integers' if kind == 'int' else 'numbers'}")
        low, high = bounds
        if low >= high:
            raise bad(f"has low {low} >= high {high}")
        if parameter.get("log") and low <= 0:
            raise bad(f"is sampled on a log scale, so its low must be > 0 (it is {low})")
        if kind == "int" and not (isinstance(parameter.get("step", 1), int) and parameter.get("step", 1) >= 1):
            raise bad("has a step that is not a positive integer")
        if "powerOf" in parameter and (kind != "int" or not isinstance(parameter["powerOf"], int)
                                       or isinstance(parameter["powerOf"], bool) or parameter["powerOf"] < 2):
            raise bad("powerOf takes an integer >= 2, with int = [ low high ] as the exponents")
        if "oneMinus" in parameter and (kind != "float" or not isinstance(parameter["oneMinus"], bool)):
            raise bad("oneMinus = true applies to a float (the value is 1 - the number sampled)")
        # Its ends, and for a float one value between them: an integer option searched as a float is refused.
        values = [_transform(parameter, low), _transform(parameter, high)] + \
            ([_transform(parameter, (low + high) / 2)] if kind == "float" else [])
    schedules = parameter.get("schedule")
    if schedules is not None and (path != "train.learningRate" or not schedules or set(schedules) - set(SCHEDULES)):
        raise bad(f"schedule applies to train.learningRate only, as a list of {', '.join(SCHEDULES)}")
    if not path.startswith("agent.kwargs."):
        for value in values:
            try:
                _coerce(path, value)
            except (TypeError, ValueError) as error:
                raise bad(f"value {value!r} is not allowed: {error}") from None


def _transform(parameter: dict[str, Any], sampled: Any) -> Any:
    """The value a sampled number stands for: base ** it (powerOf), 1 - it (oneMinus), else itself. Optuna
    models the number as sampled (an exponent on its own scale; 1 - gamma on a log scale near zero)."""
    if "powerOf" in parameter:
        return parameter["powerOf"] ** sampled
    if parameter.get("oneMinus"):
        return 1 - sampled
    return sampled


def _coerce(path: str, value: Any) -> Any:
    """A sampled value as its option holds it; ValueError naming what the option allows when its type
    (the Universe's: a range, a choice, a pattern) does not take it, as a flag or Nix would be refused."""
    option = spec_module.load().option(path)
    if path == "train.learningRate" and isinstance(value, (int, float)):
        value = f"{value:.6g}"
    text = value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)
    try:
        option.parse(text)
    except ValueError:
        raise ValueError(f"option {path} takes {option.allowed}") from None
    return spec_module.coerce(value, option.type)


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per parameter, by path; lists (network sizes) travel through Optuna as JSON text."""
    values: dict[str, Any] = {}
    for path in sorted(space):
        p = space[path]
        if "choices" in p:
            encoded = [json.dumps(c) if isinstance(c, (list, dict)) else c for c in p["choices"]]
            chosen = trial.suggest_categorical(path, encoded)
            value = json.loads(chosen) if isinstance(chosen, str) and chosen[:1] in "[{" else chosen
        elif "float" in p:
            value = _transform(p, trial.suggest_float(path, p["float"][0], p["float"][1], log=bool(p.get("log"))))
        else:
            value = _transform(p, trial.suggest_int(path, p["int"][0], p["int"][1], step=p.get("step", 1),
                                                    log=bool(p.get("log"))))
        if path == "train.learningRate":
            schedule = trial.suggest_categorical(path + ".schedule", list(p.get("schedule", ["constant"])))
            value = ("lin_" if schedule == "lin" else "") + f"{value:.6g}"
        values[path] = value
    return values


def trial_config(config: Config, values: dict[str, Any], study: str, number: int) -> Config:
    """The run a trial trains: the user's configuration with the sampled values (their source says which
    trial set them), trial-sized, its evaluations spread over it. An impossible combination is fitted,
    not crashed on: a batch larger than a rollout (n_steps x n_envs) is cut to the rollout."""
    source = f"sweep {study} trial {number}"
    kwargs = dict(config.agent.kwargs)
    for path, value in values.items():
        if path.startswith("agent.kwargs."):
            kwargs[path.removeprefix("agent.kwargs.")] = value
        else:
            config = config.replace(path, _coerce(path, value), source)
    if kwargs != config.agent.kwargs:
        config = config.replace("agent.kwargs", kwargs, source)
    steps = config.sweep.trialTimesteps
    config = config.replace("train.totalTimesteps", steps, source)
    if config.sweep.objective != "reward" and not config.train.stopOnReward:
        # The first validated model is the result: nothing after it counts, so the trial ends there.
        config = config.replace("train.stopOnReward", True, f"{source} (sweep.objective {config.sweep.objective})")
    config = config.replace("train.evalFreq", max(steps // config.sweep.evaluations, 1), source)
    n_steps = kwargs.get("n_steps")
    if config.agent.algorithm in ("ppo",) and isinstance(n_steps, int):
        rollout = n_steps * config.env.nEnvs
        if config.train.batchSize is not None and config.train.batchSize > rollout:
            config = config.replace("train.batchSize", rollout, f"{source} (cut to n_steps x n_envs)")
    return config


# -- the objective ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    """What a trial scores (sweep.objective): its name, the study's direction, and how to speak of it."""

    name: str
    direction: Literal["maximize", "minimize"]  # Optuna's
    label: str
    unit: str  # "" for a reward, "s" or "steps"

    @property
    def to_threshold(self) -> bool:
        return self.name != "reward"

    def show(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.unit == "steps":
            return f"{value:,.0f} steps"
        return f"{value:.2f}" + (f" {self.unit}" if self.unit else "")


OBJECTIVES = {
    "reward": Objective("reward", "maximize", "mean reward", ""),
    "time-to-threshold": Objective("time-to-threshold", "minimize", "wall time to the threshold", "s"),
    "steps-to-threshold": Objective("steps-to-threshold", "minimize", "env steps to the threshold", "steps"),
}


def objective_of(study: optuna.Study) -> Objective:
    """The study's objective, as recorded when it was made (a study made before sweep.objective existed
    maximized the reward)."""
    return OBJECTIVES[study.user_attrs.get("objective", "reward")]


def gap(best_reward: float | None, threshold: float) -> float:
    """How far a trial's best evaluation stayed from the threshold, as a fraction of the threshold's size
    (at least 1, so a threshold near 0, or negative as Acrobot's -100, still gives a finite scale); 0 when it
    got there (a lucky evaluation that did not validate is scored by its budget alone)."""
    if best_reward is None:
        return 1.0
    return max(threshold - best_reward, 0.0) / max(abs(threshold), 1.0)


def score(objective: Objective, result: Any, slowest: float = 0.0) -> tuple[float | None, dict[str, Any]]:
    """A finished trial's value (train.TrainResult, as its result.json records it) and what the report says
    of it. To the threshold: a run ended by train.stopOnReward (status finished, stopped early) validated at
    its last evaluation: its learning time (train_time: from learn() starting to that evaluation) or that
    evaluation's steps. One that never validated: its budget (the steps it was asked for, or in seconds the
    longer of its own learning time and `slowest`, the longest learning time of a trial finished before it)
    x (1 + gap): see sweep.objective."""
    if not objective.to_threshold:
        return (result.evaluation["mean_reward"] if result.evaluation else None), {}
    rewards = [e["mean_reward"] for e in result.evaluations] + \
        ([result.evaluation["mean_reward"]] if result.evaluation else [])
    best = max(rewards) if rewards else None
    reached = result.status == "finished" and result.stopped_early
    attrs: dict[str, Any] = {"reached": reached, "threshold": result.threshold, "best_reward": best,
                             "learning_s": result.train_time}
    if reached:
        value = result.train_time if objective.unit == "s" else float(result.evaluations[-1]["timesteps"])
    else:
        attrs["gap"] = gap(best, result.threshold)
        budget = max(result.train_time, slowest) if objective.unit == "s" else float(result.total_timesteps)
        value = budget * (1.0 + attrs["gap"])
    return value, attrs


def slowest(study: optuna.Study) -> float:
    """The longest learning time, in seconds, of the study's finished trials (0 before any): the least a
    trial that never validates is charged in seconds, so that a cheap miss never outscores a costly trial
    that validated (a trial of a study made before it was recorded: its value, less the penalty's factor)."""
    from optuna.trial import TrialState

    def learning(trial: optuna.trial.FrozenTrial) -> float:
        attrs = trial.user_attrs
        if "learning_s" in attrs:
            return float(attrs["learning_s"])
        return float(trial.value or 0.0) / (1.0 + float(attrs.get("gap", 0.0)))

    return max((learning(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
               default=0.0)


class Running:
    """What a trial shows the pruner at each evaluation: its reward, or, to the threshold, the penalty it
    would score if it learned nothing more: of the same kind and direction as its result, and never below
    it (its budget x (1 + gap), the gap from its best evaluation so far; in seconds, the longer of its pace so
    far extrapolated to its whole budget and `slowest`, the study's longest learning time when it started).
    Trials at the same step are compared on what they have shown by then; a trial that validated earlier has
    ended and is left out of later steps' medians (so the pruner is lenient there, never harsher)."""

    def __init__(self, objective: Objective, threshold: float | None, budget: int, slowest: float = 0.0) -> None:
        self.objective, self.threshold, self.budget, self.slowest = objective, threshold, budget, slowest
        self.best: float | None = None
        self.started = time.perf_counter()

    def value(self, timesteps: int, mean_reward: float) -> float:
        self.best = mean_reward if self.best is None else max(self.best, mean_reward)
        if not self.objective.to_threshold or self.threshold is None:
            return mean_reward
        factor = 1.0 + gap(self.best, self.threshold)
        if self.objective.unit == "steps":
            return self.budget * factor
        pace = (time.perf_counter() - self.started) * self.budget / max(timesteps, 1)
        return max(pace, self.slowest) * factor


# -- the study --------------------------------------------------------------------------------------

def storage_url(config: Config) -> str:
    """SQLAlchemy's URL for sweep.storage, else the registry's database."""
    target = config.sweep.storage or config.registry.dbPath
    if is_url(target):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    if "://" in target:
        return str(target)  # an Optuna storage URL as it is (mysql://, sqlite:///...)
    return "sqlite:///" + str(Path(target).resolve())


def _where(config: Config) -> str:
    path = "sweep.storage" if config.sweep.storage else "registry.dbPath"
    return f"{path} from {config.source(path)}"


def storage(config: Config, retry: bool = False) -> Any:
    """Optuna's RDB storage for the study, with heartbeats: a trial silent for three of them is failed and
    queued again with its values (RetryHeartbeatStaleTrialCallback). Every call it makes is tried again
    across a database that is away for a while (RetryingStorage). retry: opening it is too (a worker, which
    may start while the database restarts); else a storage that cannot be opened is refused at once."""
    import warnings

    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    beat = config.sweep.heartbeat
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return retrying_storage()(
                storage_url(config), heartbeat_interval=beat, grace_period=3 * beat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                engine_kwargs=_engine_kwargs(config))
        except Exception as error:
            attempt += 1
            # Hosts that start together race to create Optuna's tables: the loser finds them made.
            if attempt < 3 and ("duplicate key" in str(error) or "already exists" in str(error)):
                time.sleep(0.5)
                continue
            if retry and transient(error) and time.monotonic() - started < RETRY_S:
                time.sleep(min(0.5 * 2 ** attempt, RETRY_MAX_WAIT_S))
                continue
            raise UsageError(f"option {_where(config)}: cannot open the study's storage {where(config)}: "
                             f"{_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    """An error's first line, credentials masked (libpq quotes what it could not parse)."""
    text = str(error).strip()
    return redact.text(text.splitlines()[0] if text else type(error).__name__)


RETRY_S = 300.0  # how long a storage call is tried again while the database is away (a restart, a failover)
RETRY_MAX_WAIT_S = 10.0


def transient(error: BaseException) -> bool:
    """Whether an error is the database being away (a lost connection, a server shutting down or starting,
    a busy SQLite file), which the same call may get past later; not a constraint or a bad query."""
    from sqlalchemy import exc

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (exc.OperationalError, exc.InterfaceError)) or \
                isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return True
        # The drivers' own (the registry speaks psycopg and sqlite3 directly): a connection lost or refused.
        if any(kind.__name__ in ("OperationalError", "InterfaceError") and kind.__module__.startswith(
                ("psycopg", "sqlite3")) for kind in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_retrying: list[type] = []


def retrying_storage() -> type:
    """Optuna's RDBStorage whose calls are tried again, with a backoff up to RETRY_MAX_WAIT_S, for RETRY_S,
    while the database is away: a PostgreSQL restart would otherwise end every worker of every host at the
    same moment. Optuna turns a lost connection into StorageInternalError and rolls back, so a call tried
    again starts afresh (pool_pre_ping replaces the dead connections). Heartbeats are not: the heartbeat
    thread simply beats again."""
    if _retrying:
        return _retrying[0]
    import functools

    from optuna.storages import RDBStorage

    def retried(method: Any) -> Any:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            started, wait, warned = time.monotonic(), 0.5, False
            while True:
                try:
                    return method(self, *args, **kwargs)
                except Exception as error:
                    if not transient(error) or time.monotonic() - started + wait > RETRY_S:
                        raise
                    if not warned:
                        warned = True
                        cause: BaseException = error  # Optuna's own words say only "during the commit"
                        while cause.__cause__ is not None:
                            cause = cause.__cause__
                        log.warning("the study's storage is away (%s); trying again for up to %.0f s",
                                    _first_line(cause), RETRY_S, extra=event("rl.sweep.storage_retry"))
                    time.sleep(wait)
                    wait = min(wait * 2, RETRY_MAX_WAIT_S)
        return call

    # Its public calls, and the two that Optuna's cache and fail_stale_trials call from outside (a call that
    # takes a session runs inside one of these, and is not tried again on its own).
    names = [name for name, member in vars(RDBStorage).items() if callable(member)
             and (not name.startswith("_") or name in ("_get_trials", "_get_stale_trial_ids"))
             and name not in ("record_heartbeat", "remove_session")]
    storage_class = type("RetryingStorage", (RDBStorage,), {n: retried(getattr(RDBStorage, n)) for n in names})
    storage_class.__module__ = __name__
    _retrying.append(storage_class)
    return storage_class


def _engine_kwargs(config: Config) -> dict[str, Any]:
    url = storage_url(config)
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def open_study(config: Config, space: dict[str, Any]) -> optuna.Study:
    """The study sweep.studyName, created or continued; refused when it exists with another direction or
    another search space (a different question under the same name), naming what differs."""
    import optuna

    rdb = storage(config)
    name = config.sweep.studyName
    wanted = OBJECTIVES[config.sweep.objective]
    try:
        study = optuna.create_study(study_name=name, storage=rdb, direction=wanted.direction, load_if_exists=True,
                                    sampler=sampler(config), pruner=pruner(config))
    except ValueError as error:  # an existing study with other directions
        raise config.refuse("sweep.studyName", f"names a study that exists with another direction ({error})") \
            from None
    directions = [d.name.lower() for d in study.directions]
    has = study.user_attrs.get("objective", "reward" if "space" in study.user_attrs else None)
    if (has is not None and has != wanted.name) or directions != [wanted.direction]:
        here = f"this command's sweep.objective is {wanted.name} (from {config.source('sweep.objective')})"
        if has is None:  # an Optuna study rl-sweep did not make
            raise config.refuse("sweep.studyName", f"names a study that exists and {directions[0]}s, and {here}, "
                                f"which {wanted.direction}s: give a new studyName")
        raise config.refuse("sweep.studyName", f"names a study that exists with objective {has} "
                            f"({OBJECTIVES[has].direction}d); {here}: give --objective {has} to continue it, or a "
                            "new studyName")
    if "objective" not in study.user_attrs:
        study.set_user_attr("objective", wanted.name)
    recorded = study.user_attrs.get("space")
    question = {"space": space, "algorithm": config.agent.algorithm, "envId": config.env.envId}
    if recorded is None:
        for key, value in question.items():
            study.set_user_attr(key, value)
        study.set_user_attr("kwargs", config.agent.kwargs)
    else:
        differs = _difference({k: study.user_attrs.get(k) for k in question}, question)
        if differs:
            raise config.refuse("sweep.studyName", f"names a study that searches another question: {differs}; "
                                "give this search a new studyName, or the study's own space to continue it "
                                "(rl-sweep --report needs only its name)")
    return study


def _difference(recorded: dict[str, Any], asked: dict[str, Any]) -> str | None:
    """What differs between the study's question and this command's, in words (the first difference)."""
    for key, option in (("algorithm", "agent.algorithm"), ("envId", "env.envId")):
        if recorded[key] != asked[key]:
            return f"{option} is {asked[key]!r} here and {recorded[key]!r} in the study"
    theirs, ours = recorded["space"] or {}, asked["space"]
    for path in sorted(set(theirs) | set(ours)):
        if path not in ours:
            return f"parameter {path} is searched in the study ({json.dumps(theirs[path])}), not here"
        if path not in theirs:
            return f"parameter {path} is searched here ({json.dumps(ours[path])}), not in the study"
        if theirs[path] != ours[path]:
            return f"parameter {path} is {json.dumps(ours[path])} here and {json.dumps(theirs[path])} in the study"
    return None


def existing_study(config: Config) -> optuna.Study:
    """The study sweep.studyName as it is, to report on: its name and storage are all it takes (its space,
    env and algorithm are the study's own)."""
    import optuna

    rdb = storage(config)
    name = config.sweep.studyName
    try:
        study = optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage=rdb))
        raise config.refuse("sweep.studyName", f"names no study in {where(config)}; the studies there: "
                            f"{', '.join(names) or 'none'}") from None
    if "space" not in study.user_attrs:
        raise config.refuse("sweep.studyName", "names an Optuna study that rl-sweep did not make (it records no "
                            "space)")
    return study


def check_names(config: Config) -> None:
    """Before anything is created: the study's name is a plain name (its report and plots go to
    <store.modelDir>/sweeps/<name>/, never elsewhere), and a storage written as a URL has a scheme that
    names a database (`postgresq://` would otherwise become a folder `postgresq:`)."""
    name = config.sweep.studyName
    if name in (".", "..") or any(c in name for c in "/\\\x00") or name != name.strip():
        raise config.refuse("sweep.studyName", "is not a plain name: the report and plots go to "
                            "<store.modelDir>/sweeps/<studyName>/, so it holds no /, \\ or surrounding spaces "
                            "and is not . or ..")
    for path, schemes in (("sweep.storage", STORAGE_SCHEMES), ("registry.dbPath", ("postgresql", "postgres"))):
        value = config[path]
        if value is None or "://" not in str(value):
            continue
        scheme = str(value).split("://", 1)[0]
        if scheme.lower().split("+", 1)[0] not in schemes:
            close = difflib.get_close_matches(scheme.lower(), schemes, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}://?)" if close else ""
            allowed = ", ".join(f"{s}://" for s in schemes)
            raise UsageError(f"option {path} from {config.source(path)}: {redact.text(str(value))!r} has an unknown "
                             f"scheme {scheme}://{hint}; expected {allowed} or a SQLite file path")
        if path == "registry.dbPath" or scheme.lower() in ("postgresql", "postgres"):
            from . import databases

            check_target = getattr(databases, "check_target", None)  # libpq's reading of the URL, checked
            if check_target is not None:
                check_target(str(value), f"option {path} from {config.source(path)}")


STORAGE_SCHEMES = ("postgresql", "postgres", "sqlite", "mysql")  # what an Optuna storage URL may name


def sampler(config: Config, worker: str | None = None) -> Any:
    """sweep.sampler, seeded from env.seed; each worker (host and process) draws its own stream, or two
    workers would try the very same values."""
    import hashlib

    import optuna

    seed = config.env.seed
    if seed is not None and worker is not None:
        seed = int.from_bytes(hashlib.sha256(f"{seed}/{worker}".encode()).digest()[:4], "big")
    return {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
            "qmc": lambda: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)}[
        config.sweep.sampler]()


def pruner(config: Config) -> Any:
    import optuna

    warmup = max(config.sweep.trialTimesteps // 3, 1)  # the first third of a trial is never judged
    return {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup),
            "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=warmup,
                                                                max_resource=config.sweep.trialTimesteps),
            "none": lambda: optuna.pruners.NopPruner()}[config.sweep.pruner]()


def counts(study: optuna.Study) -> dict[str, int]:
    from optuna.trial import TrialState

    result = {"finished": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        key = {TrialState.COMPLETE: "finished", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
               TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[t.state]
        result[key] += 1
    return result


def _in_budget(study: optuna.Study, number: int, trials: int) -> bool:
    from optuna.trial import TrialState

    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    before = sum(1 for t in study.get_trials(deepcopy=False, states=alive) if t.number < number)
    return before < trials


# -- the workers ------------------------------------------------------------------------------------

def work(config: Config, index: int, since: int = 0, parent: Any = None, slot: Any = None,
         asked: Any = None) -> None:
    """One worker process: trials one after another until the study has its total, too many trials in a
    row have failed, or it is asked to stop. A second signal ends it with 128 + the signal's number, its
    trial queued again, without a traceback."""
    from . import stopping

    try:
        _work(config, index, since, parent, slot, asked)
    except stopping.Stopped as stopped:
        sys.exit(stopped.exit_code)


# The signals a worker takes from its parent (rl-sweep): stop gracefully (what the parent got is in
# `asked`), and stop at once. Never SIGTERM or SIGINT: a worker also gets those itself from a terminal or
# a stop of the whole group, and would take the parent's copy for a second one.
ASK = signal.SIGUSR1
AT_ONCE = signal.SIGUSR2
PARENT_GONE = signal.SIGHUP  # what a worker whose parent died stops its trial with (its result says so)


def _work(config: Config, index: int, since: int, parent: Any, slot: Any, asked: Any) -> None:
    import warnings

    import optuna
    from optuna.trial import TrialState

    from . import logs, stopping

    stop = threading.Event()
    signalled: list[int] = []

    def asked_by_parent(signum: int, _frame: Any) -> None:
        stop.set()
        stopping.forward((asked.value if asked is not None else 0) or signal.SIGTERM)

    def at_once(signum: int, _frame: Any) -> None:
        stop.set()
        raise stopping.Stopped((asked.value if asked is not None else 0) or signal.SIGTERM)

    def own(signum: int, _frame: Any) -> None:  # between trials; a run's own GracefulStop takes them in one
        if signalled:
            raise stopping.Stopped(signum)
        signalled.append(signum)
        stop.set()
        stopping.forward(signum)

    signal.signal(ASK, asked_by_parent)
    signal.signal(AT_ONCE, at_once)
    for signum in stopping.SIGNALS:
        signal.signal(signum, own)
    if parent is not None:
        _watch_parent(parent, asked)
    if asked is not None and asked.value:  # asked before the handlers were in place
        return
    # The console shows each trial's warnings, not its every event (progress comes from the parent);
    # every run's train.log keeps logs.level.
    logs.setup(config if config.given("logs.level") else config.replace("logs.level", "warn", "rl-sweep"))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    study = optuna.load_study(study_name=config.sweep.studyName, storage=storage(config, retry=True),
                              sampler=sampler(config, f"{os.uname().nodename}/{os.getpid()}/{index}"),
                              pruner=pruner(config))
    space = study.user_attrs["space"]
    total = config.sweep.trials
    while not stop.is_set():
        with one_at_a_time(config):
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, and queued again
        done = counts(study)
        if done["finished"] + done["pruned"] >= total or failing_streak(study, since, config.sweep.failureLimit):
            return
        if sum(done[k] for k in ("finished", "pruned", "running", "waiting")) >= total and not done["waiting"]:
            # The budget is taken by trials running elsewhere: wait for them (one may fail and be queued
            # again) rather than ask for trials that would only be closed as surplus.
            stop.wait(POLL_S)
            continue
        # Taking a trial and saying whose it is are one step for the signals: a worker stopped in between
        # would leave a running trial that no heartbeat and no parent knows of.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
        try:
            with one_at_a_time(config):
                trial = study.ask()
            if slot is not None:
                slot.value = trial._trial_id
            rdb: Any = study._storage  # RDBStorage: heartbeats are its own API
            with contextlib.suppress(Exception):  # the database away: the heartbeat thread beats again
                rdb.record_heartbeat(trial._trial_id)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
        try:
            if not _in_budget(study, trial.number, total):
                trial.set_user_attr(SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                stop.wait(POLL_S)  # the budget is taken; a trial that fails elsewhere would free a place
                continue
            _trial(config, study, trial, space, stop)
        finally:
            if slot is not None:
                slot.value = -1


STOPS = {signal.SIGINT, signal.SIGTERM, ASK, AT_ONCE}


def _trial(config: Config, study: optuna.Study, trial: optuna.Trial, space: dict[str, Any],
           stop: threading.Event) -> None:
    """Train one trial and tell the study how it went; a run stopped by a signal is queued again."""
    from optuna.trial import TrialState

    from . import stopping, train

    beating = _heartbeat(study, trial, config.sweep.heartbeat)
    try:
        trial.set_user_attr("worker", f"{os.uname().nodename}/{os.getpid()}")
        values = suggest(trial, space)
        trial_cfg = trial_config(config, values, study.study_name, trial.number)
        objective = objective_of(study)
        prepared = train.prepare(trial_cfg)
        in_seconds = objective.unit == "s"  # time-to-threshold: a miss is charged the study's slowest
        running = Running(objective, prepared.threshold, trial_cfg.train.totalTimesteps,
                          slowest(study) if in_seconds else 0.0)

        def report(timesteps: int, mean_reward: float, trial: optuna.Trial = trial) -> bool:
            trial.report(running.value(timesteps, mean_reward), timesteps)
            return not trial.should_prune()

        plan = replace(prepared, trial=train.Trial(study.study_name, trial.number, report))
        running.started = time.perf_counter()
        result = train.train(plan)
        trial.set_user_attr("run_id", result.run_id)
        trial.set_user_attr("model_id", result.model_id)
        if result.status == "interrupted":
            stop.set()
            _tell_again(study, trial, STOPPED)
        elif result.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            value, attrs = score(objective, result, slowest(study) if in_seconds else 0.0)
            for key, attr in attrs.items():
                trial.set_user_attr(key, attr)
            study.tell(trial, value, skip_if_finished=True)
    except stopping.Stopped:
        _tell_again(study, trial, STOPPED_AT_ONCE)
        raise
    except Exception as error:  # one trial's failure (a combination the algorithm refuses): recorded
        message = redact.text(f"{type(error).__name__}: {error}")
        if transient(error):  # the registry's database away mid-trial: no verdict on the values; run them again
            log.warning("trial %d: the database was away (%s); queued again", trial.number, _first_line(error),
                        extra=event("rl.trial.failed", trial=trial.number))
            _tell_again(study, trial, f"{DATABASE_AWAY}: {message}"[:500])
            return
        trial.set_user_attr("error", message[:500])
        log.warning("trial %d failed: %s", trial.number, message, extra=event("rl.trial.failed", trial=trial.number))
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    finally:
        beating.set()


STOPPED = "stopped by a signal"
STOPPED_AT_ONCE = "stopped by a second signal"
DATABASE_AWAY = "the database was away"
DIED = "its worker died"


def _watch_parent(parent: Any, asked: Any) -> None:
    """Stop this worker's trial (saved, queued again) and take no other once rl-sweep is gone: the read end
    of a pipe whose only write end rl-sweep holds reads end-of-file when it dies, SIGKILL included."""

    def watch() -> None:
        try:
            parent.poll(None)
        except (EOFError, OSError):
            pass
        if asked is not None and not asked.value:
            asked.value = PARENT_GONE
        os.kill(os.getpid(), ASK)

    threading.Thread(target=watch, name="rl-sweep-parent", daemon=True).start()


def failing_streak(study: optuna.Study, since: int, limit: int) -> optuna.trial.FrozenTrial | None:
    """The first of the last `limit` trials ended since trial `since`, when every one of them failed (an
    error, or its worker died): a space in which nothing trains stops there, rather than run forever.
    Trials a signal stopped, or a lost host's (its heartbeat stale), are no verdict on the space."""
    from optuna.trial import TrialState

    ended = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                 TrialState.FAIL))
             if t.number >= since and not t.user_attrs.get(SURPLUS)
             and (t.state != TrialState.FAIL or t.user_attrs.get("error") not in (None, STOPPED, STOPPED_AT_ONCE)
                  and not str(t.user_attrs.get("error")).startswith(DATABASE_AWAY))]
    last = sorted(ended, key=lambda t: t.number)[-limit:]
    if len(last) == limit and all(t.state == TrialState.FAIL for t in last):
        return last[0]
    return None


@contextlib.contextmanager
def one_at_a_time(config: Config) -> Iterator[None]:
    """Around what takes a trial from the study's queue (an ask, failing a dead worker's trial): on a SQLite
    storage, one process at a time, by an exclusive lock on `<database>-sweep.lock` beside it. Optuna reads
    a queued trial's state and writes it in two statements, and SQLite locks no row in between: two workers
    asking at once were both handed the same queued trial (9 times in 200 asks), trained it twice, and the
    second to finish died on its tell. A SQLite file has no other hosts, so a lock of this host's suffices;
    PostgreSQL locks the row itself (SELECT ... FOR UPDATE)."""
    url = storage_url(config)
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        yield
        return
    import fcntl

    with open(url.removeprefix("sqlite:///") + "-sweep.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tell_again(study: optuna.Study, trial: optuna.Trial, why: str) -> None:
    """A trial cut short by a signal: failed, and queued again with its values (the command run again
    continues the study)."""
    from optuna.trial import TrialState

    trial.set_user_attr("error", why)
    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _heartbeat(study: optuna.Study, trial: optuna.Trial, every: int) -> threading.Event:
    """Record the trial's heartbeat every `every` seconds until the returned event is set."""
    done = threading.Event()
    rdb: Any = study._storage  # RDBStorage: heartbeats are its own API

    def beat() -> None:
        while not done.is_set():
            try:
                rdb.record_heartbeat(trial._trial_id)
            except Exception:  # the database away for a moment: the next beat tries again
                pass
            done.wait(every)

    threading.Thread(target=beat, name="rl-sweep-heartbeat", daemon=True).start()
    return done


# What opening an Optuna database storage imports (0.5 s): its SQLAlchemy models and Alembic, which checks
# the schema's version. Optuna imports them lazily, when a storage is made, not with its storage module.
STORAGE_IMPORTS = ("optuna.storages._rdb.models", "alembic.command", "alembic.config", "alembic.migration",
                   "alembic.script")
# What every worker imports before its first trial, about 4 s of CPU: torch with stable-baselines3 and
# gymnasium, torch._dynamo, which torch's optimizers import on first use (2 s of an rl-train's start),
# and the storage's. Imported once per host, not once per worker (see check).
WORKER_IMPORTS = ("rl_module.sweep_forkserver", "rl_module.train", "stable_baselines3", "gymnasium",
                  "torch._dynamo", *STORAGE_IMPORTS)


def check(config: Config, forked: bool = False) -> dict[str, dict[str, Any]]:
    """Every check before any work, the space's (space_of) and a trial's (train.prepare: the env, the
    algorithm, the spaces); the space checked. UsageError for anything refused.

    forked: in a process forked as the workers will be (Python's forkserver), which imports WORKER_IMPORTS
    first: this process never imports torch, the workers start with it in memory, and this process opens
    the study meanwhile. The workers are forked from that single-threaded process, never from this one,
    whose threads (progress, telemetry) would not survive a fork."""
    if not forked:
        return _check_all(config)
    context = forkserver()
    results, sent = context.Pipe(duplex=False)
    checking = context.Process(target=_checked, args=(config, sent), name="rl-sweep-check")
    try:
        checking.start()  # waits for the forkserver's imports
        sent.close()
        # What opening the study needs next, imported here while the forked process imports torch; nothing
        # is opened before the checks have passed.
        for module in STORAGE_IMPORTS:
            importlib.import_module(module)
        try:
            space, refused = results.recv()
        except EOFError:
            checking.join()
            raise RuntimeError(f"the process that checks the options ended (exit code {checking.exitcode})") \
                from None
        checking.join()
    except BaseException:  # Ctrl-C meanwhile: the checks end here, without a word of their own
        if checking.pid is not None:
            checking.kill()
        raise
    if isinstance(refused, BaseException):
        raise refused
    if refused is not None:
        raise UsageError(refused)
    assert space is not None
    return space


def forkserver() -> Any:
    """Python's forkserver context, its process started with WORKER_IMPORTS and with the stop signals
    (SIGINT, SIGTERM, ASK, AT_ONCE) ignored there (the workers forked from it set their own): a Ctrl-C or a
    SIGTERM to the whole group, which reaches it too, would end it under its workers (and print the
    traceback of its imports). They are blocked in this thread while it is started, never ignored here: a
    process starts with its creator's mask, and the forkserver ignores what it started with blocked, then
    unblocks it (sweep_forkserver). Ignoring them here, even for a moment, would be for the whole process,
    while a block is for this thread alone: a Ctrl-C that another of its threads (telemetry's exporters)
    took in that moment would be dropped. multiprocessing's resource tracker is started first: starting it
    unblocks SIGINT and SIGTERM in this thread, and the forkserver would then start with them unblocked."""
    from multiprocessing import forkserver as server
    from multiprocessing import resource_tracker

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_IMPORTS))
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        server.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    return context


def _check_all(config: Config) -> dict[str, dict[str, Any]]:
    from . import train

    space = space_of(config)
    try:
        train.prepare(trial_config(config, {}, config.sweep.studyName, 0), warn=False)
    except UsageError as error:
        # The threshold is the objective's, not an option the user set: say so in its words.
        if config.sweep.objective != "reward" and not config.train.stopOnReward and \
                str(error).startswith("option train.stopOnReward"):
            raise config.refuse("sweep.objective", f"needs a reward threshold, and {config.env.envId} registers "
                                "none: set registry.minReward (--min-reward)") from None
        raise
    return space


def _checked(config: Config, sent: Any) -> None:
    """_check_all in a forked process, its answer sent back: what it refused as text (an option's error does
    not survive pickling)."""
    try:
        answer: tuple[Any, Any] = (_check_all(config), None)
    except UsageError as error:
        answer = (None, str(error))
    except Exception as error:  # raised again in rl-sweep, as if it had checked itself (a registry refused)
        answer = (None, error)
    with contextlib.suppress(OSError):  # rl-sweep gone meanwhile (a Ctrl-C while it started): no one to tell
        try:
            sent.send(answer)
        except Exception:  # an error that does not pickle: its words
            sent.send((None, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))


def run_workers(config: Config, progress: Any, study: optuna.Study, since: int) -> tuple[str | None, str | None]:
    """Start sweep.workers processes and wait for them, reporting progress. Returns the signal that stopped
    them, if any, and why the command failed, if it did.

    A signal (Ctrl-C, SIGTERM to rl-sweep or to its whole group) asks every worker to stop its trial as
    rl-train stops, saved where it is and queued again; rl-sweep waits for them (STOP_WAIT_S at most) and
    ends. A second one stops them at once. A worker that dies is seen at once: its trial failed and queued
    again, and another worker takes its place."""
    from multiprocessing.connection import wait

    from . import stopping

    context = multiprocessing.get_context("forkserver")  # with what they import in memory: see check
    # The workers read the end of this pipe; rl-sweep holds its only write end (see _watch_parent).
    parent_end, held = context.Pipe(duplex=False)
    asked = context.Value("i", 0, lock=False)  # the signal rl-sweep got, for the workers' results
    slots = [context.Value("q", -1, lock=False) for _ in range(config.sweep.workers)]  # each one's trial id
    workers: list[Any] = [None] * config.sweep.workers
    received: list[int] = []
    failure: list[str] = []
    deaths = {"in_a_row": 0, "ended": -1}

    def start(index: int) -> None:
        worker = context.Process(target=work, args=(config, index, since, parent_end, slots[index], asked),
                                 name=f"rl-sweep-{index}")
        worker.start()
        workers[index] = worker

    def tell(signum: int) -> None:
        for w in workers:
            if w is not None and w.pid is not None and w.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signum)

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            asked.value = signum
            stopping.from_a_handler(print, f"rl-sweep: {signal.Signals(signum).name}: stopping every worker's "
                                    "trial where it is (again to stop at once)", file=sys.stderr, flush=True)
            tell(ASK)
        else:
            tell(AT_ONCE)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    seen: set[int] = set()
    try:
        for index in range(config.sweep.workers):
            start(index)
        asked_at: float | None = None
        while any(w.is_alive() for w in workers):
            progress()
            if received and asked_at is None:
                asked_at = time.monotonic()
            if asked_at is not None and time.monotonic() - asked_at > STOP_WAIT_S:
                tell(AT_ONCE if time.monotonic() - asked_at < STOP_WAIT_S + AT_ONCE_WAIT_S else signal.SIGKILL)
            wait([w.sentinel for w in workers if w.is_alive()], timeout=POLL_S)
            for index, w in enumerate(workers):
                if w.is_alive() or id(w) in seen:
                    continue
                seen.add(id(w))
                if received or w.exitcode == 0:  # stopped when asked, or done
                    continue
                _fail_dead_trial(study, slots[index], w.exitcode)
                ended = sum(counts(study)[k] for k in ("finished", "pruned"))
                deaths["in_a_row"] = 1 if ended > deaths["ended"] else deaths["in_a_row"] + 1
                deaths["ended"] = ended
                if deaths["in_a_row"] > DEATHS_IN_A_ROW * config.sweep.workers:
                    if not failure:
                        failure.append(f"workers died {deaths['in_a_row']} times in a row without a trial "
                                       f"ending (the last with exit code {w.exitcode}); see each trial's error")
                        received.append(signal.SIGTERM)  # the others stop too, as for a signal
                        tell(ASK)
                    continue
                print(f"rl-sweep: worker {index} died (exit code {w.exitcode}); a new one takes its place",
                      file=sys.stderr, flush=True)
                start(index)
        progress()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        held.close()
    if not any(w is not None and w.is_alive() for w in workers):
        _stop_helpers()
    if failure:
        return None, failure[0]
    return (signal.Signals(received[0]).name if received else None), None


def _stop_helpers() -> None:
    """End the forkserver and Python's resource tracker now, and wait for them: left to notice rl-sweep's
    end by themselves, they outlived it (under PID 1) by a moment, or for good while a worker lived."""
    from multiprocessing import forkserver as server
    from multiprocessing import resource_tracker

    for helper in (server._forkserver, resource_tracker._resource_tracker):
        stop = getattr(helper, "_stop", None)  # what Python's own tests stop them with
        if stop is not None:
            with contextlib.suppress(OSError):
                stop()


STOP_WAIT_S = 90.0  # after a signal, how long the workers have to save their trials (systemd waits 120 s)
AT_ONCE_WAIT_S = 15.0  # then, after they are told to stop at once, before they are killed
DEATHS_IN_A_ROW = 3  # per worker: workers that keep dying with no trial ending (a database gone for good)


def _fail_dead_trial(study: optuna.Study, slot: Any, exitcode: int | None) -> None:
    """The trial of a worker that died (kill -9, out of memory): failed, saying so, and queued again with its
    values, now rather than once its heartbeat is stale."""
    import optuna
    from optuna.trial import TrialState

    trial_id, slot.value = slot.value, -1
    if trial_id < 0:
        return
    storage: Any = study._storage
    try:
        storage.set_trial_user_attr(trial_id, "error", f"{DIED} (exit code {exitcode})")
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:  # it had ended: nothing to do again
        return
    frozen = storage.get_trial(trial_id)
    if not frozen.user_attrs.get(SURPLUS):
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})
        log.warning("trial %d failed: %s (exit code %s); queued again", frozen.number, DIED, exitcode,
                    extra=event("rl.trial.failed", trial=frozen.number))


# -- the result -------------------------------------------------------------------------------------

def report(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial: number, state, value, duration, its values (and Optuna's parameters as sampled), run
    and registry model; to a threshold, whether it validated (`reached`), its best evaluation and, when it
    did not, its gap (the penalty's)."""
    rows = []
    space = study.user_attrs["space"]
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name.lower(), "value": t.value, "duration_s": duration,
            "values": values_of(t.params, space), "params": t.params, "run_id": t.user_attrs.get("run_id"),
            "model_id": t.user_attrs.get("model_id"), "error": t.user_attrs.get("error")}
        row.update({key: t.user_attrs[key] for key in ("reached", "best_reward", "gap") if key in t.user_attrs})
        rows.append(row)
    return rows


def best_values(study: optuna.Study) -> dict[str, Any] | None:
    """The best finished trial's values, by path (learning-rate schedule folded in)."""
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not finished:
        return None
    pick = max if objective_of(study).direction == "maximize" else min
    best = pick(finished, key=lambda t: float(t.value or 0.0))
    return {"trial": best.number, "value": best.value, "reached": best.user_attrs.get("reached"),
            "values": values_of(best.params, study.user_attrs["space"])}


def values_of(params: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A trial's values by path, as its run used them, from what Optuna recorded (the numbers as sampled:
    exponents, 1 - gamma; lists as JSON; the learning-rate schedule apart)."""
    values = {}
    for path, value in params.items():
        if path.endswith(".schedule"):
            continue
        if isinstance(value, str) and value[:1] in "[{":
            value = json.loads(value)
        elif path in space and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _transform(space[path], value)
        if path == "train.learningRate":
            value = ("lin_" if params.get(path + ".schedule") == "lin" else "") + f"{value:.6g}"
        values[path] = value
    return values


def settings_of(study: optuna.Study, values: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration by option path: the study's env and algorithm, its values, and agent.kwargs
    as the trial's run had them (the study's own kwargs, with the searched ones over them)."""
    attrs = study.user_attrs
    kwargs = dict(attrs.get("kwargs") or {})
    settings: dict[str, Any] = {"env.envId": attrs["envId"], "agent.algorithm": attrs["algorithm"]}
    for path, value in values.items():
        if path.startswith("agent.kwargs."):
            kwargs[path.removeprefix("agent.kwargs.")] = value
        else:
            settings[path] = value
    if kwargs:
        settings["agent.kwargs"] = kwargs
    return settings


def as_nix(study: optuna.Study, values: dict[str, Any], best: dict[str, Any] | None = None) -> str:
    """The trial's configuration as Nix, to paste into `rl = { ... };`: read by Nix and rendered by the
    module, every number is exactly the trial's (floats as their shortest exact decimal). With `best`
    (best_values), a first comment says what it scored, in the study's objective, and where it came from."""
    lines = [f"  {path} = {nix_value(value)};" for path, value in sorted(settings_of(study, values).items())]
    said = ""
    if best is not None:
        objective = objective_of(study)
        reached = "" if not objective.to_threshold else \
            " (reached)" if best.get("reached") else " (the penalty: it did not reach the threshold)"
        said = (f"# study {study.study_name}, trial {best['trial']}: {objective.label} "
                f"{objective.show(best['value'])}{reached}\n")
    return said + "rl = {\n" + "\n".join(lines) + "\n};"


def nix_value(value: Any) -> str:
    """A value as Nix source; a float as Python's repr (the shortest text that reads back as the same
    number), in Nix's float syntax (a point before any exponent: 1.0e-05)."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return spec_module.to_nix(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + (f"e{exponent}" if exponent else "")
    if isinstance(value, str):
        return json.dumps(value).replace("${", "\\${")
    if isinstance(value, (list, tuple)):
        return "[ " + " ".join(nix_value(v) for v in value) + " ]"
    if isinstance(value, dict):
        names = (k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_'-]*", k) else json.dumps(k) for k in sorted(value))
        return "{ " + "".join(f"{name} = {nix_value(value[k])}; " for name, k in zip(names, sorted(value),
                                                                                       strict=True)) + "}"
    raise TypeError(f"no Nix for {value!r}")


def as_flags(study: optuna.Study, values: dict[str, Any]) -> list[str]:
    """The same configuration as rl-train flags (floats as their shortest exact decimal)."""
    spec = spec_module.load()
    flags: list[str] = []
    for path, value in settings_of(study, values).items():
        if path == "agent.kwargs":
            shown = json.dumps(value, sort_keys=True)
        elif isinstance(value, list):
            shown = ",".join(map(str, value))
        else:
            shown = json.dumps(value) if isinstance(value, bool) else repr(value) if isinstance(value, float) \
                else str(value)
        flags += [spec.option(path).flag, shown]
    return flags


def warm_plots(counted: dict[str, int], total: int, workers: int) -> None:
    """Import what the plots need (matplotlib, Optuna's charts and importances: ~2 s, scikit-learn among
    them) and draw a first figure, on a thread, once every trial of the study is given out and a worker of
    this host has nothing left to do: a core is free then, and the command ends that much sooner after its
    last trial."""
    given = counted["finished"] + counted["pruned"] + counted["running"]
    if _warmers or counted["waiting"] or given < total or counted["running"] >= workers:
        return

    def imports() -> None:
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import optuna.importance  # noqa: F401
        import optuna.visualization.matplotlib  # noqa: F401

        figure, axis = plt.subplots()  # a first figure drawn loads the fonts and the PNG writer: 0.3 s
        axis.set_title("warm")
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)

    warmer = threading.Thread(target=imports, name="rl-sweep-plots", daemon=True)
    _warmers.append(warmer)
    warmer.start()


_warmers: list[threading.Thread] = []  # the one warm-up, joined before the plots: pyplot is for one thread


def plot(study: optuna.Study, folder: Path) -> list[str]:
    """The optimization history and parameter importances as PNG in the sweep's folder; what could not
    be drawn (too few finished trials) is left out."""
    import warnings

    import matplotlib

    for warmer in _warmers:
        warmer.join()
    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as charts

    folder.mkdir(parents=True, exist_ok=True)
    objective = objective_of(study)
    target = objective.label + (f" ({objective.unit})" if objective.unit else "")
    written = []
    for name, draw in (("history.png", charts.plot_optimization_history),
                       ("importances.png", charts.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study, target_name=target)
                if name == "history.png" and objective.to_threshold:
                    _mark_reached(study, axes)
            figure: Any = axes.figure
            figure.savefig(folder / name, dpi=100, bbox_inches="tight")
            matplotlib.pyplot.close(figure)
            written.append(str(folder / name))
        except Exception as error:  # noqa: BLE001 - a chart is a bonus; say why it is missing
            log.info("%s not drawn: %s", name, error)
    return written


def _mark_reached(study: optuna.Study, axes: Any) -> None:
    """On the history: which trials reached the threshold (their value is a time or a step count) and which
    scored the penalty, told apart at a glance."""
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    missed = [t for t in finished if t.user_attrs.get("reached") is False]
    if missed:
        axes.scatter([t.number for t in missed], [t.value for t in missed], marker="x", color="tab:red", zorder=3,
                     label="did not reach the threshold (penalty)")
        axes.legend(fontsize=7)
    axes.set_title(f"{study.study_name}: {objective_of(study).label}, {objective_of(study).direction}d")


def where(config: Config) -> str:
    """The study's storage as it may be printed: credentials masked, even in a URL that does not parse."""
    return redact.text(str(config.sweep.storage or config.registry.dbPath))
