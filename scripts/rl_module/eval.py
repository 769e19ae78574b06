"""Eval: stable-baselines3's evaluate_policy over Eval's episodes, on a copy of the training env (with
its frame stacking and frozen normalization statistics)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import agent, env, obs
from .config import Config, UsageError
from .registry import Evaluation
from .store import ModelBytes

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

# Episodes run side by side (one batched predict per step); more copies cost memory, not speed.
MAX_EVAL_ENVS = 16


@dataclass(frozen=True)
class EvalResult:
    mean_reward: float
    std_reward: float
    mean_episode_length: float
    episodes: int
    deterministic: bool

    @classmethod
    def of(cls, rewards: Sequence[float], lengths: Sequence[float], deterministic: bool) -> EvalResult:
        rewards, lengths = [float(r) for r in rewards], [float(n) for n in lengths]
        return cls(mean_reward=statistics.fmean(rewards), std_reward=statistics.pstdev(rewards),
                   mean_episode_length=statistics.fmean(lengths), episodes=len(rewards),
                   deterministic=deterministic)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_registry(self) -> Evaluation:
        return Evaluation(self.mean_reward, self.std_reward, self.mean_episode_length, self.episodes)


def eval_env(config: Config, seed: int | None, video: Path | None = None) -> VecEnv:
    """Copies of the environment for evaluation, stepped in this process (one, when recording video); an
    episode of an env without a step limit is cut at env.EPISODE_GUARD steps, so that no evaluation hangs."""
    copies = 1 if video is not None else min(config.eval.episodes, MAX_EVAL_ENVS)
    return env.make(config, n_envs=copies, seed=seed, vec_env="dummy", video=video, evaluation=True)


class EvaluationCut(Exception):
    """An evaluation given up half-way because the process is stopping (a signal)."""


def stopping_callback(stop: Callable[[], bool] | None) -> Callable[[dict[str, Any], dict[str, Any]], None] | None:
    """For evaluate_policy's per-step callback: give up (EvaluationCut) as soon as `stop()` says so."""
    if stop is None:
        return None

    def check(locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        if stop():
            raise EvaluationCut

    return check


def evaluate(model: BaseAlgorithm, venv: VecEnv, episodes: int, deterministic: bool,
             stop: Callable[[], bool] | None = None) -> EvalResult:
    """evaluate_policy over `episodes` episodes; EvaluationCut as soon as `stop()` is true."""
    from stable_baselines3.common.evaluation import evaluate_policy

    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=episodes, deterministic=deterministic,
                                       return_episode_rewards=True, warn=False, callback=stopping_callback(stop))
    return EvalResult.of(rewards, lengths, deterministic)  # type: ignore[arg-type]


def evaluate_file(config: Config, files: ModelBytes, video: Path | None = None) -> EvalResult:
    """Load a saved model (with its normalization statistics) from the bytes read, and checked, once, and
    evaluate it; with `video`, every episode is recorded there as MP4."""
    model_path = files.path
    if video is not None:
        info = env.inspect(config)
        if "rgb_array" not in info.render_modes:
            raise UsageError(f"--video: {config.env.envId} does not render rgb_array frames "
                             f"(its render modes: {', '.join(info.render_modes) or 'none'})")
        video.mkdir(parents=True, exist_ok=True)
    venv = obs.restore(eval_env(config, config.env.seed, video), config, files.stats)
    try:
        model = agent.load(files.model, config, device="cpu")
        _check_fits(model, venv, config, model_path)
        return evaluate(model, venv, config.eval.episodes, config.eval.deterministic)
    finally:
        venv.close()


def _check_fits(model: BaseAlgorithm, venv: VecEnv, config: Config, model_path: str | Path) -> None:
    """Refuse an env whose spaces are not the model's (another env named by hand), on one line."""
    from stable_baselines3.common.utils import check_for_correct_spaces

    try:
        check_for_correct_spaces(model._wrap_env(venv, verbose=0), model.observation_space, model.action_space)
    except ValueError:
        theirs = f"observations {env.describe(venv.observation_space)}, actions {env.describe(venv.action_space)}"
        ours = f"observations {env.describe(model.observation_space)}, actions {env.describe(model.action_space)}"
        raise config.refuse("env.envId", f"does not fit the model {model_path}: it acts on {ours}, and this env "
                                         f"gives {theirs}") from None
