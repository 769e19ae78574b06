"""Registry speed on SQLite and PostgreSQL side by side, each beside its baseline in the same run.

    python bench/registry.py [--rows 1000000] [--list-rows 1000] [--repeats 10] [--lookups 5000] [--swaps 5]

Needs PostgreSQL's server binaries (Debian's postgresql, which ./dev test installs): a throwaway server is
started with tests/postgres.py (as the postgres user under root, fsync off) and stopped at the end.

1. rl-registry-list start-to-exit on a registry of --list-rows rows (it prints them all), against
   `python -c pass`, the bare driver's import, and the bare driver listing the same table — target
   <= 150 ms on both databases.
2. The best-validated lookup (Registry.best, with and without the env/algorithm filter) on a registry of
   --rows generated rows, median and p99 of --lookups calls, against the same query forced to scan the
   table; beside it the query the serving process's hotswap check runs (Registry.models(validated=True,
   env_id=..., limit=1), server.py) — target <= 1 ms on both databases.
3. Hotswap: from the commit of a validation that makes a new best to `rl-infer --serve` answering
   GET /model with its id — PostgreSQL with LISTEN/NOTIFY (--pg-poll-interval, 5 s: too long for polling
   to be what swaps) against SQLite polling (--sqlite-poll-interval, 1 s, the default), real tiny
   trained models (one file trained with rl-train, registered as copies with rising rewards), on a small
   registry and on the --rows one; against the floor of a swap, loading the model in-process
   (locate --model-id + Predictor, what the server does once it knows) — target <= 200 ms with NOTIFY.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import median

from rl_module.obs import stats_path
from rl_module.registry import Evaluation, Registry, rules
from rl_module.store import sha256_of

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
import postgres  # noqa: E402  (tests/postgres.py: a throwaway PostgreSQL server)

ENVS = ("CartPole-v1", "LunarLander-v3", "Pendulum-v1", "Ant-v5", "forex-v0")
ALGORITHMS = ("ppo", "a2c", "dqn", "sac", "td3")
INSERTED = ("model_path", "algorithm", "env_id", "timestamp", "total_timesteps", "mean_reward", "std_reward",
            "mean_episode_length", "hyperparams", "git_commit", "validated", "sha256", "run_id", "kind",
            "eval_episodes")
RELAXED = rules(0.0, 1, None, 0.1, "CartPole-v1")
BEST_SQL = "SELECT * FROM models WHERE validated = TRUE AND mean_reward IS NOT NULL ORDER BY mean_reward DESC LIMIT 1"
# The commands' environment: no ambient RL_/OTEL_ options, and bytecode cached (in main's temporary folder,
# never beside the sources) even where PYTHONDONTWRITEBYTECODE is set: an installed package has its
# bytecode, and compiling a stale module on every start is not what a user waits for.
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_")) and k != "PYTHONDONTWRITEBYTECODE"}


# -- data --------------------------------------------------------------------------------------------

def generated(rows: int, validated_fraction: float, seed: int = 0) -> Iterator[tuple[Any, ...]]:
    """Rows over five envs and five algorithms: a fraction validated (with a mean reward), half of the
    rest evaluated and rejected (a mean reward), the others never evaluated (NULL)."""
    rng = random.Random(seed)
    start = int(time.time()) - rows
    hyperparams = json.dumps({"agent": {"algorithm": "ppo"}, "train": {"totalTimesteps": 100_000}})
    for i in range(rows):
        validated = rng.random() < validated_fraction
        evaluated = validated or rng.random() < 0.5
        yield (f"/models/run-{i // 100}/checkpoints/step-{i}.zip", rng.choice(ALGORITHMS), rng.choice(ENVS),
               start + i, (i % 100 + 1) * 10_000, rng.uniform(-500, 500) if evaluated else None,
               rng.uniform(0, 50) if evaluated else None, rng.uniform(10, 1000) if evaluated else None,
               hyperparams, "0" * 40, validated, "0" * 64, f"run-{i // 100}", "checkpoint",
               10 if evaluated else None)


def fill(registry: Registry, rows: int, validated_fraction: float) -> float:
    """Bulk insert in one transaction (executemany on SQLite, COPY on PostgreSQL; ANALYZE after it there,
    as autovacuum would); seconds taken."""
    started = time.perf_counter()
    if registry.path is not None:
        registry.db.begin()
        registry.db.db.executemany(  # type: ignore[attr-defined]
            f"INSERT INTO models ({', '.join(INSERTED)}) VALUES ({', '.join('?' * len(INSERTED))})",
            generated(rows, validated_fraction))
        registry.db.commit()
    else:
        connection = registry.db.db  # type: ignore[attr-defined]
        with connection.transaction(), connection.cursor().copy(
                f"COPY models ({', '.join(INSERTED)}) FROM STDIN") as copy:
            for row in generated(rows, validated_fraction):
                copy.write_row(row)
        connection.execute("VACUUM (ANALYZE) models")  # what autovacuum does after a bulk insert, not during the run
    return time.perf_counter() - started


# -- 1. rl-registry-list -----------------------------------------------------------------------------

def wall(argv: list[str], repeats: int) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=ENV)  # writes the bytecode cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def startup(targets: dict[str, str], repeats: int) -> list[tuple[str, list[float]]]:
    sqlite, pg = targets["SQLite"], targets["PostgreSQL"]
    python = sys.executable
    listing = "ORDER BY mean_reward IS NULL, mean_reward DESC, id DESC"
    return [
        ("python -c pass", [wall([python, "-c", "pass"], repeats)] * 2),
        ("python, import the driver (sqlite3 / psycopg)",
         [wall([python, "-c", "import sqlite3"], repeats), wall([python, "-c", "import psycopg"], repeats)]),
        ("python, the bare driver: connect, SELECT * ... ORDER BY, fetchall",
         [wall([python, "-c", f"import sqlite3; sqlite3.connect({sqlite!r}).execute('SELECT * FROM models "
                f"{listing}').fetchall()"], repeats),
          wall([python, "-c", f"import psycopg; psycopg.connect({pg!r}).execute('SELECT * FROM models "
                f"{listing}').fetchall()"], repeats)]),
        ("rl-registry-list", [wall([str(BIN / "rl-registry-list"), "--registry-db", target], repeats)
                              for target in (sqlite, pg)]),
    ]


# -- 2. lookups --------------------------------------------------------------------------------------

def timed(call: Callable[[], Any], repeats: int, warmup: int) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    times.sort()
    return median(times) * 1000, times[int(0.99 * (len(times) - 1))] * 1000


def forced_scan(registry: Registry, repeats: int) -> tuple[float, float]:
    """The best() query with its indexes out of reach: NOT INDEXED on SQLite, index and bitmap scans
    disabled for the session on PostgreSQL."""
    if registry.path is not None:
        sql = BEST_SQL.replace("FROM models", "FROM models NOT INDEXED")
        return timed(lambda: registry.db.execute(sql).fetchone(), repeats, 1)
    connection = registry.db.db  # type: ignore[attr-defined]
    for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
        connection.execute(f"SET {setting} = off")
    try:
        return timed(lambda: connection.execute(BEST_SQL, prepare=False).fetchone(), repeats, 1)
    finally:
        connection.execute("RESET ALL")


def lookups(registry: Registry, repeats: int, slow_repeats: int) -> list[tuple[str, tuple[float, float]]]:
    return [
        ("best()", timed(registry.best, repeats, 100)),
        ("best(env_id, algorithm)", timed(lambda: registry.best("Ant-v5", "sac"), repeats, 100)),
        ("best(env_id) (a server given --env-id only)", timed(lambda: registry.best("CartPole-v1"), slow_repeats, 1)),
        ("hotswap check: models(validated=True, env_id, limit=1) (server.py)",
         timed(lambda: registry.models(validated=True, env_id="CartPole-v1", limit=1), slow_repeats, 1)),
        ("baseline: best() forced to scan the table", forced_scan(registry, slow_repeats)),
    ]


# -- 3. hotswap --------------------------------------------------------------------------------------

def train(folder: Path) -> Path:
    """One tiny PPO CartPole-v1 model (as tests/test_serve.py trains them)."""
    out = subprocess.run(
        [str(BIN / "rl-train"), "--json", "--model-dir", str(folder), "--no-registry", "--seed", "1",
         "--total-timesteps", "256", "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "2", "--no-preset",
         "--agent-kwargs", '{"n_steps": 128}', "--log-level", "error"],
        check=True, capture_output=True, text=True, env=ENV).stdout
    return Path(json.loads(out)["model_path"]).resolve()


class Models:
    """Copies of one trained file in the served model folder, each registered as its own model."""

    def __init__(self, original: Path, folder: Path) -> None:
        self.original, self.folder, self.count = original, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def register(self, registry: Registry, reward: float) -> int:
        self.count += 1
        path = self.folder / f"copy-{self.count}.zip"
        shutil.copyfile(self.original, path)
        stats = stats_path(self.original)
        if stats.is_file():
            shutil.copyfile(stats, stats_path(path))
        return registry.register(
            model_path=path, sha256=sha256_of(path), algorithm="ppo", env_id="CartPole-v1", total_timesteps=256,
            run_id=None, kind="final", hyperparams=None, git_commit=None,
            evaluation=Evaluation(reward, 1.0, 20.0, 10),
            stats_sha256=sha256_of(stats_path(path)) if stats.is_file() else None)


class Served:
    def __init__(self, target: str, poll_interval: float, model_dir: Path, cwd: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [str(BIN / "rl-infer"), "--serve", "--port", str(self.port), "--registry-db", target, "--poll-interval",
             str(poll_interval), "--model-dir", str(model_dir), "--env-id", "CartPole-v1", "--log-level", "error"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
        self.connection: http.client.HTTPConnection | None = None

    def model_id(self) -> int | None:
        """GET /model's id; None while the server is not up or has no model (503)."""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.connection.request("GET", "/model")
            response = self.connection.getresponse()
            body = response.read()
            return int(json.loads(body)["id"]) if response.status == 200 else None
        except OSError:
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            if self.process.poll() is not None:
                raise RuntimeError(f"rl-infer --serve ended: {self.process.communicate()[1]}") from None
            return None

    def wait_for(self, model_id: int, timeout: float, pause: float = 0.002) -> float:
        """perf_counter() at the first answer naming `model_id`."""
        deadline = time.perf_counter() + timeout
        while True:
            if self.model_id() == model_id:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the server did not serve model {model_id} within {timeout} s")
            time.sleep(pause)

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.process.terminate()
        self.process.wait(timeout=20)


