"""Train: from a resolved configuration to a trained, evaluated model in its run directory.

    prepare()  checks every option against the environment before any work (exit 2 on a bad one)
    train()    builds env and algorithm, learns with checkpoint and evaluation callbacks, saves the
               final model atomically, evaluates it, and returns what the run produced

A run survives what happens to processes (see stopping): the first SIGTERM or SIGINT stops learning at
the next step, saves the model where it is (checkpoints/stopped-<steps>.zip, with its normalization
statistics and replay buffer), registers it as `interrupted`, writes result.json and ends the run's
trace. `train.resume` continues a run in its own directory from its newest saved model: the step
counter, progress files, evaluation history, registry rows, normalization statistics and replay buffer
all go on from there.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import agent, env, eval, obs, redact, registry, stopping, store
from .config import DEFAULT, Config, Failure, Setting, UsageError, flatten
from .databases import is_url
from .env import EnvInfo
from .logs import event
from .spec import coerce
from .spec import load as load_spec

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from .telemetry import Telemetry

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 10_000  # evaluation envs are seeded apart from the training envs


def apply_preset(config: Config) -> Config:
    """Lay the tuned hyperparameters for (algorithm, env) over the options left at their defaults."""
    if not config.train.preset:
        return config
    key = (config.agent.algorithm, config.env.envId)
    preset = load_spec().presets.get(key)
    return config if preset is None else config.with_layer(preset, f"preset {key[0]}/{key[1]}")


# -- resume -------------------------------------------------------------------------------------------
# A resumed run is the same run: its config.json decides. What may differ now: more steps, how the run is
# watched, and the hyperparameters a saved model takes for real (set on it after loading, recorded from
# the step it resumes at, see _take_hyperparameters).
RESUME_MAY_CHANGE = ("train.resume", "train.totalTimesteps", "train.progressBar", "train.threads",
                     "store.checkpointFreq", "store.replayBuffer", "train.learningRate", "train.gamma",
                     "train.batchSize")
# What a run is: none of it may change on resume, whatever says so (a flag, the environment, or the run's
# config.json edited by hand). config.json keeps these as the run started under "identity". agent.kwargs is
# here too: its keywords are the saved model's own (a changed one would be recorded and not used).
RUN_IDENTITY = ("agent.algorithm", "env.envId", "env.kwargs", "agent.policyType", "agent.netArch",
                "agent.activation", "agent.kwargs", "feature.encoder", "feature.customClass", "feature.embedDim",
                "obs.normalize", "obs.stackFrames", "obs.clipRange")
RESUME_MAY_CHANGE_FEATURES = ("metrics", "traces", "logs")
# Paths in config.json are relative to the folder the run was started from (recorded as "cwd").
RUN_PATHS = ("store.modelDir", "registry.dbPath")


def _may_change(path: str) -> bool:
    return path in RESUME_MAY_CHANGE or path.split(".")[0] in RESUME_MAY_CHANGE_FEATURES


def recorded_source(run_id: str, source: str) -> str:
    """The source of a value read from a run's config.json: that file, and what it says set the value."""
    where = f"{store.CONFIG_FILE} of run {run_id}"
    return source if source.startswith(where) else f"{where} (recorded there as from {source})"


def identity(config: Config) -> dict[str, Any]:
    """What identifies the run this configuration trains (RUN_IDENTITY), JSON-ready."""
    return {path: config.values()[path.split(".")[0]][path.split(".")[1]] for path in RUN_IDENTITY
            if path in config.settings}


def _check_identity(path: str, value: Any, data: dict[str, Any], run_id: str, source: str) -> None:
    """A value recorded in config.json that is not the one the run started with: its config.json was edited."""
    started = (data.get("identity") or {}).get(path)
    if path not in RUN_IDENTITY or started is None:
        return
    started = coerce(started, load_spec().option(path).type)
    if started != value:
        shown = [list(v) if isinstance(v, tuple) else v for v in (value, started)]
        raise UsageError(f"option {path} from {source}: {shown[0]!r} cannot change when resuming run {run_id}, "
                         f"which was trained with {shown[1]!r} (it identifies the run: the algorithm, the env and "
                         f"its kwargs, the policy, the encoder, the spaces and the normalization do); put back "
                         f"{shown[1]!r}, or train a new run without --resume")


