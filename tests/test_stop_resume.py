"""Runs that survive real machines, as real processes: SIGTERM and SIGINT mid-run save where the run is
and record it; a second signal stops at once leaving nothing partial; --resume continues the run in
its own directory to the full step count, with its registry rows, evaluations and logs going on."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, command
from rl_module.store import sha256_of

SAC = ("--algorithm", "sac", "--env-id", "Pendulum-v1", "--no-preset", "--net-arch", "32,32")


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen([str(BIN / "rl-train"), *where(tmp_path), "--no-progress-bar", *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))})


def where(tmp_path: Path) -> tuple[str, ...]:
    return ("--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "registry.db"))


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 120) -> list[str]:
    """stderr lines up to (and with) the first that contains `text`."""
    assert process.stderr is not None
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never appeared in:\n{''.join(seen)}")


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM models ORDER BY id")]


def assert_every_row_names_its_file(db: Path) -> None:
    for row in rows(db):
        assert Path(row["model_path"]).is_file(), row
        assert sha256_of(row["model_path"]) == row["sha256"], row


def assert_nothing_partial(run_dir: Path) -> None:
    partial = [p for p in run_dir.rglob("*") if ".tmp-" in p.name]
    assert not partial, partial


def run_dir(tmp_path: Path) -> Path:
    (directory,) = (tmp_path / "models").iterdir()
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("signum,total,every,extra", [
    # 8 envs, whatever CartPole's preset: steps that reach every checkpoint period exactly.
    (signal.SIGTERM, 12_000, 2_000, ("--n-envs", "8", "--seed", "3", "--traces", "--logs", "--metrics")),
    (signal.SIGINT, 1_600, 400, (*SAC, "--seed", "4", "--agent-kwargs", '{"learning_starts": 100}')),
], ids=["ppo-sigterm", "sac-sigint"])
def test_a_signal_mid_run_saves_where_it_is_and_resume_reaches_the_full_count(signum, total, every, extra,
                                                                                 tmp_path):
    db = tmp_path / "registry.db"
    process = start(tmp_path, "--total-timesteps", str(total), "--checkpoint-freq", str(every),
                    "--eval-freq", str(every), "--episodes", "2", *extra)
    before = wait_for_line(process, f"step-{2 * every}.zip")  # learning, two checkpoints in
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    err = "".join(before) + err
    assert process.returncode == 128 + signum, err

    directory = run_dir(tmp_path)
    stopped = json.loads((directory / "result.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["signal"] == signum.name
    assert 2 * every <= stopped["timesteps"] < total and stopped["evaluation"] is None
    assert Path(stopped["model_path"]).name == f"stopped-{stopped['timesteps']}.zip"
    assert f"interrupted by {signum.name} at {stopped['timesteps']:,} of {total:,} steps" in out
    assert f"rl-train --resume {stopped['run_id']}" in out
    (interrupted,) = [r for r in rows(db) if r["kind"] == "interrupted"]
    assert interrupted["total_timesteps"] == stopped["timesteps"] and interrupted["validated"] == 0
    assert_every_row_names_its_file(db)
    assert_nothing_partial(directory)
    if "sac" in extra:  # the replay buffer is kept beside the stopped model (store.replayBuffer = final)
        assert Path(stopped["model_path"]).with_suffix(".replay.npz").is_file()
    if "--traces" in extra:  # the run's span ended with its status; the logs and metrics were flushed
        from test_telemetry import otlp_request

        lines = (directory / "traces.otlp.jsonl").read_text().splitlines()
        spans = [s for line in lines for rs in otlp_request("traces", line).resource_spans
                 for ss in rs.scope_spans for s in ss.spans]
        (run_span,) = [s for s in spans if s.name == "rl.train"]
        status = {a.key: a.value.string_value for a in run_span.attributes if a.key.startswith("rl.run.")}
        assert status == {"rl.run.id": stopped["run_id"], "rl.run.status": "interrupted", "rl.run.signal": "SIGTERM"}
        assert "rl.run.interrupted" in (directory / "logs.otlp.jsonl").read_text()
        assert "rl.env.steps" in (directory / "metrics.otlp.jsonl").read_text()
    stopped_evaluations = [tuple(e.values()) for e in stopped["evaluations"]]
    assert len(stopped_evaluations) >= 1  # the one due as the signal came was given up

    resumed = command("rl-train", *where(tmp_path), "--no-progress-bar", "--resume", "latest", "--json",
                      cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["run_id"] == stopped["run_id"] and result["status"] == "finished"
    assert result["timesteps"] >= total and result["resumed_from"] == stopped["timesteps"]
    assert [s["status"] for s in result["segments"]] == ["interrupted", "finished"]
    assert f"resumed at {stopped['timesteps']} of {total} steps" in resumed.stderr
    if "sac" in extra:
        restored = [line for line in resumed.stderr.splitlines() if "replay buffer restored" in line]
        assert restored and int(restored[0].split(": ")[-1].split()[0]) >= stopped["timesteps"] - 1

    # The evaluations go on from where the first process stopped, on the same step grid.
    evaluations = [tuple(e.values()) for e in result["evaluations"]]
    assert evaluations[:len(stopped_evaluations)] == stopped_evaluations
    steps = [int(e["timesteps"]) for e in result["evaluations"]]
    assert steps == sorted(set(steps)) and steps[-1] > stopped["timesteps"] and all(s % every == 0 for s in steps)
    with sqlite3.connect(db) as connection:
        recorded = [r[0] for r in connection.execute("SELECT timesteps FROM evaluations ORDER BY id")]
    assert recorded == steps

    # Registry rows continue in the same run; every row still names its very file.
    run_rows = [r for r in rows(db) if r["run_id"] == stopped["run_id"]]
    assert interrupted in run_rows
    later = [r for r in run_rows if r["id"] > interrupted["id"]]
    assert later and all(r["total_timesteps"] > stopped["timesteps"] for r in later)
    assert later[-1]["kind"] == "final" and later[-1]["id"] == result["model_id"]
    assert_every_row_names_its_file(db)
    assert_nothing_partial(directory)

    # One progress.csv across both processes, its step column never going back.
    with open(directory / "progress.csv", newline="") as handle:
        progress = list(csv.DictReader(handle))
    counted = [int(float(r["time/total_timesteps"])) for r in progress if r.get("time/total_timesteps")]
    assert counted == sorted(counted) and counted[0] < stopped["timesteps"] < counted[-1]
    log = (directory / "train.log").read_text()
    assert "started" in log and f"resumed at {stopped['timesteps']}" in log


@pytest.mark.slow
def test_a_second_signal_stops_at_once_and_leaves_nothing_partial(tmp_path):
    # A replay buffer of four million transitions takes a while to write: the second signal lands in it.
    process = start(tmp_path, *SAC, "--total-timesteps", "100000", "--checkpoint-freq", "200", "--eval-freq", "0",
                    "--agent-kwargs", '{"learning_starts": 50, "buffer_size": 4000000}')
    wait_for_line(process, "step-200.zip")
    process.send_signal(signal.SIGTERM)
    wait_for_line(process, "SIGTERM: stopping at the next step")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "stopped at once by a second SIGTERM" in err and "Traceback" not in err
    directory = run_dir(tmp_path)
    assert_nothing_partial(directory)
    assert_every_row_names_its_file(tmp_path / "registry.db")
    # What was complete before the second signal is intact: the run can still be resumed.
    again = command("rl-train", *where(tmp_path), "--resume", directory.name, "--total-timesteps", "400",
                    "--print-config")
    assert again.returncode == 2 and "may only grow" in again.stderr


def test_resume_refuses_what_may_not_change_and_says_what_may(tmp_path):
    first = command("rl-train", *where(tmp_path), "--total-timesteps", "256", "--no-preset", "--agent-kwargs",
                    '{"n_steps": 128}', "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "1", "--seed", "1",
                    "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]

    def resume(*args: str) -> subprocess.CompletedProcess[str]:
        return command("rl-train", *where(tmp_path), "--resume", run_id, *args, cwd=tmp_path)

    changed = resume("--algorithm", "a2c")
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1
    assert (f"option agent.algorithm from flag --algorithm: 'a2c' cannot change when resuming run {run_id}, "
            "which was trained with 'ppo'") in changed.stderr and "train.totalTimesteps" in changed.stderr
    fewer = resume("--total-timesteps", "100")
    assert fewer.returncode == 2 and "may only grow when resuming" in fewer.stderr
    finished = resume()
    assert finished.returncode == 2 and "is reached" in finished.stderr and "has trained 256 steps" in finished.stderr
    nowhere = command("rl-train", *where(tmp_path), "--resume", "no-such-run", cwd=tmp_path)
    assert nowhere.returncode == 2 and "names no run" in nowhere.stderr

    # The resumed configuration is the run's; what may change is taken from now.
    shown = resume("--total-timesteps", "512", "--log-level", "debug", "--print-config")
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)
    assert config["env"]["seed"] == {"value": 1,
                                     "source": f"config.json of run {run_id} (recorded there as from flag --seed)"}
    assert config["agent"]["kwargs"]["value"] == {"n_steps": 128}
    assert config["train"]["totalTimesteps"] == {"value": 512, "source": "flag --total-timesteps"}
    assert config["logs"]["level"]["value"] == "debug"

    # A finished run is extended the same way; its earlier final model keeps its row and its bytes.
    extended = resume("--total-timesteps", "512", "--json")
    assert extended.returncode == 0, extended.stderr
    result = json.loads(extended.stdout)
    assert result["timesteps"] == 512 and result["resumed_from"] == 256
    finals = [r for r in rows(tmp_path / "registry.db") if r["kind"] == "final"]
    assert [r["total_timesteps"] for r in finals] == [256, 512]
    assert finals[0]["model_path"].endswith("checkpoints/final-256.zip")
    assert_every_row_names_its_file(tmp_path / "registry.db")


@pytest.mark.slow
def test_a_signal_to_the_whole_process_group_stops_subprocess_workers_gracefully(tmp_path):
    """A terminal's Ctrl-C and systemd's stop signal every process of the group: the workers must leave
    the stopping to the main process."""
    import os

    process = subprocess.Popen([str(BIN / "rl-train"), *where(tmp_path), "--no-progress-bar", "--n-envs", "2",
                                "--vec-env", "subproc", "--total-timesteps", "50000", "--checkpoint-freq", "1000",
                                "--eval-freq", "0", "--no-preset"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))})
    wait_for_line(process, "step-2000.zip")
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    result = json.loads((run_dir(tmp_path) / "result.json").read_text())
    assert result["status"] == "interrupted" and Path(result["model_path"]).is_file()
    assert "Traceback" not in err and "EOFError" not in err


def test_a_signal_that_lands_while_a_log_line_is_written_is_announced_after_it(capsys):
    """A signal handler runs between two bytecodes of the main thread: if that is inside a log handler's
    flush, writing the stop's warning to the same stream is a reentrant write (CPython's buffered files
    raise "reentrant call"). The stream here refuses a write inside its own flush the same way, and sends
    the signal from there."""
    import logging
    import os
    import threading

    from rl_module import stopping

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed by the main thread only, and this test runs in another")

    class BufferedLikeStream:
        def __init__(self) -> None:
            self.lines: list[str] = []
            self.flushing = False
            self.signal_on_flush = False

        def write(self, text: str) -> None:
            if self.flushing:
                raise RuntimeError("reentrant call inside the stream")
            self.lines.append(text)

        def flush(self) -> None:
            self.flushing = True
            try:
                if self.signal_on_flush:
                    self.signal_on_flush = False
                    os.kill(os.getpid(), signal.SIGTERM)
                    for _ in range(1000):  # bytecodes for the handler to run between
                        pass
            finally:
                self.flushing = False

    stream = BufferedLikeStream()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("rl_module")
    logger.addHandler(handler)
    try:
        with stopping.GracefulStop("stopping at the next step") as stop:
            stream.signal_on_flush = True
            logger.warning("a line being written when the signal lands")
            assert stop.requested and stop.signal_name == "SIGTERM"
            for thread in [t for t in threading.enumerate() if t.name == "rl-stop-announce"]:
                thread.join(timeout=60)
    finally:
        logger.removeHandler(handler)
    assert "Logging error" not in capsys.readouterr().err
    written = "".join(stream.lines)
    assert written.index("a line being written") < written.index("SIGTERM: stopping at the next step (send it again")
