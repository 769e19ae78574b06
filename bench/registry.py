"""Registry speed, each beside its baseline in the same run.

    python bench/registry.py [--rows 1000000] [--repeats 20]

1. rl-registry-list start-to-exit (it must not import torch or stable-baselines3), against
   `python -c pass` and a bare `import sqlite3` listing — target <= 150 ms.
2. The best-validated lookup (the hotswap query) on a generated registry of --rows rows, with and
   without the env/algorithm filter, against a full scan of the same table — target <= 1 ms.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median

from rl_module.registry import Registry


def wall(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def generate(path: Path, rows: int) -> None:
    Registry(path).close()
    db = sqlite3.connect(path)
    rng = random.Random(0)
    envs = ["CartPole-v1", "LunarLander-v3", "Pendulum-v1", "Ant-v5", "forex-v0"]
    algorithms = ["ppo", "a2c", "dqn", "sac", "td3"]
    db.executemany(
        "INSERT INTO models (model_path, algorithm, env_id, timestamp, total_timesteps, mean_reward, std_reward,"
        " mean_episode_length, validated, sha256, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'checkpoint')",
        ((f"/models/run/step-{i}.zip", rng.choice(algorithms), rng.choice(envs), 1_700_000_000 + i, i * 1000,
          rng.uniform(-500, 500), rng.uniform(0, 50), rng.uniform(10, 1000), int(rng.random() < 0.2), "0" * 64)
         for i in range(rows)))
    db.commit()
    db.close()


def lookup(registry: Registry, repeats: int, **filters: str) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        registry.best(**filters)
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "registry.db"
        small = Path(tmp) / "small.db"
        with Registry(small) as registry:
            for i in range(20):
                registry.register(model_path=f"/m/{i}.zip", sha256="0" * 64, algorithm="ppo", env_id="CartPole-v1",
                                  total_timesteps=i, run_id="r", kind="final", hyperparams={}, git_commit=None)
        print(f"startup, median of {args.repeats} (ms)")
        print("| command | ms |")
        print("|---|---|")
        print(f"| python -c pass | {wall([sys.executable, '-c', 'pass'], args.repeats):.0f} |")
        bare = f"import sqlite3; sqlite3.connect({str(small)!r}).execute('SELECT * FROM models').fetchall()"
        print(f"| python, sqlite3 SELECT * | {wall([sys.executable, '-c', bare], args.repeats):.0f} |")
        listing = [str(bin_dir / "rl-registry-list"), "--registry-db", str(small)]
        print(f"| rl-registry-list (20 rows) | {wall(listing, args.repeats):.0f} |")

        generate(db, args.rows)
        print(f"\nbest-validated lookup on {args.rows:,} rows, median of {args.repeats} (ms)")
        print("| query | ms |")
        print("|---|---|")
        with Registry(db) as registry:
            print(f"| best() | {lookup(registry, args.repeats):.3f} |")
            filtered = lookup(registry, args.repeats, env_id="Ant-v5", algorithm="sac")
            print(f"| best(env_id, algorithm) | {filtered:.3f} |")
            raw = sqlite3.connect(db)
            started = time.perf_counter()
            raw.execute("SELECT * FROM models NOT INDEXED WHERE validated = 1 ORDER BY mean_reward DESC LIMIT 1")
            scan = (time.perf_counter() - started) * 1000
            print(f"| baseline: the same query as a full scan (NOT INDEXED) | {scan:.1f} |")


if __name__ == "__main__":
    main()
