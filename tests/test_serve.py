"""rl-infer --serve as a real process: the HTTP API, live hotswap with zero failed requests, refusal of a
corrupt new best, bad input answered with 4xx, request metrics; and the fast predict path agrees with
stable-baselines3's predict."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import BIN
from rl_module.cli import run
from rl_module.cli.train import COMMAND as TRAIN
from rl_module.registry import Evaluation, Registry, rules
from rl_module.store import sha256_of

RELAXED = rules(0.0, 1, None, 0.1, "CartPole-v1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_file(tmp_path: Path, capsys: Any, seed: int, *extra: str) -> Path:
    code = run(TRAIN, ["--json", "--model-dir", str(tmp_path / "models"), "--no-registry", "--seed", str(seed),
                       "--total-timesteps", "256", "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "2",
                       "--no-preset", "--agent-kwargs", '{"n_steps": 128}', *extra], {})
    out, err = capsys.readouterr()
    assert code == 0, err
    return Path(json.loads(out)["model_path"]).resolve()


def register(db: Path, path: Path, reward: float, validate: bool = True, env_id: str = "CartPole-v1",
             stats: Path | None = None) -> int:
    with Registry(db) as registry:
        model_id = registry.register(model_path=path, sha256=sha256_of(path), algorithm="ppo", env_id=env_id,
                                     total_timesteps=256, run_id=None, kind="final", hyperparams=None,
                                     git_commit=None, evaluation=Evaluation(reward, 1.0, 20.0, 10),
                                     stats_sha256=sha256_of(stats) if stats is not None else None)
        if validate:
            bar = RELAXED if env_id == "CartPole-v1" else rules(min(0.0, reward) - 1.0, 1, None, 0.1, env_id)
            assert registry.validate(model_id, bar).valid
    return model_id


class Server:
    def __init__(self, db: Path, *args: str, cwd: Path, preexec_fn: Callable[[], None] | None = None) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(BIN / "rl-infer"), "--serve", "--port", str(self.port), "--registry-db", str(db),
             "--poll-interval", "0.2", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}, preexec_fn=preexec_fn)
        deadline = time.time() + 60
        while True:
            try:
                self.get("/healthz")
                return
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(self.process.communicate()[1]) from None
                time.sleep(0.2)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200
        return body

    def stop(self) -> str:
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=20)
        return stderr


@pytest.fixture
def models(tmp_path, capsys):
    return [train_file(tmp_path, capsys, seed) for seed in (1, 2, 3)]


def steady_requests(port: int, answers: list[tuple[int, Any]], stop: threading.Event) -> None:
    """One keep-alive connection, CartPole predictions back to back until `stop`; each answer's status and
    body (status 0 and the error for a connection that failed)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        try:
            connection.request("POST", "/predict", body=b"[0.01, 0.02, -0.03, 0.04]")
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
        except OSError as error:
            answers.append((0, str(error)))


