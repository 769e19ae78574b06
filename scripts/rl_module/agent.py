"""Agent: the stable-baselines3 algorithm and its policy, checked against the environment's spaces
before anything is built."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, UsageError
from .env import describe

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

CLASSES = {"ppo": "PPO", "a2c": "A2C", "dqn": "DQN", "sac": "SAC", "td3": "TD3"}
# Action spaces each algorithm can act in (stable-baselines3's own support table).
ACTION_SPACES = {
    "ppo": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "a2c": ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
    "dqn": ("Discrete",),
    "sac": ("Box",),
    "td3": ("Box",),
}
SUGGESTION = {"Box": "sac, td3, ppo or a2c", "Discrete": "ppo, a2c or dqn"}
OFF_POLICY = ("dqn", "sac", "td3")


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    module = importlib.import_module("stable_baselines3")
    cls: type[BaseAlgorithm] = getattr(module, CLASSES[name])
    return cls


# The train options rl-train passes to every algorithm (A2C takes no batch size), by SB3's keyword for each.
PASSED_TRAIN_OPTIONS = {"train.batchSize": "batch_size", "train.learningRate": "learning_rate", "train.gamma": "gamma"}


def own_defaults(algorithm: str) -> dict[str, Any]:
    """stable-baselines3's own defaults for PASSED_TRAIN_OPTIONS where rl-train's are not the same (SAC's and
    TD3's batches of 256, A2C's learning rate of 7e-4, TD3's of 1e-3): what a run of RL Zoo's takes where its
    hyperparams file is silent, so a preset taken from the zoo must state them."""
    import inspect

    from .spec import load

    known, signature = load(), inspect.signature(algorithm_class(algorithm).__init__).parameters
    theirs = {option: signature[keyword].default for option, keyword in PASSED_TRAIN_OPTIONS.items()
              if keyword in signature}
    return {option: value for option, value in theirs.items()
            if float(value) != float(known.option(option).default)}


def check(config: Config, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> None:
    """Refuse an algorithm or policy that cannot work with these spaces, before training starts."""
    import gymnasium as gym
    from stable_baselines3.common.preprocessing import is_image_space

    algorithm, space = config.agent.algorithm, type(action_space).__name__
    actions, observations = describe(action_space), describe(observation_space)
    if space not in ACTION_SPACES[algorithm]:
        fits = SUGGESTION.get(space, ", ".join(a for a, spaces in ACTION_SPACES.items() if space in spaces))
        raise config.refuse("agent.algorithm", f"cannot act in a {space} action space ({actions}); use {fits}")
    policy, dict_obs = config.agent.policyType, isinstance(observation_space, gym.spaces.Dict)
    if dict_obs != (policy == "MultiInputPolicy"):
        need = "MultiInputPolicy" if dict_obs else "MlpPolicy or CnnPolicy"
        raise config.refuse("agent.policyType", f"does not fit observations {observations}; use {need}")
    if policy == "CnnPolicy" and config.feature.encoder != "custom" and not is_image_space(observation_space):
        raise config.refuse("agent.policyType", f"needs image observations, and these are {observations}; "
                                                "use MlpPolicy")
    if algorithm == "a2c" and config.source("train.batchSize") != "default":
        raise config.refuse("train.batchSize", "does not apply to a2c (it learns from each whole rollout)")
    _check_kwargs(config)


# Keywords taken by build() itself or by RL Zoo's noise spelling, not by the algorithm's constructor.
_OWN_KWARGS = {"noise_type", "noise_std"}


def accepted_kwargs(algorithm: str) -> set[str]:
    """The keys agent.kwargs (and a sweep's agent.kwargs.<key>) may have for this algorithm: its
    constructor's arguments and the ones build() takes itself."""
    import inspect

    return set(inspect.signature(algorithm_class(algorithm).__init__).parameters) - {"self", "policy", "env"} \
        | _OWN_KWARGS


def _check_kwargs(config: Config) -> None:
    accepted = accepted_kwargs(config.agent.algorithm)
    unknown = sorted(set(config.agent.kwargs) - accepted)
    if unknown:
        import difflib

        hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, accepted, n=1)) else k
                 for k in unknown]
        name = algorithm_class(config.agent.algorithm).__name__
        raise config.refuse("agent.kwargs", f"names keywords {name} does not take: {', '.join(hints)}")


def device(config: Config, path: str) -> str:
    """The torch device an option (train.device, infer.device) names; `auto` takes a GPU only for image
    policies: small MLPs run faster on the CPU (the transfer costs more than the maths). An absent
    device is refused."""
    import torch

    wanted = config[path]
    if wanted == "cuda" and not torch.cuda.is_available():
        raise config.refuse(path, "is not available on this machine (torch sees no CUDA device)")
    if wanted == "mps" and not torch.backends.mps.is_available():
        raise config.refuse(path, "is not available on this machine (torch sees no MPS device)")
    if wanted != "auto":
        return str(wanted)
    images = config.agent.policyType == "CnnPolicy" or config.feature.encoder == "cnn"
    if images and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def schedule(text: str | float) -> Any:
    """A learning rate (or clip range) as written in options and presets: 3e-4, "3e-4", or "lin_1e-3"
    for a linear decay to zero over training, as RL Zoo writes them."""
    from stable_baselines3.common.utils import LinearSchedule

    if isinstance(text, str) and text.startswith("lin_"):
        return LinearSchedule(float(text.removeprefix("lin_")), 0.0, 1.0)
    return float(text)