def resume_config(config: Config) -> Config:
    """The configuration of the run train.resume names, from its config.json, with what may change taken
    from `config`; an option set now to another value that may not change is refused (exit 2), and so is
    one of the run's identity edited in its config.json."""
    run = store.find_run(config)
    data = store.read_run_config(run.directory)
    recorded: dict[str, dict[str, Any]] = flatten(data["options"])
    started_in = Path(data.get("cwd", "."))
    spec = load_spec()
    settings: dict[str, Setting] = {}
    for path, now in config.settings.items():
        entry = recorded.get(path)
        if path == "train.resume":  # resolved once: the directory, whatever named it
            settings[path] = Setting(str(run.directory), now.source)
            continue
        # An option newer than the run keeps its value now; so does a credential, never written down.
        if entry is None or redact.masked(entry["value"]):
            settings[path] = now
            continue
        value = coerce(entry["value"], spec.option(path).type)
        source = recorded_source(run.id, str(entry.get("source")))
        _check_identity(path, value, data, run.id, source)
        same = value == now.value
        if path in RUN_PATHS and not is_url(value):  # a PostgreSQL URL is the same from any folder
            value = str(started_in / value) if not Path(value).is_absolute() else value
            same = Path(value).resolve() == Path(now.value).resolve() and not is_url(now.value)
        if same and (now.source == DEFAULT or now.source.startswith("preset")):
            settings[path] = now  # the default (or the preset) gives it: that is where it comes from
        elif config.given(path) is None or same:
            settings[path] = Setting(value, source)
        elif path == "train.totalTimesteps" and now.value < value:
            raise config.refuse(path, f"may only grow when resuming: run {run.id} was set to {value:,} steps")
        elif _may_change(path):
            settings[path] = now
        else:
            may = ", ".join((*RESUME_MAY_CHANGE[1:], *(f"{f}.*" for f in RESUME_MAY_CHANGE_FEATURES)))
            shown = list(value) if isinstance(value, tuple) else value
            raise config.refuse(path, f"cannot change when resuming run {run.id}, which was trained with "
                                      f"{shown!r}; a resumed run may change only {may}")
    resumed = Config(settings)
    newest = store.newest_model(run)
    if newest is not None:  # before any check of the options: an algorithm's own refusals would speak first
        _check_saved_algorithm(resumed, run, newest[0])
    return resumed


@dataclass(frozen=True)
class Resume:
    """Where a resumed run starts: its directory, the model it continues, and what it recorded so far."""

    run: store.Run
    model_path: Path
    timesteps: int
    previous: dict[str, Any] | None  # the run's result.json, when a segment of it ended with one


def _resume_point(config: Config) -> Resume:
    run = store.find_run(config)
    newest = store.newest_model(run)
    if newest is None:
        raise config.refuse("train.resume", f"finds no saved model in run {run.id} to continue from "
                                            "(no model.zip, no checkpoint)")
    path, timesteps = newest
    if timesteps >= config.train.totalTimesteps:
        raise config.refuse("train.totalTimesteps", f"is reached: run {run.id} has trained {timesteps:,} steps; "
                                                    "ask for more to extend it (--total-timesteps)")
    result = run.directory / store.RESULT_FILE
    previous = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else None
    return Resume(run, path, timesteps, previous)


def _check_saved_algorithm(config: Config, run: store.Run, model_path: Path) -> None:
    """The model a run continues was trained by its algorithm (what its description says, whatever the
    run's config.json says now)."""
    from .artifact import ArtifactError, read_description

    try:
        saved = read_description(model_path.read_bytes())["algorithm"]
    except (ArtifactError, OSError, KeyError):
        return  # loading says what is wrong with the file
    if saved != config.agent.algorithm:
        raise config.refuse("agent.algorithm", f"cannot change when resuming run {run.id}, whose model "
                                               f"{model_path.name} is a {saved} model; train a new run without "
                                               "--resume")


def _take_hyperparameters(model: BaseAlgorithm, config: Config) -> dict[str, dict[str, Any]]:
    """Set the hyperparameters of this configuration on a loaded model (SB3's load keeps the saved ones):
    a resumed run learns with what it records. Returns what changed, {option: {"from", "to"}}."""
    kwargs = config.agent.kwargs  # agent.kwargs wins over the options, as when the model was built
    wanted: dict[str, tuple[str, Any]] = {
        "gamma": ("train.gamma", float(kwargs.get("gamma", config.train.gamma))),
        "learning_rate": ("train.learningRate", kwargs.get("learning_rate", config.train.learningRate)),
    }
    if hasattr(model, "batch_size") and config.agent.algorithm != "a2c":
        wanted["batch_size"] = ("train.batchSize", int(kwargs.get("batch_size", config.train.batchSize)))
    changed: dict[str, dict[str, Any]] = {}
    for attribute, (path, value) in wanted.items():
        before = getattr(model, attribute)
        if attribute == "learning_rate":
            if _rate_text(before) == _rate_text(value):
                continue
            model.learning_rate = agent.schedule(value)
            model._setup_lr_schedule()
            before, value = _rate_text(before), _rate_text(value)
        elif before == value:
            continue
        else:
            setattr(model, attribute, value)
            if attribute == "gamma" and getattr(model, "rollout_buffer", None) is not None:
                model.rollout_buffer.gamma = value  # type: ignore[attr-defined]  # the returns it computes
        changed[path] = {"from": before, "to": value}
    return changed