@pytest.mark.slow
def test_hotswap_under_load_with_zero_failed_requests(models, tmp_path):
    db = tmp_path / "r.db"
    first = register(db, models[0], 100.0)
    server = Server(db, cwd=tmp_path)
    try:
        assert server.get("/model")["id"] == first and server.get("/healthz")["status"] == "ok"
        answers: list[tuple[int, Any]] = []
        stop = threading.Event()

        threads = [threading.Thread(target=steady_requests, args=(server.port, answers, stop)) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        second = register(db, models[1], 200.0)  # a better model is validated while requests flow
        deadline = time.time() + 20
        while server.get("/model")["id"] != second and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        model = server.get("/model")
        assert model["id"] == second and model["mean_reward"] == 200.0 and model["path"] == str(models[1])
        failures = [a for a in answers if a[0] != 200]
        assert not failures and len(answers) > 100
        served_by = {body["model_id"] for _, body in answers}
        assert served_by == {first, second}
        assert all(body["action"] in (0, 1) for _, body in answers)

        # A new best whose file changed after validation is refused; the current model keeps serving.
        third = register(db, models[2], 300.0)
        models[2].write_bytes(b"corrupted on disk")
        time.sleep(1.0)
        assert server.get("/model")["id"] == second
        assert server.request("POST", "/predict", b"[0, 0, 0, 0]")[0] == 200
    finally:
        stderr = server.stop()
    assert "hotswapped to model" in stderr and f"model {third} refused" in stderr


@pytest.mark.parametrize("body,status,message", [
    (b"{not json", 400, "Expecting"),
    (b"[1, 2]", 400, "shape [2]; expected [4]"),
    (b'["a", "b", "c", "d"]', 400, "not numeric float32"),
    (b'{"observation": [1, 2, 3, 4]}', 400, "not numeric"),
    (b"[" * 100_000 + b"]" * 100_000, 400, ""),
    (b"0" * (10 * 1024 * 1024), 413, "over the limit"),
])
def test_bad_input_gets_a_4xx_with_a_message_and_the_server_stays_up(body, status, message, models, tmp_path):
    db = tmp_path / "r.db"
    register(db, models[0], 100.0)
    server = Server(db, cwd=tmp_path)
    try:
        got, answer = server.request("POST", "/predict", body)
        assert got == status and message in answer["error"]
        assert server.request("GET", "/nowhere")[0] == 404
        assert server.request("GET", "/predict")[0] == 405
        assert server.get("/healthz")["status"] == "ok"
        assert server.request("POST", "/predict", b"[[0, 0, 0, 0], [0.1, 0, 0, 0]]")[0] == 200
    finally:
        server.stop()


def test_request_count_and_latency_are_metrics(models, tmp_path):
    db = tmp_path / "r.db"
    register(db, models[0], 100.0)
    prometheus = free_port()
    server = Server(db, "--metrics", "--prometheus-port", str(prometheus), cwd=tmp_path)
    try:
        for _ in range(5):
            server.request("POST", "/predict", b"[0, 0, 0, 0]")
        server.request("POST", "/predict", b"[0]")
        import urllib.request

        exposition = urllib.request.urlopen(f"http://127.0.0.1:{prometheus}/metrics", timeout=5).read().decode()
    finally:
        server.stop()
    lines = [line for line in exposition.splitlines() if line.startswith("rl_infer_requests_total")]
    ok = next(line for line in lines if 'http_response_status_code="200"' in line and "/predict" in line)
    assert float(ok.split()[-1]) == 5
    assert any('http_response_status_code="400"' in line for line in lines)
    assert "rl_infer_request_duration_seconds_bucket" in exposition


@pytest.mark.parametrize("algorithm,env_id", [("ppo", "CartPole-v1"), ("ppo", "Pendulum-v1"),
                                              ("a2c", "CartPole-v1"), ("dqn", "CartPole-v1"),
                                              ("sac", "Pendulum-v1"), ("td3", "Pendulum-v1")])
def test_the_fast_path_gives_the_actions_stable_baselines3_gives(algorithm, env_id, tmp_path, capsys):
    from rl_module import infer
    from rl_module.cli.infer import COMMAND

    extra = ("--agent-kwargs", '{"learning_starts": 50}') if algorithm in ("dqn", "sac", "td3") else ()
    code = run(TRAIN, ["--json", "--model-dir", str(tmp_path), "--no-registry", "--seed", "0", "--algorithm",
                       algorithm, "--env-id", env_id, "--total-timesteps", "200", "--eval-freq", "0",
                       "--checkpoint-freq", "0", "--episodes", "1", "--normalize", "obs", *extra], {})
    out, err = capsys.readouterr()
    assert code == 0, err
    path = json.loads(out)["model_path"]
    config, _ = COMMAND.configure(["--model-path", path], {})
    predictor = infer.Predictor(infer.locate(config))
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(16, *predictor.observation_space.shape)).astype(np.float32)
    ours = np.asarray(predictor.predict(observations.tolist()))
    normalized = predictor.normalizer.normalize_obs(observations)
    theirs, _ = predictor.model.predict(normalized, deterministic=True)
    assert np.allclose(ours, theirs, atol=1e-5)
    single = np.asarray(predictor.predict(observations[0].tolist()))
    assert np.allclose(single, theirs[0], atol=1e-5)


