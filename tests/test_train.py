"""Training and evaluation with real stable-baselines3 and Gymnasium, on tiny budgets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import command
from rl_module.cli import run
from rl_module.cli.eval import COMMAND as EVAL
from rl_module.cli.train import COMMAND as TRAIN


def train(tmp_path: Path, capsys, *argv: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    code = run(TRAIN, ["--json", "--model-dir", str(tmp_path / "models"), "--no-registry", *argv], environ or {})
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def refused(capsys, *argv: str) -> str:
    code = run(TRAIN, ["--total-timesteps", "64", *argv], {})
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("algorithm,env_id,steps", [
    ("ppo", "CartPole-v1", 512), ("a2c", "CartPole-v1", 400), ("dqn", "CartPole-v1", 300),
    ("sac", "Pendulum-v1", 300), ("td3", "Pendulum-v1", 300),
])
def test_each_algorithm_trains_evaluates_and_saves(algorithm, env_id, steps, tmp_path, capsys):
    result = train(tmp_path, capsys, "--algorithm", algorithm, "--env-id", env_id, "--total-timesteps", str(steps),
                   "--episodes", "2", "--eval-freq", "0", "--agent-kwargs", '{"learning_starts": 50}'
                   if algorithm in ("dqn", "sac", "td3") else "{}")
    assert result["algorithm"] == algorithm and result["env_id"] == env_id
    assert result["timesteps"] >= steps
    assert Path(result["model_path"]).is_file()
    assert result["evaluation"]["episodes"] == 2
    assert np.isfinite(result["evaluation"]["mean_reward"])
    # train.fusedOptimizer (on by default): every optimizer with a fused kernel steps with it; A2C's RMSprop has none.
    optimizers = saved_optimizers(result["model_path"])
    assert optimizers and all(fused == [algorithm != "a2c"] for fused, _ in optimizers.values()), optimizers
    # rl-eval reads the model back with the run's own configuration.
    assert run(EVAL, ["--json", "--model-path", result["model_path"], "--episodes", "2"], {}) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["episodes"] == 2 and np.isfinite(evaluated["mean_reward"])


def saved_states(model_path: str) -> dict[str, Any]:
    """The torch states saved in a model file (policy.pth, policy.optimizer.pth, ...), by member name."""
    import io
    import zipfile

    import torch

    with zipfile.ZipFile(model_path) as archive:
        return {name: torch.load(io.BytesIO(archive.read(name)), weights_only=False)
                for name in archive.namelist() if name.endswith(".pth")}


def saved_optimizers(model_path: str) -> dict[str, tuple[list[bool], list[float]]]:
    """Each optimizer saved in a model file: whether each of its parameter groups is fused, and its eps."""
    return {name: ([bool(g.get("fused")) for g in state["param_groups"]], [g["eps"] for g in state["param_groups"]])
            for name, state in saved_states(model_path).items() if "optimizer" in name}


def test_the_fused_optimizer_makes_the_same_updates_as_sb3s_own_up_to_rounding(tmp_path, capsys):
    """train.fusedOptimizer switches the optimizer SB3 built, keeping SB3's settings for it (PPO's Adam eps 1e-5);
    false trains with SB3's optimizer as it built it."""
    argv = ("--seed", "3", "--total-timesteps", "512", "--eval-freq", "0", "--episodes", "1", "--no-preset",
            "--agent-kwargs", '{"n_steps": 256, "n_epochs": 4}', "--batch-size", "32")
    fused = train(tmp_path / "fused", capsys, *argv)
    plain = train(tmp_path / "plain", capsys, *argv, "--no-fused-optimizer")
    assert saved_optimizers(fused["model_path"]) == {"policy.optimizer.pth": ([True], [1e-5])}
    assert saved_optimizers(plain["model_path"]) == {"policy.optimizer.pth": ([False], [1e-5])}
    weights = [saved_states(r["model_path"])["policy.pth"] for r in (fused, plain)]
    difference = max(float((weights[0][k] - weights[1][k]).abs().max()) for k in weights[0])
    assert difference < 1e-5, difference  # 64 updates, apart only by float rounding


def test_a_seeded_run_is_reproducible(tmp_path, capsys):
    argv = ("--seed", "7", "--total-timesteps", "1024", "--eval-freq", "512", "--episodes", "3")
    first = train(tmp_path / "a", capsys, *argv)
    second = train(tmp_path / "b", capsys, *argv)
    assert first["evaluation"] == second["evaluation"]
    assert first["evaluations"] == second["evaluations"]
    progress = [(Path(r["run_dir"]) / "progress.csv").read_text().splitlines() for r in (first, second)]
    # The losses and rewards are the same; only the wall-clock columns differ.
    header = progress[0][0].split(",")
    kept = [i for i, name in enumerate(header) if "time" not in name and "fps" not in name]
    rows = [[[line.split(",")[i] for i in kept] for line in p[1:]] for p in progress]
    assert rows[0] == rows[1] and len(rows[0]) > 1
    third = train(tmp_path / "c", capsys, "--seed", "8", *argv[2:])
    assert third["evaluations"] != first["evaluations"] or third["evaluation"] != first["evaluation"]