def _rate_text(rate: Any) -> str:
    """A learning rate as options write it: 0.0003, or lin_0.001 for a linear decay."""
    start = getattr(rate, "start", None)
    if start is not None:
        return f"lin_{float(start):g}"
    text = str(rate)
    return f"lin_{float(text.removeprefix('lin_')):g}" if text.startswith("lin_") else f"{float(text):g}"


# -- plan ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """A configuration checked against its environment, with everything decided before training."""

    config: Config
    env: EnvInfo
    policy_kwargs: dict[str, Any]
    seed: int
    device: str
    threshold: float | None  # the reward a model must reach (registry.minReward, else the env's)
    resume: Resume | None = None
    trial: Trial | None = None  # set when the run is a sweep's trial


@dataclass(frozen=True)
class Trial:
    """A sweep's trial: its study and number, recorded with every model of the run, and where each
    periodic evaluation is reported (the pruner): `report(timesteps, mean_reward)` returns False to end
    the run at once (pruned)."""

    study: str
    number: int
    report: Callable[[int, float], bool]


def reward_threshold(config: Config, info: EnvInfo) -> float | None:
    minimum = config.registry.minReward
    return float(minimum) if minimum is not None else info.reward_threshold


def prepare(config: Config, warn: bool = True) -> Plan:
    from . import feature

    info = env.inspect(config)
    obs.check(config, info.observation_space)
    store.check_backend(config)
    if config.registry.enable:  # an unreachable or foreign registry is refused before anything is written
        config = _registry_rules(config)
        if config.registry.signingKeyFile is not None:  # every model registered is signed with it
            from .artifact import ArtifactError, check_key

            try:
                check_key(config.registry.signingKeyFile, private=True)
            except ArtifactError as error:
                raise config.refuse("registry.signingKeyFile", str(error)) from None
    agent.check(config, info.observation_space, info.action_space)
    policy_kwargs = feature.policy_kwargs(config, info.observation_space)
    threshold = reward_threshold(config, info)
    if config.train.stopOnReward and threshold is None:
        raise config.refuse("train.stopOnReward",
                            f"needs registry.minReward: {config.env.envId} registers no reward threshold")
    if warn:  # a check of a configuration that is not what will train (rl-sweep's) stays quiet
        _warn_before_training(config, threshold)
    if warn and info.max_episode_steps is None:
        log.info("%s sets no episode step limit: an evaluation episode is cut at %d steps (env.maxEpisodeSteps "
                 "sets a limit)", config.env.envId, env.EPISODE_GUARD)
    resume = _resume_point(config) if config.train.resume is not None else None
    seed = config.env.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
        config = config.replace("env.seed", seed, "chosen at random")
    return Plan(config, info, policy_kwargs, seed, agent.device(config, "train.device"), threshold, resume)


def _registry_rules(config: Config) -> Config:
    """The registry's validation rules for the env, laid over the options: they judge this run's models,
    and end the run with train.stopOnReward. A registry without rules for the env records these options'."""
    import socket

    env_id = config.env.envId
    with registry.open_registry(config) as records:
        rules = records.rules(env_id, registry.rules_for(config, env_id),
                              proposer=f"rl-train on {socket.gethostname()}")
    for path, name in registry.RULE_OPTIONS.items():
        if getattr(rules, name) != config[path]:
            config = config.replace(path, getattr(rules, name), f"the registry's rules for {env_id}")
    return config


def _warn_before_training(config: Config, threshold: float | None) -> None:
    """What the user would otherwise find out after training: a model that cannot validate, more steps
    than asked for."""
    import math

    steps, every = config.train.totalTimesteps, config.train.evalFreq
    if config.registry.enable and threshold is None:
        log.warning("%s registers no reward threshold and registry.minReward is unset: no model of this run can "
                    "be validated; set one with --min-reward (RL_REGISTRY_MIN_REWARD)", config.env.envId)
    window = config.registry.convergenceWindow
    evaluations = steps // every if every > 0 else 0
    if config.registry.enable and window is not None and evaluations < window:
        log.warning("registry.convergenceWindow %d needs %d periodic evaluations and this run makes %d (every "
                    "%s steps of %s): its models cannot be validated; train longer, evaluate more often "
                    "(--eval-freq), or set --convergence-window null", window, window, evaluations,
                    f"{every:,}" if every else "0 = never", f"{steps:,}")
    if config.agent.algorithm in ("ppo", "a2c") and config.train.resume is None:
        import inspect

        n_steps = config.agent.kwargs.get(
            "n_steps", inspect.signature(agent.algorithm_class(config.agent.algorithm)).parameters["n_steps"].default)
        rollout = int(n_steps) * config.env.nEnvs
        trained = math.ceil(steps / rollout) * rollout
        if trained > steps * 1.01:
            log.warning("this run trains %s steps, not the %s asked for: %s learns from whole rollouts of n_steps "
                        "%d x %d envs = %s steps; ask for a multiple of it, or set a smaller n_steps in "
                        "--agent-kwargs", f"{trained:,}", f"{steps:,}", config.agent.algorithm, n_steps,
                        config.env.nEnvs, f"{rollout:,}")


