"""Train: from a resolved configuration to a trained, evaluated model in its run directory.

    prepare()  checks every option against the environment before any work (exit 2 on a bad one)
    train()    builds env and algorithm, learns with checkpoint and evaluation callbacks, saves the
               final model atomically, evaluates it, and returns what the run produced
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import agent, env, eval, obs, registry, store
from .config import Config
from .env import EnvInfo
from .logs import event
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


@dataclass(frozen=True)
class Plan:
    """A configuration checked against its environment, with everything decided before training."""

    config: Config
    env: EnvInfo
    policy_kwargs: dict[str, Any]
    seed: int
    device: str
    threshold: float | None  # the reward a model must reach (registry.minReward, else the env's)


def reward_threshold(config: Config, info: EnvInfo) -> float | None:
    minimum = config.registry.minReward
    return float(minimum) if minimum is not None else info.reward_threshold


def prepare(config: Config) -> Plan:
    from . import feature

    info = env.inspect(config)
    obs.check(config, info.observation_space)
    store.check_backend(config)
    agent.check(config, info.observation_space, info.action_space)
    policy_kwargs = feature.policy_kwargs(config, info.observation_space)
    threshold = reward_threshold(config, info)
    if config.train.stopOnReward and threshold is None:
        raise config.refuse("train.stopOnReward",
                            f"needs registry.minReward: {config.env.envId} registers no reward threshold")
    seed = config.env.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
        config = config.replace("env.seed", seed, "chosen at random")
    return Plan(config, info, policy_kwargs, seed, agent.device(config, "train.device"), threshold)


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
    evaluation: dict[str, Any]
    started_at: float
    wall_time: float  # from the start of train() to the final model evaluated
    train_time: float  # inside learn()
    fps: float
    threshold: float | None
    stopped_early: bool
    threshold_reached_at: float | None = None  # wall-clock time a model reaching the threshold was saved
    threshold_reached_steps: int | None = None
    evaluations: list[dict[str, float]] = field(default_factory=list)
    model_id: int | None = None  # the final model's registry id
    validated: bool | None = None
    failing_rules: list[str] = field(default_factory=list)
    store_backend: str = "local"
    store_failure: str | None = None  # the experiment store's first failure, when it failed
    not_uploaded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _EvalTracker:
    """What the periodic evaluations saw, filled in by the callback below."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.reached_at: float | None = None
        self.reached_steps: int | None = None
        self.stopped = False


def _on_new_best(run: store.Run, threshold: float | None, stop: bool, tracker: _EvalTracker) -> Any:
    """Called by EvalCallback on a new best mean reward: save the model atomically; stop once the
    threshold is reached when asked to."""
    from stable_baselines3.common.callbacks import BaseCallback

    class OnNewBest(BaseCallback):
        def _on_step(self) -> bool:
            best = float(self.parent.best_mean_reward)  # type: ignore[union-attr]
            saved = store.save_model(self.model, run.best_model_path, self.model.get_env())
            log.info("best model saved: mean reward %.2f at %d steps", best, saved.timesteps,
                     extra=event("rl.model.best_saved", model_path=str(saved.path), timesteps=saved.timesteps,
                                 mean_reward=best))
            if threshold is not None and best >= threshold and tracker.reached_at is None:
                tracker.reached_at, tracker.reached_steps = time.time(), saved.timesteps
                log.info("reward threshold %.2f reached at %d steps", threshold, saved.timesteps,
                         extra=event("rl.threshold.reached", threshold=threshold, timesteps=saved.timesteps))
                if stop:
                    tracker.stopped = True
                    return False
            return True

    return OnNewBest()


