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
import importlib
import inspect
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import spec as spec_module
from .config import Config, UsageError
from .databases import is_url
from .logs import event
from .redact import url as masked_url

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
    takes = _algorithm_arguments(config.agent.algorithm)
    for path, parameter in space.items():
        _check(config, path, parameter, takes)
    return space


def _algorithm_arguments(algorithm: str) -> set[str]:
    from .agent import algorithm_class

    return set(inspect.signature(algorithm_class(algorithm).__init__).parameters) - {"self", "policy", "env"}


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
        values = [_transform(parameter, low), _transform(parameter, high)]
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
    option = spec_module.load().option(path)
    if path == "train.learningRate" and isinstance(value, (int, float)):
        value = f"{value:.6g}"
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
    config = config.replace("train.evalFreq", max(steps // config.sweep.evaluations, 1), source)
    n_steps = kwargs.get("n_steps")
    if config.agent.algorithm in ("ppo",) and isinstance(n_steps, int):
        rollout = n_steps * config.env.nEnvs
        if config.train.batchSize is not None and config.train.batchSize > rollout:
            config = config.replace("train.batchSize", rollout, f"{source} (cut to n_steps x n_envs)")
    return config


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


def storage(config: Config) -> Any:
    """Optuna's RDB storage for the study, with heartbeats: a trial silent for three of them is failed and
    queued again with its values (RetryHeartbeatStaleTrialCallback)."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    beat = config.sweep.heartbeat
    attempt = 0
    while True:
        try:
            return RDBStorage(storage_url(config), heartbeat_interval=beat, grace_period=3 * beat,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                              engine_kwargs=_engine_kwargs(config))
        except Exception as error:
            # Hosts that start together race to create Optuna's tables: the loser finds them made.
            attempt += 1
            if attempt < 3 and ("duplicate key" in str(error) or "already exists" in str(error)):
                time.sleep(0.5)
                continue
            shown = masked_url(config.sweep.storage or config.registry.dbPath)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UsageError(f"option {_where(config)}: cannot open the study's storage {shown}: "
                             f"{masked_url(first)}") from None


def _engine_kwargs(config: Config) -> dict[str, Any]:
    url = storage_url(config)
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def open_study(config: Config, space: dict[str, Any]) -> optuna.Study:
    """The study sweep.studyName, created or continued; refused when it exists with another direction or
    another search space (a different question under the same name)."""
    import optuna

    rdb = storage(config)
    name = config.sweep.studyName
    try:
        study = optuna.create_study(study_name=name, storage=rdb, direction="maximize", load_if_exists=True,
                                    sampler=sampler(config), pruner=pruner(config))
    except ValueError as error:  # an existing study with other directions
        raise config.refuse("sweep.studyName", f"names a study that exists with another direction ({error})") \
            from None
    if [d.name for d in study.directions] != ["MAXIMIZE"]:
        raise config.refuse("sweep.studyName", "names a study that minimizes; a sweep maximizes the mean reward")
    recorded = study.user_attrs.get("space")
    question = {"space": space, "algorithm": config.agent.algorithm, "envId": config.env.envId}
    if recorded is None:
        for key, value in question.items():
            study.set_user_attr(key, value)
    elif {k: study.user_attrs.get(k) for k in question} != question:
        raise config.refuse("sweep.studyName", "names a study that searches another space (or env, or algorithm); "
                            "give this search a new studyName, or the same space to continue it")
    return study


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

def work(config: Config, index: int) -> None:
    """One worker process: trials one after another until the study has its total, or a signal."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    from . import logs, stopping, train

    # The console shows each trial's warnings, not its every event (progress comes from the parent);
    # every run's train.log keeps logs.level.
    logs.setup(config if config.given("logs.level") else config.replace("logs.level", "warn", "rl-sweep"))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into one SIGTERM per worker
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    study = optuna.load_study(study_name=config.sweep.studyName, storage=storage(config),
                              sampler=sampler(config, f"{os.uname().nodename}/{os.getpid()}/{index}"),
                              pruner=pruner(config))
    space = study.user_attrs["space"]
    total = config.sweep.trials
    while not stop.is_set():
        with one_at_a_time(config):
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, and queued again
        done = counts(study)
        if done["finished"] + done["pruned"] >= total:
            return
        if sum(done[k] for k in ("finished", "pruned", "running", "waiting")) >= total and not done["waiting"]:
            # The budget is taken by trials running elsewhere: wait for them (one may fail and be queued
            # again) rather than ask for trials that would only be closed as surplus.
            stop.wait(POLL_S)
            continue
        with one_at_a_time(config):
            trial = study.ask()
        if not _in_budget(study, trial.number, total):
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=TrialState.FAIL)
            stop.wait(POLL_S)  # the budget is taken; a trial that fails elsewhere would free a place
            continue
        beating = _heartbeat(study, trial, config.sweep.heartbeat)
        try:
            values = suggest(trial, space)
            trial_cfg = trial_config(config, values, study.study_name, trial.number)
            trial.set_user_attr("worker", f"{os.uname().nodename}/{os.getpid()}")

            def report(timesteps: int, mean_reward: float, trial: optuna.Trial = trial) -> bool:
                trial.report(mean_reward, timesteps)
                return not trial.should_prune()

            plan = replace(train.prepare(trial_cfg),
                           trial=train.Trial(study.study_name, trial.number, report))
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the run's own graceful stop takes it from here
            result = train.train(plan)
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            trial.set_user_attr("run_id", result.run_id)
            trial.set_user_attr("model_id", result.model_id)
            if result.status == "interrupted":
                _tell_again(study, trial, "stopped by a signal")
                return
            if result.status == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, result.evaluation["mean_reward"] if result.evaluation else None)
        except stopping.Stopped:
            _tell_again(study, trial, "stopped by a second signal")
            raise
        except Exception as error:  # one trial's failure (a combination the algorithm refuses): recorded
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error,
                        extra=event("rl.trial.failed", trial=trial.number))
            study.tell(trial, state=TrialState.FAIL)
        finally:
            beating.set()


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
    study.tell(trial, state=TrialState.FAIL)
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
WORKER_IMPORTS = ("rl_module.train", "stable_baselines3", "gymnasium", "torch._dynamo", *STORAGE_IMPORTS)


