"""Serving speed: rl-infer --serve on loopback (requests/s, p50/p99 latency, measured by wrk) beside
in-process single-observation predict in the same run — rl-module's fast path, stable-baselines3's
model.predict and the bare policy networks.

    python bench/serve.py [--seconds 10] [--baseline REV]     (needs wrk: apt-get install wrk)

With --baseline, the server of that commit (a git worktree of it, run from its own sources) is loaded
too, alternating with this one row by row, both serving the same model file: what a change to the
server costs. Targets on the 2-core CI machine: >= 2,000 req/s with p99 <= 5 ms; fast-path predict
p50 <= 50 us; the hardening against starvation (connection bound, timeouts, worker pool) <= 5 % of
requests/s and p99 against the commit before it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from common import baseline_prefix, remove_worktree

BODY = "[0.01, 0.02, -0.03, 0.04]"


def train(directory: Path) -> Path:
    from rl_module.cli.train import COMMAND
    from rl_module.train import prepare, train

    config, _ = COMMAND.configure(["--total-timesteps", "2048", "--model-dir", str(directory), "--seed", "0",
                                   "--registry-db", str(directory / "r.db"), "--min-reward", "0",
                                   "--convergence-window", "null", "--min-episodes", "1", "--eval-freq", "0",
                                   "--log-level", "error"], {})
    return Path(train(prepare(config)).model_path)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))] * 1e6


def in_process(model_path: Path, repeats: int = 5000) -> list[tuple[str, float, float]]:
    import torch

    from rl_module import infer
    from rl_module.cli.infer import COMMAND

    torch.set_num_threads(1)
    config, _ = COMMAND.configure(["--model-path", str(model_path)], {})
    predictor = infer.Predictor(infer.locate(config))
    policy = predictor.model.policy
    observation = json.loads(BODY)
    array = np.asarray(observation, dtype=np.float32)
    tensor = torch.as_tensor(array).reshape(1, -1)

    def bare() -> None:
        with torch.inference_mode():
            policy.action_net(policy.mlp_extractor.policy_net(tensor)).argmax(dim=1)

    rows = []
    for name, call in (("rl-module fast path (JSON list in, action out)", lambda: predictor.predict(observation)),
                       ("stable-baselines3 model.predict", lambda: predictor.model.predict(array, deterministic=True)),
                       ("bare policy networks (no pre/post-processing)", bare)):
        for _ in range(300):
            call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        rows.append((name, percentile(times, 0.5), percentile(times, 0.99)))
    return rows


def start_server(prefix: list[str], model: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*prefix, "--serve", "--port", str(port), "--model-path", str(model), "--log-level",
                               "error"], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server, port
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def load(port: int, connections: int, seconds: int) -> tuple[int, float, float, float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = "{BODY}"\nwrk.headers["Content-Type"] = "application/json"\n')
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
               f"http://127.0.0.1:{port}/predict"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, p99 = (_ms(re.search(rf"{q}%\s+([\d.]+\w+)", out).group(1)) for q in (50, 99))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return connections, rate, p50, p99, int(errors.group(1)) if errors else 0


def serve_and_load(model: Path, seconds: int, baseline: list[str] | None, rounds: int) -> dict[str, list[tuple]]:
    """Each round starts every server afresh (a process's own speed varies by several per cent from one
    start to the next) and loads it at 1, 4 and 8 connections; the servers' order alternates by round."""
    prefixes = {"this commit": [str(Path(sys.executable).parent / "rl-infer")]}
    if baseline is not None:
        prefixes["baseline"] = baseline
    rows: dict[str, list[tuple]] = {name: [] for name in prefixes}
    order = list(prefixes.items())
    for _ in range(rounds):
        for name, prefix in order:
            server, port = start_server(prefix, model)
            try:
                rows[name] += [load(port, connections, seconds) for connections in (1, 4, 8)]
            finally:
                server.terminate()
                server.wait(timeout=20)
        order.reverse()
    return rows


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--baseline", metavar="REV", help="also load the server of this commit, alternating")
    parser.add_argument("--rounds", type=int, default=1, help="fresh server processes per server")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        model = train(Path(tmp))
        rows = in_process(model)
        worktree = Path(tmp) / "baseline"
        try:
            prefix = baseline_prefix(args.baseline, worktree, "infer") if args.baseline else None
            loads = serve_and_load(model, args.seconds, prefix, args.rounds)
        finally:
            if args.baseline:
                remove_worktree(worktree)
    print("in-process single-observation predict, PPO MlpPolicy on CartPole-v1, 1 torch thread")
    print("| call | p50 (µs) | p99 (µs) |")
    print("|---|---|---|")
    for name, p50, p99 in rows:
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")
    print(f"\nrl-infer --serve on loopback, POST /predict, wrk -t1, {args.seconds} s per row")
    print("| server | connections | requests/s | p50 (ms) | p99 (ms) | non-2xx |")
    print("|---|---|---|---|---|---|")
    for name, load_rows in loads.items():
        for connections, rate, p50, p99, errors in load_rows:
            print(f"| {name} | {connections} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {errors} |")
    if len(loads) == 2:
        print("\nmedians over the rounds, this commit against the baseline")
        print("| connections | requests/s | ratio | p99 (ms) | ratio |")
        print("|---|---|---|---|---|")
        ours, theirs = loads["this commit"], loads["baseline"]
        for connections in (1, 4, 8):
            mine = [r for r in ours if r[0] == connections]
            base = [r for r in theirs if r[0] == connections]
            rate, rate0 = (statistics.median(r[1] for r in rs) for rs in (mine, base))
            p99, p990 = (statistics.median(r[3] for r in rs) for rs in (mine, base))
            print(f"| {connections} | {rate:,.0f} vs {rate0:,.0f} | {rate / rate0:.3f} | {p99:.2f} vs {p990:.2f} | "
                  f"{p99 / p990:.3f} |")


if __name__ == "__main__":
    main()
