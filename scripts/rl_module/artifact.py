"""The model artifact: the one place where a model becomes bytes and bytes become a policy.

A model is data, never code. stable-baselines3 saves its weights as tensors (loaded with
`torch.load(weights_only=True)`) and the rest of the algorithm (`data`: spaces, policy class, policy
keyword arguments, schedules, ...) as JSON in which every value JSON cannot hold is a cloudpickle, which
loading would run. So, at save time, a plain-JSON description of each such entry goes into the model's
own zip (`rl_module.json`: covered by its checksum and by its signature); at load time every one of them
is rebuilt from that description, by name, from an allow-list of the classes stable-baselines3, torch
and this project define, and handed to SB3's `load(custom_objects=...)`, which then deserializes nothing.
A `custom` encoder's class comes from the loading host's own configuration (feature.customClass), never
from a name in the file. Normalization statistics are an `.npz` of plain arrays, loaded without pickle.

Signatures are OpenSSF model-signing's (an EC key pair; `rl-keygen` makes one): a trainer signs the
model zip, which names its statistics by sha256; a host configured with trusted keys loads only what one
of them signed.

The save, describe, sign, verify and load steps live here; registry.py records and locates, store.py
fetches. Heavy imports (torch, stable_baselines3, model_signing) stay inside the functions.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Failure

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

DESCRIPTION = "rl_module.json"  # the zip entry
FORMAT = 1
STATS_SUFFIX = ".stats.npz"
PICKLED_STATS_SUFFIX = ".vecnormalize.pkl"  # what models saved before descriptions carried

# Runtime state SB3 saves with a model (the last observations, episode buffers): not part of the policy;
# loading sets it empty, and SB3 starts it afresh when training goes on.
RUNTIME_STATE = ("_last_obs", "_last_original_obs", "_last_episode_starts", "ep_info_buffer", "ep_success_buffer")

# Where a class named in a description may come from: what stable-baselines3 and this project define, and
# torch's layers, activations and optimizers (what SB3's policy keyword arguments name).
CLASS_MODULES = ("stable_baselines3.", "torch.nn.", "torch.optim.", "rl_module.")
# The instances a description may rebuild (state as plain JSON): SB3's schedules and action noises.
OBJECTS = ("stable_baselines3.common.utils:FloatSchedule", "stable_baselines3.common.utils:LinearSchedule",
           "stable_baselines3.common.utils:ConstantSchedule", "stable_baselines3.common.noise:NormalActionNoise",
           "stable_baselines3.common.noise:OrnsteinUhlenbeckActionNoise")
CUSTOM_CLASS = "feature.customClass"  # the marker of a class of the user's own: the loading host's


class ArtifactError(Failure):
    """A model that cannot be loaded as data (no description, a name outside the allow-list, a signature
    that does not verify): the message says which and what to do (one line, exit 1)."""


def beside(model_path: str | Path, suffix: str) -> Path:
    """A file kept beside a model: model.zip -> model<suffix>."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".zip") + suffix)


def stats_path(model_path: str | Path) -> Path:
    """Where the normalization statistics of a model live: model.zip -> model.stats.npz."""
    return beside(model_path, STATS_SUFFIX)


def pickled_stats_path(model_path: str | Path) -> Path:
    return beside(model_path, PICKLED_STATS_SUFFIX)


# -- describing -------------------------------------------------------------------------------------


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class Undescribable(Exception):
    pass


