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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, UsageError

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv

# Packages that register environments with Gymnasium when imported (tried when an id is not found),
# with the extra that installs each and the ids it brings.
ENV_PACKAGES = {"gym_anytrading": ("trading", ("forex-v0", "stocks-v0"))}
# Gymnasium's optional dependencies, by a word of its DependencyNotInstalled message -> our extra.
EXTRAS = {"box2d": "box2d", "mujoco": "mujoco", "pygame": "video", "moviepy": "video"}


@dataclass(frozen=True)
class EnvInfo:
    """What training needs to know about an environment before building anything."""

    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    reward_threshold: float | None  # Gymnasium's "solved" threshold, when the env registers one
    max_episode_steps: int | None
    render_modes: tuple[str, ...] = ()


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


def missing_extra(message: str) -> str:
    """What to install for a DependencyNotInstalled: our extra, when the message names one we know."""
    if " comes with " in message:  # ours, from ENV_PACKAGES
        return message.split(" comes with ", 1)[1]
    for word, extra in EXTRAS.items():
        if word in message.lower():
            return f"the {extra} extra: pip install 'rl-module[{extra}]' ({message.strip().splitlines()[0]})"
    return f"a package that is not installed ({message.strip().splitlines()[0]})"


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
        for package, (extra, ids) in ENV_PACKAGES.items():  # envs of a package register on import
            try:
                importlib.import_module(package)
            except ImportError:
                if factory in ids:
                    raise gym.error.DependencyNotInstalled(
                        f"{factory} comes with {package}, which is not installed: pip install 'rl-module[{extra}]'"
                    ) from None
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
        raise UsageError(f"option env.envId from {config.source('env.envId')}: {env_id!r} needs "
                         f"{missing_extra(str(error))}") from None
    except TypeError as error:
        raise config.refuse("env.kwargs", f"does not fit {env_id}: {error}") from None
    try:
        spec = env.spec
        return EnvInfo(
            observation_space=env.observation_space,
            action_space=env.action_space,
            reward_threshold=spec.reward_threshold if spec else None,
            max_episode_steps=spec.max_episode_steps if spec else None,
            render_modes=tuple(env.metadata.get("render_modes", ())),
        )
    finally:
        env.close()


def make(config: Config, n_envs: int, seed: int | None, vec_env: str | None = None,
         video: Path | None = None) -> VecEnv:
    """The vectorized environment: `n_envs` copies, each wrapped in a Monitor (episode statistics);
    with `video`, each episode is also recorded there (gymnasium's RecordVideo, rgb_array frames)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factory, kwargs = _env_factory(config)
    if isinstance(factory, str) and factory not in _registry():
        _make_one(config).close()  # registers envs of a package (ENV_PACKAGES) in this process
    vec_env_cls = SubprocVecEnv if (vec_env or config.env.vecEnv) == "subproc" and n_envs > 1 else DummyVecEnv
    wrapper: dict[str, Any] = {}
    # make_vec_env asks every env for rgb_array frames unless told otherwise; envs that cannot render
    # them (gym-anytrading's) refuse to start. Frames are wanted only for video.
    if isinstance(factory, str):
        kwargs.setdefault("render_mode", None)
    if video is not None:
        from gymnasium.wrappers import RecordVideo

        kwargs["render_mode"] = "rgb_array"
        wrapper = {"wrapper_class": RecordVideo,
                   "wrapper_kwargs": {"video_folder": str(video), "name_prefix": "eval",
                                      # the evaluation's episodes, not the one an auto-reset starts after them
                                      "episode_trigger": lambda episode: episode < config.eval.episodes}}
    return make_vec_env(factory, n_envs=n_envs, seed=seed, env_kwargs=kwargs, vec_env_cls=vec_env_cls, **wrapper)


def _registry() -> Any:
    import gymnasium as gym

    return gym.registry
