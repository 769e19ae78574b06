"""Shared by the benchmarks: the project's preset hyperparameters, rendered for raw stable-baselines3."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rl_module.agent import schedule
from rl_module.spec import load


def preset_kwargs(algorithm: str, env_id: str) -> tuple[int, dict[str, Any]]:
    """(n_envs, keyword arguments of the SB3 class) for a preset, exactly as rl-train builds them."""
    preset = load().presets[(algorithm, env_id)]
    kwargs: dict[str, Any] = dict(preset.get("agent.kwargs", {}))
    for key in ("clip_range", "clip_range_vf"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = schedule(kwargs[key])
    kwargs["learning_rate"] = schedule(preset.get("train.learningRate", "3e-4"))
    kwargs["gamma"] = preset.get("train.gamma", 0.99)
    kwargs["batch_size"] = preset.get("train.batchSize", 64)
    return int(preset.get("env.nEnvs", 1)), kwargs


def baseline_prefix(revision: str, folder: Path, command: str) -> list[str]:
    """Run rl-<command> (its module under rl_module.cli) from the sources of `revision` (a detached git worktree
    at `folder`), in this environment: what a change costs, against the commit before it."""
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], check=True, capture_output=True,
                   cwd=Path(__file__).parent)
    code = f"import sys; sys.path.insert(0, {str(folder / 'scripts')!r}); " \
           f"from rl_module.cli.{command} import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code]


def remove_worktree(folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], check=False, capture_output=True,
                   cwd=Path(__file__).parent)


def median(values: list[float]) -> float:
    return statistics.median(values)


def rl_train_fps(steps: int, seed: int, *extra: str) -> float:
    """Training FPS of rl-train's own path (prepare + train, in this process): PPO CartPole-v1 preset,
    evaluation, checkpoints and the registry off unless `extra` says otherwise."""
    import tempfile

    from rl_module.cli.train import COMMAND
    from rl_module.train import prepare, train

    with tempfile.TemporaryDirectory() as models:
        argv = ["--total-timesteps", str(steps), "--seed", str(seed), "--model-dir", models, "--no-registry",
                "--no-progress-bar", "--eval-freq", "0", "--checkpoint-freq", "0", "--log-level", "error",
                *extra]
        config, _ = COMMAND.configure(argv, {})
        return train(prepare(config)).fps
