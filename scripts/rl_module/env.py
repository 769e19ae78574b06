"""Env: the Gymnasium environment, vectorized with stable-baselines3's `make_vec_env`.

`env.envId` is a registered Gymnasium id (also Gymnasium's own `module:EnvId` form, which imports the
module that registers it) or `package.module:Class` naming a `gymnasium.Env` subclass. Problems with
it are found by `inspect()` before any training starts, and reported against the option.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Config, UsageError

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv

# Packages that register environments with Gymnasium when imported; tried when an id is not found.
ENV_PACKAGES = ("gym_anytrading",)


@dataclass(frozen=True)
class EnvInfo:
    """What training needs to know about an environment before building anything."""

    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    reward_threshold: float | None  # Gymnasium's "solved" threshold, when the env registers one
    max_episode_steps: int | None


def _custom_class(env_id: str) -> type | None:
    """The class named by `package.module:Class`, or None when env_id is a Gymnasium id."""
    if ":" not in env_id:
        return None
    module_name, _, attribute = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} ({error})") from None
    candidate = getattr(module, attribute, None)
    if isinstance(candidate, type):
        import gymnasium as gym

        if not issubclass(candidate, gym.Env):
            raise ValueError(f"{env_id} is a class but not a gymnasium.Env")
        return candidate
    if candidate is not None:
        raise ValueError(f"{env_id} is not a class")
    return None  # Gymnasium's `module:EnvId`: importing the module registered the id


def _hint(env_id: str) -> str:
    import gymnasium as gym

    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _env_factory(config: Config) -> tuple[str | Callable[..., gym.Env[Any, Any]], dict[str, Any]]:
    env_id: str = config.env.envId
    kwargs: dict[str, Any] = dict(config.env.kwargs)
    try:
        cls = _custom_class(env_id)
    except ValueError as error:
        raise config.refuse("env.envId", str(error)) from None
    return (cls if cls is not None else env_id), kwargs


def _make_one(config: Config) -> gym.Env[Any, Any]:
    import gymnasium as gym

    factory, kwargs = _env_factory(config)
    if not isinstance(factory, str):
        return factory(**kwargs)
    try:
        return gym.make(factory, **kwargs)
    except gym.error.NameNotFound:
        for package in ENV_PACKAGES:  # envs of a package register on import
            try:
                importlib.import_module(package)
            except ImportError:
                continue
            if factory in gym.registry:
                return gym.make(factory, **kwargs)
        raise


def describe(space: gym.Space[Any]) -> str:
    """A space in a few words (a Box's repr lists every bound)."""
    shape = getattr(space, "shape", None)
    if type(space).__name__ == "Box":
        return f"Box(shape={shape}, {space.dtype})"
    return str(space)


def inspect(config: Config) -> EnvInfo:
    """Make one copy of the environment to read its spaces; refuse a bad env.envId or env.kwargs."""
    import warnings

    import gymnasium as gym

    env_id = config.env.envId
    try:
        with warnings.catch_warnings():  # the refusal below says it better than Gymnasium's warning
            warnings.simplefilter("ignore")
            env = _make_one(config)
    except gym.error.DeprecatedEnv as error:
        raise config.refuse("env.envId", f"is deprecated: {error}") from None
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound) as error:
        reason = f"is not a registered Gymnasium environment ({error}){_hint(env_id)}"
        raise config.refuse("env.envId", reason) from None
    except gym.error.DependencyNotInstalled as error:
        raise UsageError(f"environment {env_id} needs a package that is not installed: {error}") from None
    except TypeError as error:
        raise config.refuse("env.kwargs", f"does not fit {env_id}: {error}") from None
    try:
        spec = env.spec
        return EnvInfo(
            observation_space=env.observation_space,
            action_space=env.action_space,
            reward_threshold=spec.reward_threshold if spec else None,
            max_episode_steps=spec.max_episode_steps if spec else None,
        )
    finally:
        env.close()


def make(config: Config, n_envs: int, seed: int | None, vec_env: str | None = None) -> VecEnv:
    """The vectorized environment: `n_envs` copies, each wrapped in a Monitor (episode statistics)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factory, kwargs = _env_factory(config)
    if isinstance(factory, str) and factory not in _registry():
        _make_one(config).close()  # registers envs of a package (ENV_PACKAGES) in this process
    vec_env_cls = SubprocVecEnv if (vec_env or config.env.vecEnv) == "subproc" and n_envs > 1 else DummyVecEnv
    return make_vec_env(factory, n_envs=n_envs, seed=seed, env_kwargs=kwargs, vec_env_cls=vec_env_cls)


def _registry() -> Any:
    import gymnasium as gym

    return gym.registry
