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


def register(db: Path, path: Path, reward: float, validate: bool = True) -> int:
    with Registry(db) as registry:
        model_id = registry.register(model_path=path, sha256=sha256_of(path), algorithm="ppo", env_id="CartPole-v1",
                                     total_timesteps=256, run_id=None, kind="final", hyperparams=None,
                                     git_commit=None, evaluation=Evaluation(reward, 1.0, 20.0, 10))
        if validate:
            assert registry.validate(model_id, RELAXED).valid
    return model_id


class Server:
    def __init__(self, db: Path, *args: str, cwd: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(BIN / "rl-infer"), "--serve", "--port", str(self.port), "--registry-db", str(db),
             "--poll-interval", "0.2", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))})
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


@pytest.mark.slow
def test_hotswap_under_load_with_zero_failed_requests(models, tmp_path):
    db = tmp_path / "r.db"
    first = register(db, models[0], 100.0)
    server = Server(db, cwd=tmp_path)
    try:
        assert server.get("/model")["id"] == first and server.get("/healthz")["status"] == "ok"
        answers: list[tuple[int, Any]] = []
        stop = threading.Event()

        def load() -> None:  # one keep-alive connection, requests back to back
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            while not stop.is_set():
                try:
                    connection.request("POST", "/predict", body=b"[0.01, 0.02, -0.03, 0.04]")
                    response = connection.getresponse()
                    answers.append((response.status, json.loads(response.read())))
                except OSError as error:
                    answers.append((0, str(error)))

        threads = [threading.Thread(target=load) for _ in range(2)]
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


@pytest.mark.slow
def test_hotswap_survives_a_model_that_fails_to_load_and_serves_the_next_good_one(tmp_path, capsys):
    from conftest import ROOT

    db = tmp_path / "r.db"
    first = register(db, train_file(tmp_path, capsys, 1), 100.0)
    # A better model whose custom encoder's module the server cannot import (it is not on its path).
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    try:
        broken = register(db, train_file(tmp_path / "b", capsys, 2, "--encoder", "custom", "--custom-class",
                                         "custom_parts:TinyEncoder"), 200.0)
    finally:
        sys.path.remove(str(ROOT / "tests"))
    server = Server(db, "--model-dir", str(tmp_path), cwd=tmp_path)  # every model of this test lies under it
    try:
        assert server.get("/model")["id"] == first  # the broken best was refused at start, the next one serves
        good = register(db, train_file(tmp_path / "c", capsys, 3), 300.0)
        deadline = time.time() + 20
        while server.get("/model")["id"] != good and time.time() < deadline:
            time.sleep(0.1)
        assert server.get("/model")["id"] == good
        health = server.get("/healthz")
        assert health["hotswap"] == "watching" and health["refused"] == [broken]
        assert "ModuleNotFoundError" in health["last_error"]
    finally:
        stderr = server.stop()
    assert "Exception in thread" not in stderr


@pytest.mark.slow
def test_a_server_stays_on_the_env_it_serves(tmp_path, capsys):
    db = tmp_path / "r.db"
    acrobot = train_file(tmp_path, capsys, 1, "--env-id", "Acrobot-v1")
    with Registry(db) as registry:
        acrobot_id = registry.register(model_path=acrobot, sha256=sha256_of(acrobot), algorithm="ppo",
                                       env_id="Acrobot-v1", total_timesteps=256, run_id=None, kind="final",
                                       hyperparams=None, git_commit=None,
                                       evaluation=Evaluation(-400.0, 10.0, 100.0, 10))
        assert registry.validate(acrobot_id, rules(-500.0, 1, None, 0.1, "Acrobot-v1")).valid
    server = Server(db, cwd=tmp_path)
    try:
        assert server.get("/model")["env_id"] == "Acrobot-v1"
        cartpole = register(db, train_file(tmp_path / "c", capsys, 2), 500.0)  # better, but another env
        time.sleep(1.5)
        assert server.get("/model")["id"] == acrobot_id
        status, answer = server.request("POST", "/predict", b"[1, 0, 1, 0, 0, 0]")
        assert status == 200 and answer["model_id"] == acrobot_id and answer["action"] in (0, 1, 2)
    finally:
        server.stop()
    assert cartpole != acrobot_id