@dataclass
class TrainResult:
    run_id: str
    run_dir: str
    model_path: str
    sha256: str
    algorithm: str
    env_id: str
    seed: int
    timesteps: int
    evaluation: dict[str, Any] | None  # None when the run was stopped before its final evaluation
    started_at: float
    wall_time: float  # from the start of train() to the final model evaluated, summed over resumed segments
    train_time: float  # inside learn(), summed likewise
    fps: float
    threshold: float | None
    stopped_early: bool
    status: str = "finished"  # finished | interrupted (stopped by a signal) | pruned (a sweep's pruner ended it)
    signal: str | None = None  # the signal that stopped the run (SIGTERM, SIGINT)
    total_timesteps: int = 0  # what the run was asked for (train.totalTimesteps)
    resumed_from: int | None = None  # the step count this segment continued from
    segments: list[dict[str, Any]] = field(default_factory=list)  # each process that trained the run
    threshold_reached_at: float | None = None  # wall-clock time a model reaching the threshold was saved
    threshold_reached_steps: int | None = None
    stop_reason: str | None = None  # why training ended before total_timesteps (train.stopOnReward, a pruner)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    model_id: int | None = None  # the saved model's registry id
    validated: bool | None = None
    failing_rules: list[str] = field(default_factory=list)
    store_backend: str = "local"
    store_failure: str | None = None  # the experiment store's first failure, when it failed
    not_uploaded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from .redact import value

        return dict(value(asdict(self)))  # a store's failure message may quote its URL

    @property
    def exit_code(self) -> int:
        """0, or what a shell reports for a process its signal ended: 128 + the signal's number."""
        import signal

        return 128 + signal.Signals[self.signal].value if self.signal else 0


class _EvalTracker:
    """What the periodic evaluations saw, filled in by the callback below (and, for a resumed run, by
    the segments before)."""

    def __init__(self, previous: dict[str, Any] | None) -> None:
        previous = previous or {}
        self.history: list[dict[str, float]] = list(previous.get("evaluations", []))
        self.reached_at: float | None = previous.get("threshold_reached_at")
        self.reached_steps: int | None = previous.get("threshold_reached_steps")
        self.stopped = False
        self.stop_reason: str | None = None  # why training ended before train.totalTimesteps, when it did
        self.pruned = False
        self.reported_updates = 0  # the policy's update count at the last evaluation shown to a pruner


def _on_new_best(run: store.Run, threshold: float | None, tracker: _EvalTracker, onnx: bool = False) -> Any:
    """Called by EvalCallback on a new best mean reward: save the model atomically, and note when it
    first reaches the threshold."""
    from stable_baselines3.common.callbacks import BaseCallback

    class OnNewBest(BaseCallback):
        def _on_step(self) -> bool:
            best = float(self.parent.best_mean_reward)  # type: ignore[union-attr]
            saved = store.save_model(self.model, run.best_model_path, self.model.get_env(), onnx=onnx)
            log.info("best model saved: mean reward %.2f at %d steps", best, saved.timesteps,
                     extra=event("rl.model.best_saved", model_path=str(saved.path), timesteps=saved.timesteps,
                                 mean_reward=best))
            if threshold is not None and best >= threshold and tracker.reached_at is None:
                tracker.reached_at, tracker.reached_steps = time.time(), saved.timesteps
                log.info("reward threshold %.2f reached at %d steps", threshold, saved.timesteps,
                         extra=event("rl.threshold.reached", threshold=threshold, timesteps=saved.timesteps))
            return True  # stopping is decided after the evaluation is recorded (see _after_eval)

    return OnNewBest()