def swap_latencies(registry: Registry, models: Models, poll_interval: float, swaps: int, cwd: Path,
                   seed: int) -> tuple[list[float], int]:
    """Milliseconds from the commit of each validation that makes a new best to GET /model naming it, and
    the last model's id. The rewards start above anything generated (500), so each new model is the best."""
    commits: list[float] = []
    commit = registry.db.commit

    def stamped() -> None:
        commit()
        commits.append(time.perf_counter())

    registry.db.commit = stamped  # type: ignore[method-assign]
    rng = random.Random(seed)
    reward = 1000.0 + 100 * models.count
    first = models.register(registry, reward)
    registry.validate(first, RELAXED)
    model_id = first
    server = Served(registry.target, poll_interval, models.folder, cwd)
    latencies = []
    try:
        server.wait_for(first, timeout=120, pause=0.2)
        for _ in range(swaps):
            time.sleep(rng.uniform(0.3, 0.8))  # any phase against the server's polling
            reward += 1
            model_id = models.register(registry, reward)
            assert registry.validate(model_id, RELAXED).valid
            committed = commits[-1]
            latencies.append((server.wait_for(model_id, timeout=max(30.0, 3 * poll_interval)) - committed) * 1000)
    finally:
        server.stop()
        registry.db.commit = commit  # type: ignore[method-assign]
    return latencies, model_id


