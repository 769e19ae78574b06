"""ONNX export (issue 27): every kind of model saved with infer.export carries its deterministic policy as
ONNX, normalization included, and plain onnxruntime (what another runtime would use) gives the actions
stable-baselines3's deterministic predict gives, on 1,000 observations: discrete identical, continuous
within 1e-5. The docs' onnxruntime example (docs/registry-and-serving.md) runs as written. The server side
is test_serve_onnx.py."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_model_is_data import _batch, _case

from conftest import ROOT

KINDS = ["ppo-mlp", "a2c-mlp", "dqn-mlp", "sac-mlp", "td3-mlp", "ppo-cnn", "ppo-multiinput"]


def _trained(kind: str, normalize: bool) -> tuple[Any, Any, bytes | None, Any]:
    """(model, its training env, its statistics, the env's own observation space), trained a little."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize, VecTransposeImage

    from rl_module import artifact

    cls, env_id, kwargs = _case(kind)
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    observation_space = venv.observation_space
    if normalize:
        if kind == "ppo-cnn":  # SB3's way: channel-first before VecNormalize, which the CNN then takes as it is
            venv = VecTransposeImage(venv)
            observation_space = venv.observation_space
            kwargs = {**kwargs, "policy_kwargs": {"normalize_images": False}}
        venv = VecNormalize(venv, norm_reward=False)
    # One rollout (and PPO's and A2C's first update): statistics that are not the identity, and weights
    # that are not the initial ones, are all that equality needs; more training would only cost time.
    model = cls(env=venv, **{**kwargs, "learning_starts": 32} if "learning_starts" in kwargs else kwargs).learn(64)
    return model, venv, artifact.stats_bytes(venv), observation_space


def _graph(saved: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        return archive.read("policy.onnx")


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("kind", KINDS)
def test_onnx_actions_are_stable_baselines3s_deterministic_actions(kind, normalize, tmp_path):
    import onnxruntime

    from rl_module import artifact

    model, venv, stats, observation_space = _trained(kind, normalize)
    assert (stats is not None) == normalize
    saved = artifact.model_bytes(model, None if stats is None else hashlib.sha256(stats).hexdigest(), onnx=True,
                                 stats=stats)
    assert artifact.read_description(saved)["onnx"] == {"entry": "policy.onnx"}
    session = onnxruntime.InferenceSession(_graph(saved), providers=["CPUExecutionProvider"])
    observations = _batch(observation_space, 1000)  # as the env gives them: raw, images channel-last
    expected = model.predict(venv.normalize_obs(observations) if normalize else observations, deterministic=True)[0]
    inputs = [node.name for node in session.get_inputs()]
    if isinstance(observations, dict):
        assert inputs == list(observations)  # one input per key, named by it
        feeds = observations
    else:
        assert inputs == ["observation"]
        # The graph takes images channel-first, as the policy sees them (the README says so).
        feeds = {"observation": observations.transpose(0, 3, 1, 2) if observations.shape[-1] == 3 else observations}
    # In the graph's input types: normalized images are float32 to the policy (VecNormalize says so of its space).
    types = {node.name: {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}[node.type]
             for node in session.get_inputs()}
    feeds = {name: np.asarray(value, dtype=types[name]) for name, value in feeds.items()}
    actions = session.run(None, feeds)[0].reshape(expected.shape)
    assert len(actions) == 1000
    if expected.dtype.kind in "iu":
        assert np.array_equal(actions, expected)
        assert len(np.unique(expected)) > 1 or kind in ("dqn-mlp", "ppo-cnn")  # actions told apart (not all
        # young policies tell them apart)
    else:
        assert np.max(np.abs(actions - expected)) <= 1e-5
        assert np.std(expected) > 0
        low, high = model.action_space.low, model.action_space.high
        assert np.all(actions >= low) and np.all(actions <= high)  # unscaled or clipped into the env's box
    _predictor_acts_the_same(model, venv, tmp_path, observations, expected)


def _predictor_acts_the_same(model: Any, venv: Any, tmp_path: Path, observations: Any, expected: Any) -> None:
    """rl-infer's onnx predictor on the same model saved as rl-train saves it: one observation at a time (its
    buffers bound once), and from four threads at once (one on those buffers, the others on the plain run),
    the actions of the batch."""
    from concurrent.futures import ThreadPoolExecutor

    from rl_module import infer, store
    from rl_module.cli.infer import COMMAND

    saved = store.save_model(model, tmp_path / "model.zip", venv, onnx=True)
    config, _ = COMMAND.configure(["--model-path", str(saved.path), "--runtime", "onnx"], {})
    predictor = infer.predictor(infer.locate(config))
    assert predictor.runtime == "onnx"

    def one(index: int) -> Any:
        observation = {key: value[index] for key, value in observations.items()} \
            if isinstance(observations, dict) else observations[index]
        return predictor.predict(observation)

    count = 200
    for answers in ([one(i) for i in range(count)], list(ThreadPoolExecutor(4).map(one, range(count)))):
        if expected.dtype.kind in "iu":
            assert answers == expected[:count].tolist()
        else:
            assert np.max(np.abs(np.array(answers) - expected[:count])) <= 1e-5


def test_a_policy_the_export_does_not_cover_is_saved_without_one_and_says_why():
    """MultiDiscrete actions: the model is saved (a save never fails for the export), the reason in its
    description, which an onnx server then names."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    from rl_module import artifact

    class Pick(gym.Env):  # type: ignore[type-arg]
        observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        action_space = gym.spaces.MultiDiscrete([2, 3])

        def reset(self, *, seed=None, options=None):
            return np.zeros(2, np.float32), {}

        def step(self, action):
            return np.zeros(2, np.float32), 0.0, True, False, {}

    model = PPO("MlpPolicy", Pick(), n_steps=16, batch_size=16, device="cpu")
    saved = artifact.model_bytes(model, None, onnx=True)
    assert "MultiDiscrete" in artifact.read_description(saved)["onnx"]["error"]
    assert "policy.onnx" not in zipfile.ZipFile(io.BytesIO(saved)).namelist()
    assert artifact.load(saved, "ppo", device="cpu").predict(np.zeros(2, np.float32))[0].shape == (2,)


def test_the_readme_example_runs_a_policy_from_onnx_alone(tmp_path):
    """The README's plain-onnxruntime example, extracted and run as written on a file rl-export wrote: its
    actions are rl-infer's."""
    readme = (ROOT / "docs/registry-and-serving.md").read_text()
    section = readme[readme.index("## Running a policy from ONNX"):]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example is not None
    model, venv, stats, _ = _trained("ppo-mlp", True)
    from rl_module import store

    saved = store.save_model(model, tmp_path / "model.zip", venv, onnx=True)
    exported = tmp_path / "policy.onnx"
    done = subprocess.run([str(Path(sys.executable).parent / "rl-export"), "--model-path", str(saved.path),
                           str(exported)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "example.py"
    script.write_text(example.group(1))
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert ran.returncode == 0, ran.stderr
    observation = [0.02, -0.01, 0.03, 0.04]
    expected = model.predict(venv.normalize_obs(np.array([observation], np.float32)), deterministic=True)[0]
    assert ran.stdout.split() == [str(int(expected[0]))]