def describe_value(value: Any) -> Any:
    """A value of SB3's data as plain JSON: classes and SB3's schedules and noises by name, arrays as lists,
    spaces by their parameters. Undescribable for anything else (a lambda, a class of unknown origin)."""
    import gymnasium as gym
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, gym.spaces.Space):
        return {"space": describe_space(value)}
    if isinstance(value, type) and issubclass(value, np.generic):  # a dtype (SB3's noises keep one)
        return {"numpy_type": np.dtype(value).name}
    if isinstance(value, type):
        name = _name(value)
        if name.startswith(CLASS_MODULES):
            return {"class": name}
        from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

        if issubclass(value, BaseFeaturesExtractor):  # the user's own encoder: the loading host names it
            return {"class": CUSTOM_CLASS}
        raise Undescribable(f"the class {name} is not one stable-baselines3, torch or rl-module defines")
    if isinstance(value, enum.Enum) and _name(type(value)).startswith(CLASS_MODULES):
        return {"enum": _name(type(value)), "value": describe_value(value.value)}
    if isinstance(value, tuple) and hasattr(value, "_fields") and _name(type(value)).startswith(CLASS_MODULES):
        return {"namedtuple": _name(type(value)), "items": [describe_value(v) for v in value]}
    if isinstance(value, (list, tuple)):
        items = [describe_value(v) for v in value]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Undescribable("a mapping with keys that are not strings")
        return {"dict": {k: describe_value(v) for k, v in value.items()}}
    name = _name(type(value))
    if name in OBJECTS:
        return {"object": name, "state": {k: describe_value(v) for k, v in vars(value).items()}}
    raise Undescribable(f"a {name} (not one of the objects a description holds)")


def rebuild_value(described: Any, custom_class: type | None = None) -> Any:
    """describe_value's inverse, for data read from a model file: every name is checked against the
    allow-lists before anything is imported."""
    import numpy as np

    if described is None or isinstance(described, (bool, int, float, str)):
        return described
    if isinstance(described, list):
        return [rebuild_value(v, custom_class) for v in described]
    if not isinstance(described, dict) or len(described) not in (1, 2, 3):
        raise ArtifactError(f"an entry of its description is not one rl-module writes: {str(described)[:80]}")
    if "ndarray" in described:
        dtype = np.dtype(str(described["dtype"]))
        if dtype.kind not in "biuf":
            raise ArtifactError(f"an array of dtype {dtype} in its description")
        return np.asarray(described["ndarray"], dtype=dtype).reshape(described["shape"])
    if "space" in described:
        return rebuild_space(described["space"])
    if "numpy_type" in described:
        dtype = np.dtype(str(described["numpy_type"]))
        if dtype.kind not in "biuf":
            raise ArtifactError(f"the numpy type {dtype} in its description")
        return dtype.type
    if "class" in described:
        name = str(described["class"])
        if name == CUSTOM_CLASS:
            if custom_class is None:
                raise ArtifactError("it was trained with a custom encoder: set feature.customClass on this host to "
                                    "the class to load it with (the model file names none that is trusted)")
            return custom_class
        return _allowed(name, CLASS_MODULES)
    if "enum" in described:
        found = _allowed(str(described["enum"]), CLASS_MODULES)
        if not issubclass(found, enum.Enum):
            raise ArtifactError(f"its description names {str(described['enum'])[:120]!r} as an enum, which it is not")
        return found(rebuild_value(described["value"]))
    if "namedtuple" in described:
        found = _allowed(str(described["namedtuple"]), CLASS_MODULES)
        if not (issubclass(found, tuple) and hasattr(found, "_fields")):
            raise ArtifactError(f"its description names {str(described['namedtuple'])[:120]!r} as a named tuple, "
                                "which it is not")
        return found(*(rebuild_value(v, custom_class) for v in described["items"]))
    if "tuple" in described:
        return tuple(rebuild_value(v, custom_class) for v in described["tuple"])
    if "dict" in described:
        return {str(k): rebuild_value(v, custom_class) for k, v in dict(described["dict"]).items()}
    if "object" in described:
        name = str(described["object"])
        if name not in OBJECTS:
            raise ArtifactError(f"its description names {name[:120]!r}, not one of the objects rl-module rebuilds")
        cls = _allowed(name, CLASS_MODULES)
        instance: Any = object.__new__(cls)
        instance.__dict__.update({str(k): rebuild_value(v, custom_class) for k, v in described["state"].items()})
        return instance
    raise ArtifactError(f"an entry of its description is not one rl-module writes: {str(described)[:80]}")