def check(config: Config, forked: bool = False) -> dict[str, dict[str, Any]]:
    """Every check before any work, the space's (space_of) and a trial's (train.prepare: the env, the
    algorithm, the spaces); the space checked. UsageError for anything refused.

    forked: in a process forked as the workers will be (Python's forkserver), which imports WORKER_IMPORTS
    first: this process never imports torch, the workers start with it in memory, and this process opens
    the study meanwhile. The workers are forked from that single-threaded process, never from this one,
    whose threads (progress, telemetry) would not survive a fork."""
    if not forked:
        return _check_all(config)
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_IMPORTS))
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        checking = pool.submit(_checked, config)
        # What opening the study needs next, imported here while the forked process imports torch; nothing
        # is opened before the checks have passed.
        for module in STORAGE_IMPORTS:
            importlib.import_module(module)
        space, refused = checking.result()
    if refused is not None:
        raise UsageError(refused)
    assert space is not None
    return space


def _check_all(config: Config) -> dict[str, dict[str, Any]]:
    from . import train

    space = space_of(config)
    train.prepare(trial_config(config, {}, config.sweep.studyName, 0), warn=False)
    return space


def _checked(config: Config) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
    """_check_all in a forked process: what it refused as text (an option's error does not survive pickling)."""
    try:
        return _check_all(config), None
    except UsageError as error:
        return None, str(error)


def run_workers(config: Config, progress: Any) -> str | None:
    """Start sweep.workers processes and wait for them, reporting progress; the first SIGTERM or Ctrl-C
    is passed on to every worker (each stops its run gracefully). Returns the signal's name, if any."""
    context = multiprocessing.get_context("forkserver")  # with what they import in memory: see check
    workers = [context.Process(target=work, args=(config, i), name=f"rl-sweep-{i}")
               for i in range(config.sweep.workers)]
    received: list[str] = []

    def forward(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signal.Signals(signum).name)
            print(f"rl-sweep: {received[0]}: stopping every worker's trial where it is (again to stop at once)",
                  file=sys.stderr)
            for w in workers:
                if w.pid is not None and w.is_alive():
                    os.kill(w.pid, signal.SIGTERM)
        else:
            for w in workers:
                if w.is_alive():
                    w.kill()

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            progress()
            for w in workers:
                w.join(timeout=POLL_S / len(workers))
        progress()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return received[0] if received else None


# -- the result -------------------------------------------------------------------------------------

def report(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial: number, state, value, duration, its values (and Optuna's parameters as sampled), run
    and registry model."""
    rows = []
    space = study.user_attrs["space"]
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "duration_s": duration,
                     "values": values_of(t.params, space), "params": t.params, "run_id": t.user_attrs.get("run_id"),
                     "model_id": t.user_attrs.get("model_id"), "error": t.user_attrs.get("error")})
    return rows


def best_values(study: optuna.Study) -> dict[str, Any] | None:
    """The best finished trial's values, by path (learning-rate schedule folded in)."""
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not finished:
        return None
    best = max(finished, key=lambda t: float(t.value or 0.0))
    return {"trial": best.number, "value": best.value, "values": values_of(best.params, study.user_attrs["space"])}


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


def as_nix(values: dict[str, Any]) -> str:
    """The values as Nix, to paste into `rl = { ... };`."""
    kwargs = {p.removeprefix("agent.kwargs."): v for p, v in values.items() if p.startswith("agent.kwargs.")}
    lines = [f"  {path} = {spec_module.to_nix(value)};" for path, value in sorted(values.items())
             if not path.startswith("agent.kwargs.")]
    if kwargs:
        lines.append(f"  agent.kwargs = {spec_module.to_nix(kwargs)};")
    return "rl = {\n" + "\n".join(lines) + "\n};"


def as_flags(config: Config, values: dict[str, Any]) -> list[str]:
    """The same values as rl-train flags (with the env and algorithm the study searched)."""
    spec = spec_module.load()
    flags = [spec.option("env.envId").flag, config.env.envId, spec.option("agent.algorithm").flag,
             config.agent.algorithm]
    kwargs = dict(config.agent.kwargs)
    for path, value in sorted(values.items()):
        if path.startswith("agent.kwargs."):
            kwargs[path.removeprefix("agent.kwargs.")] = value
            continue
        shown = ",".join(map(str, value)) if isinstance(value, list) else json.dumps(value) \
            if isinstance(value, bool) else str(value)
        flags += [spec.option(path).flag, shown]
    if kwargs:
        flags += [spec.option("agent.kwargs").flag, json.dumps(kwargs, sort_keys=True)]
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
    written = []
    for name, draw in (("history.png", charts.plot_optimization_history),
                       ("importances.png", charts.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study)
            figure: Any = axes.figure
            figure.savefig(folder / name, dpi=100, bbox_inches="tight")
            matplotlib.pyplot.close(figure)
            written.append(str(folder / name))
        except Exception as error:  # noqa: BLE001 - a chart is a bonus; say why it is missing
            log.info("%s not drawn: %s", name, error)
    return written


def where(config: Config) -> str:
    return masked_url(config.sweep.storage or config.registry.dbPath)