def _algorithm_kwargs(config: Config, action_space: gym.Space[Any]) -> dict[str, Any]:
    import numpy as np

    kwargs = dict(config.agent.kwargs)
    for key in ("clip_range", "clip_range_vf"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = schedule(kwargs[key])
    # RL Zoo's spelling of action noise (TD3/SAC): noise_type + noise_std.
    noise_type, noise_std = kwargs.pop("noise_type", None), kwargs.pop("noise_std", 0.1)
    if noise_type is not None:
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        noises = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}
        if noise_type not in noises:
            raise config.refuse("agent.kwargs", f"names noise_type {noise_type!r}; use normal or ornstein-uhlenbeck")
        size = action_space.shape[-1] if action_space.shape else 1
        kwargs["action_noise"] = noises[noise_type](mean=np.zeros(size), sigma=noise_std * np.ones(size))
    return kwargs


# agent.activation's names, as torch.nn's class names (looked up when a model is built: torch stays lazy).
ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU"}


def build(config: Config, venv: VecEnv, policy_kwargs: dict[str, Any], *, seed: int, device: str,
          verbose: int = 0) -> BaseAlgorithm:
    """The algorithm, with the Universe's options and agent.kwargs (unknown keywords are refused)."""
    algorithm = config.agent.algorithm
    policy_kwargs = dict(policy_kwargs)
    if config.agent.netArch is not None:
        policy_kwargs["net_arch"] = list(config.agent.netArch)
    if config.agent.activation is not None:
        import torch

        policy_kwargs["activation_fn"] = getattr(torch.nn, ACTIVATIONS[config.agent.activation])
    kwargs: dict[str, Any] = {
        "learning_rate": schedule(config.train.learningRate),
        "gamma": config.train.gamma,
        "seed": seed,
        "device": device,
        "verbose": verbose,
        "policy_kwargs": policy_kwargs,
    }
    if algorithm != "a2c":
        kwargs["batch_size"] = config.train.batchSize
    kwargs.update(_algorithm_kwargs(config, venv.action_space))
    cls = algorithm_class(algorithm)
    try:
        model = cls(config.agent.policyType, venv, **kwargs)
    except TypeError as error:  # an unknown keyword
        raise config.refuse("agent.kwargs", f"does not fit {cls.__name__}: {error}") from None
    except ValueError as error:  # SB3's own checks of the combination
        raise UsageError(f"{cls.__name__} refuses these settings: {error}") from None
    if config.train.fusedOptimizer:
        fuse_optimizers(model)
    return model


# Devices with torch's fused optimizer kernels that this project runs on.
FUSED_DEVICES = ("cpu", "cuda")


def fuse_optimizers(model: BaseAlgorithm) -> None:
    """train.fusedOptimizer: each optimizer of the model that has a fused implementation (its `fused`
    setting: Adam, AdamW, SGD) steps with it. Switched on the optimizer SB3 built, not by passing
    optimizer_kwargs, which would replace SB3's own defaults for them (eps=1e-5 for PPO's Adam); and only
    before its first step, or on the CPU, where the saved step counters are where the fused kernel reads
    them."""
    import torch
    from stable_baselines3.common.save_util import recursive_getattr

    for name in model._get_torch_save_params()[0]:  # SB3's own list of what it saves: policies and optimizers
        optimizer = recursive_getattr(model, name)
        if not isinstance(optimizer, torch.optim.Optimizer) or "fused" not in optimizer.defaults:
            continue
        groups = optimizer.param_groups
        params = [p for group in groups for p in group["params"]]
        devices = {p.device.type for p in params}
        if (params and devices <= set(FUSED_DEVICES) and all(p.is_floating_point() for p in params)
                and not any(group.get("differentiable") for group in groups)
                and (not optimizer.state or devices == {"cpu"})):
            for group in groups:
                group["fused"], group["foreach"] = True, None  # fused and foreach exclude each other
            optimizer.defaults["fused"], optimizer.defaults["foreach"] = True, None


def resume(path: str | Path, config: Config, venv: VecEnv, *, seed: int, device: str) -> BaseAlgorithm:
    """A saved model, ready to go on learning in `venv`: its hyperparameters, optimizer state and step
    count are the saved ones (SB3's load)."""
    from . import artifact
    from .feature import custom_class

    # The run's own folder, on the host that trains it: its configuration names the encoder's class.
    encoder = custom_class(config) if config.feature.encoder == "custom" else None
    model = artifact.load(Path(path).read_bytes(), config.agent.algorithm, device=device, custom_class=encoder,
                          env=venv)
    model.set_random_seed(seed)
    # SB3's load restores the optimizer's saved settings, fused or not; a run saved before the option existed
    # (its config.json without it, so the default) is switched here.
    if config.train.fusedOptimizer:
        fuse_optimizers(model)
    return model


def load(data: bytes, config: Config, device: str = "auto") -> BaseAlgorithm:
    """A saved model from its bytes: the ones its checksum was checked on (never the file reopened by
    name, which could have been replaced in between), rebuilt from its description: nothing in it is
    unpickled (artifact.py)."""
    from . import artifact

    try:
        return artifact.load(data, config.agent.algorithm, device=device, custom_class=trusted_custom_class(config))
    except artifact.ArtifactError as error:
        raise artifact.ArtifactError(f"cannot load the model: {error}") from None


def trusted_custom_class(config: Config) -> type | None:
    """A custom encoder's class, for loading a model trained with one: only the one this host's own
    configuration names (a flag, the environment, Nix), never one a model's run or registry row names."""
    if config.feature.encoder != "custom" or not config.source("feature.customClass").startswith(("flag", "env")):
        return None
    from .feature import custom_class

    return custom_class(config)
