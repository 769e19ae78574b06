"""What OpenTelemetry costs a training run, against the same run with telemetry off, in one run.

    python bench/telemetry_overhead.py [--steps 30000] [--repeats 3]

1. FPS (PPO, CartPole-v1 preset, 1 torch thread, evaluation and checkpoints off) with metrics + episode
   traces + logs (exported to OTLP JSON files) against everything off; and with step tracing at sample
   rates 0.01 and 1. Target: ratio >= 0.97 for metrics + episode traces + logs.
2. Extra wall time of a whole rl-train process whose OTLP endpoint is unreachable, against the same
   command with telemetry off. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median, rl_train_fps

SIGNALS = ("--metrics", "--traces", "--logs", "--no-trace-steps")
ROWS = {
    "telemetry off": (),
    "metrics + episode traces + logs": SIGNALS,
    "... + step spans, sampleRate 0.01": (*SIGNALS[:3], "--trace-steps", "--trace-sample-rate", "0.01"),
    "... + step spans, sampleRate 1": (*SIGNALS[:3], "--trace-steps", "--trace-sample-rate", "1"),
}


def wall(extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "rl-train"), "--total-timesteps", "5000", "--seed", "1",
                        "--eval-freq", "0", "--no-registry", *extra], cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    results: dict[str, list[float]] = {name: [] for name in ROWS}
    for repeat in range(args.repeats):
        for name, extra in ROWS.items():
            results[name].append(rl_train_fps(args.steps, repeat, *extra))
    baseline = median(results["telemetry off"])
    print(f"PPO CartPole-v1, {args.steps} steps, median of {args.repeats}")
    print("| run | steps/s | ratio to telemetry off |")
    print("|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {median(values):,.0f} | {median(values) / baseline:.3f} |")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    unreachable = ["--metrics", "--traces", "--logs", "--metrics-endpoint", dead, "--traces-endpoint", dead,
                   "--logs-endpoint", dead]
    off, down = [], []
    for _ in range(args.repeats):
        off.append(wall([]))
        down.append(wall(unreachable))
    print(f"\nwhole rl-train process, 5000 steps, median of {args.repeats}")
    print("| run | wall time |")
    print("|---|---|")
    print(f"| telemetry off | {median(off):.2f} s |")
    extra = median(down) - median(off)
    print(f"| all signals to an unreachable grpc endpoint | {median(down):.2f} s (+{extra:.2f} s) |")


if __name__ == "__main__":
    main()