def _allowed(name: str, modules: tuple[str, ...]) -> type:
    module_name, _, qualname = name.partition(":")
    if not module_name.startswith(modules) or not qualname or not all(p.isidentifier() for p in qualname.split(".")):
        raise ArtifactError(f"its description names the class {name[:120]!r}, which is not one stable-baselines3, "
                            "torch or rl-module defines")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        raise ArtifactError(f"its description names the class {name[:120]!r}, which this host does not have "
                            "(another version of stable-baselines3 or torch?)") from None
    if not isinstance(found, type):
        raise ArtifactError(f"its description names {name[:120]!r}, which is not a class")
    if _name(found) != name:  # reached through an allowed module's imports (rl_module.registry:subprocess.Popen)
        raise ArtifactError(f"its description names the class {name[:120]!r}, which is {_name(found)[:120]!r}: not "
                            "one stable-baselines3, torch or rl-module defines")
    return found


def _check_names(described: Any) -> None:
    """Every name in a description, checked against the allow-lists as text (nothing imported): a
    description that names anything else is refused where the row's checksums are checked."""
    if isinstance(described, list):
        for value in described:
            _check_names(value)
    if not isinstance(described, dict):
        return
    for kind in ("class", "enum", "namedtuple", "object"):
        name = described.get(kind)
        if name is None or name == CUSTOM_CLASS and kind == "class":
            continue
        module_name, _, qualname = str(name).partition(":")
        if (not module_name.startswith(CLASS_MODULES) or not qualname
                or not all(p.isidentifier() for p in qualname.split("."))
                or kind == "object" and name not in OBJECTS):
            raise ArtifactError(f"its description names the class {str(name)[:120]!r}, which is not one "
                                "stable-baselines3, torch or rl-module defines")
    for key in ("dict", "tuple", "items", "state", "value"):
        inner = described.get(key)
        _check_names(list(inner.values()) if isinstance(inner, dict) else inner)


def describe_space(space: Any) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    def bound(array: Any) -> Any:  # an image's 0..255 bounds are one number, not 21,168
        flat = np.asarray(array)
        if flat.size and np.all(flat == flat.flat[0]):
            return flat.flat[0].item()
        return flat.tolist()

    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": bound(space.low), "high": bound(space.high), "shape": list(space.shape),
                "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist(),
                "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": space.n if isinstance(space.n, int) else list(space.n)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": [[key, describe_space(s)] for key, s in space.spaces.items()]}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [describe_space(s) for s in space.spaces]}
    raise Undescribable(f"the space {type(space).__name__}")


def rebuild_space(described: dict[str, Any]) -> Any:
    import gymnasium as gym
    import numpy as np

    kind = described.get("type")
    try:
        if kind == "Box":
            dtype = np.dtype(str(described["dtype"]))
            if dtype.kind not in "biuf":
                raise ValueError(f"dtype {dtype}")
            shape = tuple(int(n) for n in described["shape"])
            low = np.broadcast_to(np.asarray(described["low"], dtype=dtype), shape)
            high = np.broadcast_to(np.asarray(described["high"], dtype=dtype), shape)
            return gym.spaces.Box(low=low.copy(), high=high.copy(), shape=shape, dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(described["n"]), start=int(described["start"]))
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(np.asarray(described["nvec"]), dtype=np.dtype(str(described["dtype"])),
                                            start=np.asarray(described["start"]))
        if kind == "MultiBinary":
            n = described["n"]
            return gym.spaces.MultiBinary(n if isinstance(n, int) else [int(x) for x in n])
        if kind == "Dict":
            return gym.spaces.Dict({str(key): rebuild_space(s) for key, s in described["spaces"]})
        if kind == "Tuple":
            return gym.spaces.Tuple([rebuild_space(s) for s in described["spaces"]])
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(f"its description's {kind} space is malformed ({error})") from None
    raise ArtifactError(f"its description names the space {str(kind)[:40]!r}, not one rl-module rebuilds")


# -- saving -----------------------------------------------------------------------------------------


