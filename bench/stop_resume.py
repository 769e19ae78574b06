"""Stopping and resuming, as real processes.

1. Time from SIGTERM to exit: rl-train on PPO CartPole-v1 (the preset) and SAC Pendulum-v1 (the preset:
   a 1M-transition replay buffer, saved beside the model), signalled once learning is under way. Target
   ≤ 10 s. The baseline beside it: the same process killed outright (SIGKILL), the floor of any stop.
2. Resume overhead: one 100k-step PPO CartPole-v1 run against a run stopped by SIGTERM at 50k steps and
   resumed to 100k, total wall time of the processes, alternating. Target ratio ≤ 1.10.

    python bench/stop_resume.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median

RL_TRAIN = str(Path(sys.executable).parent / "rl-train")
QUIET = ("--no-progress-bar", "--log-level", "info", "--no-registry")


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}


def stop_time(args: tuple[str, ...], after: str, signum: int, seed: int) -> tuple[float, int]:
    """Seconds from `signum` (sent when `after` appears on stderr) to the process's exit, and its status."""
    with tempfile.TemporaryDirectory() as cwd:
        process = subprocess.Popen([RL_TRAIN, *QUIET, "--seed", str(seed), *args], cwd=cwd, env=environ(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            if after in line:
                break
        sent = time.perf_counter()
        process.send_signal(signum)
        process.stderr.read()
        code = process.wait()
        return time.perf_counter() - sent, code


def resume_overhead(seed: int) -> tuple[float, float]:
    """(one 100k run, 50k + SIGTERM + resume to 100k): wall seconds of all processes."""
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        subprocess.run([RL_TRAIN, *QUIET, "--seed", str(seed), "--total-timesteps", "100000"], cwd=cwd, env=environ(),
                       capture_output=True, check=True)
        whole = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        process = subprocess.Popen([RL_TRAIN, *QUIET, "--seed", str(seed), "--total-timesteps", "100000"], cwd=cwd,
                                   env=environ(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            if "step-50000.zip" in line:  # the checkpoint at 50k: stop right after it
                process.send_signal(signal.SIGTERM)
                break
        process.stderr.read()
        assert process.wait() == 143
        resumed = subprocess.run([RL_TRAIN, *QUIET, "--resume", "latest", "--json"], cwd=cwd, env=environ(),
                                 capture_output=True, text=True, check=True)
        split = time.perf_counter() - started
        assert json.loads(resumed.stdout)["timesteps"] >= 100_000
    return whole, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    cases = {
        "PPO CartPole-v1": (("--total-timesteps", "1000000"), "step-20000.zip"),
        "SAC Pendulum-v1": (("--algorithm", "sac", "--env-id", "Pendulum-v1", "--total-timesteps", "100000",
                             "--checkpoint-freq", "2000"), "step-2000.zip"),
    }
    print("| run | SIGTERM to exit, median (each) | SIGKILL to exit | exit status |")
    print("|---|---|---|---|")
    for name, (args, after) in cases.items():
        stops = [stop_time(args, after, signal.SIGTERM, seed) for seed in range(repeats)]
        kill = median([stop_time(args, after, signal.SIGKILL, seed)[0] for seed in range(repeats)])
        times = [t for t, _ in stops]
        each = ", ".join(f"{t:.2f}" for t in times)
        print(f"| {name} | {median(times):.2f} s ({each}) | {kill:.2f} s | {sorted({c for _, c in stops})} |")
    print()
    print("| seed | one 100k run | 50k, SIGTERM, resume to 100k | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for seed in range(repeats):
        whole, split = resume_overhead(seed)
        ratios.append(split / whole)
        print(f"| {seed} | {whole:.1f} s | {split:.1f} s | {split / whole:.3f} |")
    print(f"| median | | | {median(ratios):.3f} |")


if __name__ == "__main__":
    main()