def _after_eval(tracker: _EvalTracker, recorder: registry.Recorder | None, config: Config,
                threshold: float | None, trial: Trial | None = None) -> Any:
    """Called by EvalCallback after every evaluation: record it (result.json, the registry's history);
    with train.stopOnReward, end training once the model would validate: this evaluation reaches the
    threshold and the last registry.convergenceWindow evaluations have converged."""
    from stable_baselines3.common.callbacks import BaseCallback

    window, tolerance = config.registry.convergenceWindow, config.registry.convergenceTolerance

    class RecordEvaluation(BaseCallback):
        def _on_step(self) -> bool:
            parent: Any = self.parent
            result = eval.EvalResult.of(parent.evaluations_results[-1], parent.evaluations_length[-1],
                                        deterministic=parent.deterministic)
            tracker.history.append({"timesteps": float(self.num_timesteps), "mean_reward": result.mean_reward})
            log.info("evaluation at %d steps: mean reward %.2f", self.num_timesteps, result.mean_reward,
                     extra=event("rl.eval.finished", timesteps=self.num_timesteps, mean_reward=result.mean_reward,
                                 std_reward=result.std_reward))
            if recorder is not None:
                recorder.evaluation(self.num_timesteps, result.as_registry())
            # A pruner judges what the trial has learned: an evaluation before the policy's first update
            # (a rollout longer than the evaluation period), or with no update since the last one, says
            # nothing about its hyperparameters and would drag down the median other trials are held to.
            if trial is not None and self.model._n_updates > tracker.reported_updates:
                tracker.reported_updates = self.model._n_updates
                if not trial.report(self.num_timesteps, result.mean_reward):
                    log.info("trial %d of %s pruned at %d steps (mean reward %.2f)", trial.number, trial.study,
                             self.num_timesteps, result.mean_reward, extra=event(
                                 "rl.trial.pruned", timesteps=self.num_timesteps, mean_reward=result.mean_reward))
                    tracker.stopped = tracker.pruned = True
                    return False
            if config.train.stopOnReward and threshold is not None and result.mean_reward >= threshold and \
                    registry.converged([h["mean_reward"] for h in tracker.history], window, tolerance):
                log.info("stopping on reward: %.2f >= %g, the last evaluations converged", result.mean_reward,
                         threshold, extra=event("rl.run.stop_on_reward", timesteps=self.num_timesteps))
                tracker.stopped = True
                converged = (f"and the last {window} evaluations agree within {tolerance:g} x their mean "
                             f"(registry.convergenceWindow, registry.convergenceTolerance)" if window is not None
                             else "(no convergence window)")
                tracker.stop_reason = (f"train.stopOnReward: the evaluation at {self.num_timesteps:,} steps "
                                       f"scored {result.mean_reward:.2f} >= {threshold:g} {converged}")
                return False
            return True

    return RecordEvaluation()


def _stop_on_signal(stop: stopping.GracefulStop) -> Any:
    """Ends learn() at the step after a first SIGTERM or SIGINT."""
    from stable_baselines3.common.callbacks import BaseCallback

    class StopOnSignal(BaseCallback):
        def _on_step(self) -> bool:
            return not stop.requested

    return StopOnSignal()


def _continue_evaluations(callback: Any, run: store.Run, done: int, n_envs: int) -> None:
    """A resumed run's EvalCallback goes on from the run's evaluations.npz: the file keeps every
    evaluation, a new best must beat the old one, and evaluations stay on the same step grid."""
    import numpy as np

    path = run.directory / "evaluations.npz"
    if path.is_file():
        with np.load(path) as saved:
            callback.evaluations_timesteps = [int(t) for t in saved["timesteps"]]
            callback.evaluations_results = [list(r) for r in saved["results"]]
            callback.evaluations_length = [list(n) for n in saved["ep_lengths"]]
        if callback.evaluations_results:
            callback.best_mean_reward = max(float(np.mean(r)) for r in callback.evaluations_results)
    callback.n_calls = done // n_envs


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _progress_bar(config: Config) -> bool:
    import sys

    wanted = config.train.progressBar
    return sys.stderr.isatty() if wanted is None else bool(wanted)


def _keeps_replay(config: Config, when: str) -> bool:
    """Whether the replay buffer is saved beside a model saved `when` (final, checkpoints)."""
    keep = config.store.replayBuffer
    return config.agent.algorithm in agent.OFF_POLICY and (keep == "checkpoints" or keep == when)


