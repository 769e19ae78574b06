"""A sweep under the faults of a fleet, against the same sweep undisturbed: two hosts (two rl-sweep
commands in folders of their own), one PostgreSQL server (a real one on loopback, as tests/postgres.py
starts it), TRIALS trials of PPO on CartPole-v1.

    python bench/chaos_sweep.py [--trials 20] [--steps 4096] [--heartbeat 5] [--space JSON|default]
                                [--workdir DIR] [--json FILE]

The space searched is, by default, one whose trials all cost alike (the learning rate and gamma, with
CartPole's rollout fixed): each run draws its own trials, so with the default space (`--space default`,
whose trials differ in cost by 10x and more) the wall times would compare draws, not faults.

The chaos run: once both hosts train, host A's whole process group is SIGKILLed (a lost host: no
graceful stop) and host A started again at once; when a third of the trials have ended PostgreSQL is
restarted (pg_ctl -m fast restart: every connection cut), and again at two thirds. Reported for each
run: wall time (first start to last exit), the exit codes, trials finished (lost = TRIALS - finished: must
be 0), failed trials (each one retried: the killed host's, by its stale heartbeat) and surplus trials.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import postgres as postgres_server  # noqa: E402 - the tests' PostgreSQL, started the same way

BIN = Path(sys.executable).parent
# Trials that cost alike, whatever is drawn: the rollout (8 envs x 32 steps, CartPole's preset) and the epochs are
# fixed; what varies changes what is learnt, not how long a step takes.
SAME_COST_SPACE = json.dumps({"train.learningRate": {"float": [1e-4, 3e-3], "log": True},
                              "train.gamma": {"float": [0.9, 0.999]}})


def host_command(args: argparse.Namespace, study: str) -> list[str]:
    return [str(BIN / "rl-sweep"), "--study-name", study, "--trials", str(args.trials), "--trial-timesteps",
            str(args.steps), "--heartbeat", str(args.heartbeat), "--sweep-workers", "1", "--seed", "0",
            "--convergence-window", "null", "--json",
            *(() if args.space == "default" else ("--base-space", "empty", "--space", args.space))]


def start(folder: Path, command: list[str], url: str) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}
    environment["RL_REGISTRY_DB"] = url
    log = open(folder / "stderr.log", "a")  # noqa: SIM115 - the process writes it until it ends
    return subprocess.Popen(command, cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)


def study_state(url: str, study: str) -> dict[str, int]:
    """The study's trials by state; {} before rl-sweep has made it. Optuna's storage creates its tables when
    opened, and a database holding them but not the registry's is refused as a registry: read only once
    rl-sweep has made both."""
    import optuna
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as db:
            if db.execute("SELECT to_regclass('public.studies')").fetchone() in (None, (None,)):
                return {}
    except psycopg.Error:  # the database restarting
        return {}
    try:
        trials = optuna.load_study(study_name=study, storage="postgresql+psycopg://" + url.split("://", 1)[1]) \
            .get_trials(deepcopy=False)
    except Exception:  # not made yet, or the database restarting
        return {}
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    return {"ended": sum(t.state.name in ("COMPLETE", "PRUNED") for t in counted),
            "finished": sum(t.state.name == "COMPLETE" for t in counted),
            "pruned": sum(t.state.name == "PRUNED" for t in counted),
            "failed": sum(t.state.name == "FAIL" for t in counted),
            "running": sum(t.state.name == "RUNNING" for t in counted),
            "waiting": sum(t.state.name == "WAITING" for t in counted),
            "surplus": len(trials) - len(counted)}


def training(folder: Path) -> bool:
    return any((folder / "models").glob("*/progress.csv"))


def run(args: argparse.Namespace, server: postgres_server.Server, work: Path, chaos: bool) -> dict[str, Any]:
    name = "chaos" if chaos else "calm"
    url = server.url(server.new_database())
    hosts = {h: work / name / h for h in ("a", "b")}
    started = time.monotonic()
    # Host b starts once host a has made the study: two hosts starting at the very same moment on an empty
    # database race to create the registry's and Optuna's tables (the registry then refused one of them).
    processes = {"a": start(hosts["a"], host_command(args, name), url)}
    while not study_state(url, name) and processes["a"].poll() is None:
        time.sleep(0.2)
    processes["b"] = start(hosts["b"], host_command(args, name), url)
    codes: list[int] = []
    events: list[str] = []
    restarts = [args.trials / 3, 2 * args.trials / 3] if chaos else []
    killed = not chaos
    while any(p.poll() is None for p in processes.values()):
        time.sleep(0.5)
        if not killed and all(training(f) for f in hosts.values()):
            os.killpg(processes["a"].pid, signal.SIGKILL)
            codes.append(processes["a"].wait())
            events.append(f"{time.monotonic() - started:.1f}s: host a SIGKILLed (its group) and started again")
            processes["a"] = start(hosts["a"], host_command(args, name), url)
            killed = True
        if restarts and study_state(url, name).get("ended", 0) >= restarts[0]:
            server._run("pg_ctl", "-D", str(server.data), "-l", str(server.folder / "server.log"), "-w", "-m", "fast",
                        "restart")
            events.append(f"{time.monotonic() - started:.1f}s: PostgreSQL restarted")
            restarts.pop(0)
    wall = time.monotonic() - started
    codes += [p.returncode for p in processes.values()]
    state = {"ended": 0, "finished": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "surplus": 0,
             **study_state(url, name)}
    return {"run": name, "wall_s": round(wall, 1), "exit_codes": codes, "events": events,
            "lost": args.trials - state["ended"], **state}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4096)
    parser.add_argument("--heartbeat", type=int, default=5)
    parser.add_argument("--space", default=SAME_COST_SPACE,
                        help="the sweep's space as JSON, or 'default' for rl-sweep's own (trials of unlike cost)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    bin_dir = postgres_server.binaries()
    if bin_dir is None:
        sys.exit("chaos_sweep: PostgreSQL is not installed (initdb, pg_ctl)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rl-chaos-"))
    server = postgres_server.Server(bin_dir).start()
    try:
        rows = [run(args, server, work, chaos=False), run(args, server, work, chaos=True)]
    finally:
        server.stop()
    print(f"{'run':<6} {'wall':>7} {'finished':>8} {'pruned':>6} {'lost':>4} {'failed':>6} {'surplus':>7}  exit codes")
    for r in rows:
        print(f"{r['run']:<6} {r['wall_s']:>6.1f}s {r['finished']:>8} {r['pruned']:>6} {r['lost']:>4} {r['failed']:>6} "
              f"{r['surplus']:>7}  {r['exit_codes']}")
    for event in rows[1]["events"]:
        print("  " + event)
    print(f"chaos / calm wall time: {rows[1]['wall_s'] / rows[0]['wall_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
