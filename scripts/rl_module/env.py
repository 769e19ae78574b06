"""Env: the Gymnasium environment, vectorized with stable-baselines3's `make_vec_env`.

`env.envId` is a registered Gymnasium id (also Gymnasium's own `module:EnvId` form, which imports the
module that registers it) or `package.module:Class` naming a `gymnasium.Env` subclass. Problems with
it are found by `inspect()` before any training starts, and reported against the option.
"""

from __future__ import annotations

import difflib
import importlib
import re
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


def user_code_on_path() -> str:
    """Put the current folder on the import path, after the installed packages (a class of the user's, an
    encoder or an env, is imported from it); the folder. Called only when a custom class is configured, and
    last on the path: a file in the folder never shadows what is installed (a `uvloop.py` there was imported
    by the server)."""
    import os
    import sys

    folder = os.getcwd()
    if folder not in sys.path:
        sys.path.append(folder)
    return folder


def import_user_module(name: str) -> Any:
    """Import a module of the user's own code (`package.module` of an env id or an encoder). The current
    folder is on the import path, after the installed packages; a module that still cannot be found is
    reported with where it was looked for."""
    folder = user_code_on_path()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is None or not name.startswith(error.name):
            raise  # the module was found, and one it imports is missing: its own message says which
        raise ModuleNotFoundError(f"no module named {error.name!r} in the current folder {folder} or on the "
                                  "Python path (PYTHONPATH)", name=error.name) from None


def _custom_class(env_id: str) -> type | None:
    """The class named by `package.module:Class`, or None when env_id is a Gymnasium id."""
    if ":" not in env_id:
        return None
    module_name, _, attribute = env_id.partition(":")
    try:
        module = import_user_module(module_name)
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


# A versioned Gymnasium id (`CartPole-v1`, `ALE/Pong-v5`) is already what Gymnasium resolves it to.
_VERSIONED = re.compile(r"^[A-Za-z0-9_./-]+-v[0-9]+$")


def canonical_id(env_id: str) -> str:
    """The id Gymnasium resolves `env_id` to, so that presets, reward thresholds and registry filters all
    see one spec: `LunarLander` is `LunarLander-v3` (the newest version, as gymnasium.make takes it),
    `gym_anytrading:stocks-v0` is `stocks-v0`. A `package.module:Class` and an unknown id stay as they
    are (inspect() reports the latter)."""
    if _VERSIONED.match(env_id):
        return env_id  # the common case, decided without importing gymnasium (rl-registry-list stays fast)
    from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id

    module, colon, name = env_id.rpartition(":")
    if colon:
        try:
            if _custom_class(env_id) is not None:
                return env_id
        except ValueError:
            return env_id
    try:
        namespace, base, version = parse_env_id(name)
    except Exception:  # not an id Gymnasium can parse: inspect() refuses it with the reason
        return env_id
    if version is None:
        version = find_highest_version(namespace, base)
    resolved = get_env_id(namespace, base, version)
    if resolved not in _registry():
        return env_id
    # Ids our processes find by themselves (Gymnasium's, and those of ENV_PACKAGES) lose the module; a
    # third-party package's keep it: another process must import it to find the id.
    known = not colon or module.split(".")[0] in ("gymnasium", *ENV_PACKAGES)
    return resolved if known else f"{module}:{resolved}"


def canonical(config: Config) -> Config:
    """The configuration with env.envId as Gymnasium resolves it (see canonical_id)."""
    env_id: str = config.env.envId
    resolved = canonical_id(env_id)
    if resolved == env_id:
        return config
    return config.replace("env.envId", resolved, f"{config.source('env.envId')} ({env_id!r} is {resolved})")


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


@dataclass(frozen=True)
class Factory:
    """Builds one copy of the environment, as make_vec_env's `env_id` callable. Picklable: SubprocVecEnv
    workers call it in their own process."""

    env_id: str
    cls: type | None  # a `package.module:Class` env, else None for a Gymnasium id
    max_episode_steps: int | None  # env.maxEpisodeSteps: Gymnasium's own TimeLimit, at this length
    guard: bool = False  # evaluation: bound the episodes of an env that has no limit at all
    worker: bool = False  # in a SubprocVecEnv worker: stop signals are for the main process, which stops the run

    def __call__(self, **kwargs: Any) -> gym.Env[Any, Any]:
        import gymnasium as gym

        if self.worker:
            import multiprocessing
            import signal

            # A terminal sends Ctrl-C to the whole process group, and systemd's default KillMode sends SIGTERM
            # to every process of the unit: a worker that died of it would break the main process's graceful
            # stop. (A worker whose main process is gone ends anyway: its pipe closes.)
            if multiprocessing.parent_process() is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.cls is not None:
            env: gym.Env[Any, Any] = self.cls(**kwargs)
            if self.max_episode_steps is not None:
                env = gym.wrappers.TimeLimit(env, self.max_episode_steps)
        elif self.max_episode_steps is not None:
            env = gym.make(self.env_id, max_episode_steps=self.max_episode_steps, **kwargs)
        else:
            env = gym.make(self.env_id, **kwargs)
        if self.guard and self.max_episode_steps is None and (env.spec is None or env.spec.max_episode_steps is None):
            env = _guarded(env, self.env_id)
        return env