@pytest.mark.slow
def test_a_server_on_an_empty_registry_waits_then_serves_the_first_validated_model(tmp_path):
    from conftest import command

    db = tmp_path / "fresh.db"  # no registry at all yet: a new host that has not trained
    server = Server(db, cwd=tmp_path)
    try:
        assert server.get("/healthz")["status"] == "ok"
        status, ready = server.request("GET", "/readyz")
        assert status == 503 and ready["status"] == "waiting" and str(db) in ready["reason"]
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 503 and "waiting for the first validated model" in answer["error"]
        assert server.request("GET", "/model")[0] == 503

        trained = command("rl-train", "--registry-db", str(db), "--model-dir", str(tmp_path / "models"), "--json",
                          "--seed", "1", "--total-timesteps", "256", "--no-preset", "--agent-kwargs",
                          '{"n_steps": 128}', "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "3",
                          "--min-reward", "0", "--convergence-window", "null", "--min-episodes", "1", cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr
        result = json.loads(trained.stdout)
        assert result["validated"], result["failing_rules"]
        deadline = time.time() + 20
        while server.request("GET", "/readyz")[0] != 200 and time.time() < deadline:
            time.sleep(0.1)
        assert server.get("/readyz") == {"status": "ready", "model_id": result["model_id"]}
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == result["model_id"] and answer["action"] in (0, 1)
        assert server.process.poll() is None  # the same process all along: no restart
    finally:
        stderr = server.stop()
    assert "waiting for the first validated model" in stderr and "serving the first validated model" in stderr


def test_rl_infer_without_serve_still_fails_on_an_empty_registry(tmp_path):
    from conftest import command

    result = command("rl-infer", "--registry-db", str(tmp_path / "r.db"), "--obs", "[0, 0, 0, 0]", cwd=tmp_path)
    assert result.returncode == 1 and f"no registry at {tmp_path / 'r.db'}" in result.stderr


def wait_until(seconds: float, done: Callable[[], bool]) -> bool:
    deadline = time.time() + seconds
    while not done():
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_hotswap_survives_a_model_that_fails_to_load_and_serves_the_next_good_one(tmp_path, capsys):
    """A model that fails on the watcher thread, while a good one serves: the watcher logs it, refuses it,
    keeps the model served, says so in /healthz, and swaps to the next good model that is validated."""
    import sys

    from conftest import ROOT

    db = tmp_path / "r.db"
    first = register(db, train_file(tmp_path, capsys, 1), 100.0)
    # A model trained here with a custom encoder, which the server is not configured to load (feature.customClass).
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        broken_file = train_file(tmp_path / "b", capsys, 2, "--encoder", "custom", "--custom-class",
                                 "custom_parts:TinyEncoder")
    finally:
        sys.path.remove(str(ROOT / "tests"))
    good_file = train_file(tmp_path / "c", capsys, 3)
    server = Server(db, "--model-dir", str(tmp_path), cwd=tmp_path)  # every model of this test lies under it
    try:
        assert server.get("/model")["id"] == first
        health = server.get("/healthz")
        assert health["hotswap"] == "watching" and health["refused"] == [] and health["last_error"] is None
        broken = register(db, broken_file, 200.0)  # better, validated while the server serves: the watcher meets it
        assert wait_until(20, lambda: broken in server.get("/healthz")["refused"]), server.get("/healthz")
        health = server.get("/healthz")
        assert health["hotswap"] == "watching" and health["refused"] == [broken]
        assert f"model {broken}" in health["last_error"] and "custom encoder" in health["last_error"]
        assert server.get("/model")["id"] == first
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == first
        good = register(db, good_file, 300.0)  # still better, and loadable: the same watcher swaps to it
        assert wait_until(20, lambda: server.get("/model")["id"] == good), server.get("/healthz")
        assert server.get("/healthz")["hotswap"] == "watching"
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == good
    finally:
        stderr = server.stop()
    assert "Exception in thread" not in stderr
    assert f"hotswap to model {broken} refused" in stderr and f"hotswapped to model {good}" in stderr


@pytest.mark.slow
@pytest.mark.parametrize("served_env,other_env,observation", [
    ("Acrobot-v1", "CartPole-v1", b"[1, 0, 1, 0, 0, 0]"),  # other spaces too
    ("CartPole-v1", "CartPole-v0", b"[0, 0, 0, 0]"),  # the very same spaces: only the env filter keeps it out
])
def test_a_server_stays_on_the_env_it_serves(served_env, other_env, observation, tmp_path, capsys):
    """Without --env-id, a server swaps only among models of the env it serves: a better validated model of
    another env is never served, and not even tried (it is not among the refused). A later better model of
    the env served shows that the watcher has looked at the registry after the other env's model."""
    low, high = (-400.0, -300.0) if served_env == "Acrobot-v1" else (100.0, 200.0)
    db = tmp_path / "r.db"
    served = register(db, train_file(tmp_path, capsys, 1, "--env-id", served_env), low, env_id=served_env)
    other_file = train_file(tmp_path / "o", capsys, 2, "--env-id", other_env)
    next_file = train_file(tmp_path / "n", capsys, 3, "--env-id", served_env)
    server = Server(db, "--model-dir", str(tmp_path), cwd=tmp_path)  # every model of this test lies under it
    try:
        assert server.get("/model")["env_id"] == served_env
        other = register(db, other_file, 500.0, env_id=other_env)  # the best of the registry, but another env
        later = register(db, next_file, high, env_id=served_env)  # better than the one served, same env
        assert wait_until(20, lambda: server.get("/model")["id"] == later), server.get("/healthz")
        model = server.get("/model")
        assert model["env_id"] == served_env and model["mean_reward"] == high
        health = server.get("/healthz")
        assert health["hotswap"] == "watching" and health["refused"] == [] and health["last_error"] is None
        status, answer = server.request("POST", "/predict", observation)
        assert status == 200 and answer["model_id"] == later
    finally:
        stderr = server.stop()
    assert other not in (served, later)
    assert f"model {other} " not in stderr and f"model {other}:" not in stderr  # never tried


def test_a_big_batch_parsed_in_pieces_gives_what_one_json_loads_gives():
    """The server parses a big batch a piece at a time (the event loop gets its turn between pieces): the
    predictor sees the very numbers, and every malformed or odd body the very error, of one json.loads."""
    import math
    import warnings

    import gymnasium as gym

    from rl_module.infer import _array
    from rl_module.server import PIECE_BYTES, parse

    box = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    rows = json.dumps([[0.1, 0.2, 0.3, 0.4]] * 30_000)
    bodies = [rows, rows.replace("], [", "] ,\n [", 5), rows[:-1], rows + "]", rows.replace("], [", "],, [", 9000),
              rows.replace("], [", "] [", 9000), rows.replace("], [", "],\f[", 9000), rows + " x", "  " + rows + "\n",
              json.dumps([[1, [2, 3], 4, 5], [[4], 5, 6, 7]] * 9000),
              json.dumps([[math.nan, math.inf, 1e400, 1]] * 20_000), json.dumps([[1, 2, 3, 4]] * 30_000 + [[1, 2, 3]]),
              json.dumps([[1, 2, 3, 4]] * 30_000 + [[1, None, 3, 4]]),
              json.dumps([[1, 2, 3, 4]] * 30_000 + [[1, True, 3, 4]]), json.dumps([[1, 2, 3, 10**40]] * 30_000),
              json.dumps([[1, 2, 3, 4]] * 30_000 + [3]), json.dumps([[[1, 2, 3, 4]]] * 30_000),
              json.dumps([["a", "]", ",", "b"]] * 20_000), json.dumps({"x": [[1, 2, 3, 4]] * 20_000}),
              "[" * 100_000 + "]" * 100_000]

    def outcome(parser: Callable[[bytes], Any], body: bytes) -> tuple[Any, ...]:
        try:
            array, batch = _array(parser(body), box, "observation")
        except Exception as error:  # noqa: BLE001 - the outcome compared is the error
            return type(error).__name__, str(error)
        return array.dtype, array.shape, batch, array.tobytes()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in bodies:
            body = text.encode()
            assert len(body) > PIECE_BYTES
            assert outcome(lambda b: parse(b, box.dtype), body) == outcome(json.loads, body), text[:40]
    assert isinstance(parse(rows.encode(), box.dtype), np.ndarray)  # the pieces were taken


def test_half_sent_bodies_at_the_connection_limit_never_lock_out_healthz(tmp_path):
    """A server at infer.maxConnections with requests whose heads are whole and whose bodies never come (a head
    with Content-Length: 100000, then a byte): a new connection closes the one that has waited longest for its
    client, with a 503, so /healthz and /readyz still answer every probe. (Before, such connections were never
    closed to make room, and every new connection, probes included, was closed at once.)"""
    server = Server(tmp_path / "r.db", "--max-connections", "20", "--request-timeout", "60", cwd=tmp_path)
    slow: list[socket.socket] = []

    def head_read(sock: socket.socket) -> bytes:
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
        return answer

    try:
        def slow_client() -> None:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            slow.append(sock)
            # The server says 100 Continue once the application waits for the body: the request is under way.
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
            assert head_read(sock).startswith(b"HTTP/1.1 100 ")
            sock.sendall(b"[")

        def probes() -> None:
            for path in ("/healthz", "/readyz") * 3:
                status, body = server.request("GET", path)  # a new connection each
                assert (status, body["status"]) == ((200, "ok") if path == "/healthz" else (503, "waiting")), body

        for _ in range(20):  # as many as the server keeps open
            slow_client()
        probes()  # the first makes room (which stays: each probe's connection closes after its answer)
        for _ in range(5):  # the first takes that room, each of the others makes room for itself
            slow_client()
        probes()
        for sock in slow[:6]:  # the oldest made room, told why, then closed
            assert head_read(sock).startswith(b"HTTP/1.1 503 ")
    finally:
        try:
            stderr = server.stop()  # SIGTERM: the requests whose bodies are still coming do not hold it up
        finally:
            server.process.kill()
    assert all(head_read(sock).startswith(b"HTTP/1.1 503 ") for sock in slow[6:])
    for sock in slow:
        sock.close()
    assert "Traceback" not in stderr


def train_custom(tmp_path: Path, capsys: Any, seed: int) -> Path:
    """A model with the custom encoder custom_parts:TinyEncoder (tests/custom_parts.py), trained here."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "tests"))
    try:
        return train_file(tmp_path, capsys, seed, "--encoder", "custom", "--custom-class", "custom_parts:TinyEncoder")
    finally:
        sys.path.remove(str(ROOT / "tests"))


CUSTOM = ("--encoder", "custom", "--custom-class", "custom_parts:TinyEncoder")


@pytest.mark.slow
def test_models_that_load_and_cannot_predict_are_refused_even_as_the_first(tmp_path, capsys):
    """Models that load and cannot answer are refused before they serve, never swapped in to answer 500 to every
    /predict: one whose encoder's code on this host fails on every observation (the only model when the server
    starts: it keeps waiting), then a better one whose statistics file (checksum recorded) holds an int; the
    next validated model that can predict serves."""
    import pickle

    from conftest import ROOT
    from rl_module.obs import stats_path

    db = tmp_path / "r.db"
    failing = register(db, train_custom(tmp_path / "c", capsys, 1), 150.0)
    # This host's custom_parts: the same encoder's layers, and a forward that fails (another version of it).
    source = (ROOT / "tests" / "custom_parts.py").read_text()
    (tmp_path / "custom_parts.py").write_text(source.replace(
        "        return self.net(observations)", "        raise RuntimeError('this version of TinyEncoder fails')"))
    int_stats_file = train_file(tmp_path / "b", capsys, 2, "--normalize", "obs")
    stats = stats_path(int_stats_file)
    stats.write_bytes(pickle.dumps(5))
    good_file = train_file(tmp_path / "g", capsys, 3)
    server = Server(db, "--model-dir", str(tmp_path), *CUSTOM, cwd=tmp_path)
    try:
        assert wait_until(20, lambda: failing in server.get("/healthz")["refused"]), server.get("/healthz")
        status, ready = server.request("GET", "/readyz")
        assert status == 503 and ready["status"] == "waiting", ready
        assert "cannot predict" in server.get("/healthz")["last_error"]
        assert server.request("POST", "/predict", b"[0, 0, 0, 0]")[0] == 503
        int_stats = register(db, int_stats_file, 200.0, stats=stats)
        assert wait_until(20, lambda: int_stats in server.get("/healthz")["refused"]), server.get("/healthz")
        assert server.request("GET", "/readyz")[0] == 503
        good = register(db, good_file, 100.0)
        assert wait_until(20, lambda: server.request("GET", "/readyz")[0] == 200), server.get("/healthz")
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == good and answer["action"] in (0, 1)
        assert server.get("/model")["id"] == good
    finally:
        stderr = server.stop()
    assert f"hotswap to model {failing} refused" in stderr and f"hotswap to model {int_stats} refused" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_the_working_folder_never_shadows_what_is_installed(tmp_path, capsys):
    """rl-infer --serve of a model with a custom encoder, from a folder that holds its module and also a
    uvloop.py and an h11.py: the encoder is imported from the folder, and neither of the others is imported
    (the folder comes after the installed packages, and the event loop is named, not looked for)."""
    from conftest import ROOT

    db = tmp_path / "r.db"
    model = register(db, train_custom(tmp_path, capsys, 1), 100.0)
    (tmp_path / "custom_parts.py").write_text((ROOT / "tests" / "custom_parts.py").read_text())
    for name in ("uvloop", "h11"):
        (tmp_path / f"{name}.py").write_text(f"open({str(tmp_path / ('imported-' + name))!r}, 'w').close()\n"
                                             "raise ImportError('not the installed one')\n")
    server = Server(db, "--model-id", str(model), *CUSTOM, cwd=tmp_path)  # loaded before the server starts
    try:
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == model
    finally:
        server.stop()
    assert sorted(p.name for p in tmp_path.glob("imported-*")) == []


@pytest.mark.slow
def test_a_refused_model_is_tried_again_and_served_once_its_file_is_back(tmp_path, capsys):
    """The best model's file is missing when the server starts (a copy not yet in the store, one being put
    right): it is refused and the next best serves; once the file is back, the same server swaps to it within
    a few seconds (refused models are tried again, 1 s, 2 s, 4 s ... apart), with no restart."""
    db = tmp_path / "r.db"
    second = register(db, train_file(tmp_path / "a", capsys, 1), 100.0)
    best_file = train_file(tmp_path / "b", capsys, 2)
    best = register(db, best_file, 200.0)
    away = best_file.with_name("away.zip")
    best_file.rename(away)
    server = Server(db, "--model-dir", str(tmp_path), cwd=tmp_path)
    try:
        assert wait_until(20, lambda: server.request("GET", "/readyz")[0] == 200)
        assert server.get("/model")["id"] == second and server.get("/healthz")["refused"] == [best]
        away.rename(best_file)
        assert wait_until(30, lambda: server.get("/model")["id"] == best), server.get("/healthz")
        assert server.get("/healthz")["refused"] == []
        status, answer = server.request("POST", "/predict", b"[0, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == best
        assert server.process.poll() is None
    finally:
        stderr = server.stop()
    assert f"hotswap to model {best} refused" in stderr and f"hotswapped to model {best}" in stderr
