"""FPS of rl-train against raw stable-baselines3 with the same hyperparameters, in one run.

    python bench/train_overhead.py [--steps 30000] [--repeats 3]

Both sides: PPO on CartPole-v1 with the project's preset (RL Zoo's), one torch thread, the same seed,
DummyVecEnv with 8 copies. Raw SB3 runs `PPO(...).learn()` with no callbacks; rl-train runs its whole
training path (env checks, run directory, SB3 logger to csv/json, atomic final save) with periodic
evaluation and checkpoints off, so that the ratio measures the pipeline's own overhead. A second rl-train
row keeps the defaults (evaluation and checkpoints every 10k steps) to show what they cost. Runs alternate
so that machine noise hits both sides alike; the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import time

from common import median, preset_kwargs, rl_train_fps


def raw_sb3(steps: int, seed: int) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    n_envs, kwargs = preset_kwargs("ppo", "CartPole-v1")
    venv = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    elapsed = time.perf_counter() - started
    venv.close()
    return model.num_timesteps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    rows: dict[str, list[float]] = {"raw stable-baselines3": [], "rl-train": [], "rl-train, eval+checkpoints": []}
    for repeat in range(args.repeats):
        rows["raw stable-baselines3"].append(raw_sb3(args.steps, repeat))
        rows["rl-train"].append(rl_train_fps(args.steps, repeat))
        rows["rl-train, eval+checkpoints"].append(
            rl_train_fps(args.steps, repeat, "--eval-freq", "10000", "--checkpoint-freq", "10000"))
    baseline = median(rows["raw stable-baselines3"])
    print(f"PPO CartPole-v1, {args.steps} steps, median of {args.repeats}, 1 torch thread")
    print("| run | steps/s | ratio to raw SB3 |")
    print("|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {median(values):,.0f} | {median(values) / baseline:.3f} |")


if __name__ == "__main__":
    main()
