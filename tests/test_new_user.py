"""What a new user trips on, one regression test per finding, through the real commands; and a property
test: every form of a Gymnasium env id resolves to one spec for thresholds, presets and registry filters,
and no model below a known threshold is ever validated."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, command
from rl_module.env import canonical_id
from rl_module.registry import Evaluation, Model, Registry, check_model, reward_threshold, rules
from rl_module.spec import load as load_spec

TINY = ("--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "256", "--eval-freq", "0",
        "--checkpoint-freq", "0", "--episodes", "2", "--seed", "2", "--json")


def train(tmp_path: Path, *args: str, env: dict[str, str] | None = None
          ) -> tuple[dict, subprocess.CompletedProcess[str]]:
    done = command("rl-train", "--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"),
                   *args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done


# 1 -- one spec per env id, and no threshold is no pass ---------------------------------------------------

def test_an_unversioned_id_is_the_newest_version_everywhere_and_its_threshold_holds(tmp_path):
    shown = command("rl-train", "--env-id", "LunarLander", "--print-config")
    config = json.loads(shown.stdout)
    assert config["env"]["envId"]["value"] == "LunarLander-v3"
    assert config["env"]["nEnvs"] == {"value": 32, "source": "preset ppo/LunarLander-v3"}  # the preset applies
    result, done = train(tmp_path, "--env-id", "LunarLander", "--convergence-window", "null", *TINY)
    assert result["env_id"] == "LunarLander-v3" and result["threshold"] == 200
    assert result["evaluation"]["mean_reward"] < 200 and not result["validated"] and "reward" in result["failing_rules"]
    best = command("rl-load-best", "--registry-db", str(tmp_path / "r.db"), "--env-id", "LunarLander")
    assert best.returncode == 1 and "no validated model" in best.stderr
    checked = command("rl-registry-validate", "--registry-db", str(tmp_path / "r.db"), str(result["model_id"]))
    assert "minReward 200" in checked.stdout
    assert "reward threshold from Gymnasium's reward_threshold for LunarLander-v3" in checked.stdout
    assert checked.returncode == 1


def test_without_any_threshold_the_reward_rule_fails_and_says_so_before_training(tmp_path):
    result, done = train(tmp_path, "--env-id", "custom_parts:ReachTarget", "--algorithm", "ppo",
                         "--convergence-window", "null", *TINY, env={"PYTHONPATH": str(ROOT / "tests")})
    assert result["threshold"] is None and not result["validated"] and "reward" in result["failing_rules"]
    assert "no model of this run can be validated; set one with --min-reward" in done.stderr
    checked = command("rl-registry-validate", "--registry-db", str(tmp_path / "r.db"), str(result["model_id"]))
    assert "✗ reward" in checked.stdout and "set registry.minReward" in checked.stdout


# 2 -- --stop-on-reward gives a model that validates ----------------------------------------------------------

@pytest.mark.slow
def test_stop_on_reward_records_the_evaluation_it_stopped_at_and_the_model_validates(tmp_path):
    result, done = train(tmp_path, "--stop-on-reward", "--min-reward", "150", "--eval-freq", "2000", "--episodes",
                         "5", "--convergence-window", "2", "--convergence-tolerance", "0.5", "--seed", "1", "--json")
    assert result["stopped_early"] and result["timesteps"] < 100_000
    last = result["evaluations"][-1]
    assert last["mean_reward"] >= 150 and abs(last["timesteps"] - result["timesteps"]) < 2000
    with Registry(tmp_path / "r.db") as registry:
        history = registry.history(result["run_id"], None)
    assert history == [e["mean_reward"] for e in result["evaluations"]]
    assert result["validated"], result["failing_rules"]


def test_a_run_too_short_to_validate_is_told_so_before_training(tmp_path):
    _, done = train(tmp_path, *TINY)
    assert ("registry.convergenceWindow 3 needs 3 periodic evaluations and this run makes 0 (every 0 = never steps "
            "of 256)") in done.stderr


# 3 -- more steps than asked for are announced ------------------------------------------------------------

def test_a_budget_under_one_rollout_is_announced_before_training(tmp_path):
    from rl_module import spec

    preset = spec.load().presets[("ppo", "CartPole-v1")]
    n_steps, n_envs = preset["agent.kwargs"]["n_steps"], preset["env.nEnvs"]
    result, done = train(tmp_path, "--total-timesteps", "100", "--eval-freq", "0", "--episodes", "1", "--json")
    assert f"this run trains {n_steps * n_envs:,} steps, not the 100 asked for: ppo learns from whole rollouts of " \
           f"n_steps {n_steps} x {n_envs} envs" in done.stderr
    assert result["timesteps"] == n_steps * n_envs


# 4 -- rl-eval shows and checks the model's env; a weaker evaluation does not replace a stronger one ------------

def test_rl_eval_reads_the_models_env_refuses_another_and_keeps_the_stronger_evaluation(tmp_path):
    result, _ = train(tmp_path, "--env-id", "LunarLander-v3", *TINY[:-3], "--episodes", "3", "--json")
    shown = json.loads(command("rl-eval", "--model-path", result["model_path"], "--print-config").stdout)
    assert shown["env"]["envId"] == {"value": "LunarLander-v3", "source": f"run {result['run_id']}"}
    other = command("rl-eval", "--model-path", result["model_path"], "--env-id", "CartPole-v1")
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "Traceback" not in other.stderr
    assert "option env.envId from flag --env-id: 'CartPole-v1' does not fit the model" in other.stderr
    db = str(tmp_path / "r.db")
    weaker = command("rl-eval", "--registry-db", db, "--model-id", str(result["model_id"]), "--episodes", "2",
                     cwd=tmp_path)
    assert weaker.returncode in (0, 1) and "keeps its 3-episode evaluation" in weaker.stdout
    with Registry(db) as registry:
        assert registry.get(result["model_id"]).eval_episodes == 3
    stronger = command("rl-eval", "--registry-db", db, "--model-id", str(result["model_id"]), "--episodes", "4",
                       "--json", cwd=tmp_path)
    assert json.loads(stronger.stdout)["written_back"]
    with Registry(db) as registry:
        assert registry.get(result["model_id"]).eval_episodes == 4


# 5 -- booleans are uniform; a CNN policy needs images ------------------------------------------------------

def test_nullable_booleans_are_switches_and_a_cnn_policy_on_vectors_is_refused():
    for flag, value in (("--progress-bar", True), ("--no-progress-bar", False)):
        shown = json.loads(command("rl-train", flag, "--print-config").stdout)
        assert shown["train"]["progressBar"] == {"value": value, "source": f"flag {flag}"}
    from_env = json.loads(command("rl-train", "--print-config", env={"RL_TRAIN_PROGRESS_BAR": "null"}).stdout)
    assert from_env["train"]["progressBar"]["value"] is None
    cnn = command("rl-train", "--policy-type", "CnnPolicy", "--total-timesteps", "64")
    assert cnn.returncode == 2 and cnn.stderr.count("\n") == 1
    assert "option agent.policyType from flag --policy-type: 'CnnPolicy' needs image observations" in cnn.stderr


# 6 -- reading commands do not create a registry; ./dev ------------------------------------------------------

@pytest.mark.parametrize("name,args", [("rl-load-best", ()), ("rl-registry-list", ()),
                                       ("rl-infer", ("--obs", "[0, 0, 0, 0]")), ("rl-registry-validate", ("1",))])
def test_a_command_that_only_reads_the_registry_does_not_create_one_and_says_where_it_looked(name, args, tmp_path):
    done = command(name, *args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"no registry at {tmp_path / 'rl_registry.db'} (registry.dbPath from default)" in done.stderr
    assert not list(tmp_path.iterdir())


def test_dev_runs_a_command_by_its_short_name_and_its_help_is_only_help():
    dev = [str(ROOT / "dev")]
    helped = subprocess.run([*dev, "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and "set -euo" not in helped.stdout and "./dev test" in helped.stdout
    short = subprocess.run([*dev, "eval", "--help"], capture_output=True, text=True, check=False)
    assert short.returncode == 0 and short.stdout.startswith("usage: rl-eval")
    unknown = subprocess.run([*dev, "nonsense"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "rl-eval" in unknown.stderr


# 7 -- messages -------------------------------------------------------------------------------------------

def test_messages_point_at_what_was_meant():
    cut = command("rl-train", "--env", "CartPole-v1")
    assert cut.returncode == 2 and "did you mean --env-id or --env-kwargs?" in cut.stderr
    python = command("rl-train", "--env-kwargs", "{'continuous': True}")
    assert python.returncode == 2 and "JSON, not Python: double quotes and true, false, null" in python.stderr
    for name in ("rl-eval", "rl-infer"):
        description = command(name, "--help").stdout.split("\n\n")[1]
        assert description.rstrip().endswith("."), description
    assert json.loads(command("introspect-options", "--print-config").stdout) == {}


def test_a_missing_model_id_is_a_usage_error_everywhere(tmp_path):
    train(tmp_path, *TINY)
    db = str(tmp_path / "r.db")
    for name, args in (("rl-registry-validate", ("999",)), ("rl-infer", ("--model-id", "999", "--obs", "[0,0,0,0]"))):
        done = command(name, "--registry-db", db, *args)
        assert done.returncode == 2, (name, done.stderr)


# 8 -- the README says what the presets do --------------------------------------------------------------------

def test_the_readme_states_each_trading_presets_window_and_the_module_form_gets_it():
    readme = (ROOT / "docs/training.md").read_text()
    for env_id in ("forex-v0", "stocks-v0"):
        kwargs = load_spec().presets[("ppo", env_id)]["env.kwargs"]
        stated = json.dumps({"window_size": kwargs["window_size"], "frame_bound": list(kwargs["frame_bound"])})
        assert f"`{env_id}`: `{stated}`" in " ".join(readme.split()), env_id
    shown = json.loads(command("rl-train", "--env-id", "gym_anytrading:stocks-v0", "--print-config").stdout)
    assert shown["env"]["kwargs"]["source"] == "preset ppo/stocks-v0"


# property: one spec per id, no pass below a threshold ----------------------------------------------------

REGISTERED = sorted(i for i in gym.registry if gym.registry[i].namespace is None)


def forms(env_id: str) -> list[str]:
    spec = gym.registry[env_id]
    found = [env_id, f"gymnasium:{env_id}"]
    if spec.version is not None and canonical_id(spec.name) == env_id:  # the newest version answers to no version
        found += [spec.name, f"gymnasium:{spec.name}"]
    return found


@settings(max_examples=60, deadline=None)
@given(env_id=st.sampled_from(REGISTERED), data=st.data())
def test_every_form_of_an_id_resolves_to_one_spec_and_nothing_below_its_threshold_validates(env_id, data):
    form = data.draw(st.sampled_from(forms(env_id)))
    assert canonical_id(form) == env_id
    threshold = gym.registry[env_id].reward_threshold
    assert reward_threshold(form) == threshold
    presets = load_spec().presets
    assert {a for a, e in presets if e == canonical_id(form)} == {a for a, e in presets if e == env_id}
    with tempfile.TemporaryDirectory() as folder, Registry(Path(folder) / "r.db") as registry:
        registry.register(model_path=__file__, sha256="0", algorithm="ppo", env_id=env_id, total_timesteps=1,
                          run_id=None, kind="imported", hyperparams=None, git_commit=None)
        assert [m.env_id for m in registry.models(env_id=canonical_id(form))] == [env_id]
    mean = data.draw(st.floats(-1e6, (threshold if threshold is not None else 1e6), allow_nan=False))
    if threshold is not None and mean >= threshold:
        mean = threshold - 1
    std = data.draw(st.floats(0, abs(mean) + 1, allow_nan=False))
    model = Model(1, __file__, "ppo", form, 0, 10**9, mean, std, 10.0, None, None, False, None, None, "final", 10,
                  None, None)
    checks = {c.rule: c.passed for c in check_model(model, rules(None, 1, None, 0.1, form), [])}
    assert checks["reward"] is False
    assert Evaluation(mean, std, 10.0, 10).mean_reward == mean
