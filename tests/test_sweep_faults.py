"""rl-sweep under the faults a fleet meets every week, with real processes: Ctrl-C and SIGTERM to the whole
process group, SIGKILL of rl-sweep, kill -9 of a worker, PostgreSQL restarted under two hosts, a space
in which nothing trains. None loses a trial, leaves a process behind or ends short of the total."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import postgres as postgres_server
import pytest

from conftest import BIN, command, environment

pytestmark = pytest.mark.slow

SPACE = {"train.gamma": {"float": [0.9, 0.999]}}
SMALL = ("--evaluations", "2", "--episodes", "2", "--no-preset", "--agent-kwargs", '{"n_steps": 128}',
         "--base-space", "empty", "--space", json.dumps(SPACE), "--pruner", "none", "--seed", "3",
         "--convergence-window", "null")


def start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """rl-sweep in a process group of its own, as a terminal or systemd starts it."""
    return subprocess.Popen([str(BIN / "rl-sweep"), *SMALL, *args, "--json"], cwd=cwd, env=environment(env or {}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)


def training(cwd: Path, runs: int = 1) -> list[Path]:
    """The runs that have logged a rollout (a worker is inside its trial), once there are `runs` of them."""
    found = sorted((cwd / "models").glob("*/progress.csv"))
    return found if len(found) >= runs else []


def group(pgid: int) -> list[str]:
    """The live processes of a process group (zombies, already ended, left out), each with its whole command
    line: -ww, for ps cuts it at $COLUMNS when that is set (CI's 80 cut the forkserver's name off)."""
    listed = subprocess.run(["ps", "-ww", "-o", "pid=,stat=,args=", "-g", str(pgid)], capture_output=True, text=True,
                            check=False).stdout
    return [line for line in listed.splitlines() if not line.split()[1].startswith("Z")]


def study_trials(db: Path, name: str) -> list[Any]:
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials(deepcopy=False)


def test_ctrl_c_to_the_group_saves_each_running_trial_and_the_same_command_finishes_the_study(tmp_path):
    """A terminal's Ctrl-C reaches rl-sweep and both workers; each worker stops its trial as rl-train does
    (a stopped model and result.json), its trial queued again, with no traceback; the same command then
    finishes the study with exactly its total, and --report with the study's name alone reads it."""
    args = ("--trial-timesteps", "8192", "--trials", "2", "--sweep-workers", "2", "--study-name", "ctrl-c")
    sweep = start(tmp_path, *args)
    wait_for(lambda: training(tmp_path, 2) or sweep.poll() is not None, "both workers to train")
    os.killpg(sweep.pid, signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "second" not in err, err[-3000:]
    stopped = json.loads(out)
    assert stopped["stopped_by"] == "SIGINT" and stopped["counts"]["waiting"] == 2, stopped["counts"]
    for run in training(tmp_path, 2):
        result = json.loads((run.parent / "result.json").read_text())
        assert result["status"] == "interrupted" and result["signal"] == "SIGINT"
        saved = tmp_path / result["model_path"]
        assert saved.is_file() and saved.name.startswith("stopped-") and saved.parent.name == "checkpoints"
    assert wait_for(lambda: not group(sweep.pid), "the group to end", 30)
    again = command("rl-sweep", *SMALL, *args, "--trial-timesteps", "1024", "--json", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    done = json.loads(again.stdout)
    assert done["counts"] == {"finished": 2, "pruned": 0, "failed": 2, "running": 0, "waiting": 0}
    report = command("rl-sweep", "--study-name", "ctrl-c", "--report", "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    read = json.loads(report.stdout)
    assert read["counts"] == done["counts"] and read["best"] == done["best"]
    assert read["flags"][:4] == ["--env-id", "CartPole-v1", "--algorithm", "ppo"]


def test_sigterm_to_the_group_leaves_no_process_and_sigkill_of_rl_sweep_takes_no_new_trial(tmp_path):
    """SIGTERM to the group (what systemd sends): rl-sweep waits for its worker to save and hand back its
    trial, and no process of the sweep outlives it. SIGKILL of rl-sweep: its worker stops its trial and
    takes no other; none of its processes is left 10 s later."""
    db = tmp_path / "rl_registry.db"
    args = ("--trial-timesteps", "8192", "--trials", "3", "--sweep-workers", "1", "--study-name", "signals")
    sweep = start(tmp_path, *args)
    wait_for(lambda: training(tmp_path) or sweep.poll() is not None, "the worker to train")
    os.killpg(sweep.pid, signal.SIGTERM)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 143 and "Traceback" not in err, err[-3000:]
    assert group(sweep.pid) == []  # rl-sweep ended its helpers and waited for them
    assert json.loads(out)["counts"] == {"finished": 0, "pruned": 0, "failed": 1, "running": 0, "waiting": 1}

    killed = start(tmp_path, *args)
    wait_for(lambda: any(t.state.name == "RUNNING" for t in study_trials(db, "signals")) or killed.poll() is not None,
             "the queued trial to run")
    wait_for(lambda: training(tmp_path, 2) or killed.poll() is not None, "the worker to train")
    killed.kill()
    killed.communicate(timeout=30)
    assert wait_for(lambda: not group(killed.pid), "the workers to end", 10)
    trials = study_trials(db, "signals")
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "WAITING"], [(t.state, t.user_attrs) for t in trials]
    assert trials[1].user_attrs["error"] == "stopped by a signal"  # saved and queued again, as for a signal


def test_a_worker_killed_with_kill_9_is_replaced_and_the_study_reaches_its_exact_total(tmp_path):
    """kill -9 of the only worker: rl-sweep sees it at once, fails its trial saying so, queues it again and
    starts another worker, which finishes the study."""
    db = tmp_path / "rl_registry.db"
    sweep = start(tmp_path, "--trial-timesteps", "4096", "--trials", "2", "--sweep-workers", "1", "--study-name",
                  "dead-worker")

    def running_worker() -> int | None:
        if not db.exists() or not training(tmp_path):
            return None
        running = [t for t in study_trials(db, "dead-worker") if t.state.name == "RUNNING" and "worker" in t.user_attrs]
        return int(running[0].user_attrs["worker"].rsplit("/", 1)[1]) if running else None

    pid = wait_for(lambda: running_worker() or sweep.poll() is not None, "the worker to train")
    assert sweep.poll() is None
    os.kill(pid, signal.SIGKILL)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err[-3000:]
    assert "worker 0 died (exit code -9); a new one takes its place" in err
    result = json.loads(out)
    assert result["counts"]["finished"] == 2 and result["counts"]["running"] == 0, result["counts"]
    (dead,) = [t for t in result["trials"] if t["state"] == "fail"]
    assert dead["error"] == "its worker died (exit code -9)"
    assert any(t["state"] == "complete" and t["params"] == dead["params"] for t in result["trials"])


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """Ctrl-C while the workers' process imports torch: one line, no traceback from any process."""
    sweep = start(tmp_path, "--trial-timesteps", "1024", "--trials", "1", "--study-name", "early")

    seen: list[float] = []  # when the forkserver was first seen

    def importing_torch() -> bool:
        """torch's library mapped in the forkserver (it is inside its imports), or the forkserver alive for
        half a second (its imports take seconds: still inside them, and well past rl-sweep starting it)."""
        for line in group(sweep.pid):
            if "forkserver" in line:
                seen.append(seen[0] if seen else time.monotonic())
                try:
                    if "libtorch" in Path(f"/proc/{line.split()[0]}/maps").read_text():
                        return True
                except OSError:
                    pass
        return bool(seen) and time.monotonic() - seen[0] > 0.5

    wait_for(lambda: importing_torch() or sweep.poll() is not None, "the forkserver to import torch")
    assert sweep.poll() is None, "rl-sweep ended before its forkserver was seen importing"
    os.killpg(sweep.pid, signal.SIGINT)
    _, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and err == "rl-sweep: interrupted\n", err
    assert wait_for(lambda: not group(sweep.pid), "the group to end", 60)


def test_a_space_in_which_nothing_trains_stops_after_a_bounded_number_of_failures(tmp_path):
    space = json.dumps({"agent.kwargs.batch_size": {"choices": ["x"]}})
    result = command("rl-sweep", *SMALL, "--space", space, "--trial-timesteps", "256", "--trials", "50",
                     "--failure-limit", "3", "--study-name", "hopeless", "--json", cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["counts"]["failed"] == 3 and out["counts"]["finished"] == 0
    first = min(out["trials"], key=lambda t: t["number"])
    assert first["error"] and f"the first, trial {first['number']}: {first['error']}" in result.stderr
    assert "3 trials in a row failed (sweep.failureLimit from flag --failure-limit)" in result.stderr


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[postgres_server.Server]:
    """A PostgreSQL server of this module's own: its tests restart it."""
    bin_dir = postgres_server.binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (./dev test installs Debian's postgresql)")
    server = postgres_server.Server(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


def restart(server: postgres_server.Server) -> None:
    """pg_ctl -m fast restart: every connection is cut, and the server is away for a moment."""
    server._run("pg_ctl", "-D", str(server.data), "-l", str(server.folder / "server.log"), "-w", "-m", "fast",
                "restart")


def test_two_hosts_ride_out_two_postgresql_restarts_and_the_study_reaches_its_exact_total(own_postgres, tmp_path):
    url = own_postgres.url(own_postgres.new_database())
    hosts = [tmp_path / "a", tmp_path / "b"]
    sweeps = []
    for host in hosts:
        host.mkdir()
        sweeps.append(start(host, "--trial-timesteps", "2048", "--trials", "3", "--study-name", "blips",
                            env={"RL_REGISTRY_DB": url}))

    def finished() -> bool:
        return any(json.loads(r.read_text())["status"] == "finished" for h in hosts
                   for r in (h / "models").glob("*/result.json"))

    wait_for(lambda: all(training(h) for h in hosts) or any(s.poll() is not None for s in sweeps),
             "both hosts to train")
    restart(own_postgres)  # mid-trial on both hosts
    wait_for(lambda: finished() or any(s.poll() is not None for s in sweeps), "a trial to finish")
    restart(own_postgres)
    outputs = [s.communicate(timeout=300) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], [err[-3000:] for _, err in outputs]
    import optuna

    study = optuna.load_study(study_name="blips", storage="postgresql+psycopg://" + url.split("://", 1)[1])
    states = [t.state.name for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states and "WAITING" not in states, states
    assert own_postgres.password not in outputs[0][1] + outputs[1][1]
