"""A policy any ONNX runtime can run: the deterministic policy of a model exported to ONNX at save time,
and an onnxruntime predictor that serves it without torch or stable-baselines3.

The graph takes the observation as the env gives it (one input per key of a Dict observation; images
channel-first, as the policy sees them) and returns the action as the env takes it: observation
normalization is in the graph (the model's statistics as constants, computed in float64 as VecNormalize
does), then SB3's own preprocessing and networks (traced by torch.onnx.export), then SB3's predict's
post-processing (argmax for discrete actions, Box actions unscaled for squashed policies, else clipped).
So the .onnx file alone is the policy: another runtime, in another language, needs nothing beside it.
The graph's metadata (`rl_module.inputs`, `rl_module.observation_space`, `rl_module.action_space`) names
its inputs and spaces.

The graph goes into the model's own zip as one more entry (POLICY_ENTRY): the registry's checksum and the
trainer's signature cover it with the rest. rl-export writes it out as a standalone file.

Heavy imports stay inside functions: exporting needs torch (it runs where the model was trained), serving
needs onnxruntime and numpy only (the `onnx` extra)."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import zipfile
from typing import TYPE_CHECKING, Any, cast

from .config import Failure
from .infer import Checked, Located, Unusable

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

POLICY_ENTRY = "policy.onnx"  # the zip entry
OPSET = 17
SINGLE_INPUT = "observation"
OUTPUT = "action"


class NoOnnx(Failure):
    """A model that has no ONNX policy, or a host without onnxruntime: one line, exit 1."""


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise NoOnnx(f"infer.runtime onnx needs {module}: pip install 'rl-module[onnx]'")


# -- exporting (where the model was trained: torch) ------------------------------------------------------


def warm_up() -> None:
    """Import what the first export imports (torch's exporter imports onnx, whose ml_dtypes alone took 1.1 s
    of CPU here) in a thread, while training runs on the other core: the first save then costs what every
    later one does (about 55 ms), not 1.6 s more. Nothing to do without onnx installed."""
    import threading

    if importlib.util.find_spec("onnx") is None:
        return

    def imports() -> None:
        import onnx  # noqa: F401
        import torch.onnx  # noqa: F401

    threading.Thread(target=imports, name="rl-onnx-warm-up", daemon=True).start()


def _normalization(stats: bytes | None) -> dict[str | None, Any]:
    """{key or None: (mean, std, clip)} of the observations the statistics normalize, in float64."""
    import numpy as np

    if stats is None:
        return {}
    with np.load(io.BytesIO(stats), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if not bool(arrays["norm_obs"]):
        return {}
    clip, epsilon = float(arrays["clip_obs"]), float(arrays["epsilon"])

    def pair(mean: Any, var: Any) -> tuple[Any, Any, float]:
        return np.asarray(mean, np.float64), np.sqrt(np.asarray(var, np.float64) + epsilon), clip

    if "norm_obs_keys" in arrays:
        return {str(key): pair(arrays[f"obs_mean_{i}"], arrays[f"obs_var_{i}"])
                for i, key in enumerate(arrays["norm_obs_keys"])}
    return {None: pair(arrays["obs_mean"], arrays["obs_var"])}


def _fit(array: Any, shape: tuple[int, ...]) -> Any:
    """Statistics of channel-last images (VecNormalize sits under SB3's VecTransposeImage) for the policy's
    channel-first input: normalization is elementwise, so transposing the statistics is the same."""
    if array.shape == shape or array.size == 1:
        return array
    if len(shape) == 3 and array.shape == (shape[1], shape[2], shape[0]):
        return array.transpose(2, 0, 1)
    raise ValueError(f"normalization statistics of shape {list(array.shape)} for observations of shape {list(shape)}")


def export(model: BaseAlgorithm, stats: bytes | None) -> bytes:
    """The ONNX graph of `model`'s deterministic policy, with the observation normalization of `stats`
    (artifact.stats_bytes) in it. ValueError (or torch's own error) when the policy cannot be exported."""
    import numpy as np
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.distributions import CategoricalDistribution
    from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel

    from .artifact import describe_space

    policy = model.policy
    observation_space, action_space = policy.observation_space, policy.action_space
    if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
        raise ValueError(f"the ONNX export covers Discrete and Box actions, not {type(action_space).__name__}")
    dict_space = isinstance(observation_space, spaces.Dict)
    parts: dict[str | None, Any] = (dict(observation_space.spaces)  # type: ignore[attr-defined]
                                    if dict_space else {None: observation_space})
    for key, part in parts.items():
        if not isinstance(part, (spaces.Box, spaces.Discrete)):
            raise ValueError(f"the ONNX export covers Box and Discrete observations, not {type(part).__name__}"
                             + (f" ({key})" if key else ""))
    normalization = _normalization(stats)
    # PPO and A2C on Discrete actions: SB3's mode is argmax(softmax(logits - logsumexp(logits))), the
    # logits' own argmax (softmax is monotonic); three nodes fewer are 2-3 us of a CartPole call's 12.
    categorical = isinstance(policy, ActorCriticPolicy) and isinstance(policy.action_dist, CategoricalDistribution)
    names = [str(key) if key is not None else SINGLE_INPUT for key in parts]

    class Deterministic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = policy
            for index, (key, part) in enumerate(parts.items()):
                found = normalization.get(key)
                if found is not None:
                    mean, std, _ = found
                    shape = tuple(part.shape or ())
                    self.register_buffer(f"mean_{index}", torch.as_tensor(_fit(mean, shape)))
                    self.register_buffer(f"std_{index}", torch.as_tensor(_fit(std, shape)))
            if isinstance(action_space, spaces.Box):
                self.register_buffer("low", torch.as_tensor(action_space.low))
                self.register_buffer("high", torch.as_tensor(action_space.high))

        def forward(self, *inputs: Any) -> Any:
            observations: dict[Any, Any] = {}
            for index, (key, observation) in enumerate(zip(parts, inputs, strict=True)):
                found = normalization.get(key)
                if found is not None:  # VecNormalize's maths, in float64 as numpy does it
                    clip = found[2]
                    normalized = (observation.double() - getattr(self, f"mean_{index}")) / getattr(self, f"std_{index}")
                    observation = torch.clamp(normalized, -clip, clip)
                observations[key] = observation
            tensor = observations if dict_space else observations[None]
            if categorical:  # its mode is the argmax of its logits: no normalization or softmax in the graph
                actions = self.logits(tensor).argmax(dim=1)
            else:
                actions = self.policy._predict(tensor, deterministic=True)
            if isinstance(action_space, spaces.Box):
                actions = actions.reshape((-1, *action_space.shape))
                if self.policy.squash_output:  # SB3's unscale_action
                    low, high = self.get_buffer("low"), self.get_buffer("high")
                    actions = low + 0.5 * (actions + 1.0) * (high - low)
                else:
                    actions = torch.maximum(torch.minimum(actions, self.get_buffer("high")), self.get_buffer("low"))
            return actions

        def logits(self, observation: Any) -> Any:
            """The action logits of an actor-critic policy: its get_distribution up to the distribution."""
            actor_critic = cast(ActorCriticPolicy, policy)
            features = BaseModel.extract_features(actor_critic, observation, actor_critic.pi_features_extractor)
            return actor_critic.action_net(actor_critic.mlp_extractor.forward_actor(features))

    samples = []
    for part in parts.values():
        sample = np.stack([part.sample() for _ in range(2)])
        samples.append(torch.as_tensor(sample, device=policy.device))
    wrapper = Deterministic().to(policy.device)
    training = policy.training
    policy.set_training_mode(False)
    validating = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)  # checks on traced values: not graph
    buffer = io.BytesIO()
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
            torch.onnx.export(wrapper, tuple(samples), buffer,  # type: ignore[arg-type]
                              input_names=names, output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in [*names, OUTPUT]})
    finally:
        torch.distributions.Distribution.set_default_validate_args(validating)
        policy.set_training_mode(training)
    return _with_metadata(buffer.getvalue(), {
        "rl_module.inputs": json.dumps([{"name": name, "key": key, "shape": list(part.shape or ()),
                                         "dtype": str(part.dtype)} for name, (key, part) in zip(names, parts.items(),
                                                                                              strict=True)]),
        "rl_module.observation_space": json.dumps(describe_space(observation_space)),
        "rl_module.action_space": json.dumps(describe_space(action_space)),
        "rl_module.algorithm": type(model).__name__.lower(),
        "rl_module.normalized": json.dumps(sorted(str(key) for key in normalization)),
    })