def description(model: BaseAlgorithm, zip_bytes: bytes, stats_sha256: str | None) -> dict[str, Any]:
    """What loading needs to rebuild, for every entry of SB3's saved data that is a pickle."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        data = json.loads(archive.read("data"))
    pickled = sorted(k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v)
    entries: dict[str, Any] = {}
    undescribable: dict[str, str] = {}
    for key in pickled:
        if key in RUNTIME_STATE:
            continue
        try:
            entries[key] = describe_value(model.__dict__[key])
        except (Undescribable, KeyError) as error:
            undescribable[key] = str(error)
    return {"format": FORMAT, "algorithm": type(model).__name__.lower(), "entries": entries,
            "runtime_state": [k for k in pickled if k in RUNTIME_STATE], "undescribable": undescribable,
            "stats_sha256": stats_sha256}


def with_description(zip_bytes: bytes, described: dict[str, Any], extra: dict[str, bytes] | None = None) -> bytes:
    """The model zip with its description (and `extra` entries: its ONNX policy) added as more entries (SB3's
    load reads only its own)."""
    buffer = io.BytesIO(zip_bytes)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DESCRIPTION, json.dumps(described, indent=1, sort_keys=True))
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def model_bytes(model: BaseAlgorithm, stats_sha256: str | None, *, onnx: bool = False,
                stats: bytes | None = None) -> bytes:
    """SB3's zip of the model, described; with `onnx`, its deterministic policy as ONNX (portable.py, with the
    normalization of `stats` in the graph) as one more entry, covered by the model's checksum and signature.
    A policy that cannot be exported is saved without one, the reason in the description."""
    buffer = io.BytesIO()
    model.save(buffer)
    saved = buffer.getvalue()
    described = description(model, saved, stats_sha256)
    extra: dict[str, bytes] = {}
    if onnx:
        from . import portable

        graph, failure = portable.export_safely(model, stats)
        described["onnx"] = {"entry": portable.POLICY_ENTRY} if graph is not None else {"error": failure}
        if graph is not None:
            extra[portable.POLICY_ENTRY] = graph
    return with_description(saved, described, extra)


def stats_bytes(venv: VecEnv) -> bytes | None:
    """The VecNormalize statistics and settings as plain arrays (.npz), or None without normalization."""
    import numpy as np

    from .obs import normalizer

    found = normalizer(venv)
    if found is None:
        return None
    arrays: dict[str, Any] = {
        "clip_obs": np.float64(found.clip_obs), "clip_reward": np.float64(found.clip_reward),
        "gamma": np.float64(found.gamma), "epsilon": np.float64(found.epsilon),
        "norm_obs": np.bool_(found.norm_obs), "norm_reward": np.bool_(found.norm_reward),
        "ret_mean": found.ret_rms.mean, "ret_var": found.ret_rms.var, "ret_count": np.float64(found.ret_rms.count),
    }
    # Rewards alone: SB3's VecNormalize keeps no observation statistics then (no obs_rms at all).
    if found.norm_obs and isinstance(found.obs_rms, dict):
        keys = list(found.obs_rms)
        arrays["norm_obs_keys"] = np.array(keys, dtype=str)
        for i, key in enumerate(keys):
            rms = found.obs_rms[key]
            arrays |= {f"obs_mean_{i}": rms.mean, f"obs_var_{i}": rms.var, f"obs_count_{i}": np.float64(rms.count)}
    elif found.norm_obs:
        rms = found.obs_rms
        arrays |= {"obs_mean": rms.mean, "obs_var": rms.var, "obs_count": np.float64(rms.count)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _stats_arrays(stats: bytes) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(io.BytesIO(stats), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"its normalization statistics are not plain arrays ({error})") from None


def _statistics(arrays: dict[str, Any]) -> dict[str, Any]:
    """VecNormalize's settings and running statistics, from stats_bytes' arrays."""
    import numpy as np
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    def rms(mean: Any, var: Any, count: Any) -> RunningMeanStd:
        found = RunningMeanStd(shape=np.shape(mean))
        found.mean, found.var, found.count = np.asarray(mean, np.float64), np.asarray(var, np.float64), float(count)
        if found.mean.shape != found.var.shape:
            raise ValueError("means and variances of different shapes")
        return found

    try:
        norm_obs = bool(arrays["norm_obs"])
        keys = [str(k) for k in arrays["norm_obs_keys"]] if "norm_obs_keys" in arrays else None
        found: dict[str, Any] = {
            "norm_obs": norm_obs, "norm_reward": bool(arrays["norm_reward"]),
            "clip_obs": float(arrays["clip_obs"]), "clip_reward": float(arrays["clip_reward"]),
            "gamma": float(arrays["gamma"]), "epsilon": float(arrays["epsilon"]), "norm_obs_keys": keys,
            "ret_rms": rms(arrays["ret_mean"], arrays["ret_var"], arrays["ret_count"])}
        if norm_obs:  # rewards alone keep no observation statistics, as SB3's VecNormalize has no obs_rms then
            found["obs_rms"] = ({key: rms(arrays[f"obs_mean_{i}"], arrays[f"obs_var_{i}"], arrays[f"obs_count_{i}"])
                                 for i, key in enumerate(keys)} if keys is not None
                                else rms(arrays["obs_mean"], arrays["obs_var"], arrays["obs_count"]))
        return found
    except (KeyError, ValueError, TypeError) as error:
        raise ArtifactError(f"its normalization statistics are malformed ({error})") from None


def restore_stats(stats: bytes, venv: VecEnv, *, training: bool = False) -> VecNormalize:
    """VecNormalize over `venv` with the statistics of `stats_bytes`, read without pickle."""
    from stable_baselines3.common.vec_env import VecNormalize

    found = _statistics(_stats_arrays(stats))
    obs_rms, ret_rms = found.pop("obs_rms", None), found.pop("ret_rms")
    try:
        normalized = VecNormalize(venv, training=training, **found)
    except (AssertionError, ValueError) as error:
        raise ArtifactError(f"its normalization statistics do not fit this env ({error})") from None
    if obs_rms is not None:
        normalized.obs_rms = obs_rms
    normalized.ret_rms = ret_rms
    return normalized


def normalizer(stats: bytes) -> VecNormalize:
    """The statistics as a VecNormalize with no env under it: its normalize_obs, for inference (what
    unpickling SB3's saved VecNormalize gave, without the pickle)."""
    from stable_baselines3.common.vec_env import VecNormalize

    normalized = VecNormalize.__new__(VecNormalize)
    normalized.__setstate__({**_statistics(_stats_arrays(stats)), "training": False})
    return normalized


# An off-policy model's replay buffer, as plain arrays too (SB3 pickles the whole buffer object): what
# `rl-train --resume` reads back into the buffer the resumed model built for itself. Its transitions, and
# where the next one goes; a Dict observation's parts as `observations/<key>`. next_observations is absent
# from a buffer that optimizes memory (SB3's optimize_memory_usage).
REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
REPLAY_BUFFERS = ("ReplayBuffer", "DictReplayBuffer")  # what SB3 builds for DQN, SAC and TD3 here


def replay_arrays(buffer: Any) -> dict[str, Any] | None:
    """The buffer's arrays to save (np.savez), or None for a buffer class this project does not save."""
    import numpy as np

    kind = type(buffer).__name__
    if kind not in REPLAY_BUFFERS:
        return None
    arrays: dict[str, Any] = {"buffer": np.array(kind), "pos": np.int64(buffer.pos), "full": np.bool_(buffer.full)}
    for name in REPLAY_ARRAYS:
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            arrays |= {f"{name}/{key}": part for key, part in value.items()}
        elif value is not None:
            arrays[name] = value
    return arrays


def restore_replay(buffer: Any, source: Any) -> None:
    """Fill `buffer` (the one the resumed model built) from a file of replay_arrays, read without pickle:
    the same kind of buffer, every array it holds there with its own shape and dtype, and nothing else.
    ArtifactError otherwise, before anything is copied."""
    import numpy as np

    expected = replay_arrays(buffer)
    if expected is None:
        raise ArtifactError(f"its replay buffer is a {type(buffer).__name__}, which is not saved as arrays")
    try:
        with np.load(source, allow_pickle=False) as data:
            found = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"its replay buffer is not plain arrays ({error})") from None
    if set(found) != set(expected):
        raise ArtifactError(f"its replay buffer holds {sorted(found)}, where this model's holds {sorted(expected)}")
    if str(found["buffer"]) != str(expected["buffer"]):
        raise ArtifactError(f"its replay buffer is a {found['buffer']}, where this model's is a {expected['buffer']}")
    for key, want in expected.items():
        have = found[key]
        if have.shape != np.shape(want) or have.dtype != np.asarray(want).dtype:
            raise ArtifactError(f"its replay buffer's {key} is {have.dtype}{list(have.shape)}, where this model's "
                                f"is {np.asarray(want).dtype}{list(np.shape(want))} (another buffer_size or env?)")
    pos = int(found["pos"])
    if not 0 <= pos < buffer.buffer_size:
        raise ArtifactError(f"its replay buffer's position {pos} is outside its size {buffer.buffer_size}")
    for key, value in found.items():
        if key in ("buffer", "pos", "full"):
            continue
        name, _, part = key.partition("/")
        (getattr(buffer, name)[part] if part else getattr(buffer, name))[...] = value
    buffer.pos, buffer.full = pos, bool(found["full"])