def _after_eval(tracker: _EvalTracker, recorder: registry.Recorder | None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

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
            return True

    return RecordEvaluation()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _progress_bar(config: Config) -> bool:
    import sys

    wanted = config.train.progressBar
    return sys.stderr.isatty() if wanted is None else bool(wanted)


def train(plan: Plan) -> TrainResult:
    import torch
    from stable_baselines3.common.utils import set_random_seed

    from . import logs, telemetry

    started = time.time()
    config = plan.config
    if plan.device == "cpu":
        torch.set_num_threads(config.train.threads)
    set_random_seed(plan.seed)
    venv = obs.wrap(env.make(config, config.env.nEnvs, plan.seed), config, training=True)
    eval_venv = obs.wrap(eval.eval_env(config, plan.seed + EVAL_SEED_OFFSET), config, training=False)
    try:
        # The model is built before the run directory exists: a refusal leaves nothing behind.
        model = agent.build(config, venv, plan.policy_kwargs, seed=plan.seed, device=plan.device)
        run = store.new_run(config)
        with logs.to_file(run.directory / "train.log", config.logs.level), \
                telemetry.session(config, run.id, run.directory) as signals:
            recorder = registry.Recorder(config, run.id) if config.registry.enable else None
            uploader = store.Uploader(run, config)
            try:
                return _learn(plan, model, run, venv, eval_venv, started, recorder, signals, uploader)
            finally:
                uploader.finish(run, succeeded=False)  # a no-op after a finished run; else ends the remote run
                if recorder is not None:
                    recorder.close()
    finally:
        venv.close()
        eval_venv.close()


def _learn(plan: Plan, model: BaseAlgorithm, run: store.Run, venv: VecEnv, eval_venv: VecEnv,
           started: float, recorder: registry.Recorder | None, signals: Telemetry,
           uploader: store.Uploader) -> TrainResult:
    from stable_baselines3.common.logger import configure

    from . import metrics, plots, traces

    config = plan.config
    store.write_json(run.directory / store.CONFIG_FILE, {"run": run.id, "options": config.describe()})
    log.info("run %s started: %s on %s, %d steps, seed %d, device %s", run.id, config.agent.algorithm,
             config.env.envId, config.train.totalTimesteps, plan.seed, plan.device,
             extra=event("rl.run.started", run_id=run.id, timesteps=config.train.totalTimesteps, seed=plan.seed))
    model.set_logger(configure(str(run.directory), ["csv", "json"] + (["tensorboard"] if _has("tensorboard") else [])))
    model.logger.output_formats.append(store.logger_writer(uploader))
    tracker = _EvalTracker()
    run_attributes = {"rl.run.id": run.id, "rl.env.id": config.env.envId, "rl.algorithm": config.agent.algorithm,
                      "rl.seed": plan.seed, "rl.timesteps.total": config.train.totalTimesteps}
    with signals.span(traces.RUN_SPAN, run_attributes) as run_span:
        callbacks: list[Any] = []
        if signals.meter_provider is not None:
            callbacks.append(metrics.callback(signals.meter_provider, config))
        if signals.tracer_provider is not None:
            callbacks.append(traces.callback(signals.tracer_provider, config, run_span))
        if config.store.checkpointFreq > 0:
            def on_saved(saved: store.SavedModel) -> None:
                uploader.upload_model(saved.path, "checkpoints")
                if recorder is not None:
                    recorder.checkpoint(saved.path, saved.sha256, saved.timesteps)

            callbacks.append(store.checkpoint_callback(run, config.store.checkpointFreq, on_saved, signals.span))
        if config.train.evalFreq > 0:
            callbacks.append(traces.eval_callback(
                signals, config.traces.traceEvals,
                eval_env=eval_venv, n_eval_episodes=config.eval.episodes, deterministic=config.eval.deterministic,
                eval_freq=max(config.train.evalFreq // config.env.nEnvs, 1), log_path=str(run.directory),
                callback_on_new_best=_on_new_best(run, plan.threshold, config.train.stopOnReward, tracker),
                callback_after_eval=_after_eval(tracker, recorder), verbose=0, warn=False,
            ))
        learn_started = time.perf_counter()
        model.learn(total_timesteps=config.train.totalTimesteps, callback=callbacks,
                    progress_bar=_progress_bar(config))
        train_time = time.perf_counter() - learn_started
        saved = store.save_model(model, run.model_path, venv)
        log.info("model saved: %s (%d steps)", saved.path, saved.timesteps,
                 extra=event("rl.model.saved", model_path=str(saved.path), timesteps=saved.timesteps))
        with signals.span(traces.EVAL_SPAN, {"rl.timesteps": saved.timesteps, "rl.eval.final": True}):
            result = _evaluate_final(model, config, run.model_path, plan.seed)
        validation = None
        if recorder is not None:
            validation = recorder.final(saved.path, saved.sha256, saved.timesteps, result.as_registry())
            uploader.tag("rl.registry.model_id", str(validation.model_id))
        uploader.upload_model(saved.path)
        if run.best_model_path.exists():
            uploader.upload_model(run.best_model_path)
        plots.plot([plots.read_curve(run.directory)], run.directory / plots.CURVE_FILE,
                   f"{config.agent.algorithm} on {config.env.envId}")
    if plan.threshold is not None and tracker.reached_at is None and result.mean_reward >= plan.threshold:
        tracker.reached_at, tracker.reached_steps = time.time(), saved.timesteps
    outcome = TrainResult(
        run_id=run.id, run_dir=str(run.directory), model_path=str(saved.path), sha256=saved.sha256,
        algorithm=config.agent.algorithm, env_id=config.env.envId, seed=plan.seed,
        timesteps=saved.timesteps, evaluation=result.as_dict(), started_at=started,
        wall_time=time.time() - started, train_time=train_time,
        fps=saved.timesteps / train_time if train_time > 0 else 0.0, threshold=plan.threshold,
        stopped_early=tracker.stopped, threshold_reached_at=tracker.reached_at,
        threshold_reached_steps=tracker.reached_steps, evaluations=tracker.history,
        model_id=validation.model_id if validation else None, validated=validation.valid if validation else None,
        failing_rules=validation.failing() if validation else [],
    )
    store.write_json(run.directory / store.RESULT_FILE, outcome.as_dict())
    uploader.finish(run, succeeded=True)
    outcome.store_backend, outcome.store_failure = config.store.backend, uploader.failure
    outcome.not_uploaded = uploader.not_uploaded
    if recorder is not None and uploader.uploaded:
        recorder.registry.set_remote(uploader.uploaded)
    store.write_json(run.directory / store.RESULT_FILE, outcome.as_dict())
    log.info("run %s finished: mean reward %.2f +/- %.2f", run.id, result.mean_reward, result.std_reward,
             extra=event("rl.run.finished", run_id=run.id, mean_reward=result.mean_reward,
                         std_reward=result.std_reward, timesteps=saved.timesteps, wall_time=outcome.wall_time))
    return outcome


def _evaluate_final(model: BaseAlgorithm, config: Config, model_path: Path, seed: int) -> eval.EvalResult:
    """Evaluate the saved model as rl-eval would: a fresh env with the statistics saved beside it."""
    venv = obs.restore(eval.eval_env(config, seed + 2 * EVAL_SEED_OFFSET), config, model_path)
    try:
        return eval.evaluate(model, venv, config.eval.episodes, config.eval.deterministic)
    finally:
        venv.close()