_REPORTED: set[str] = set()


def export_safely(model: BaseAlgorithm, stats: bytes | None) -> tuple[bytes | None, str | None]:
    """(graph, None), or (None, why) for a policy the export does not cover: a save never fails for it.
    Logged once per reason and process (a checkpoint each time would repeat it)."""
    import logging

    try:
        return export(model, stats), None
    except Exception as error:  # torch's exporter raises its own kinds for what it cannot trace
        why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
        if why not in _REPORTED:
            _REPORTED.add(why)
            logging.getLogger(__name__).warning("the model is saved without an ONNX policy (infer.runtime onnx "
                                                "cannot serve it): %s", why)
        return None, why


def _with_metadata(graph: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    proto = onnx.load_from_string(graph)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "rl-module"
    return bytes(proto.SerializeToString())


def graph_of(zip_bytes: bytes) -> bytes | None:
    """The ONNX policy inside a model zip, or None."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return archive.read(POLICY_ENTRY) if POLICY_ENTRY in archive.namelist() else None


# -- running (a serving host: onnxruntime and numpy) ------------------------------------------------------


class OnnxPredictor(Checked):
    """infer.Predictor's twin on onnxruntime: the same checks of observations, the same answers, and no
    torch or stable-baselines3 in the process."""

    runtime = "onnx"
    device = "cpu"

    def __init__(self, located: Located) -> None:
        from . import artifact

        self.located = located
        config = located.config
        if config.infer.device not in ("auto", "cpu"):
            raise config.refuse("infer.device", "runs the policy on torch; infer.runtime onnx runs it on the CPU "
                                "(onnxruntime): leave infer.device at auto or cpu, or use infer.runtime torch")
        described = artifact.read_description(located.files.model)
        graph = graph_of(located.files.model)
        if graph is None:
            noted = described.get("onnx")
            why = noted.get("error") if isinstance(noted, dict) else None
            raise Unusable(f"{self.name} refused: it has no ONNX policy for infer.runtime onnx ("
                           + (f"its export failed: {why}" if why else "saved with infer.export none, or by an "
                              "rl-module before ONNX export") + "); serve it with infer.runtime torch")
        _needs("onnxruntime")
        import onnxruntime
        from gymnasium import spaces

        entries = described["entries"]
        self.observation_space = artifact.rebuild_value(entries["observation_space"])
        self.action_space = artifact.rebuild_value(entries["action_space"])
        options = onnxruntime.SessionOptions()
        # One small graph per request: threads cost more than they give (as torch.set_num_threads(1) does).
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own (a graph it cannot run)
            raise Unusable(f"{self.name} refused: onnxruntime cannot run its ONNX policy ({error})") from None
        self._names = [node.name for node in session.get_inputs()]
        self._dict = isinstance(self.observation_space, spaces.Dict)
        parts = dict(self.observation_space.spaces) if self._dict else {None: self.observation_space}
        if len(self._names) != len(parts):
            raise Unusable(f"{self.name} refused: its ONNX policy takes {len(self._names)} inputs for "
                           f"{len(parts)} observation parts")
        self._keys = list(parts)
        # Images: the graph takes them channel-first (as the policy does); a camera's channel-last ones are
        # transposed here, as SB3's predict does.
        self._images = {key: tuple(part.shape) for key, part in parts.items() if len(part.shape or ()) == 3}
        # The session's own run checks the names of the inputs on every call: 15 us of the 35 a CartPole call
        # takes (bench/README.md). The names are checked once, above; the call is the one it makes.
        inner = getattr(session, "_sess", None)
        self._run = (lambda outputs, feeds: inner.run(outputs, feeds, None)) if inner is not None else session.run
        self._session = session
        self._output = [OUTPUT]
        self._action_shape = (-1, *(self.action_space.shape or ()))
        self._bound = _bind_one(session)
        self._bound_free = threading.Lock()
        self._try_once()

    def predict(self, observation: Any) -> Any:
        """Actions for one observation or a batch, as plain JSON-ready values (what Predictor.predict gives)."""
        array, batch = self.check(observation)
        # One observation, the common request: into the buffers bound once, by one caller at a time (another
        # meanwhile, a server's other thread, takes the plain run below).
        if not batch and self._bound is not None and self._bound_free.acquire(blocking=False):
            try:
                buffers, action, run = self._bound
                for buffer, key in zip(buffers, self._keys, strict=True):
                    part = array[key] if self._dict else array
                    buffer[0] = part if key not in self._images or part.shape == self._images[key] \
                        else part.transpose(2, 0, 1)
                run()
                return action[0].tolist()
            finally:
                self._bound_free.release()
        if self._dict:
            feeds = {name: self._shaped(array[key], key, batch) for name, key in zip(self._names, self._keys,
                                                                                      strict=True)}
        else:
            feeds = {self._names[0]: self._shaped(array, None, batch)}
        result = self._run(self._output, feeds)[0].reshape(self._action_shape)
        return (result if batch else result[0]).tolist()

    def _shaped(self, array: Any, key: Any, batch: bool) -> Any:
        if not batch:
            array = array[None]
        shape = self._images.get(key)
        if shape is not None and array.shape[1:] != shape:  # channel-last
            array = array.transpose(0, 3, 1, 2)
        return array


# The numpy dtypes of the ONNX tensor types an exported policy takes or gives.
_TENSOR_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(uint8)": "uint8",
                 "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}


def _bind_one(session: Any) -> tuple[list[Any], Any, Any] | None:
    """For one observation: the session's inputs and its action bound once to arrays of a batch of one
    (onnxruntime's IOBinding), which a call fills and reads: (input arrays in the session's order, the action
    array, the run). The plain run makes an array for each input and for the output on every call: 6 of a
    CartPole call's 18 us (bench/README.md). None where a shape or type is not fixed: the plain run then."""
    import numpy as np
    import onnxruntime

    inputs, outputs = session.get_inputs(), session.get_outputs()
    nodes = [*inputs, *outputs]
    if len(outputs) != 1 or any(node.type not in _TENSOR_TYPES or not all(isinstance(d, int) for d in node.shape[1:])
                                for node in nodes):
        return None
    # The arrays stay alive with the predictor; the bound values use their memory.
    arrays = [np.zeros((1, *node.shape[1:]), _TENSOR_TYPES[node.type]) for node in nodes]
    binding = session.io_binding()
    for node, array in zip(inputs, arrays, strict=False):
        binding.bind_ortvalue_input(node.name, onnxruntime.OrtValue.ortvalue_from_numpy(array))
    binding.bind_ortvalue_output(outputs[0].name, onnxruntime.OrtValue.ortvalue_from_numpy(arrays[-1]))
    return arrays[:-1], arrays[-1], lambda: session.run_with_iobinding(binding)
