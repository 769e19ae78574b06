"""What an experiment store costs training, against the local store, in one run.

    python bench/store_overhead.py [--steps 20000] [--repeats 3] [--baseline REV] [--only WORD ...]

Whole `rl-train --json` processes (PPO CartPole-v1 preset, one seed, each in a fresh folder), the rows
alternating within each repeat; the training speed is the fps rl-train reports (its learning time).
Backends: local; MLflow against a real tracking server on loopback (started here); MLflow with no
server (its default local store); W&B offline; S3 against moto's server (started here). Each with
periodic evaluation and checkpoints off, then on (every 5,000 steps). Target: every backend >= 0.97 x
local in the same run.

With --baseline, rl-train from the sources of that commit (a git worktree) runs each backend beside this
one, alternating: what a change to the uploader gained.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import baseline_prefix, median, remove_worktree

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: the server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.25)
    sys.exit(f"{url} did not answer")


def start_servers(folder: Path) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """A real MLflow tracking server and moto's S3 server (with a bucket `runs`) on loopback."""
    mlflow_port, s3_port = free_port(), free_port()
    mlflow = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(mlflow_port),
         "--workers", "1"], env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tracking, endpoint = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{s3_port}"
    wait_for(f"{tracking}/health", mlflow)
    wait_for(f"{endpoint}/moto-api/", moto)
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="runs")
    return [mlflow, moto], tracking, endpoint


def backends(tracking: str, endpoint: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each backend's flags and environment."""
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return {
        "local": ([], {}),
        "mlflow (tracking server)": (["--backend", "mlflow", "--tracking-uri", tracking], {}),
        "mlflow (no server: local store)": (["--backend", "mlflow"], {}),
        "wandb (offline)": (["--backend", "wandb"], {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}),
        "s3 (moto server)": (["--backend", "s3", "--tracking-uri", "s3://runs/bench", "--endpoint-url", endpoint],
                             aws),
    }


def fps(prefix: list[str], steps: int, extra: list[str], env: dict[str, str], periodic: bool) -> float:
    every = ["5000", "5000"] if periodic else ["0", "0"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_", "MLFLOW_", "WANDB_"))}
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([*prefix, "--total-timesteps", str(steps), "--seed", "0", "--no-progress-bar",
                                 "--eval-freq", every[0], "--checkpoint-freq", every[1], "--no-registry", "--json",
                                 *extra], cwd=cwd, env={**environ, **env}, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(extra) or 'local'}: rl-train failed\n{result.stderr[-2000:]}")
        outcome = json.loads(result.stdout)
        # A store that failed or lost files (its uploader died early, say) did less work: its speed proves nothing.
        if outcome.get("store_failure") or outcome.get("not_uploaded"):
            sys.exit(f"{' '.join(extra)}: the store failed: {outcome.get('store_failure')}; not uploaded: "
                     f"{outcome.get('not_uploaded')}")
        return float(outcome["fps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also run rl-train of this commit, alternating")
    parser.add_argument("--only", nargs="+", metavar="WORD", help="only the backends whose row names a WORD "
                        "(local always runs)")
    args = parser.parse_args()
    for needed in ("mlflow", "moto_server", "wandb"):
        if shutil.which(needed, path=str(BIN)) is None:
            sys.exit(f"{needed} is not installed beside this Python (./dev test installs the store extras)")
    with tempfile.TemporaryDirectory() as tmp:
        servers, tracking, endpoint = start_servers(Path(tmp))
        worktree = Path(tmp) / "baseline"
        try:
            prefixes = {"this commit": [str(BIN / "rl-train")]}
            if args.baseline:
                prefixes["baseline"] = baseline_prefix(args.baseline, worktree, "train")
            rows = {name: row for name, row in backends(tracking, endpoint).items()
                    if name == "local" or not args.only or any(word in name for word in args.only)}
            results: dict[tuple[bool, str, str], list[float]] = {}
            for periodic in (False, True):
                for repeat in range(args.repeats):
                    order = list(rows.items())
                    if repeat % 2:
                        order.reverse()
                    for name, (extra, env) in order:
                        for version, prefix in prefixes.items():
                            results.setdefault((periodic, name, version), []).append(
                                fps(prefix, args.steps, extra, env, periodic))
        finally:
            for server in servers:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=20)
            if args.baseline:
                remove_worktree(worktree)
    print(f"PPO CartPole-v1, {args.steps} steps, whole rl-train processes, median of {args.repeats}")
    for periodic in (False, True):
        print("\nevaluation and checkpoints every 5,000 steps" if periodic else
              "\nevaluation and checkpoints off")
        print("| backend | rl-train | steps/s | ratio to local | each run |")
        print("|---|---|---|---|---|")
        for version in prefixes:
            local = median(results[periodic, "local", version])
            for name in rows:
                values = results[periodic, name, version]
                print(f"| {name} | {version} | {median(values):,.0f} | {median(values) / local:.3f} | "
                      f"{', '.join(f'{v:,.0f}' for v in values)} |")


if __name__ == "__main__":
    main()
