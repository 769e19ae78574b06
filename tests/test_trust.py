"""Trust boundaries of model loading: a model file is code (pickle), so only the bytes whose checksum was
checked are loaded — the model and the normalization statistics beside it — and a file is never
reopened by name between the check and the load."""

from __future__ import annotations

import base64
import json
import pickle
import sqlite3
import zipfile
from pathlib import Path

import pytest

from conftest import command
from rl_module.registry import Registry, RegistryError, read_verified


class Payload:
    """Unpickling this creates a file: proof that the bytes were run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def validated(tmp_path: Path) -> tuple[Path, int, dict]:
    """A registered, validated model with normalization statistics beside it."""
    done = command("rl-train", "--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"),
                   "--normalize", "obs", "--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps",
                   "256", "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "3", "--seed", "1",
                   "--min-reward", "0", "--convergence-window", "null", "--min-episodes", "1", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["validated"], result["failing_rules"]
    return tmp_path / "r.db", result["model_id"], result


def test_the_statistics_beside_a_model_have_their_own_checksum(validated):
    db, model_id, result = validated
    with Registry(db) as registry:
        row = registry.get(model_id)
    stats = Path(result["model_path"]).with_name("model.vecnormalize.pkl")
    import hashlib

    assert row.stats_sha256 == hashlib.sha256(stats.read_bytes()).hexdigest()


@pytest.mark.parametrize("name,args", [("rl-infer", ("--obs", "[0, 0, 0, 0]")), ("rl-eval", ("--episodes", "1")),
                                       ("rl-load-best", ())])
def test_crafted_statistics_beside_a_validated_model_are_refused_and_never_run(validated, name, args, tmp_path):
    db, model_id, result = validated
    marker = tmp_path / "payload-ran"
    Path(result["model_path"]).with_name("model.vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))
    target = ("--model-id", str(model_id)) if name != "rl-load-best" else ()
    done = command(name, "--registry-db", str(db), *target, *args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "model.vecnormalize.pkl does not match the checksum recorded" in done.stderr
    assert not marker.exists()


def test_statistics_without_a_recorded_checksum_are_refused(validated, tmp_path):
    db, model_id, result = validated
    with sqlite3.connect(db) as connection:  # a row written by an older rl-module, or another tool
        connection.execute("UPDATE models SET stats_sha256 = NULL WHERE id = ?", (model_id,))
    done = command("rl-infer", "--registry-db", str(db), "--model-id", str(model_id), "--obs", "[0, 0, 0, 0]",
                   cwd=tmp_path)
    assert done.returncode == 1 and "the registry recorded no checksum for it" in done.stderr


def test_a_file_replaced_after_its_check_is_not_what_gets_loaded(validated, tmp_path):
    """The check-then-load race: the bytes are read once, checked, and loaded from memory; replacing the
    file in between (here: right after the check) changes nothing, and the replacement's payload never runs."""
    from rl_module.cli.infer import COMMAND
    from rl_module.infer import Located, Predictor

    db, model_id, result = validated
    path = Path(result["model_path"])
    config, _ = COMMAND.configure(["--model-id", str(model_id), "--registry-db", str(db), "--model-dir",
                                   str(tmp_path / "models")], {})
    with Registry(db) as registry:
        files = read_verified(registry.get(model_id))
    marker = tmp_path / "payload-ran"
    with zipfile.ZipFile(path) as original:
        entries = {name: original.read(name) for name in original.namelist()}
    data = json.loads(entries["data"])
    data["lr_schedule"] = {":type:": "<class 'function'>",
                           ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as swapped:  # the attacker's replacement lands after the check
        for name, content in entries.items():
            swapped.writestr(name, content)
    predictor = Predictor(Located(files.path, config, None, files))
    assert predictor.predict([0.0, 0.0, 0.0, 0.0]) in (0, 1)
    assert not marker.exists()
    # And the next load by id refuses the replaced file outright.
    with Registry(db) as registry, pytest.raises(RegistryError, match="does not match the checksum"):
        read_verified(registry.get(model_id))
    done = command("rl-infer", "--registry-db", str(db), "--model-id", str(model_id), "--obs", "[0, 0, 0, 0]",
                   cwd=tmp_path)
    assert done.returncode == 1 and not marker.exists()


# -- secrets are never written down ------------------------------------------------------------------------

SECRET = "hunter2-s3cret"


def test_credentials_in_urls_reach_no_file_no_log_and_no_printout(tmp_path):
    """A tracking URI with user:password@ and an OTLP endpoint with ?token=: the run still uses them (the
    store is down here, the exporter unreachable), and no file, log or printout holds the secret."""
    uri = f"http://alice:{SECRET}@127.0.0.1:9/mlflow"
    endpoint = f"http://127.0.0.1:9/v1/traces?token={SECRET}"
    args = ("--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"), "--backend", "mlflow",
            "--tracking-uri", uri, "--traces", "--traces-endpoint", endpoint, "--traces-protocol", "http", "--logs",
            "--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "256", "--eval-freq", "0",
            "--checkpoint-freq", "0", "--episodes", "1")
    shown = command("rl-train", *args, "--print-config")
    assert shown.returncode == 0 and SECRET not in shown.stdout and "alice:***@" in shown.stdout
    done = command("rl-train", *args, "--json", cwd=tmp_path, env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2"})
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["store_failure"]  # the store was tried with the real URI, and its failure is masked
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in written) and any(p.name == "train.log" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    run_dir = Path(result["run_dir"])
    for name in ("config.json", "result.json", "train.log"):
        assert (run_dir / name).stat().st_mode & 0o077 == 0, name  # owner-only
    with Registry(tmp_path / "r.db") as registry:
        assert all(SECRET not in (m.hyperparams or "") for m in registry.models())


def test_a_resumed_run_takes_its_credentials_from_now_not_from_the_masked_record(tmp_path):
    uri = f"http://alice:{SECRET}@127.0.0.1:9/mlflow"
    where = ("--model-dir", str(tmp_path / "models"), "--no-registry")
    first = command("rl-train", *where, "--tracking-uri", uri, "--no-preset", "--agent-kwargs", '{"n_steps": 128}',
                    "--total-timesteps", "128", "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "1",
                    "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    shown = command("rl-train", *where, "--resume", "latest", "--total-timesteps", "256", "--print-config",
                    env={"RL_STORE_TRACKING_URI": uri}, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["store"]["trackingUri"]["source"] == "env RL_STORE_TRACKING_URI"


# -- rows and files the registry may touch; crash logs -------------------------------------------------------

def test_pruning_deletes_nothing_outside_the_model_folder(tmp_path):
    from rl_module.registry import Evaluation
    from rl_module.store import sha256_of

    outside = tmp_path / "precious.txt"
    outside.write_text("not a model")
    db = tmp_path / "r.db"
    with Registry(db) as registry:
        for reward in (1.0, 2.0):
            registry.register(model_path=outside, sha256=sha256_of(outside), algorithm="ppo", env_id="CartPole-v1",
                              total_timesteps=1, run_id=None, kind="imported", hyperparams=None, git_commit=None,
                              evaluation=Evaluation(reward, 0.1, 1.0, 10))
    (tmp_path / "models").mkdir()
    done = command("rl-registry-prune", "--registry-db", str(db), "--keep-top-n", "1", "--model-dir",
                   str(tmp_path / "models"))
    assert done.returncode == 0, done.stderr
    assert outside.exists() and "is outside store.modelDir" in done.stderr and "removed 0 models" in done.stdout
    with Registry(db) as registry:
        assert len(registry.models()) == 2


def test_a_crash_log_goes_to_a_private_folder_and_follows_no_planted_link(tmp_path):
    import os

    from rl_module.cli import _write_traceback

    state = tmp_path / "state"
    os.environ["XDG_STATE_HOME"] = str(state)
    try:
        try:
            raise RuntimeError(f"boom at http://bob:{SECRET}@db.example/x")
        except RuntimeError:
            path = Path(_write_traceback("rl-test"))
    finally:
        del os.environ["XDG_STATE_HOME"]
    assert path.parent == state / "rl-module" and path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    assert "RuntimeError" in path.read_text() and SECRET not in path.read_text()
    # A link planted at the very name is not followed: the write fails rather than land elsewhere.
    target = tmp_path / "victim"
    target.write_text("keep")
    planted = path.with_name("planted.log")
    planted.symlink_to(target)
    with pytest.raises(OSError):
        os.open(planted, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    assert target.read_text() == "keep"


# -- smaller ones ------------------------------------------------------------------------------------------------

def test_every_bad_observation_is_a_4xx_and_stdin_goes_on_after_a_bad_line(validated, tmp_path):
    from test_serve import Server

    db, model_id, result = validated
    done = command("rl-infer", "--registry-db", str(db), "--model-id", str(model_id), cwd=tmp_path,
                   input="[0, 0, 0, 0]\n[1e400, 0, 0, 0]\n[NaN, 0, 0, 0]\n" + "[" * 50_000 + "\n[0, 0, 0, 0]\n")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 2 and len(lines) == 5
    assert lines[0] in (0, 1) and lines[4] in (0, 1) and all("error" in line for line in lines[1:4])
    assert "not finite" in lines[1]["error"] and "not finite" in lines[2]["error"]
    server = Server(db, cwd=tmp_path)
    try:
        for body in (b"[1e400, 0, 0, 0]", b"[NaN, 0, 0, 0]", b"[Infinity, 0, 0, 0]", b"[1, 2, 3, " + b"9" * 400 + b"]"):
            status, answer = server.request("POST", "/predict", body)
            assert status == 400 and answer["error"], body
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("HEAD", "/healthz")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b""
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/predict", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                        "Sec-WebSocket-Version": "13"})
        assert connection.getresponse().status in (400, 403, 404, 405)
        connection.close()
    finally:
        stderr = server.stop()
    assert "Traceback" not in stderr


def test_a_model_path_reads_its_own_runs_configuration_only(tmp_path, validated):
    _, _, result = validated
    model = Path(result["model_path"])
    loose = tmp_path / "loose" / "deeper"
    loose.mkdir(parents=True)
    (loose.parent / "config.json").write_text("{}")  # two folders up from a model: not its run
    copy = loose / "model.zip"
    copy.write_bytes(model.read_bytes())
    done = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 0 and json.loads(done.stdout) in (0, 1), done.stderr
    (loose / "config.json").write_text("{}")  # its own folder, but not a run's configuration
    done = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 0 and "is not a run's configuration" in done.stderr


# -- a server that cannot be starved ----------------------------------------------------------------------------

def healthz_times(port: int, probes: int = 10) -> list[float]:
    """Seconds each of `probes` fresh GET /healthz took (every one must answer 200)."""
    import http.client
    import time

    times = []
    for _ in range(probes):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        connection.close()
        times.append(time.perf_counter() - started)
    return times


@pytest.mark.slow
def test_idle_and_half_sent_requests_and_big_batches_leave_healthz_prompt(validated, tmp_path):
    import socket
    import statistics
    import threading
    import time

    from test_serve import Server

    db, _, _ = validated
    server = Server(db, "--max-connections", "64", "--request-timeout", "3", cwd=tmp_path)
    held: list[socket.socket] = []
    try:
        # 300 sockets that never send a byte: the oldest idle ones make room, none lock /healthz out.
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        assert statistics.median(healthz_times(server.port)) < 0.1
        # 40 requests that declare a 1 MiB body and send a sliver of it: answered 408 once the timeout passes.
        slow = []
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n[0.1, ")
            slow.append(s)
        assert statistics.median(healthz_times(server.port)) < 0.1
        time.sleep(3.5)
        slow[0].settimeout(5)
        assert b" 408 " in slow[0].recv(4096).split(b"\r\n")[0] + b" "
        # Eight big batches computing at once: inference runs off the event loop.
        batch = json.dumps([[0.1, 0.2, 0.3, 0.4]] * 25_000).encode()  # about 1 MiB
        answers: list[int] = []

        def post() -> None:
            answers.append(server.request("POST", "/predict", batch)[0])

        workers = [threading.Thread(target=post) for _ in range(8)]
        for worker in workers:
            worker.start()
        time.sleep(0.05)
        during = healthz_times(server.port, probes=5)
        for worker in workers:
            worker.join()
        assert statistics.median(during) < 0.1, during
        assert set(answers) <= {200, 503} and 200 in answers
    finally:
        for s in held:
            s.close()
        stderr = server.stop()
    assert "Traceback" not in stderr
