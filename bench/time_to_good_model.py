"""Time to a good model: wall time from the command's start until a CartPole-v1 model reaching the
reward threshold (Gymnasium's 475) is saved — rl-train with no flags against a raw stable-baselines3
script doing the same (RL Zoo's PPO preset, EvalCallback every 10k steps saving the best model), both
started as fresh processes in one run.

    python bench/time_to_good_model.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median

RAW = """
import time, sys
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
import torch
sys.path.insert(0, {bench!r})
from common import preset_kwargs
torch.set_num_threads(1)
n_envs, kwargs = preset_kwargs("ppo", "CartPole-v1")
venv = make_vec_env("CartPole-v1", n_envs=n_envs, seed={seed})
eval_env = make_vec_env("CartPole-v1", n_envs=10, seed={seed} + 1)
stop = StopTrainingOnRewardThreshold(475, verbose=0)
callback = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=10000 // n_envs, callback_on_new_best=stop,
                        best_model_save_path={out!r}, verbose=0)
PPO("MlpPolicy", venv, seed={seed}, device="cpu", verbose=0, **kwargs).learn(100000, callback=callback)
print(time.time() if callback.best_mean_reward >= 475 else "never")
"""


def rl_train(seed: int) -> tuple[float | None, float]:
    with tempfile.TemporaryDirectory() as cwd:
        started = time.time()
        result = subprocess.run([str(Path(sys.executable).parent / "rl-train"), "--seed", str(seed), "--json"],
                                cwd=cwd, capture_output=True, text=True, check=True)
        total = time.time() - started
        reached = json.loads(result.stdout)["threshold_reached_at"]
        return (reached - started if reached else None), total


def raw(seed: int) -> float | None:
    with tempfile.TemporaryDirectory() as out:
        script = RAW.format(bench=str(Path(__file__).parent), seed=seed, out=out)
        started = time.time()
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = result.stdout.strip().splitlines()[-1]
        return None if line == "never" else float(line) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours, totals, baseline = [], [], []
    for seed in range(args.repeats):
        reached, total = rl_train(seed)
        ours.append(reached)
        totals.append(total)
        baseline.append(raw(seed))

    def show(values: list[float | None]) -> str:
        done = [v for v in values if v is not None]
        each = ", ".join(f"{v:.1f}" if v else "-" for v in values)
        return (f"{median(done):.1f} s" if done else "never") + f" ({each})"

    print(f"CartPole-v1 PPO, seeds 0..{args.repeats - 1}: seconds from process start to a saved model >= 475")
    print("| run | time to good model, median (each) |")
    print("|---|---|")
    print(f"| raw stable-baselines3 script | {show(baseline)} |")
    print(f"| rl-train (no flags) | {show(ours)} |")
    print(f"| rl-train whole command, 100k steps | {median(totals):.1f} s |")


if __name__ == "__main__":
    main()
