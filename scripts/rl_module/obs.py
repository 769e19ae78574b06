"""Obs: observation (and reward) preprocessing with stable-baselines3's VecEnv wrappers.

Frame stacking (VecFrameStack) comes first, normalization (VecNormalize) last, as RL Zoo does. The
normalization statistics are part of the model: they are saved beside every model and checkpoint
(`<model>.vecnormalize.pkl`) and restored by evaluation and inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

STATS_SUFFIX = ".vecnormalize.pkl"


def stats_path(model_path: str | Path) -> Path:
    """Where the normalization statistics of a model live: model.zip -> model.vecnormalize.pkl."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".zip") + STATS_SUFFIX)


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
    """The pickled VecNormalize statistics (what VecNormalize.save writes), or None without one."""
    import pickle

    found = normalizer(venv)
    return None if found is None else pickle.dumps(found)


def restore(venv: VecEnv, config: Config, stats: bytes | None) -> VecEnv:
    """Wrap an env for a trained model: frame stacking, and the model's statistics (the bytes saved beside
    it, read and checked with it: see registry.read_verified), frozen."""
    import pickle

    venv = _stack(venv, config)
    if stats is None:
        return venv
    normalized = pickle.loads(stats)  # what VecNormalize.load does, from bytes already checked
    normalized.set_venv(venv)
    normalized.training = False
    normalized.norm_reward = False
    return normalized


def resume(venv: VecEnv, config: Config, model_path: str | Path) -> VecEnv:
    """Wrap an env to continue training a saved model: frame stacking, and the statistics saved beside
    `model_path`, still learning (a resumed run goes on updating them where it stopped)."""
    from stable_baselines3.common.vec_env import VecNormalize

    path = stats_path(model_path)
    if config.obs.normalize == "none" or not path.exists():
        return wrap(venv, config, training=True)
    normalized = VecNormalize.load(str(path), _stack(venv, config))
    normalized.training = True
    normalized.norm_reward = config.obs.normalize in ("reward", "both")
    return normalized