def test_normalization_statistics_are_saved_beside_every_model_and_restored(tmp_path, capsys):
    result = train(tmp_path, capsys, "--normalize", "both", "--total-timesteps", "1024", "--checkpoint-freq", "512",
                   "--eval-freq", "512", "--episodes", "2", "--seed", "3")
    run_dir = Path(result["run_dir"])
    models = [run_dir / "model.zip", run_dir / "best_model.zip", *sorted((run_dir / "checkpoints").glob("*.zip"))]
    assert len(models) >= 4
    for model in models:
        assert model.with_name(model.name.removesuffix(".zip") + ".stats.npz").is_file(), model
    with np.load(run_dir / "model.stats.npz", allow_pickle=False) as saved:  # plain arrays, no pickle
        mean, count = saved["obs_mean"], saved["obs_count"]
    assert count > 1000 and not np.allclose(mean, 0)

    from rl_module import env, obs

    config, _ = EVAL.configure(["--normalize", "both"], {})
    restored = obs.restore(env.make(config, 1, 0), config, (run_dir / "model.stats.npz").read_bytes())
    assert np.allclose(restored.obs_rms.mean, mean) and restored.obs_rms.count == count
    assert restored.training is False and restored.norm_reward is False


def test_rewards_alone_are_normalized_and_their_models_evaluate_and_answer(tmp_path, capsys):
    """obs.normalize = "reward": SB3 keeps no observation statistics then (its VecNormalize has no obs_rms),
    and saving the first best model asked for them: the run died at its first evaluation."""
    result = train(tmp_path, capsys, "--normalize", "reward", "--total-timesteps", "1024", "--eval-freq", "512",
                   "--episodes", "2", "--seed", "3")
    run_dir = Path(result["run_dir"])
    for model in ("model", "best_model"):
        with np.load(run_dir / f"{model}.stats.npz", allow_pickle=False) as saved:
            assert not saved["norm_obs"] and saved["norm_reward"] and saved["ret_count"] > 1, model
            assert not [name for name in saved.files if name.startswith("obs_")], model

    assert run(EVAL, ["--json", "--model-path", result["model_path"], "--normalize", "reward", "--episodes", "2"],
               {}) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["episodes"] == 2 and np.isfinite(evaluated["mean_reward"])
    answered = command("rl-infer", "--model-path", result["model_path"], "--normalize", "reward",
                       "--obs", "[0, 0, 0, 0]", cwd=tmp_path)
    assert answered.returncode == 0 and json.loads(answered.stdout) in (0, 1), answered.stderr
    resumed = train(tmp_path, capsys, "--resume", str(run_dir), "--total-timesteps", "1536")
    assert resumed["timesteps"] >= 1536 and resumed["run_dir"] == str(run_dir)