def train(plan: Plan) -> TrainResult:
    import torch
    from stable_baselines3.common.utils import set_random_seed

    from . import logs, telemetry

    started = time.time()
    config, resume = plan.config, plan.resume
    done = resume.timesteps if resume else 0
    # A resumed segment draws new episodes, and the same ones each time it is resumed from this step.
    seed = plan.seed + done
    if plan.device == "cpu":
        torch.set_num_threads(config.train.threads)
    with stopping.GracefulStop("stopping at the next step, saving the model where it is") as stop:
        set_random_seed(seed)
        venv = env.make(config, config.env.nEnvs, seed)
        venv = obs.resume(venv, config, resume.model_path) if resume else obs.wrap(venv, config, training=True)
        eval_venv = obs.wrap(eval.eval_env(config, seed + EVAL_SEED_OFFSET), config, training=False)
        try:
            if resume is None:
                # The model is built before the run directory exists: a refusal leaves nothing behind.
                model = agent.build(config, venv, plan.policy_kwargs, seed=seed, device=plan.device)
                changes: dict[str, dict[str, Any]] = {}
                run = store.new_run(config)
                lock = run.lock()
            else:
                run = resume.run
                lock = run.lock()  # before loading: another process may be training this run
                try:
                    model = agent.resume(resume.model_path, config, venv, seed=seed, device=plan.device)
                except ValueError as error:  # SB3's check of the spaces: the env is not the run's
                    if "spaces do not match" not in str(error):
                        raise
                    raise config.refuse("env.envId", f"cannot change when resuming run {run.id}: its model "
                                                     f"was trained on other spaces ({error})") from None
                changes = _take_hyperparameters(model, config)
                _restore_replay(model, resume.model_path)
            try:
                with logs.to_file(run.directory / "train.log", config.logs.level), \
                        telemetry.session(config, run.id, run.directory) as signals:
                    trial = (plan.trial.study, plan.trial.number) if plan.trial else None
                    recorder = registry.Recorder(config, run.id, trial) if config.registry.enable else None
                    uploader = store.Uploader(run, config)
                    try:
                        return _learn(plan, model, run, venv, eval_venv, started, recorder, signals, uploader, stop,
                                      changes)
                    except stopping.Stopped:
                        uploader.finish(run, succeeded=False, timeout=0.0)  # at once: the queue is listed
                        raise
                    except Exception as error:
                        if not _disk_full(error):
                            raise
                        raise _out_of_space(run, config, resume, error) from None
                    finally:
                        # A no-op after a finished run; else ends the remote run, bounded when stopping.
                        uploader.finish(run, succeeded=False, timeout=store.STOP_UPLOAD_S if stop.requested else 300.0)
                        if recorder is not None:
                            recorder.close()
            finally:
                lock.close()
        finally:
            venv.close()
            eval_venv.close()


def _disk_full(error: BaseException) -> bool:
    import errno
    import sqlite3

    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)


def _out_of_space(run: store.Run, config: Config, resume: Resume | None, error: BaseException) -> Failure:
    """A full disk during training: what was saved stays (the newest model to resume from), result.json
    says so when it still fits (a failed write removed its partial file), and the message says how to go on."""
    newest = store.newest_model(run)
    resume_command = f"rl-train --resume {run.directory.resolve()}"
    kept = (f"the newest saved model is {newest[0]} ({newest[1]:,} steps)" if newest
            else "no model was saved yet")
    previous = (resume.previous or {}) if resume else {}
    carried = ("started_at", "segments", "evaluations", "threshold_reached_at", "threshold_reached_steps")
    record: dict[str, Any] = {key: previous[key] for key in carried if key in previous}
    record.update(run_id=run.id, run_dir=str(run.directory), status="failed", error=f"disk full: {error}",
                  timesteps=newest[1] if newest else 0, total_timesteps=config.train.totalTimesteps,
                  model_path=str(newest[0]) if newest else None, resume=resume_command if newest else None)
    try:
        store.write_json(run.directory / store.RESULT_FILE, redact.value(record))
        written = f"; {store.RESULT_FILE} says so"
    except OSError:
        written = f"; {store.RESULT_FILE} did not fit either"
    go_on = f"free some space, then resume: {resume_command}" if newest else "free some space and train again"
    log.error("disk full in run %s: %s", run.id, error, extra=event("rl.run.disk_full", run_id=run.id))
    why = error.strerror if isinstance(error, OSError) else str(error)
    return Failure(f"the disk is full ({why}, writing in {getattr(error, 'filename', None) or run.directory}): "
                   f"what was saved is kept, {kept}{written}; {go_on}")


def _restore_replay(model: Any, model_path: Path) -> None:
    """An off-policy model's replay buffer, from beside the model it continues."""
    from . import artifact

    path = store.replay_path(model_path)
    if getattr(model, "replay_buffer", None) is None:
        return
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                artifact.restore_replay(model.replay_buffer, handle)
        except artifact.ArtifactError as error:
            raise Failure(f"cannot resume from {path}: {error}; remove the file to go on "
                          "learning from an empty one") from None
        log.info("replay buffer restored: %d transitions", model.replay_buffer.size(),
                 extra=event("rl.replay.restored", transitions=model.replay_buffer.size()))
    elif store.pickled_replay_path(model_path).is_file():  # saved by an older rl-module: a pickle, never loaded
        log.warning("the replay buffer beside %s is a pickle (%s), which rl-module no longer loads: learning "
                    "goes on from an empty one", model_path, store.pickled_replay_path(model_path).name)
    else:
        log.warning("no replay buffer beside %s (store.replayBuffer): learning goes on from an empty one",
                    model_path)


