"""The best trial's configuration as rl-sweep prints it in Nix, read by the real Nix evaluator and rendered
by the module's renderer (what `rl = { ... };` becomes for every wrapped command and unit), parses back
into exactly the trial's values: not 6 significant digits of them."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import optuna
import pytest

from conftest import ROOT
from rl_module import spec, sweep
from rl_module.cli.train import COMMAND as TRAIN

# Values as a sweep samples them: floats with every digit, a tiny one, a schedule, a list, kwargs.
VALUES = {"train.gamma": 0.9890787098172121, "agent.kwargs.ent_coef": 7.749961e-06,
          "agent.kwargs.gae_lambda": 0.9200000000000002, "agent.kwargs.clip_range": 1e-05,
          "train.learningRate": "lin_0.000123457", "agent.netArch": [64, 64], "agent.activation": "relu",
          "agent.kwargs.n_steps": 128, "train.batchSize": 64}


def rendered(nix_text: str, tmp_path) -> dict[str, str]:
    """The environment the module renders for `rl = { ... };` as printed, with the real nix-instantiate."""
    printed = tmp_path / "printed.nix"
    printed.write_text("{\n" + nix_text + "\n}\n")
    module = ROOT / "Modules/Computation/Services/RL"
    expression = (f"let rlLib = import {ROOT / 'lib'}; universe = rlLib.read {module};"
                  f" in rlLib.envVars universe (import {printed}).rl")
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expression],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    environment: dict[str, str] = json.loads(result.stdout)
    return environment


def test_the_best_configuration_printed_as_nix_renders_exactly_the_trials_values(nix, tmp_path):
    study = optuna.create_study(direction="maximize")
    for key, value in {"envId": "CartPole-v1", "algorithm": "ppo", "kwargs": {"n_epochs": 4}}.items():
        study.set_user_attr(key, value)
    text = sweep.as_nix(study, VALUES)
    assert 'env.envId = "CartPole-v1";' in text and 'agent.algorithm = "ppo";' in text
    environment = rendered(text, tmp_path)
    config, _ = dataclasses.replace(TRAIN, layer=None).configure([], environment)
    assert config["env.envId"] == "CartPole-v1" and config["agent.algorithm"] == "ppo"
    for path, value in VALUES.items():
        if not path.startswith("agent.kwargs."):
            assert config[path] == spec.coerce(value, spec.load().option(path).type), (path, environment)
    kwargs = {p.removeprefix("agent.kwargs."): v for p, v in VALUES.items() if p.startswith("agent.kwargs.")}
    assert config["agent.kwargs"] == {"n_epochs": 4, **kwargs}, environment
    # The flags say the same.
    flags, _ = TRAIN.configure(sweep.as_flags(study, VALUES), {})
    assert flags["train.gamma"] == VALUES["train.gamma"] and flags["agent.kwargs"] == config["agent.kwargs"]


@pytest.mark.parametrize("value", [0.9890787098172121, 7.749961e-06, 1e-05, 123456789.5, -0.5, 0.1, 3.0, 1e20,
                                   0.30000000000000004, 2.5e-300])
def test_the_renderer_writes_every_float_exactly(nix, value):
    shown = sweep.nix_value(value)
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E",
                             f"(import {ROOT / 'lib/values.nix'}).toEnv ({shown})"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert float(json.loads(result.stdout)) == value