# -- loading ----------------------------------------------------------------------------------------


def read_description(zip_bytes: bytes) -> dict[str, Any]:
    """The description inside a model zip; ArtifactError for a file without one (saved by an older
    rl-module: its data can only be unpickled)."""
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            if DESCRIPTION not in archive.namelist():
                raise ArtifactError("it was saved without a description (by an older rl-module, or another tool), "
                                    "so loading it would unpickle what it says")
            described = json.loads(archive.read(DESCRIPTION))
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ArtifactError(f"it is not a stable-baselines3 model file ({error})") from None
    if not isinstance(described, dict) or not isinstance(data, dict):  # JSON, but not what SB3 and we write
        raise ArtifactError("its description or its data is not a JSON object")
    if described.get("format") != FORMAT:
        raise ArtifactError(f"its description has format {str(described.get('format'))[:20]!r}; this rl-module "
                            f"reads {FORMAT}: upgrade rl-module")
    if not isinstance(described.get("entries"), dict) or not isinstance(described.get("undescribable", {}), dict):
        raise ArtifactError("its description's entries are not a JSON object")
    _check_names(list(described["entries"].values()))
    pickled = {k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}
    missing = sorted(pickled - set(described["entries"]) - set(RUNTIME_STATE))
    if missing:
        reasons = described.get("undescribable") or {}
        said = "; ".join(f"{k}: {reasons.get(k, 'not described')}" for k in missing)
        raise ArtifactError(f"its saved data holds pickles the description does not replace ({said})")
    return dict(described)


