"""Infer: which model answers, loaded safely, and the policy called directly on observations.

A model is named by path (infer.modelPath), by registry id (infer.modelId), or is the registry's best
validated model (hotswap). A registry model is loaded only when its file matches the recorded checksum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import store
from .config import Config, Failure, UsageError, flatten
from .registry import Model, NoModel, existing, read_verified
from .store import ModelBytes

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

# The options a model's own training run decides, unless the user sets them.
RUN_FEATURES = ("env", "obs", "agent", "feature")


@dataclass(frozen=True)
class Located:
    """A model to load, with the configuration of the run that trained it laid under the user's, and its
    files' bytes, read once (and for a registry model, checked against the row's checksums)."""

    path: Path
    config: Config
    model: Model | None  # its registry row, when it came from the registry
    files: ModelBytes


def _with_run(config: Config, values: dict[str, Any], source: str) -> Config:
    return config.with_layer({k: v for k, v in values.items() if k.split(".")[0] in RUN_FEATURES}, source)


def _flat(hyperparams: str | None) -> dict[str, Any]:
    return flatten(json.loads(hyperparams)) if hyperparams else {}


def artifact_pickled(path: str | Path) -> bool:
    """Whether an older rl-module's pickled statistics lie beside a model file."""
    from .artifact import pickled_stats_path

    return pickled_stats_path(path).is_file()


def locate(config: Config, *, load_best: bool = False) -> Located:
    """The model the options name; RegistryError (a refusal) when a registry model cannot be loaded."""
    path, model_id = config.infer.modelPath, config.infer.modelId
    if sum(x is not None for x in (path, model_id)) + load_best > 1:
        raise UsageError("name one model: --model-path, --model-id or --load-best")
    if path is not None:
        if not Path(path).is_file():
            raise config.refuse("infer.modelPath", "is not a file")
        if "registry.trustedKeys" in config.settings and config.registry.trustedKeys:
            raise config.refuse("infer.modelPath", "names a file, which carries no signature (the registry row "
                                "does), and registry.trustedKeys is set: load it by its registry id")
        found = store.run_config(path)
        layered = _with_run(config, found[1], f"run {found[0]}") if found else config
        files = store.read_model(Path(path))
        from .artifact import ArtifactError, check_stats

        try:  # a model saved as data, with the statistics it was saved with
            check_stats(files.model, files.stats)
        except ArtifactError as error:
            old = "without a description" in str(error) or artifact_pickled(path)
            hint = f"; if you trust it, convert it: rl-registry-convert --model-path {path}" if old else ""
            raise config.refuse("infer.modelPath", f"cannot be loaded: {error}{hint}") from None
        return Located(Path(path), layered, None, files)
    with existing(config) as registry:
        if model_id is not None:
            model = registry.get(model_id)
            if model is None:
                raise config.refuse("infer.modelId", f"is not in the registry {registry.where}")
            files = read_verified(model, registry.files)
        else:
            best = registry.best_loadable(config.given("env.envId"), config.given("agent.algorithm"))
            if best is None:
                raise NoModel(registry.nothing_loadable(_filter_note(config)))
            model, files = best
    layered = _with_run(config, _flat(model.hyperparams), f"registry model {model.id}")
    # Other tools write 'PPO': the registry compares names case-insensitively, the options take ppo.
    layered = layered.replace("agent.algorithm", model.algorithm.lower(), f"registry model {model.id}")
    layered = layered.replace("env.envId", model.env_id, f"registry model {model.id}")
    return Located(files.path, layered, model, files)


def model_layer(config: Config) -> Config:
    """The options of the model a command names (--model-path, --model-id) laid under the user's, so that
    --print-config shows what the command will act with."""
    if config.infer.modelPath is None and config.infer.modelId is None:
        return config
    return locate(config).config


def _filter_note(config: Config) -> str:
    given = [f"{p}={config.given(p)}" for p in ("env.envId", "agent.algorithm") if config.given(p) is not None]
    return f" for {', '.join(given)}" if given else ""


class Unusable(Failure):
    """A model that loads and cannot answer (what was loaded is not what a model holds): refused, exit 1."""


class Policy(Protocol):
    """What rl-infer and its server call: a model's policy on one runtime (infer.runtime). Predictor runs it
    on torch; portable.OnnxPredictor on onnxruntime, with no torch in the process."""

    located: Located
    device: str
    runtime: str
    observation_space: Any
    action_space: Any

    @property
    def name(self) -> str: ...

    def predict(self, observation: Any) -> Any: ...


