"""PPO with a CnnPolicy on 84x84 images, on the CPU and on CUDA, same hyperparameters, one run.

    python bench/gpu.py [--steps 20000]

Needs a CUDA machine (it says so and stops otherwise). It runs rl-train's own path (prepare + train),
with --train-device cpu and then cuda, on an image environment defined here (a bright square on one
half of an 84x84 RGB frame; the action names the half), and prints steps/s for each, the speedup and
the card's name. Record the output in bench/README.md with the date and the card.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import gymnasium as gym
import numpy as np


class BrightHalf(gym.Env):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape=(84, 84, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.steps = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.steps = 0
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        self.side = int(self.np_random.integers(2))
        frame = np.zeros((84, 84, 3), dtype=np.uint8)
        frame[30:54, 8 + 50 * self.side:32 + 50 * self.side] = 255
        return frame

    def step(self, action):  # type: ignore[no-untyped-def]
        reward = float(int(action) == self.side)
        self.steps += 1
        return self._frame(), reward, False, self.steps >= 100, {}


def steps_per_second(device: str, steps: int, threads: int = 1) -> float:
    from rl_module.cli.train import COMMAND
    from rl_module.train import prepare, train

    with tempfile.TemporaryDirectory() as models:
        argv = ["--env-id", "gpu:BrightHalf", "--policy-type", "CnnPolicy", "--encoder", "cnn", "--n-envs", "8",
                "--total-timesteps", str(steps), "--train-device", device, "--seed", "0", "--model-dir", models,
                "--no-registry", "--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress-bar",
                "--agent-kwargs", '{"n_steps": 128, "n_epochs": 4}', "--batch-size", "256", "--log-level", "warn",
                "--threads", str(threads)]
        config, _ = COMMAND.configure(argv, {})
        return train(prepare(config)).fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: run this on a machine with one")
        sys.exit(1)
    sys.modules["gpu"] = sys.modules[__name__]  # so that env.envId "gpu:BrightHalf" imports this file
    threads = os.cpu_count() or 1  # a CNN on the CPU uses every core; MLPs are the one-thread case
    cpu = steps_per_second("cpu", args.steps, threads)
    cuda = steps_per_second("cuda", args.steps)
    print(f"PPO CnnPolicy, 84x84x3, 8 envs, {args.steps} steps, {torch.cuda.get_device_name(0)}")
    print("| device | steps/s |")
    print("|---|---|")
    print(f"| cpu ({threads} torch threads) | {cpu:,.0f} |")
    print(f"| cuda | {cuda:,.0f} |")
    print(f"speedup: {cuda / cpu:.2f}x")


if __name__ == "__main__":
    main()
