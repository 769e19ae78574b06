"""The registry end to end, as real processes: rl-train -> rows -> validation -> rl-registry-list ->
rl-infer --load-best; pruning; a tampered file; kill -9 during checkpoint saves; concurrent writers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, command
from rl_module.registry import Registry, verify
from rl_module.store import sha256_of

ZOO_CARTPOLE = ("--no-preset", "--n-envs", "8", "--batch-size", "256", "--gamma", "0.98", "--learning-rate", "lin_1e-3",
                "--agent-kwargs", '{"n_steps": 32, "gae_lambda": 0.8, "n_epochs": 20, "ent_coef": 0.0, '
                '"clip_range": "lin_0.2"}')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trained(request, tmp_path_factory) -> tuple[Path, dict, str, dict[str, str]]:
    """One run, recorded in the default SQLite file, or in PostgreSQL through RL_REGISTRY_DB; the commands
    then find the registry the same way."""
    cwd = tmp_path_factory.mktemp("e2e")
    if request.param == "sqlite":
        db, env = str(cwd / "rl_registry.db"), {}
    else:
        server = request.getfixturevalue("postgres")
        db = server.url(server.new_database())
        env = {"RL_REGISTRY_DB": db}
    # RL Zoo 2.9.2's CartPole values, whatever the preset: rollouts of 8 envs that reach every evaluation and
    # checkpoint period exactly, and a model that validates by 30,000 steps on seed 0.
    result = command("rl-train", "--total-timesteps", "30000", "--eval-freq", "5000", "--checkpoint-freq", "5000",
                     *ZOO_CARTPOLE, "--seed", "0", "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return cwd, json.loads(result.stdout), db, env


@pytest.mark.slow
def test_train_records_validates_lists_and_serves_the_best(trained):
    cwd, result, db, env = trained
    assert result["validated"] is True and result["failing_rules"] == []
    with Registry(db) as registry:
        rows = registry.models()
        assert len(rows) == 7  # six checkpoints and the final model
        assert {m.kind for m in rows} == {"checkpoint", "final"}
        for row in rows:
            assert sha256_of(cwd / row.model_path) == row.sha256
            assert row.run_id == result["run_id"] and json.loads(row.hyperparams)["env"]["envId"] == "CartPole-v1"
            assert row.mean_reward is not None, "checkpoints taken at evaluation steps carry that evaluation"
        final = registry.get(result["model_id"])
        assert final.kind == "final" and final.validated and final.eval_episodes == 10
        assert final.git_commit is None  # the run's directory is not a git work tree

    listed = command("rl-registry-list", "--validated", "--top-n", "5", "--json", cwd=cwd, env=env)
    assert listed.returncode == 0, listed.stderr
    models = json.loads(listed.stdout)
    with Registry(db) as registry:
        validated = registry.models(validated=True)
    assert validated and len(models) == min(5, len(validated)) and all(m["validated"] for m in models)
    assert [m["id"] for m in models] == [m.id for m in validated][:5]
    assert [m["mean_reward"] for m in models] == sorted((m["mean_reward"] for m in models), reverse=True)
    table = command("rl-registry-list", cwd=cwd, env=env).stdout
    assert table.splitlines()[0].split()[:3] == ["id", "ok", "reward"] and len(table.splitlines()) == 8

    observations = "[0.0, 0.1, 0.02, -0.1]\n[0.1, 0.0, -0.05, 0.3]\n[[0, 0, 0, 0], [0.1, 0.2, 0.1, 0.2]]\n"
    inferred = command("rl-infer", "--load-best", cwd=cwd, env=env, input=observations)
    assert inferred.returncode == 0, inferred.stderr
    answers = [json.loads(line) for line in inferred.stdout.splitlines()]
    assert answers[0] in (0, 1) and answers[1] in (0, 1)
    assert len(answers[2]) == 2 and set(answers[2]) <= {0, 1}
    best = command("rl-load-best", cwd=cwd, env=env)
    assert best.returncode == 0 and best.stdout.strip().endswith(".zip")
    assert "registry model" in inferred.stderr


@pytest.mark.slow
def test_eval_by_id_writes_back_and_validates_again(trained):
    cwd, _, db, env = trained
    with Registry(db) as registry:
        first = min(registry.models(), key=lambda m: m.id)
    # More episodes than the registry's evaluation: it replaces it (a weaker one would not, see test_new_user).
    result = command("rl-eval", "--model-id", str(first.id), "--episodes", "12", "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["episodes"] == 12 and output["validation"]["model_id"] == first.id and output["written_back"]
    with Registry(db) as registry:
        again = registry.get(first.id)
    assert again.eval_episodes == 12 and again.mean_reward == pytest.approx(output["mean_reward"])
    validate = command("rl-registry-validate", str(first.id), cwd=cwd, env=env)
    assert validate.returncode == (0 if again.validated else 1)
    assert "minReward 475" in validate.stdout
    assert "reward threshold from Gymnasium's reward_threshold for CartPole-v1" in validate.stdout
    assert "✓ file on this host" in validate.stdout and "convergence" in validate.stdout


@pytest.mark.slow
def test_pruning_keeps_n_and_the_best_and_a_tampered_file_is_refused(trained):
    cwd, _, db, env = trained
    with Registry(db) as registry:
        best = registry.best()
    pruned = command("rl-registry-prune", "--keep-top-n", "2", cwd=cwd, env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.strip().splitlines()[-1].startswith("removed ")
    with Registry(db) as registry:
        left = registry.models()
        assert best.id in {m.id for m in left} and len(left) == 2
        for row in left:
            verify(row)
    removed_paths = [line.split(": ", 1)[1] for line in pruned.stdout.splitlines() if line.startswith("removed model")]
    assert removed_paths and not any((cwd / p).exists() for p in removed_paths)

    Path(cwd / best.model_path).write_bytes(b"not the registered model")
    refused = command("rl-infer", "--model-id", str(best.id), "--obs", "[0, 0, 0, 0]", cwd=cwd, env=env)
    assert refused.returncode == 1
    assert f"model {best.id} refused" in refused.stderr and "checksum" in refused.stderr
    assert "Traceback" not in refused.stderr


def _rows_point_at_complete_files(db: Path | str, cwd: Path) -> int:
    with Registry(db) as registry:
        rows = registry.models()
        for row in rows:
            assert row.sha256 is not None
            assert sha256_of(cwd / row.model_path) == row.sha256, row
    return len(rows)


@pytest.mark.slow
def test_kill_9_during_checkpoint_saves_never_leaves_a_row_pointing_at_a_bad_file(tmp_path):
    db = tmp_path / "rl_registry.db"
    rng = random.Random(1)
    kills = 0
    for _ in range(6):
        before = _count(db) if db.exists() else 0
        trainer = subprocess.Popen(
            [str(BIN / "rl-train"), "--total-timesteps", "1000000", "--checkpoint-freq", "32", "--eval-freq", "0",
             "--no-preset", "--agent-kwargs", '{"n_steps": 256}'],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        # This trainer's own first row (not an earlier one's): then it is in its stream of saves.
        while time.time() < deadline and not (db.exists() and _count(db) > before):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 1.0))  # somewhere in the middle of a stream of saves
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()
        kills += 1
    rows = _rows_point_at_complete_files(db, tmp_path)
    assert kills == 6 and rows >= 6
    assert sqlite3_integrity(db) == "ok"


def _count(db: Path) -> int:
    with Registry(db) as registry:
        return len(registry.models())


def sqlite3_integrity(db: Path) -> str:
    import sqlite3

    return sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]


READER = """
import sys, time
from pathlib import Path
from rl_module.registry import Registry
stop = Path(sys.argv[2])
reads = 0
while not stop.exists():
    with Registry(sys.argv[1]) as registry:
        registry.models(limit=50)
        registry.best()
    reads += 1
