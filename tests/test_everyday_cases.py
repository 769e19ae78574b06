"""Everyday cases a new user tripped on, through the real commands: an env and an encoder of one's own in
the current folder (outside the project), episodes that never end, and a registry written by other tools
that spell algorithms in capitals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import command
from rl_module.env import EPISODE_GUARD
from rl_module.registry import SCHEMA_VERSION, Evaluation, Registry, rules
from rl_module.store import sha256_of

ENVS = '''
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right to the end of a corridor; ends there (terminated) and nowhere else."""

    def __init__(self, length=6):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.position = max(0, self.position + (1 if action == 1 else -1))
        done = self.position >= self.length
        return np.array([self.position / self.length], dtype=np.float32), float(done), done, False, {}


class Endless(Corridor):
    """A corridor with no end: no termination, no truncation, no TimeLimit."""

    def step(self, action):
        observation, _, _, _, info = super().step(action)
        return observation, 0.0, False, False, info
'''

ENCODERS = '''
import numpy as np
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class Tiny(BaseFeaturesExtractor):
    def __init__(self, observation_space, features_dim=4):
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(observation_space.shape)), features_dim))

    def forward(self, observations):
        return self.net(observations)
'''

SMALL = ("--total-timesteps", "256", "--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--eval-freq", "0",
         "--checkpoint-freq", "0", "--no-registry", "--json")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder, outside this repository, holding their own package."""
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "envs.py").write_text(ENVS)
    (package / "encoders.py").write_text(ENCODERS)
    return tmp_path


def test_an_env_and_an_encoder_from_the_current_folder(project):
    trained = command("rl-train", "--env-id", "mypkg.envs:Corridor", "--encoder", "custom", "--custom-class",
                      "mypkg.encoders:Tiny", "--episodes", "2", "--max-episode-steps", "40", *SMALL, cwd=project)
    assert trained.returncode == 0, trained.stderr
    model = json.loads(trained.stdout)["model_path"]
    assert json.loads(trained.stdout)["evaluation"]["mean_episode_length"] <= 40
    # Subprocess workers find the package too, and so do evaluation and inference of the saved model.
    vectorized = command("rl-train", "--env-id", "mypkg.envs:Corridor", "--n-envs", "2", "--vec-env", "subproc",
                         "--episodes", "1", "--max-episode-steps", "40", *SMALL, cwd=project)
    assert vectorized.returncode == 0, vectorized.stderr
    # The encoder's class comes from the loading host's own options, never from the model or its run.
    unnamed = command("rl-eval", "--model-path", model, "--episodes", "2", cwd=project)
    assert unnamed.returncode == 1 and unnamed.stderr.count("\n") == 1, unnamed.stderr
    assert "trained with a custom encoder: set feature.customClass on this host" in unnamed.stderr
    own = ("--custom-class", "mypkg.encoders:Tiny")
    evaluated = command("rl-eval", "--model-path", model, *own, "--episodes", "2", "--json", cwd=project)
    assert evaluated.returncode == 0, evaluated.stderr
    inferred = command("rl-infer", "--model-path", model, *own, "--obs", "[0.5]", cwd=project)
    assert inferred.returncode == 0 and json.loads(inferred.stdout) in (0, 1), inferred.stderr

    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    missing = command("rl-train", "--env-id", "mypkg.envs:Corridor", *SMALL, cwd=elsewhere)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert (f"option env.envId from flag --env-id: 'mypkg.envs:Corridor' cannot import module 'mypkg.envs' "
            f"(no module named 'mypkg' in the current folder {elsewhere} or on the Python path") in missing.stderr


def test_the_episode_step_limit_option_ends_episodes_of_an_env_without_one(project):
    limited = command("rl-train", "--env-id", "mypkg.envs:Endless", "--max-episode-steps", "25", "--episodes", "3",
                      *SMALL, cwd=project)
    assert limited.returncode == 0, limited.stderr
    result = json.loads(limited.stdout)
    assert result["evaluation"]["mean_episode_length"] == 25
    evaluated = command("rl-eval", "--model-path", result["model_path"], "--episodes", "2", "--json", cwd=project)
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["mean_episode_length"] == 25
    shorter = command("rl-eval", "--model-path", result["model_path"], "--episodes", "2", "--max-episode-steps",
                      "7", "--json", cwd=project)
    assert json.loads(shorter.stdout)["mean_episode_length"] == 7
    bad = command("rl-train", "--max-episode-steps", "0", *SMALL, cwd=project)
    assert bad.returncode == 2 and "option env.maxEpisodeSteps from flag --max-episode-steps" in bad.stderr


@pytest.mark.slow
def test_an_evaluation_of_an_env_whose_episodes_never_end_is_bounded_and_names_the_option(project):
    endless = command("rl-train", "--env-id", "mypkg.envs:Endless", "--episodes", "1", *SMALL, cwd=project,
                      timeout=300)
    assert endless.returncode == 0, endless.stderr
    assert json.loads(endless.stdout)["evaluation"]["mean_episode_length"] == EPISODE_GUARD
    assert f"ran {EPISODE_GUARD} steps without ending" in endless.stderr
    assert "env.maxEpisodeSteps (--max-episode-steps, RL_ENV_MAX_EPISODE_STEPS)" in endless.stderr


def test_algorithm_names_written_by_other_tools_compare_case_insensitively(tmp_path):
    trained = command("rl-train", "--model-dir", str(tmp_path / "models"), "--seed", "1", *SMALL[:-2], "--json",
                      "--no-registry", "--episodes", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    model = Path(json.loads(trained.stdout)["model_path"])
    db = tmp_path / "other-tool.db"
    with Registry(db) as registry:
        ids = [registry.register(model_path=model, sha256=sha256_of(model), algorithm=name, env_id="CartPole-v1",
                                 total_timesteps=256, run_id=None, kind="imported", hyperparams=None, git_commit=None,
                                 evaluation=Evaluation(reward, 1.0, 20.0, 10))
               for name, reward in (("PPO", 200.0), ("Ppo", 100.0), ("a2c", 300.0))]
        for model_id in ids:
            assert registry.validate(model_id, rules(0.0, 1, None, 0.1, "CartPole-v1")).valid
        assert registry.best(algorithm="ppo").id == ids[0]
        assert [m.id for m in registry.models(algorithm="PPO")] == ids[:2]
        assert [m.id for m in registry.prune(keep_top_n=1, max_age_days=None, dry_run=True)] == [ids[1]]
        plan = registry.db.execute("EXPLAIN QUERY PLAN SELECT * FROM models WHERE validated = TRUE AND mean_reward"
                                   " IS NOT NULL AND env_id = ? AND lower(algorithm) = ? ORDER BY mean_reward DESC"
                                   " LIMIT 1", ("CartPole-v1", "ppo")).fetchall()
        assert "idx_best_env_algorithm" in str([tuple(r) for r in plan])

    listed = command("rl-registry-list", "--registry-db", str(db), "--algorithm", "ppo", "--json", cwd=tmp_path)
    assert [m["id"] for m in json.loads(listed.stdout)] == ids[:2]
    best = command("rl-load-best", "--registry-db", str(db), "--algorithm", "ppo", cwd=tmp_path)
    assert best.returncode == 0 and best.stdout.strip() == str(model.resolve())
    inferred = command("rl-infer", "--registry-db", str(db), "--algorithm", "ppo", "--obs", "[0, 0, 0, 0]",
                       cwd=tmp_path)
    assert inferred.returncode == 0 and json.loads(inferred.stdout) in (0, 1), inferred.stderr
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