def custom_objects(described: dict[str, Any], custom_class: type | None = None) -> dict[str, Any]:
    """Every pickled entry of SB3's data, rebuilt from the description: what SB3's load then uses instead
    of deserializing anything."""
    objects = {key: rebuild_value(value, custom_class) for key, value in described["entries"].items()}
    objects |= {key: None for key in RUNTIME_STATE}
    return objects


def load(zip_bytes: bytes, algorithm: str, *, device: str = "auto", custom_class: type | None = None,
         env: VecEnv | None = None) -> BaseAlgorithm:
    """A model from the bytes read and checked, without unpickling anything."""
    from .agent import algorithm_class

    described = read_description(zip_bytes)
    cls = algorithm_class(algorithm)
    if described["algorithm"] != cls.__name__.lower():
        raise ArtifactError(f"it is a {described['algorithm']} model, not {algorithm}")
    return cls.load(io.BytesIO(zip_bytes), env=env, device=device,
                    custom_objects=custom_objects(described, custom_class))


def check_stats(zip_bytes: bytes, stats: bytes | None) -> None:
    """The statistics must be the ones the (checked, signed) model zip names."""
    expected = read_description(zip_bytes).get("stats_sha256")
    actual = None if stats is None else hashlib.sha256(stats).hexdigest()
    if expected == actual:
        return
    if actual is None:
        raise ArtifactError(f"its normalization statistics (sha256 {str(expected)[:12]}…) are missing")
    if expected is None:
        raise ArtifactError("normalization statistics lie beside it, and it was saved without any")
    raise ArtifactError("the normalization statistics beside it are not the ones it was saved with")