def _learn(plan: Plan, model: BaseAlgorithm, run: store.Run, venv: VecEnv, eval_venv: VecEnv,
           started: float, recorder: registry.Recorder | None, signals: Telemetry,
           uploader: store.Uploader, stop: stopping.GracefulStop, changes: dict[str, dict[str, Any]]) -> TrainResult:
    from . import metrics, plots, traces

    config, resume = plan.config, plan.resume
    done, target = (resume.timesteps if resume else 0), config.train.totalTimesteps
    # The identity is the run's as it started: carried from segment to segment, never taken from an edit.
    started_as = (store.read_run_config(run.directory).get("identity") if resume else None) or identity(config)
    store.write_json(run.directory / store.CONFIG_FILE,
                     {"run": run.id, "cwd": os.getcwd(), "identity": started_as, "options": config.describe()})
    if resume is None:
        log.info("run %s started: %s on %s, %d steps, seed %d, device %s", run.id, config.agent.algorithm,
                 config.env.envId, target, plan.seed, plan.device,
                 extra=event("rl.run.started", run_id=run.id, timesteps=target, seed=plan.seed))
    else:
        log.info("run %s resumed at %d of %d steps from %s", run.id, done, target, resume.model_path,
                 extra=event("rl.run.resumed", run_id=run.id, timesteps=done, model_path=str(resume.model_path)))
    for path, change in changes.items():
        log.info("%s is %s from step %d on (it was %s)", path, change["to"], done, change["from"],
                 extra=event("rl.run.hyperparameter_changed", option=path, timesteps=done, value=str(change["to"])))
    model.set_logger(store.logger(run))
    model.logger.output_formats.append(store.logger_writer(uploader))
    tracker = _EvalTracker(resume.previous if resume else None)
    run_attributes = {"rl.run.id": run.id, "rl.env.id": config.env.envId, "rl.algorithm": config.agent.algorithm,
                      "rl.seed": plan.seed, "rl.timesteps.total": target, "rl.timesteps.resumed_from": done}
    if config.infer.export != "none":
        from . import portable

        portable.warm_up()
    with signals.span(traces.RUN_SPAN, run_attributes) as run_span:
        callbacks: list[Any] = [_stop_on_signal(stop)]
        if signals.meter_provider is not None:
            callbacks.append(metrics.callback(signals.meter_provider, config))
        if signals.tracer_provider is not None:
            callbacks.append(traces.callback(signals.tracer_provider, config, run_span))
        if config.store.checkpointFreq > 0:
            def on_saved(saved: store.SavedModel) -> None:
                uploader.upload_model(saved.path, "checkpoints")
                if recorder is not None:
                    recorder.checkpoint(saved)

            callbacks.append(store.checkpoint_callback(run, config.store.checkpointFreq, on_saved, signals.span,
                                                       after=done, replay=_keeps_replay(config, "checkpoints"),
                                                       onnx=config.infer.export == "all"))
        if config.train.evalFreq > 0:
            evaluations = traces.eval_callback(
                signals, config.traces.traceEvals, stop=lambda: stop.requested,
                eval_env=eval_venv, n_eval_episodes=config.eval.episodes, deterministic=config.eval.deterministic,
                eval_freq=max(config.train.evalFreq // config.env.nEnvs, 1), log_path=str(run.directory),
                callback_on_new_best=_on_new_best(run, plan.threshold, tracker, config.infer.export != "none"),
                callback_after_eval=_after_eval(tracker, recorder, config, plan.threshold, plan.trial), verbose=0,
                warn=False,
            )
            if resume is not None:
                _continue_evaluations(evaluations, run, done, config.env.nEnvs)
            callbacks.append(evaluations)
        learn_started = time.perf_counter()
        model.learn(total_timesteps=target - done, callback=callbacks, progress_bar=_progress_bar(config),
                    reset_num_timesteps=resume is None)
        train_time = time.perf_counter() - learn_started
        interrupted = stop.requested and model.num_timesteps < target and not tracker.stopped
        result: eval.EvalResult | None = None
        validation = None
        if interrupted:
            # Where it is, beside the checkpoints, under a name no checkpoint takes: the newest model to resume.
            saved = store.save_model(model, run.directory / "checkpoints" / f"stopped-{model.num_timesteps}.zip",
                                     venv, _keeps_replay(config, "final"), onnx=config.infer.export != "none")
            log.info("model saved where the run stopped: %s (%d steps)", saved.path, saved.timesteps,
                     extra=event("rl.model.saved", model_path=str(saved.path), timesteps=saved.timesteps))
            if recorder is not None:
                model_id = recorder.stopped(saved)
                validation = registry.Validation(model_id, False, (), recorder.rules)
            uploader.upload_model(saved.path, "checkpoints")
        else:
            if resume is not None and recorder is not None:
                recorder.keep_previous_final(run)  # model.zip is about to be replaced
            saved = store.save_model(model, run.model_path, venv, _keeps_replay(config, "final"),
                                     onnx=config.infer.export != "none")
            log.info("model saved: %s (%d steps)", saved.path, saved.timesteps,
                     extra=event("rl.model.saved", model_path=str(saved.path), timesteps=saved.timesteps))
            if not stop.requested and not tracker.pruned:  # a pruned trial has shown enough
                with signals.span(traces.EVAL_SPAN, {"rl.timesteps": saved.timesteps, "rl.eval.final": True}):
                    result = _evaluate_final(model, config, run.model_path, plan.seed, stop)
            if recorder is not None:
                validation = recorder.final(saved, result.as_registry() if result else None)
                uploader.tag("rl.registry.model_id", str(validation.model_id))
            uploader.upload_model(saved.path)
            if run.best_model_path.exists():
                uploader.upload_model(run.best_model_path)
        status = "interrupted" if interrupted else "pruned" if tracker.pruned else "finished"
        if run_span is not None:
            run_span.set_attribute("rl.run.status", status)
            if stop.signal_name:
                run_span.set_attribute("rl.run.signal", stop.signal_name)
        plots.plot([plots.read_curve(run.directory)], run.directory / plots.CURVE_FILE,
                   f"{config.agent.algorithm} on {config.env.envId}")
    if (plan.threshold is not None and tracker.reached_at is None and result is not None
            and result.mean_reward >= plan.threshold):
        tracker.reached_at, tracker.reached_steps = time.time(), saved.timesteps
    previous = (resume.previous or {}) if resume else {}
    segment = {"started_at": started, "from_timesteps": done, "to_timesteps": saved.timesteps, "status": status,
               "signal": stop.signal_name, "wall_time": time.time() - started, "train_time": train_time,
               "changed": changes}
    segments = [*previous.get("segments", []), segment]
    learned_time = sum(s["train_time"] for s in segments)
    outcome = TrainResult(
        run_id=run.id, run_dir=str(run.directory), model_path=str(saved.path), sha256=saved.sha256,
        algorithm=config.agent.algorithm, env_id=config.env.envId, seed=plan.seed,
        timesteps=saved.timesteps, evaluation=result.as_dict() if result else None,
        started_at=previous.get("started_at", started), wall_time=sum(s["wall_time"] for s in segments),
        train_time=learned_time,
        fps=sum(s["to_timesteps"] - s["from_timesteps"] for s in segments) / learned_time if learned_time > 0 else 0.0,
        threshold=plan.threshold, stopped_early=tracker.stopped, status=status, signal=stop.signal_name,
        total_timesteps=target, resumed_from=done if resume else None, segments=segments,
        threshold_reached_at=tracker.reached_at, threshold_reached_steps=tracker.reached_steps,
        stop_reason=tracker.stop_reason, evaluations=tracker.history,
        model_id=validation.model_id if validation else None, validated=validation.valid if validation else None,
        failing_rules=validation.failing() if validation else [],
    )
    store.write_json(run.directory / store.RESULT_FILE, outcome.as_dict())
    uploader.finish(run, succeeded=not stop.requested, timeout=store.STOP_UPLOAD_S if stop.requested else 300.0)
    outcome.store_backend, outcome.store_failure = config.store.backend, uploader.failure
    outcome.not_uploaded = uploader.not_uploaded
    if recorder is not None and uploader.uploaded:
        recorder.registry.set_remote(uploader.uploaded)
    store.write_json(run.directory / store.RESULT_FILE, outcome.as_dict())
    if interrupted:
        log.info("run %s interrupted by %s at %d of %d steps; resume it with --resume %s", run.id,
                 stop.signal_name, saved.timesteps, target, run.id,
                 extra=event("rl.run.interrupted", run_id=run.id, timesteps=saved.timesteps, signal=stop.signal_name))
    else:
        mean = f"{result.mean_reward:.2f} +/- {result.std_reward:.2f}" if result else "not evaluated (stopping)"
        rewards = {"mean_reward": result.mean_reward, "std_reward": result.std_reward} if result else {}
        log.info("run %s finished: mean reward %s", run.id, mean,
                 extra=event("rl.run.finished", run_id=run.id, timesteps=saved.timesteps, wall_time=outcome.wall_time,
                             **rewards))
    return outcome


def _evaluate_final(model: BaseAlgorithm, config: Config, model_path: Path, seed: int,
                    stop: stopping.GracefulStop) -> eval.EvalResult | None:
    """Evaluate the saved model as rl-eval would: a fresh env with the statistics saved beside it. A
    signal during it cuts it short (None): a stopping process does not wait for episodes to end."""
    venv = obs.restore(eval.eval_env(config, seed + 2 * EVAL_SEED_OFFSET), config,
                       store.read_model(model_path).stats)  # the statistics this very run just saved
    try:
        return eval.evaluate(model, venv, config.eval.episodes, config.eval.deterministic,
                             stop=lambda: stop.requested)
    except eval.EvaluationCut:
        return None
    finally:
        venv.close()