def load_floor(target: str, model_id: int, model_dir: Path, repeats: int) -> list[float]:
    """In-process: what the server does once it knows of a new best (server.Hotswap._swap_to)."""
    import torch

    from rl_module.cli.infer import COMMAND
    from rl_module.infer import Predictor, locate

    torch.set_num_threads(1)  # as the server does (server.py)
    config, _ = COMMAND.configure(["--registry-db", target, "--model-id", str(model_id), "--model-dir",
                                   str(model_dir), "--env-id", "CartPole-v1", "--log-level", "error"], {})
    Predictor(locate(config))  # imports torch and stable-baselines3 once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        Predictor(locate(config))
        times.append((time.perf_counter() - started) * 1000)
    return times


# -- main --------------------------------------------------------------------------------------------

def cells(values: list[float]) -> str:
    return f"{median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the lookup registry")
    parser.add_argument("--list-rows", type=int, default=1_000, help="rows rl-registry-list prints")
    parser.add_argument("--validated-fraction", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=10, help="runs of each command (median)")
    parser.add_argument("--lookups", type=int, default=5000, help="calls of each lookup (median, p99)")
    parser.add_argument("--slow-repeats", type=int, default=5, help="calls of the queries that scan or sort")
    parser.add_argument("--swaps", type=int, default=5, help="swaps per database and registry (median)")
    parser.add_argument("--sqlite-poll-interval", type=float, default=1.0)
    parser.add_argument("--pg-poll-interval", type=float, default=5.0)
    parser.add_argument("--no-large-swaps", action="store_true", help="swap on the small registries only")
    args = parser.parse_args()
    bin_dir = postgres.binaries()
    if bin_dir is None:
        sys.exit("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ENV["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        server = postgres.Server(bin_dir).start()
        try:
            small = {"SQLite": str(tmp / "small.db"), "PostgreSQL": server.url(server.new_database())}
            large = {"SQLite": str(tmp / "large.db"), "PostgreSQL": server.url(server.new_database())}
            registries = {kind: {name: Registry(target) for name, target in targets.items()}
                          for kind, targets in (("small", small), ("large", large))}
            for registry in registries["small"].values():
                fill(registry, args.list_rows, args.validated_fraction)
            inserts = {name: fill(registry, args.rows, args.validated_fraction)
                       for name, registry in registries["large"].items()}

            commands = startup(small, args.repeats)
            queries = {name: lookups(registry, args.lookups, args.slow_repeats)
                       for name, registry in registries["large"].items()}

            original = train(tmp / "trained")
            served = Models(original, tmp / "served")
            intervals = {"SQLite": args.sqlite_poll_interval, "PostgreSQL": args.pg_poll_interval}
            swaps: dict[tuple[str, str], list[float]] = {}
            last: dict[str, int] = {}
            for kind in ("small",) if args.no_large_swaps else ("small", "large"):
                for seed, (name, registry) in enumerate(registries[kind].items()):
                    swaps[kind, name], model_id = swap_latencies(registry, served, intervals[name], args.swaps, tmp,
                                                                 seed)
                    if kind == "small":
                        last[name] = model_id
            floors = {name: load_floor(small[name], last[name], served.folder, args.swaps) for name in small}
            for group in registries.values():
                for registry in group.values():
                    registry.close()
        finally:
            server.stop()

    names = ("SQLite", "PostgreSQL")
    print(f"startup, median of {args.repeats} (ms), registry of {args.list_rows:,} rows")
    print("| command | SQLite | PostgreSQL |")
    print("|---|---|---|")
    for label, (lite, pg) in commands:
        print(f"| {label} | {lite:.0f} | {pg:.0f} |")

    print(f"\nlookups on {args.rows:,} rows ({args.validated_fraction:.0%} validated; inserted in "
          + ", ".join(f"{inserts[n]:.1f} s on {n}" for n in names)
          + f"), ms: median and p99 of {args.lookups:,} calls ({args.slow_repeats} for the last three rows)")
    print("| query | SQLite median | SQLite p99 | PostgreSQL median | PostgreSQL p99 |")
    print("|---|---|---|---|---|")
    for row, (label, _) in enumerate(queries["SQLite"]):
        (m1, p1), (m2, p2) = (queries[n][row][1] for n in names)
        print(f"| {label} | {m1:.3f} | {p1:.3f} | {m2:.3f} | {p2:.3f} |")

    print(f"\nhotswap: the validation's commit to GET /model naming the new best, ms, median (each of {args.swaps})")
    print("| registry | SQLite, polling every "
          f"{args.sqlite_poll_interval:g} s | PostgreSQL, NOTIFY (polling every {args.pg_poll_interval:g} s) |")
    print("|---|---|---|")
    for kind in ("small", "large"):
        if (kind, "SQLite") in swaps:
            rows = args.list_rows if kind == "small" else args.rows
            print(f"| {rows:,} rows | {cells(swaps[kind, 'SQLite'])} | {cells(swaps[kind, 'PostgreSQL'])} |")
    print(f"| floor: locate --model-id + Predictor in-process, {args.list_rows:,} rows | {cells(floors['SQLite'])} | "
          f"{cells(floors['PostgreSQL'])} |")
    print(f"\nwhole benchmark: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