# An evaluation waits for its episodes to end: an env with no step limit, whose episodes never end, would
# hold it forever. Its evaluation episodes are truncated here, with a warning naming the option to set.
EPISODE_GUARD = 100_000


def _guarded(env: gym.Env[Any, Any], env_id: str) -> gym.Env[Any, Any]:
    import logging

    import gymnasium as gym

    from .logs import event

    class EpisodeGuard(gym.wrappers.TimeLimit):  # type: ignore[type-arg]
        def step(self, action: Any) -> Any:
            observation, reward, terminated, truncated, info = super().step(action)
            if truncated and not terminated and (self._elapsed_steps or 0) >= EPISODE_GUARD:
                logging.getLogger(__name__).warning(
                    "an evaluation episode of %s ran %d steps without ending and was cut there: the env sets no "
                    "step limit; set one with env.maxEpisodeSteps (--max-episode-steps, RL_ENV_MAX_EPISODE_STEPS)",
                    env_id, self._max_episode_steps, extra=event("rl.eval.episode_cut", steps=self._max_episode_steps))
            return observation, reward, terminated, truncated, info

    return EpisodeGuard(env, EPISODE_GUARD)


def factory(config: Config, *, guard: bool = False, worker: bool = False) -> Factory:
    env_id: str = config.env.envId
    try:
        cls = _custom_class(env_id)
    except ValueError as error:
        raise config.refuse("env.envId", str(error)) from None
    return Factory(env_id, cls, config.env.maxEpisodeSteps, guard, worker)


def _make_one(config: Config) -> gym.Env[Any, Any]:
    import gymnasium as gym

    make = factory(config)
    kwargs = dict(config.env.kwargs)
    try:
        return make(**kwargs)
    except gym.error.NameNotFound:
        if make.cls is not None:
            raise
        for package, (extra, ids) in ENV_PACKAGES.items():  # envs of a package register on import
            try:
                importlib.import_module(package)
            except ImportError:
                if make.env_id in ids:
                    raise gym.error.DependencyNotInstalled(
                        f"{make.env_id} comes with {package}, which is not installed: pip install 'rl-module[{extra}]'"
                    ) from None
                continue
            if make.env_id in gym.registry:
                return make(**kwargs)
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
        limit = config.env.maxEpisodeSteps or (spec.max_episode_steps if spec else None)
        return EnvInfo(
            observation_space=env.observation_space,
            action_space=env.action_space,
            reward_threshold=spec.reward_threshold if spec else None,
            max_episode_steps=limit,
            render_modes=tuple(env.metadata.get("render_modes", ())),
        )
    finally:
        env.close()


def make(config: Config, n_envs: int, seed: int | None, vec_env: str | None = None,
         video: Path | None = None, evaluation: bool = False) -> VecEnv:
    """The vectorized environment: `n_envs` copies, each wrapped in a Monitor (episode statistics);
    with `video`, each episode is also recorded there (gymnasium's RecordVideo, rgb_array frames). For
    `evaluation`, the episodes of an env without any step limit are bounded (EPISODE_GUARD)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    subproc = (vec_env or config.env.vecEnv) == "subproc" and n_envs > 1
    make_one = factory(config, guard=evaluation, worker=subproc)
    kwargs: dict[str, Any] = dict(config.env.kwargs)
    if make_one.cls is None and make_one.env_id not in _registry():
        _make_one(config).close()  # registers envs of a package (ENV_PACKAGES) in this process
    vec_env_cls = SubprocVecEnv if subproc else DummyVecEnv
    wrapper: dict[str, Any] = {}
    # Frames are wanted only for video: envs that cannot render rgb_array frames (gym-anytrading's)
    # refuse a render mode they do not have.
    if make_one.cls is None:
        kwargs.setdefault("render_mode", None)
    if video is not None:
        from gymnasium.wrappers import RecordVideo

        kwargs["render_mode"] = "rgb_array"
        wrapper = {"wrapper_class": RecordVideo,
                   "wrapper_kwargs": {"video_folder": str(video), "name_prefix": "eval",
                                      # the evaluation's episodes, not the one an auto-reset starts after them
                                      "episode_trigger": lambda episode: episode < config.eval.episodes}}
    return make_vec_env(make_one, n_envs=n_envs, seed=seed, env_kwargs=kwargs, vec_env_cls=vec_env_cls, **wrapper)


def _registry() -> Any:
    import gymnasium as gym

    return gym.registry
