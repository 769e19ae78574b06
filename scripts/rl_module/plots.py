"""Learning curves from a run directory: SB3's logger (progress.csv: mean episode reward of the last
episodes against timesteps) with the periodic evaluations (evaluations.npz) marked. matplotlib is
imported here only, with the Agg backend: no screen is needed."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CURVE_FILE = "learning_curve.png"


@dataclass(frozen=True)
class Curve:
    label: str
    timesteps: list[float]
    rewards: list[float]
    eval_timesteps: list[float]
    eval_rewards: list[float]


def read_curve(run_dir: Path, label: str | None = None) -> Curve:
    timesteps: list[float] = []
    rewards: list[float] = []
    progress = run_dir / "progress.csv"
    if progress.exists():
        with open(progress, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("rollout/ep_rew_mean") and row.get("time/total_timesteps"):
                    timesteps.append(float(row["time/total_timesteps"]))
                    rewards.append(float(row["rollout/ep_rew_mean"]))
    eval_timesteps: list[float] = []
    eval_rewards: list[float] = []
    evaluations = run_dir / "evaluations.npz"
    if evaluations.exists():
        import numpy as np

        with np.load(evaluations) as data:
            eval_timesteps = [float(t) for t in data["timesteps"]]
            eval_rewards = [float(r) for r in data["results"].mean(axis=1)]
    return Curve(label or run_dir.name, timesteps, rewards, eval_timesteps, eval_rewards)


def plot(curves: list[Curve], path: Path, title: str = "") -> Path:
    """The curves side by side (one panel each), written to `path` as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, max(len(curves), 1), figsize=(5 * max(len(curves), 1), 3.6), squeeze=False)
    for axis, curve in zip(axes[0], curves, strict=False):
        axis.plot(curve.timesteps, curve.rewards, label="episode reward (rolling mean)")
        if curve.eval_timesteps:
            axis.plot(curve.eval_timesteps, curve.eval_rewards, "o", label="evaluation")
        axis.set_title(curve.label, fontsize=9)
        axis.set_xlabel("timesteps")
        axis.set_ylabel("reward")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
