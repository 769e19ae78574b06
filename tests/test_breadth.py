"""The seed's environments, encoders, Dict observations, devices and evaluation video: each trains
briefly, evaluates, registers and answers an observation through rl-infer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, command
from rl_module.cli import run
from rl_module.cli.eval import COMMAND as EVAL
from rl_module.cli.infer import COMMAND as INFER
from rl_module.cli.train import COMMAND as TRAIN


def train(tmp_path: Path, capsys: Any, *argv: str) -> dict[str, Any]:
    code = run(TRAIN, ["--json", "--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"),
                       "--episodes", "2", "--eval-freq", "0", "--checkpoint-freq", "0", "--seed", "0", *argv], {})
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def infer(tmp_path: Path, capsys: Any, model_id: int, observation: Any) -> Any:
    code = run(INFER, ["--registry-db", str(tmp_path / "r.db"), "--model-dir", str(tmp_path / "models"),
                       "--model-id", str(model_id),
                       "--obs", json.dumps(observation)], {})
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def as_json(observation: Any) -> Any:
    if isinstance(observation, dict):
        return {k: as_json(v) for k, v in observation.items()}
    return np.asarray(observation).tolist()


def first_observation(env_id: str, **kwargs: Any) -> Any:
    if env_id in ("forex-v0", "stocks-v0"):
        import gym_anytrading  # noqa: F401 - registers the trading envs

    env = gym.make(env_id, **kwargs)
    observation, _ = env.reset(seed=0)
    space = env.action_space
    env.close()
    return as_json(observation), space


ENVIRONMENTS = [
    # id, algorithm, steps, what keeps the preset's budget small (its rollouts are sized for 1M steps)
    ("CartPole-v1", "ppo", 512, ()),
    ("LunarLander-v3", "ppo", 512, ("--n-envs", "2", "--agent-kwargs", '{"n_steps": 128}')),
    ("Ant-v5", "sac", 300, ("--agent-kwargs", '{"learning_starts": 100}')),
    ("Ant-v4", "td3", 300, ("--agent-kwargs", '{"learning_starts": 100}')),
    ("forex-v0", "ppo", 512, ("--agent-kwargs", '{"n_steps": 256}')),
    ("stocks-v0", "ppo", 256, ("--agent-kwargs", '{"n_steps": 128}')),
]


@pytest.mark.slow
@pytest.mark.parametrize("env_id,algorithm,steps,extra", ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_each_seed_environment_trains_evaluates_registers_and_infers(env_id, algorithm, steps, extra, tmp_path,
                                                                     capsys):
    result = train(tmp_path, capsys, "--env-id", env_id, "--algorithm", algorithm, "--total-timesteps",
                   str(steps), *extra)
    assert result["env_id"] == env_id and result["model_id"] is not None
    assert result["evaluation"]["episodes"] == 2 and np.isfinite(result["evaluation"]["mean_reward"])
    kwargs = {}
    if env_id in ("forex-v0", "stocks-v0"):  # the preset's window and frame, as the run used them
        config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
        kwargs = config["options"]["env"]["kwargs"]["value"]
        assert config["options"]["env"]["kwargs"]["source"].startswith("preset")
    observation, action_space = first_observation(env_id, **kwargs)
    action = infer(tmp_path, capsys, result["model_id"], observation)
    assert action_space.contains(np.asarray(action, dtype=action_space.dtype))


@pytest.mark.slow
def test_cnn_on_channel_last_images_with_embed_dim_and_frame_stacking(tmp_path, capsys):
    from stable_baselines3 import PPO

    result = train(tmp_path, capsys, "--env-id", "custom_parts:FindTheLight", "--policy-type", "CnnPolicy",
                   "--encoder", "cnn", "--embed-dim", "32", "--total-timesteps", "256", "--no-preset",
                   "--agent-kwargs", '{"n_steps": 128}')
    model = PPO.load(result["model_path"], device="cpu")
    assert model.policy.features_extractor.features_dim == 32
    assert model.observation_space.shape == (3, 36, 36)  # SB3 moved the channels first
    image = np.zeros((36, 36, 3), dtype=np.uint8)
    assert infer(tmp_path, capsys, result["model_id"], image.tolist()) in (0, 1)  # channel-last, as the env gives
    stacked = train(tmp_path, capsys, "--env-id", "custom_parts:FindTheLight", "--policy-type", "CnnPolicy",
                    "--encoder", "cnn", "--stack-frames", "2", "--total-timesteps", "256", "--no-preset",
                    "--agent-kwargs", '{"n_steps": 128}')
    assert PPO.load(stacked["model_path"], device="cpu").observation_space.shape == (6, 36, 36)


def test_dict_observations_with_multi_input_policy(tmp_path, capsys):
    result = train(tmp_path, capsys, "--env-id", "custom_parts:ReachTargetDict", "--algorithm", "ppo",
                   "--policy-type", "MultiInputPolicy", "--total-timesteps", "256", "--no-preset",
                   "--agent-kwargs", '{"n_steps": 128}', "--normalize", "obs")
    action = infer(tmp_path, capsys, result["model_id"], {"position": [0.1], "target": [0.5]})
    assert len(action) == 1 and -1.0 <= action[0] <= 1.0
    batch = infer(tmp_path, capsys, result["model_id"], {"position": [[0.1], [0.2]], "target": [[0.5], [0.4]]})
    assert len(batch) == 2
    code = run(INFER, ["--registry-db", str(tmp_path / "r.db"), "--model-id", str(result["model_id"]),
                       "--model-dir", str(tmp_path / "models"), "--obs", '{"position": [0.1]}'], {})
    assert code == 2 and "keys ['position', 'target']" in capsys.readouterr().err


def test_transformer_embed_dim_is_honoured(tmp_path, capsys):
    from stable_baselines3 import PPO

    result = train(tmp_path, capsys, "--encoder", "transformer", "--embed-dim", "24", "--total-timesteps", "256",
                   "--no-preset", "--agent-kwargs", '{"n_steps": 128}')
    extractor = PPO.load(result["model_path"], device="cpu").policy.features_extractor
    assert type(extractor).__name__ == "TransformerEncoder" and extractor.features_dim == 24


@pytest.mark.parametrize("flag", ["--train-device", "--infer-device"])
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_an_absent_device_is_refused_naming_the_option(flag, device, tmp_path, capsys):
    if (device == "cuda" and torch.cuda.is_available()) or (device == "mps" and torch.backends.mps.is_available()):
        pytest.skip(f"this machine has {device}: nothing to refuse")
    if flag == "--train-device":
        code = run(TRAIN, ["--total-timesteps", "64", "--model-dir", str(tmp_path), flag, device], {})
    else:
        result = train(tmp_path, capsys, "--total-timesteps", "128", "--no-preset", "--agent-kwargs",
                       '{"n_steps": 64}')
        code = run(INFER, ["--model-path", result["model_path"], "--obs", "[0,0,0,0]", flag, device], {})
    err = capsys.readouterr().err
    assert code == 2 and f"option {flag[2:].replace('-device', '')}.device from flag {flag}" in err
    assert "not available on this machine" in err


def test_the_cpu_device_trains_and_infers(tmp_path, capsys):
    result = train(tmp_path, capsys, "--train-device", "cpu", "--total-timesteps", "128", "--no-preset",
                   "--agent-kwargs", '{"n_steps": 64}')
    code = run(INFER, ["--model-path", result["model_path"], "--obs", "[0,0,0,0]", "--infer-device", "cpu"], {})
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("module,env_id,extra", [
    ("Box2D", "LunarLander-v3", "box2d"),
    ("mujoco", "Ant-v5", "mujoco"),
    ("gym_anytrading", "forex-v0", "trading"),
])
def test_a_missing_extra_is_named(module, env_id, extra, tmp_path):
    fake = tmp_path / "missing" / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('No module named {module} (this test hides it)')\n")
    result = command("rl-train", "--env-id", env_id, "--total-timesteps", "64", cwd=tmp_path,
                     env={"PYTHONPATH": str(tmp_path / "missing") + os.pathsep + str(ROOT / "tests")})
    assert result.returncode == 2, result.stderr
    assert f"pip install 'rl-module[{extra}]'" in result.stderr and "Traceback" not in result.stderr


def test_eval_records_one_video_per_episode(tmp_path, capsys):
    result = train(tmp_path, capsys, "--total-timesteps", "128", "--no-preset", "--agent-kwargs", '{"n_steps": 64}')
    videos = tmp_path / "videos"
    code = run(EVAL, ["--model-path", result["model_path"], "--episodes", "3", "--video", str(videos), "--json"], {})
    out, err = capsys.readouterr()
    assert code == 0, err
    recorded = sorted(videos.glob("*.mp4"))
    assert len(recorded) == 3 and json.loads(out)["videos"] == [str(v) for v in recorded]
    assert all(v.stat().st_size > 1000 for v in recorded)
    blind = train(tmp_path, capsys, "--env-id", "custom_parts:ReachTarget", "--total-timesteps", "128",
                  "--no-preset", "--agent-kwargs", '{"n_steps": 64}')
    code = run(EVAL, ["--model-path", blind["model_path"], "--video", str(videos)], {})
    assert code == 2 and "does not render rgb_array frames" in capsys.readouterr().err
