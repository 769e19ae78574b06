"""torch against onnx: the same CartPole model served by rl-infer --serve with infer.runtime torch and with
infer.runtime onnx, in the same run: resident memory once ready, time from start to /readyz 200, predict
p50 in process, and requests/s with p99 at 1, 4 and 8 connections (wrk, as bench/serve.py).

    python bench/serve_onnx.py [--seconds 5] [--rounds 3]       (needs wrk: apt-get install wrk)

Targets (issue 27): onnx resident memory <= 0.4x torch's, start-to-ready <= 0.5x, predict p50 <= 15 us,
requests/s >= 1.0x. Each round starts both servers afresh, in alternating order; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from serve import BODY, load, percentile, train

RUNTIMES = ("torch", "onnx")


def start(model: Path, runtime: str) -> tuple[subprocess.Popen[bytes], int, float, float]:
    """(process, port, seconds from start to /readyz 200, resident MiB then)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([str(Path(sys.executable).parent / "rl-infer"), "--serve", "--runtime", runtime,
                               "--port", str(port), "--model-path", str(model), "--log-level", "error"],
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if time.time() > deadline:
                raise
        time.sleep(0.005)
    ready = time.perf_counter() - started
    status = Path(f"/proc/{server.pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
    return server, port, ready, rss


def predict_p50(model: Path, runtime: str, repeats: int = 20000) -> tuple[float, float | None]:
    """In a fresh process (one runtime each, as a server has): p50 of predictor.predict on one JSON list, and
    for onnx the p50 of onnxruntime's own InferenceSession.run on a ready array, measured in turns with it
    (the floor of any predict on onnxruntime: this machine's speed varies by 1.5x from minute to minute)."""
    code = f"""
import json, time
from rl_module import infer
from rl_module.cli.infer import COMMAND
config, _ = COMMAND.configure(["--model-path", {str(model)!r}, "--runtime", {runtime!r}], {{}})
if {runtime!r} == "torch":
    import torch
    torch.set_num_threads(1)
predictor = infer.predictor(infer.locate(config))
observation = json.loads({BODY!r})
calls = {{"predict": lambda: predictor.predict(observation)}}
if {runtime!r} == "onnx":
    import numpy as np
    session = predictor._session
    feeds = {{session.get_inputs()[0].name: np.asarray([observation], np.float32)}}
    calls["bare"] = lambda: session.run(None, feeds)
times = {{name: [] for name in calls}}
for name, call in calls.items():
    for _ in range(1000):
        call()
for _ in range({repeats} // 1000):
    for name, call in calls.items():
        for _ in range(1000):
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
print(json.dumps(times))
"""
    times = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    return percentile(times["predict"], 0.5), percentile(times["bare"], 0.5) if "bare" in times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = train(Path(folder))
        results: dict[str, dict[str, list[float]]] = {r: {} for r in RUNTIMES}
        order = list(RUNTIMES)
        bare_runs: list[float] = []
        for _ in range(args.rounds):
            for runtime in order:
                found = results[runtime]
                p50, bare = predict_p50(model, runtime)
                found.setdefault("predict p50 (us)", []).append(p50)
                if bare is not None:
                    bare_runs.append(bare)
                server, port, ready, rss = start(model, runtime)
                try:
                    found.setdefault("start to /readyz 200 (s)", []).append(ready)
                    found.setdefault("resident memory when ready (MiB)", []).append(rss)
                    for connections in (1, 4, 8):
                        _, rate, _, p99, errors = load(port, connections, args.seconds)
                        assert errors == 0, f"{errors} non-2xx answers"
                        found.setdefault(f"requests/s at {connections}", []).append(rate)
                        found.setdefault(f"p99 (ms) at {connections}", []).append(p99)
                finally:
                    server.terminate()
                    server.wait(timeout=20)
            order.reverse()
    print(f"| measure (median of {args.rounds}) | torch | onnx | onnx / torch |")
    print("|---|---|---|---|")
    for measure in results["torch"]:
        torch_value, onnx_value = (statistics.median(results[r][measure]) for r in RUNTIMES)
        print(f"| {measure} | {torch_value:.3g} | {onnx_value:.3g} | {onnx_value / torch_value:.2f}x |")
    print(f"| onnxruntime's InferenceSession.run alone, p50 (us) | | {statistics.median(bare_runs):.3g} | |")


if __name__ == "__main__":
    main()
