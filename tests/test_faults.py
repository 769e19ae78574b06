"""Ordinary faults of the machine a command runs on, each ending in a message that says what happened and
what to do: a registry this user may only read, a disk that fills up during training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BIN, command, environment

# Root passes every permission check (CAP_DAC_OVERRIDE): the commands run without that capability, as any
# other user would, so that a read-only file is read-only to them.
AS_A_USER = (["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else [])


def as_a_user(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_A_USER, str(BIN / name), *args], capture_output=True, text=True, cwd=cwd,
                          env=environment({}), timeout=300, check=False)


@pytest.fixture
def read_only_registry(tmp_path: Path) -> Iterator[tuple[Path, dict]]:
    """A registry with one validated model, its file and its folder then made read-only."""
    if AS_A_USER and shutil.which("setpriv") is None:
        pytest.skip("running as root, and setpriv (util-linux) is not there to drop the permission override")
    folder = tmp_path / "registry"
    done = command("rl-train", "--model-dir", str(tmp_path / "models"), "--registry-db", str(folder / "r.db"),
                   "--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "128", "--eval-freq",
                   "0", "--checkpoint-freq", "0", "--episodes", "2", "--seed", "1", "--min-reward", "0",
                   "--convergence-window", "null", "--min-episodes", "1", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["validated"], result
    assert sorted(p.name for p in folder.iterdir()) == ["r.db"]  # a clean close: no -wal, no -shm
    (folder / "r.db").chmod(0o444)
    folder.chmod(0o555)
    probe = as_a_user("rl-registry-list", "--help", cwd=tmp_path)
    if probe.returncode != 0:
        folder.chmod(0o755)
        pytest.skip(f"cannot run a command without the permission override here: {probe.stderr.strip()}")
    try:
        yield folder / "r.db", result
    finally:
        folder.chmod(0o755)


def test_a_read_only_registry_is_read_and_a_writer_says_it_is_read_only(read_only_registry, tmp_path):
    """rl-registry-list and rl-load-best only read: they open the file read-only and answer. A read-only
    file in a read-only folder, closed cleanly (no write-ahead log): SQLite cannot make the -shm file a
    WAL reader needs, so the file is read as it stands. rl-registry-validate writes: it says which file is
    read-only and why. Nothing is created beside the file."""
    db, result = read_only_registry
    listed = as_a_user("rl-registry-list", "--registry-db", str(db), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["id"] == result["model_id"] and row["validated"]
    best = as_a_user("rl-load-best", "--registry-db", str(db), "--model-dir", str(tmp_path / "models"), cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert best.stdout.strip() == result["model_path"]
    judged = as_a_user("rl-registry-validate", "--registry-db", str(db), "--model-dir", str(tmp_path / "models"),
                       str(result["model_id"]), cwd=tmp_path)
    assert judged.returncode == 1 and len(judged.stderr.strip().splitlines()) == 1, judged.stderr
    assert f"cannot write the registry {db}: the file is read-only for this user" in judged.stderr, judged.stderr
    assert "Traceback" not in judged.stderr and "not a SQLite database" not in judged.stderr
    # A trainer is refused before it trains, not after the work it could not record.
    trained = as_a_user("rl-train", "--registry-db", str(db), "--model-dir", str(tmp_path / "never"),
                        "--total-timesteps", "256", cwd=tmp_path)
    assert trained.returncode == 1 and "option registry.dbPath" in trained.stderr, trained.stderr
    assert f"cannot write the registry {db}" in trained.stderr and not (tmp_path / "never").exists()
    assert sorted(p.name for p in db.parent.iterdir()) == ["r.db"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of its own (tmpfs), which a few checkpoints fill."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_during_training_keeps_what_was_saved_and_says_how_to_resume(tiny_disk, tmp_path):
    """Checkpoints fill the disk part way: one line says the disk is full, which model was kept and the
    command that resumes; the exit status is 1 and result.json records it. With space again, that very
    command finishes the run."""
    args = ("--model-dir", str(tiny_disk / "models"), "--registry-db", str(tmp_path / "r.db"), "--no-preset",
            "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "2048", "--eval-freq", "0",
            "--checkpoint-freq", "128", "--episodes", "1", "--convergence-window", "null")
    full = command("rl-train", *args, "--json", cwd=tmp_path)
    assert full.returncode == 1, full.stderr
    (said,) = [line for line in full.stderr.splitlines() if line.startswith("rl-train:")]
    assert said.startswith("rl-train: the disk is full (No space left on device"), said
    assert "unexpected" not in full.stderr and "Traceback" not in full.stderr
    (run_dir,) = (tiny_disk / "models").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and "disk full" in result["error"]
    kept = Path(result["model_path"])
    assert kept.is_file() and kept.parent == run_dir / "checkpoints" and 0 < result["timesteps"] < 2048
    assert f"what was saved is kept, the newest saved model is {kept} ({result['timesteps']:,} steps)" in said
    resume = said.split("then resume: ", 1)[1].split()
    assert resume == ["rl-train", "--resume", str(run_dir)] == result["resume"].split()

    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)
    resumed = command(*resume, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    finished = json.loads(resumed.stdout)
    assert finished["status"] == "finished" and finished["resumed_from"] == result["timesteps"]
    assert finished["timesteps"] == 2048 and finished["run_dir"] == str(run_dir)


@pytest.mark.slow
def test_a_trainer_rides_out_a_postgresql_restart_and_records_every_model(tmp_path):
    """The registry's server restarts mid-run (every connection cut): the trainer reconnects, records the
    checkpoints that come after, and stops on Ctrl-C as usual, its stopped model recorded."""
    import signal
    import time

    import postgres as postgres_server
    from test_sweep_faults import restart

    from rl_module.registry import Registry

    bin_dir = postgres_server.binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (./dev test installs Debian's postgresql)")
    server = postgres_server.Server(bin_dir).start()  # its own: this test restarts it
    try:
        url = server.url(server.new_database())

        def ids() -> list[int]:
            with Registry(url) as registry:
                return [m.id for m in registry.models()]

        def wait_for(condition, what: str) -> None:
            deadline = time.monotonic() + 180
            while not condition():
                assert trainer.poll() is None, f"the trainer exited ({trainer.returncode}) before {what}"
                assert time.monotonic() < deadline, what
                time.sleep(0.1)

        trainer = subprocess.Popen([str(BIN / "rl-train"), "--registry-db", url, "--total-timesteps", "1000000",
                                    "--checkpoint-freq", "256", "--eval-freq", "0", "--no-preset", "--agent-kwargs",
                                    '{"n_steps": 256}'], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=environment({}))
        wait_for(lambda: len(ids()) >= 2, "its first checkpoints were recorded")
        restart(server)
        before = max(ids())
        wait_for(lambda: max(ids()) > before + 1, "a checkpoint was recorded after the restart")
        trainer.send_signal(signal.SIGINT)
        _, stderr = trainer.communicate(timeout=300)
        assert trainer.returncode == 130, stderr
        assert "went away" in stderr and "reconnecting" in stderr
        with Registry(url) as registry:
            kinds = [m.kind for m in registry.models()]
        assert "interrupted" in kinds and kinds.count("checkpoint") >= 3
    finally:
        server.stop()
