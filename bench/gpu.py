"""PPO with a CnnPolicy on 84x84 images, on the CPU and on CUDA, through rl-train and through raw
stable-baselines3 with the same hyperparameters, in one run; and MLP PPO on CartPole on both devices.

    python bench/gpu.py [--steps 30720] [--mlp-steps 20480]

Needs a CUDA machine (it says so and stops otherwise). The image environment is defined here (a bright
square on one half of an 84x84 RGB frame; the action names the half). rl-train's path is prepare +
train with --train-device cpu, then cuda; the baseline is `PPO("CnnPolicy", make_vec_env(...))` with the
same n_envs, n_steps, n_epochs, batch size and seed, timed around `learn`. It prints steps/s for each, the
speedups and the card's name; the CartPole rows show why --train-device auto keeps MLPs on the CPU.
Record the output in bench/README.md with the date and the card.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

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


N_ENVS, N_STEPS, N_EPOCHS, BATCH = 8, 128, 4, 256


def rl_train(device: str, steps: int, threads: int, env_id: str = "gpu:BrightHalf",
             policy: str = "CnnPolicy") -> float:
    """Steps/s of rl-train's own path (its learn time, as it reports fps)."""
    from rl_module.cli.train import COMMAND
    from rl_module.train import prepare, train

    with tempfile.TemporaryDirectory() as models:
        argv = ["--env-id", env_id, "--policy-type", policy, "--n-envs", str(N_ENVS),
                "--total-timesteps", str(steps), "--train-device", device, "--seed", "0", "--model-dir", models,
                "--no-registry", "--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress-bar",
                "--agent-kwargs", json.dumps({"n_steps": N_STEPS, "n_epochs": N_EPOCHS}), "--batch-size",
                str(BATCH), "--log-level", "warn", "--threads", str(threads)]
        if policy == "CnnPolicy":
            argv += ["--encoder", "cnn"]
        config, _ = COMMAND.configure(argv, {})
        return train(prepare(config)).fps


def raw_sb3(device: str, steps: int, threads: int) -> float:
    """Steps/s of stable-baselines3 alone, same hyperparameters, timed around learn()."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)
    model = PPO("CnnPolicy", make_vec_env(BrightHalf, n_envs=N_ENVS, seed=0), n_steps=N_STEPS, n_epochs=N_EPOCHS,
                batch_size=BATCH, device=device, seed=0, verbose=0)
    started = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30 * N_ENVS * N_STEPS)
    parser.add_argument("--mlp-steps", type=int, default=20 * N_ENVS * N_STEPS)
    parser.add_argument("--rounds", type=int, default=1, help="CNN runs per path and device, alternating; medians")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: run this on a machine with one")
        sys.exit(1)
    sys.modules["gpu"] = sys.modules[__name__]  # so that env.envId "gpu:BrightHalf" imports this file
    threads = os.cpu_count() or 1  # a CNN on the CPU uses every core; MLPs are the one-thread case
    # CUDA's start (context, lazily loaded kernels) is paid here, not by whichever path runs first.
    torch.nn.Conv2d(3, 8, 8, stride=4).cuda()(torch.zeros(1, 3, 84, 84, device="cuda")).sum().backward()
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for device in ("cpu", "cuda"):
            for path, run in (("raw SB3", raw_sb3), ("rl-train", rl_train)):
                runs.setdefault((path, device), []).append(run(device, args.steps, threads if device == "cpu" else 1))
    cnn = {key: statistics.median(values) for key, values in runs.items()}
    mlp = {device: rl_train(device, args.mlp_steps, 1, "CartPole-v1", "MlpPolicy") for device in ("cpu", "cuda")}
    print(f"{torch.cuda.get_device_name(0)}, {threads} cores; PPO n_envs {N_ENVS}, n_steps {N_STEPS}, "
          f"n_epochs {N_EPOCHS}, batch {BATCH}")
    print(f"CnnPolicy, 84x84x3, {args.steps} steps, median of {args.rounds} round(s):")
    print("| path | cpu steps/s | cuda steps/s | cuda/cpu |")
    print("|---|---|---|---|")
    for path in ("rl-train", "raw SB3"):
        cpu, cuda = cnn[path, "cpu"], cnn[path, "cuda"]
        print(f"| {path} | {cpu:,.0f} ({threads} threads) | {cuda:,.0f} | {cuda / cpu:.2f}x |")
    print("each run:", "; ".join(f"{path} {device} " + ", ".join(f"{v:,.0f}" for v in values)
                                 for (path, device), values in runs.items()))
    print(f"rl-train / raw SB3: cpu {cnn['rl-train', 'cpu'] / cnn['raw SB3', 'cpu']:.2f}, "
          f"cuda {cnn['rl-train', 'cuda'] / cnn['raw SB3', 'cuda']:.2f}")
    print(f"MlpPolicy, CartPole-v1, {args.mlp_steps} steps, rl-train: cpu (1 thread) {mlp['cpu']:,.0f}, "
          f"cuda {mlp['cuda']:,.0f} steps/s, cuda/cpu {mlp['cuda'] / mlp['cpu']:.2f}x")


if __name__ == "__main__":
    main()