print(reads)
"""
VALIDATOR = """
import random, sys
from pathlib import Path
from rl_module.registry import Registry, rules
stop = Path(sys.argv[2])
checks = 0
relaxed = rules(0.0, 1, None, 0.1, "CartPole-v1")
while not stop.exists():
    with Registry(sys.argv[1]) as registry:
        ids = [m.id for m in registry.models(limit=200)]
        if ids:
            registry.validate(random.choice(ids), relaxed)
            checks += 1
print(checks)
"""


@pytest.mark.slow
def test_concurrent_trainers_validator_and_readers_lose_nothing(registry_db, tmp_path):
    db, stop = registry_db, tmp_path / "stop"
    Registry(db).close()
    others = [subprocess.Popen([sys.executable, "-c", code, str(db), str(stop)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for code in (READER, READER, VALIDATOR)]
    trainers = [subprocess.Popen(
        [str(BIN / "rl-train"), "--total-timesteps", "3000", "--checkpoint-freq", "100", "--eval-freq", "500",
         "--episodes", "2", "--no-preset", "--agent-kwargs", '{"n_steps": 250}', "--json", "--model-dir",
         str(tmp_path / f"models{i}"), "--registry-db", db],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    results = [t.communicate(timeout=300) for t in trainers]
    stop.touch()
    counts = [p.communicate(timeout=60) for p in others]
    for (_out, err), trainer in zip(results, trainers, strict=True):
        assert trainer.returncode == 0, err
        assert "locked" not in err
    for (out, err), process in zip(counts, others, strict=True):
        assert process.returncode == 0 and "locked" not in err, err
        assert int(out) > 0
    with Registry(db) as registry:
        for (out, _err) in results:
            run = json.loads(out)
            rows = [m for m in registry.models() if m.run_id == run["run_id"]]
            files = list((Path(run["run_dir"]) / "checkpoints").glob("step-*.zip"))
            assert len(rows) == len(files) + 1 == 31
    _rows_point_at_complete_files(db, tmp_path)