def predictor(located: Located) -> Policy:
    """The policy of a located model on the runtime infer.runtime names."""
    if located.config.infer.runtime == "onnx":
        from .portable import OnnxPredictor

        return OnnxPredictor(located)
    return Predictor(located)


class Checked:
    """What every runtime shares: the checks of observations, and the refusal of a model that cannot answer."""

    located: Located
    observation_space: Any
    normalizer: Any = None  # applied by the runtime (for onnx, it is in the graph)

    def predict(self, observation: Any) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The model, in words: its registry id, or its file."""
        row = self.located.model
        return f"model {row.id}" if row is not None else f"model file {self.located.path}"

    def _try_once(self) -> None:
        """Refuse (Unusable) a model that loaded and cannot answer: normalization statistics that are not of its
        observations (a checksum says that the bytes are the ones registered, not what they hold; numpy would
        broadcast a mean of one number over any observation), or no JSON action for a sample observation of its
        own space. Whoever serves it learns so now, not from every request."""
        import numpy as np
        from gymnasium import spaces

        if self.normalizer is not None and self.normalizer.norm_obs:  # rewards alone have no observation statistics
            found = self.normalizer.obs_rms
            space = self.observation_space
            pairs = ([(key, found[key], space.spaces.get(key) if isinstance(space, spaces.Dict) else None)
                      for key in found] if isinstance(found, dict) else [("observations", found, space)])
            for key, statistics, part in pairs:  # sizes: an image's statistics may be channel-last
                if part is None or np.size(statistics.mean) != int(np.prod(part.shape or ())):
                    raise Unusable(f"{self.name} refused: its normalization statistics for {key} do not fit its "
                                   f"observation space {space}")
        try:
            json.dumps(self.predict(self.observation_space.sample()))
        except Exception as error:
            raise Unusable(f"{self.name} refused: it cannot predict an action for a sample observation of its "
                           f"own space ({type(error).__name__}: {error})") from error

    def check(self, observation: Any) -> tuple[Any, bool]:
        """The observation as arrays of the policy's shapes and dtypes (a dict of them for Dict spaces),
        and whether it is a batch; ValueError with a message saying what was expected."""
        import gymnasium as gym

        space = self.observation_space
        if isinstance(space, gym.spaces.Dict):
            if not isinstance(observation, dict) or set(observation) != set(space.spaces):
                raise ValueError(f"observation must be an object with the keys {sorted(space.spaces)}")
            checked = {key: _array(observation[key], sub, key) for key, sub in space.spaces.items()}
            batches = {batch for _, batch in checked.values()}
            if len(batches) != 1:
                raise ValueError("observation mixes single values and batches across its keys")
            return {key: array for key, (array, _) in checked.items()}, batches.pop()
        return _array(observation, space, "observation")


class Predictor(Checked):
    """The policy of a loaded model, called directly (no env), with the model's observation
    normalization applied. Frame stacking is the caller's: send stacked observations."""

    runtime = "torch"

    def __init__(self, located: Located) -> None:
        from . import agent, artifact

        self.located = located
        config = located.config
        self.device = agent.device(config, "infer.device")
        self.model: BaseAlgorithm = agent.load(located.files.model, config, device=self.device)
        self.model.policy.set_training_mode(False)
        import torch
        from gymnasium import spaces
        from stable_baselines3.common.preprocessing import is_image_space

        space = self.model.observation_space
        self._torch = torch
        self._policy = self.model.policy
        self._device = self._policy.device  # a property that walks the parameters: read once
        self._plain_box = isinstance(space, spaces.Box) and not is_image_space(space)
        self._batch_shape = (-1, *(space.shape or ()))
        self._action_shape = (-1, *(self._policy.action_space.shape or ()))
        self.observation_space = self.model.observation_space
        self.action_space = self.model.action_space
        # The statistics are read (as plain arrays) from the bytes checked with the model, never reopened by name.
        self.normalizer = artifact.normalizer(located.files.stats) if located.files.stats is not None else None
        self.deterministic = bool(located.config.eval.deterministic)
        self._act, self._finish = self._action_function()
        self._try_once()

    def predict(self, observation: Any) -> Any:
        """Actions for one observation or a batch, as plain JSON-ready values: the policy's networks called
        directly under torch.inference_mode (see _action_function), then SB3's own post-processing."""
        array, batch = self.check(observation)
        if self.normalizer is not None:
            array = self.normalizer.normalize_obs(array)
        tensor: Any
        with self._torch.inference_mode():
            if self._plain_box:  # a vector: as_tensor is all SB3's obs_to_tensor would do, minus its checks
                tensor = self._torch.as_tensor(array, device=self._device).reshape(self._batch_shape)
            else:  # images (channel order), Dict observations
                tensor, _ = self._policy.obs_to_tensor(array)
            actions = self._act(tensor)
        result = self._finish(actions.cpu().numpy().reshape(self._action_shape))
        return (result if batch else result[0]).tolist()

    def _action_function(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        """(networks, post-processing), chosen once per model. For the most likely action of PPO/A2C
        (Discrete or Box) and SAC, the networks are called directly: SB3's _predict builds a torch
        Distribution only to take its mode, half the time of a single-observation call (bench/serve.py).
        Anything else goes through SB3's _predict. Post-processing is SB3's predict's: Box actions unscaled
        (squashed policies) or clipped. For DQN this is the greedy policy: no exploration."""
        import numpy as np
        import torch
        from gymnasium import spaces
        from stable_baselines3.common.policies import ActorCriticPolicy
        from stable_baselines3.common.torch_layers import FlattenExtractor
        from stable_baselines3.sac.policies import SACPolicy

        policy, deterministic = self._policy, self.deterministic
        space = policy.action_space
        act: Callable[[Any], Any] = lambda tensor: policy._predict(tensor, deterministic=deterministic)  # noqa: E731
        if deterministic and isinstance(policy, ActorCriticPolicy) and not policy.use_sde and isinstance(
                space, (spaces.Discrete, spaces.Box)):
            discrete = isinstance(space, spaces.Discrete)
            # A flat float vector needs no features extraction: SB3's preprocessing is .float() and its
            # FlattenExtractor a reshape to what the tensor already is.
            flat = self._plain_box and isinstance(policy.pi_features_extractor, FlattenExtractor) and len(
                self._batch_shape) == 2 and policy.observation_space.dtype == np.float32

            def act(tensor: Any) -> Any:
                features = tensor if flat else policy.extract_features(tensor, policy.pi_features_extractor)
                out = policy.action_net(policy.mlp_extractor.forward_actor(features))  # type: ignore[arg-type]
                return out.argmax(dim=1) if discrete else out
        elif deterministic and isinstance(policy, SACPolicy) and not policy.actor.use_sde:
            def act(tensor: Any) -> Any:
                return torch.tanh(policy.actor.get_action_dist_params(tensor)[0])

        finish: Callable[[Any], Any] = lambda actions: actions  # noqa: E731
        if isinstance(space, spaces.Box):
            if policy.squash_output:
                finish = policy.unscale_action
            else:
                low, high = space.low, space.high
                finish = lambda actions: np.clip(actions, low, high)  # noqa: E731
        return act, finish


def _finite(array: Any) -> bool:
    """No NaN or infinity in a float array. A vector the size of one observation is checked in Python: a
    numpy reduction (`np.isfinite(a).all()`) measured 5-12 us per request in the server between the policy's
    torch calls, against under 1 us for this (bench/README.md, Serving)."""
    import numpy as np

    if array.size <= 64:
        return all(map(math.isfinite, array.ravel().tolist()))
    return bool(np.isfinite(array).all())


def _array(value: Any, space: Any, name: str) -> tuple[Any, bool]:
    """One observation (or a batch) as an array of `space`'s shape and dtype; ValueError otherwise."""
    import numpy as np

    shape = tuple(space.shape or ())
    try:
        array = np.asarray(value, dtype=space.dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{name} is not numeric {space.dtype}: {error}") from None
    if array.dtype.kind == "f" and not _finite(array):
        raise ValueError(f"{name} has numbers that are not finite (NaN, Infinity, or beyond {space.dtype}'s range)")
    # An image policy sees channel-first images; cameras (and the env) give channel-last ones, which the
    # policy transposes itself (SB3's maybe_transpose): both are accepted.
    shapes = {shape, (shape[1], shape[2], shape[0])} if len(shape) == 3 else {shape}
    if array.shape in shapes:
        return array, False
    if array.ndim == len(shape) + 1 and array.shape[1:] in shapes and array.shape[0] > 0:
        return array, True
    raise ValueError(f"{name} has shape {list(array.shape)}; expected {list(shape)} or a batch of them")