def test_no_temporary_files_are_left_and_checkpoints_follow_the_frequency(tmp_path, capsys):
    result = train(tmp_path, capsys, "--total-timesteps", "2048", "--checkpoint-freq", "500", "--eval-freq", "0",
                   "--n-envs", "2", "--no-preset", "--agent-kwargs", '{"n_steps": 256}')
    run_dir = Path(result["run_dir"])
    steps = sorted(int(p.stem.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*.zip"))
    assert len(steps) == 4 and all(500 * (i + 1) <= s < 500 * (i + 1) + 2 for i, s in enumerate(steps))
    assert not [p for p in run_dir.rglob("*") if ".tmp-" in p.name]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["options"]["store"]["checkpointFreq"] == {"value": 500, "source": "flag --checkpoint-freq"}


def test_presets_apply_under_what_the_user_sets(capsys):
    from rl_module import spec

    preset = spec.load().presets[("ppo", "CartPole-v1")]
    assert run(TRAIN, ["--print-config", "--gamma", "0.9", "--agent-kwargs", '{"n_epochs": 5}'], {}) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["env"]["nEnvs"] == {"value": preset["env.nEnvs"], "source": "preset ppo/CartPole-v1"}
    assert printed["train"]["gamma"] == {"value": 0.9, "source": "flag --gamma"}
    kwargs = printed["agent"]["kwargs"]
    assert preset["agent.kwargs"]["n_epochs"] != 5
    assert kwargs["value"]["n_epochs"] == 5 and kwargs["value"]["n_steps"] == preset["agent.kwargs"]["n_steps"]
    assert kwargs["source"] == "flag --agent-kwargs over preset ppo/CartPole-v1"
    assert run(TRAIN, ["--print-config", "--no-preset"], {}) == 0
    assert json.loads(capsys.readouterr().out)["env"]["nEnvs"]["source"] == "default"


def test_every_preset_is_valid_for_its_options():
    from rl_module import spec

    loaded = spec.load()
    assert ("ppo", "CartPole-v1") in loaded.presets
    for (algorithm, _env_id), values in loaded.presets.items():
        assert algorithm in ("ppo", "a2c", "dqn", "sac", "td3")
        for path, value in values.items():
            option = loaded.option(path)
            text = json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)
            assert option.parse(text) == value, path


def test_transformer_encoder_shapes_and_learning(tmp_path, capsys):
    import gymnasium as gym
    import torch

    from rl_module.feature import TransformerEncoder

    vector = TransformerEncoder(gym.spaces.Box(-1, 1, shape=(6,)), features_dim=16)
    assert vector(torch.zeros(5, 6)).shape == (5, 16) and vector.tokens == 6
    window = TransformerEncoder(gym.spaces.Box(-1, 1, shape=(10, 3)), features_dim=8)
    assert window(torch.randn(2, 10, 3)).shape == (2, 8) and (window.tokens, window.token_dim) == (10, 3)
    # Attention mixes tokens: changing one token changes the pooled features.
    x = torch.randn(1, 10, 3)
    y = x.clone()
    y[0, 0] += 1.0
    assert not torch.allclose(window(x), window(y))
    result = train(tmp_path, capsys, "--encoder", "transformer", "--embed-dim", "16", "--total-timesteps", "512",
                   "--eval-freq", "0", "--episodes", "2")
    assert Path(result["model_path"]).is_file()


def test_custom_env_and_custom_encoder_by_module_and_class(tmp_path, capsys):
    result = train(tmp_path, capsys, "--env-id", "custom_parts:ReachTarget", "--env-kwargs", '{"size": 2.0}',
                   "--encoder", "custom", "--custom-class", "custom_parts:TinyEncoder", "--embed-dim", "8",
                   "--total-timesteps", "256", "--eval-freq", "0", "--episodes", "2")
    assert result["evaluation"]["mean_episode_length"] == 20
    err = refused(capsys, "--encoder", "custom", "--custom-class", "custom_parts:NotAnEncoder")
    assert "not a stable_baselines3 BaseFeaturesExtractor" in err
    err = refused(capsys, "--encoder", "custom", "--custom-class", "custom_parts:Missing")
    assert "feature.customClass" in err and "cannot be imported" in err


@pytest.mark.parametrize("argv,expected", [
    (("--env-id", "NoSuchEnv-v0"), "option env.envId from flag --env-id: 'NoSuchEnv-v0' is not a registered"),
    (("--env-id", "LunarLander-v2"), "Please use `LunarLander-v3` instead"),
    (("--env-id", "CartPol-v1"), "did you mean CartPole-v1"),
    (("--env-id", "custom_parts:NoSuchClass"), "option env.envId"),
    (("--env-id", "no_such_package.envs:Env"), "cannot import module 'no_such_package.envs'"),
    (("--algorithm", "dqn", "--env-id", "Pendulum-v1"), "'dqn' cannot act in a Box action space"),
    (("--algorithm", "sac"), "'sac' cannot act in a Discrete action space"),
    (("--algorithm", "td3"), "use ppo, a2c or dqn"),
    (("--stack-frames", "4",), "option obs.stackFrames from flag --stack-frames: 4 stacks image frames"),
    (("--encoder", "cnn",), "needs image observations"),
    (("--env-kwargs", '{"gravity": 1}'), "option env.kwargs"),
    (("--agent-kwargs", '{"n_stepz": 3}'), "n_stepz (did you mean n_steps?)"),
    (("--policy-type", "MultiInputPolicy"), "use MlpPolicy or CnnPolicy"),
    (("--stop-on-reward", "--env-id", "Pendulum-v1", "--algorithm", "sac"), "registers no reward threshold"),
])
def test_bad_input_is_refused_before_training(argv, expected, capsys, tmp_path):
    err = refused(capsys, "--model-dir", str(tmp_path), *argv)
    assert expected in err
    assert not any(tmp_path.iterdir()), "nothing is written for a refused run"


def test_the_real_command_refuses_an_unknown_env_without_traceback(tmp_path):
    result = command("rl-train", "--env-id", "LunarLander-v2", cwd=tmp_path)
    assert result.returncode == 2
    assert "LunarLander-v3" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_default_command_trains_cartpole_past_the_seed_threshold(tmp_path):
    """The README's `./dev train`: no flags at all."""
    result = command("rl-train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reward = float(re.search(r"^  reward\s+([-\d.]+) ±", result.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert reward >= 195, result.stdout
    model = tmp_path / re.search(r"^  model\s+(\S+)$", result.stdout, re.M).group(1)  # type: ignore[union-attr]
    assert model.is_file()
    evaluated = command("rl-eval", "--model-path", str(model), "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["mean_reward"] >= 195


def test_subprocess_vectorization_trains_like_in_process(tmp_path, capsys):
    argv = ("--seed", "4", "--total-timesteps", "512", "--n-envs", "2", "--eval-freq", "0", "--episodes", "2",
            "--no-preset", "--agent-kwargs", '{"n_steps": 128}')
    in_process = train(tmp_path / "dummy", capsys, *argv)
    subprocesses = train(tmp_path / "subproc", capsys, *argv, "--vec-env", "subproc")
    config = json.loads((Path(subprocesses["run_dir"]) / "config.json").read_text())
    assert config["options"]["env"]["vecEnv"]["value"] == "subproc"
    # The same seed gives the same numbers whichever way the copies are stepped.
    assert subprocesses["evaluation"] == in_process["evaluation"]
