"""FPS of rl-train against raw stable-baselines3 with the same hyperparameters, in one run.

    python bench/train_overhead.py [--steps 30000] [--repeats 3] [--batch-size N]

Both sides: PPO on CartPole-v1 with the project's preset (RL Zoo's; --batch-size replaces its 256 on both
sides), one torch thread, the same seed, DummyVecEnv with 8 copies. Raw SB3 runs `PPO(...).learn()` with no
callbacks; rl-train runs its whole training path (env checks, run directory, SB3 logger to csv/json, atomic
final save) with periodic evaluation and checkpoints off. Its rows: with `--no-fused-optimizer` (SB3's
optimizer as SB3 builds it: the ratio measures the pipeline's own overhead), with its defaults
(train.fusedOptimizer: torch's fused Adam), and with evaluation and checkpoints every 10k steps, to show
what they cost. Runs alternate so that machine noise hits every row alike; the median of the repeats is
reported.
"""

from __future__ import annotations

import argparse
import time

from common import median, preset_kwargs, rl_train_fps


def raw_sb3(steps: int, seed: int, batch_size: int | None) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    n_envs, kwargs = preset_kwargs("ppo", "CartPole-v1")
    kwargs["batch_size"] = batch_size or kwargs["batch_size"]
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
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the preset's, on both sides")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    batch = ("--batch-size", str(args.batch_size)) if args.batch_size else ()
    runs = {"rl-train --no-fused-optimizer": (*batch, "--no-fused-optimizer"), "rl-train": batch,
            "rl-train, eval+checkpoints": (*batch, "--eval-freq", "10000", "--checkpoint-freq", "10000")}
    rows: dict[str, list[float]] = {"raw stable-baselines3": [], **{name: [] for name in runs}}
    for repeat in range(args.repeats):
        rows["raw stable-baselines3"].append(raw_sb3(args.steps, repeat, args.batch_size))
        for name, extra in runs.items():
            rows[name].append(rl_train_fps(args.steps, repeat, *extra))
    baseline = median(rows["raw stable-baselines3"])
    print(f"PPO CartPole-v1, {args.steps} steps, batch size {args.batch_size or 'of the preset'}, "
          f"median of {args.repeats}, 1 torch thread")
    print("| run | steps/s | ratio to raw SB3 |")
    print("|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {median(values):,.0f} | {median(values) / baseline:.3f} |")


if __name__ == "__main__":
    main()
