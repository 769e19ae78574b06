"""Obs: observation (and reward) preprocessing with stable-baselines3's VecEnv wrappers.

Frame stacking (VecFrameStack) comes first, normalization (VecNormalize) last, as RL Zoo does. The
normalization statistics are part of the model: they are saved beside every model and checkpoint
(`<model>.stats.npz`, plain arrays: see artifact.py) and restored by evaluation and inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import artifact
from .artifact import STATS_SUFFIX, stats_path
from .config import Config

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

__all__ = ["STATS_SUFFIX", "check", "normalizer", "restore", "resume", "stats_bytes", "stats_path", "wrap"]


def check(config: Config, observation_space: gym.Space[Any]) -> None:
    from stable_baselines3.common.preprocessing import is_image_space

    from .env import describe

    if config.obs.stackFrames is not None and not is_image_space(observation_space):
        observations = describe(observation_space)
        raise config.refuse("obs.stackFrames", f"stacks image frames, and these observations are not: {observations}")


def _stack(venv: VecEnv, config: Config) -> VecEnv:
    from stable_baselines3.common.vec_env import VecFrameStack

    if config.obs.stackFrames is None:
        return venv
    return VecFrameStack(venv, n_stack=config.obs.stackFrames)


def wrap(venv: VecEnv, config: Config, *, training: bool) -> VecEnv:
    """Frame stacking and a fresh VecNormalize (training=False: frozen statistics, raw rewards; the
    statistics are then synchronized from the training env, as EvalCallback does)."""
    from stable_baselines3.common.vec_env import VecNormalize

    venv = _stack(venv, config)
    mode = config.obs.normalize
    if mode != "none":
        venv = VecNormalize(
            venv,
            training=training,
            norm_obs=mode in ("obs", "both"),
            norm_reward=training and mode in ("reward", "both"),
            clip_obs=config.obs.clipRange,
            clip_reward=config.obs.clipRange,
            gamma=config.train.gamma,
        )
    return venv


def normalizer(venv: VecEnv) -> VecNormalize | None:
    from stable_baselines3.common.vec_env import VecNormalize, unwrap_vec_wrapper

    found = unwrap_vec_wrapper(venv, VecNormalize)
    return found if isinstance(found, VecNormalize) else None


def stats_bytes(venv: VecEnv) -> bytes | None:
    """The VecNormalize statistics as plain arrays (artifact.stats_bytes), or None without one."""
    return artifact.stats_bytes(venv)


def restore(venv: VecEnv, config: Config, stats: bytes | None) -> VecEnv:
    """Wrap an env for a trained model: frame stacking, and the model's statistics (the bytes saved beside
    it, read and checked with it: see registry.read_verified), frozen, rewards raw."""
    venv = _stack(venv, config)
    if stats is None:
        return venv
    normalized = artifact.restore_stats(stats, venv, training=False)
    normalized.norm_reward = False
    return normalized


def resume(venv: VecEnv, config: Config, model_path: str | Path) -> VecEnv:
    """Wrap an env to continue training a saved model: frame stacking, and the statistics saved beside
    `model_path`, still learning (a resumed run goes on updating them where it stopped)."""
    path = stats_path(model_path)
    if config.obs.normalize == "none" or not path.exists():
        if config.obs.normalize != "none" and artifact.pickled_stats_path(model_path).exists():
            raise artifact.ArtifactError(f"{model_path}: its normalization statistics are a pickle (saved by an older "
                                         "rl-module); convert the model first: rl-registry-convert --model-path "
                                         f"{model_path}")
        return wrap(venv, config, training=True)
    normalized = artifact.restore_stats(path.read_bytes(), _stack(venv, config), training=True)
    normalized.norm_reward = config.obs.normalize in ("reward", "both")
    return normalized