def convert_trusting(zip_bytes: bytes, pickled_stats: bytes | None, algorithm: str) -> tuple[bytes, bytes | None]:
    """A model saved before descriptions (its data, and its statistics, pickles) as data: (model zip,
    statistics). This UNPICKLES both, running whatever they say: only for a model its operator trusts
    (rl-registry-convert, on their say-so); everything else loads through `load`."""
    import pickle

    from .agent import algorithm_class

    model = algorithm_class(algorithm).load(io.BytesIO(zip_bytes), device="cpu")
    stats = None
    if pickled_stats is not None:
        normalized = pickle.loads(pickled_stats)  # noqa: S301 - the operator vouched for this model
        stats = stats_bytes(normalized)
    return model_bytes(model, None if stats is None else hashlib.sha256(stats).hexdigest()), stats


# -- signing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    text: str  # the sigstore bundle (JSON), as model-signing writes it

    @property
    def key_id(self) -> str:
        """The signing key's hint (the sha256 of its public key), for rl-registry-list."""
        try:
            return str(json.loads(self.text)["verificationMaterial"]["publicKey"]["hint"])
        except (ValueError, KeyError, TypeError):
            return "?"


def _signing_library() -> None:
    """model-signing (and the cryptography it brings) is an extra: a host that signs or verifies needs it."""
    import importlib.util

    if importlib.util.find_spec("model_signing") is None or importlib.util.find_spec("OpenSSL") is None:
        raise ArtifactError("signing and verifying models needs OpenSSF model-signing: pip install "
                            "'rl-module[signing]'")


def check_key(path: str | Path, *, private: bool) -> None:
    """An EC P-256 key in PEM (private for signing, public for verifying); ArtifactError saying what is wrong."""
    _signing_library()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ArtifactError(f"{path} cannot be read ({error.strerror})") from None
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as error:
        kind = "private" if private else "public"
        raise ArtifactError(f"{path} is not a PEM {kind} key without a password ({error}); rl-keygen makes a key "
                            "pair") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        raise ArtifactError(f"{path} is not an elliptic-curve key (model-signing signs with EC P-256; rl-keygen "
                            "makes one)")


def generate_key_pair(private: Path, public: Path) -> str:
    """A new EC P-256 key pair: the private key owner-only, never over an existing file; the public key's
    id (the hint model-signing puts in every signature)."""
    _signing_library()
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(private_pem)
    with open(os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as handle:
        handle.write(public_pem)
    return sign(b"", private).key_id


def sign(zip_bytes: bytes, key_file: str | Path) -> Signature:
    """model-signing's signature of the model zip (which names its statistics by sha256) with an EC key."""
    _signing_library()
    from model_signing import signing

    with tempfile.TemporaryDirectory(prefix="rl-sign-") as folder:
        model, bundle = Path(folder) / "model.zip", Path(folder) / "model.sig"
        model.write_bytes(zip_bytes)
        signing.Config().use_elliptic_key_signer(private_key=Path(key_file)).sign(model, bundle)
        return Signature(bundle.read_text())


def verify(zip_bytes: bytes, signature: str | None, trusted: Sequence[str | Path]) -> str:
    """The id of the trusted key that signed these very bytes; ArtifactError when none did."""
    _signing_library()
    from model_signing import verifying

    if signature is None:
        raise ArtifactError("it is not signed, and registry.trustedKeys is set: only signed models are loaded")
    failures = []
    with tempfile.TemporaryDirectory(prefix="rl-verify-") as folder:
        model, bundle = Path(folder) / "model.zip", Path(folder) / "model.sig"
        model.write_bytes(zip_bytes)
        bundle.write_text(signature)
        for key in trusted:
            try:
                verifying.Config().use_elliptic_key_verifier(public_key=Path(key)).verify(model, bundle)
            except Exception as error:  # model-signing's own: a wrong key, a changed file, a malformed bundle
                failures.append(f"{Path(key).name}: {type(error).__name__}")
                continue
            return Signature(signature).key_id
    raise ArtifactError(f"its signature verifies against none of registry.trustedKeys ({'; '.join(failures)})")
