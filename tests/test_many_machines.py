"""One registry for many machines, as real processes: PostgreSQL for the registry, an S3 server (moto) for
the model files, and "hosts" that are separate processes with separate working and model folders. Two
trainers register concurrently and lose their model folders when they end; a validator on a third host
validates; a server on a fourth, started before any model existed, swaps at NOTIFY to models it never
trained, fetched from S3 and checked, under a steady request loop that never fails; a trainer killed with
kill -9 mid-checkpoint leaves no row whose file or remote copy is missing."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_serve import Server

from conftest import BIN, boto_credentials, command, environment
from rl_module.registry import Model, Registry

pytestmark = [pytest.mark.service, pytest.mark.slow]

# Nothing validates while training: the first trainer records the registry's rules for CartPole-v1 (its
# defaults: the env's threshold 475, three converged evaluations; two are made), and the validator's host
# changes them later.
TRAIN = ("--total-timesteps", "2048", "--eval-freq", "1024", "--checkpoint-freq", "1024", "--episodes", "3",
         "--no-preset", "--agent-kwargs", '{"n_steps": 256}', "--json")
RULES = ("--min-reward", "0", "--min-episodes", "1", "--convergence-window", "null")
OTHER_RULES = ("--min-reward", "400", "--convergence-window", "3")


def host(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def remote_copy_is_intact(model: Model, s3: dict[str, str]) -> bool:
    import boto3

    if model.remote_uri is None:
        return False
    bucket, key = model.remote_uri.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_credentials(s3))
    data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return hashlib.sha256(data).hexdigest() == model.sha256


def test_trainers_a_validator_and_a_server_on_different_hosts_share_one_registry(postgres, s3_server, tmp_path,
                                                                                  monkeypatch):
    url = postgres.url(postgres.new_database())
    aws = {k: v for k, v in s3_server.items() if k != "endpoint"} | {"AWS_ENDPOINT_URL_S3": s3_server["endpoint"]}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)  # the server host's environment (Server passes os.environ on)
    store = {**aws, "RL_REGISTRY_DB": url, "RL_STORE_BACKEND": "s3", "RL_STORE_TRACKING_URI": "s3://runs/fleet"}

    # The serving host starts first: no registry yet, so it waits (503 on /readyz), and stays up.
    serving = host(tmp_path, "server")
    poll = 30  # seconds: a refused model is tried again at least this often, whatever its backoff
    server = Server(url, "--env-id", "CartPole-v1", "--poll-interval", str(poll),
                    "--model-dir", str(serving / "models"), cwd=serving)
    answers: list[int] = []
    stop = threading.Event()

    def steady_requests() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        while not stop.is_set():
            connection.request("POST", "/predict", body=b"[0.01, 0.02, -0.03, 0.04]")
            response = connection.getresponse()
            response.read()
            answers.append(response.status)

    loop = threading.Thread(target=steady_requests)
    try:
        assert server.request("GET", "/readyz")[0] == 503
        loop.start()
        # Two trainers on two hosts, at the same time; each host's model folder is gone when its run ends.
        trainers = {name: subprocess.Popen([str(BIN / "rl-train"), *TRAIN, "--seed", str(seed)],
                                           cwd=host(tmp_path, name), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, env=environment(store))
                    for seed, name in enumerate(("trainer-a", "trainer-b"))}
        finals = []
        for name, trainer in trainers.items():
            out, err = trainer.communicate(timeout=300)
            assert trainer.returncode == 0, err
            result = json.loads(out)
            assert result["store_failure"] is None and not result["validated"]
            finals.append(result["model_id"])
            shutil.rmtree(tmp_path / name / "models")
        with Registry(url) as registry:
            rows = registry.models()
            assert len(rows) == 2 * 3 and all(not Path(m.model_path).exists() for m in rows)
            assert all(remote_copy_is_intact(m, s3_server) for m in rows)
            ordered = sorted((registry.get(i) for i in finals), key=lambda m: m.mean_reward)
        assert server.request("GET", "/readyz")[0] == 503  # nothing validated yet

        # The validator's host sets the registry's rules for the env, for every host: its models are judged
        # again at once, and the server hears of the new best.
        validating = host(tmp_path, "validator")
        ruled = command("rl-registry-rules", "--set", "--env-id", "CartPole-v1", *RULES, cwd=validating,
                        env={**aws, "RL_REGISTRY_DB": url})
        assert ruled.returncode == 0 and "now validated" in ruled.stdout, ruled.stderr + ruled.stdout
        committed = time.monotonic()
        with Registry(url) as registry:
            best = registry.best()
        assert best is not None
        while served_id(server) != best.id:
            assert time.monotonic() - committed < 10, server.request("GET", "/healthz")
            time.sleep(0.02)
        # NOTIFY, not the 30 s poll, brought the swap (fetching and loading included).
        assert [p.name for p in (serving / "models" / "fetched").iterdir()] == [best.sha256]
        assert server.request("GET", "/readyz")[0] == 200
        # The validator's host has neither model file: it fetches each from S3 and checks it.
        for model in ordered:
            checked = command("rl-registry-validate", str(model.id), "--json", cwd=validating,
                              env={**aws, "RL_REGISTRY_DB": url})
            assert checked.returncode == 0, checked.stderr + checked.stdout
            assert json.loads(checked.stdout)["file_on_this_host"]["readable"]
        assert len(list((validating / "models" / "fetched").iterdir())) == len(ordered)

        # Any other host: the commands find, fetch and check models the same way.
        laptop, env = host(tmp_path, "laptop"), {**aws, "RL_REGISTRY_DB": url}
        best = served_id(server)
        inferred = command("rl-infer", "--load-best", "--obs", "[0, 0, 0, 0]", cwd=laptop, env=env)
        assert inferred.returncode == 0 and json.loads(inferred.stdout) in (0, 1), inferred.stderr
        loaded = command("rl-load-best", cwd=laptop, env=env)
        assert Path(loaded.stdout.strip()).parent.parent == laptop / "models" / "fetched"
        # Other rules on another host judge nothing again: the best stays the best, on every host.
        evaluated = command("rl-eval", "--model-id", str(best), "--episodes", "2", *OTHER_RULES, "--json",
                            cwd=laptop, env=env)
        assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["episodes"] == 2, evaluated.stderr
        assert "not used: the registry" in evaluated.stderr and json.loads(evaluated.stdout)["validation"]["valid"]
        with Registry(url) as registry:
            assert registry.best().id == best and served_id(server) == best

        # A remote copy that is not the registered file is refused; the server keeps the model it has.
        import boto3

        with Registry(url) as registry:
            forged = next(m for m in registry.models() if m.kind == "checkpoint" and m.id != best)
            bucket, key = str(forged.remote_uri).removeprefix("s3://").split("/", 1)
            client = boto3.client("s3", endpoint_url=s3_server["endpoint"], **boto_credentials(s3_server))
            genuine = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            client.put_object(Bucket=bucket, Key=key, Body=b"not the registered model")
            with registry._write() as db:  # another tool marks it the best: the server hears of it at once
                db.execute("UPDATE models SET validated = TRUE, mean_reward = 1e9 WHERE id = ?", (forged.id,))
                db.announce()
        deadline = time.monotonic() + 10
        while forged.id not in server.get("/healthz")["refused"]:
            assert time.monotonic() < deadline, server.get("/healthz")
            time.sleep(0.05)
        assert served_id(server) == best and "does not match the checksum" in server.get("/healthz")["last_error"]
        assert f"s3://{bucket}/{key}" in server.get("/healthz")["last_error"]  # the remote copy is named
        refused = command("rl-infer", "--model-id", str(forged.id), "--obs", "[0, 0, 0, 0]", cwd=laptop, env=env)
        assert refused.returncode == 1 and "does not match the checksum" in refused.stderr
        with Registry(url) as registry:
            assert registry.get(forged.id).validated  # what hosts could not read changed no verdict

        # The genuine object restored: the server heals by itself within two poll intervals (the bad copy was
        # deleted; the refused model is tried again), and so does any other host.
        boto3.client("s3", endpoint_url=s3_server["endpoint"], **boto_credentials(s3_server)).put_object(
            Bucket=bucket, Key=key, Body=genuine)
        deadline = time.monotonic() + 2 * poll
        while served_id(server) != forged.id:
            assert time.monotonic() < deadline, server.get("/healthz")
            time.sleep(0.1)
        healed = command("rl-infer", "--model-id", str(forged.id), "--obs", "[0, 0, 0, 0]", cwd=laptop, env=env)
        assert healed.returncode == 0, healed.stderr
        with Registry(url) as registry:
            assert registry.get(forged.id).validated
    finally:
        stop.set()
        if loop.is_alive():
            loop.join(timeout=20)
        stderr = server.stop()
    served = [status for status in answers if status != 503]  # 503 only while no model was validated yet
    assert served and set(served) == {200}, (set(answers), stderr[-2000:])
    first_ok = answers.index(200)
    assert all(status == 200 for status in answers[first_ok:]), "a request failed after the first model came"


def test_a_trainer_killed_mid_checkpoint_leaves_no_row_without_its_file_or_copy(postgres, s3_server, tmp_path):
    url = postgres.url(postgres.new_database())
    aws = {k: v for k, v in s3_server.items() if k != "endpoint"} | {"AWS_ENDPOINT_URL_S3": s3_server["endpoint"]}
    store = {**aws, "RL_REGISTRY_DB": url, "RL_STORE_BACKEND": "s3", "RL_STORE_TRACKING_URI": "s3://runs/killed"}
    trainer = subprocess.Popen([str(BIN / "rl-train"), "--total-timesteps", "1000000", "--checkpoint-freq", "64",
                                "--eval-freq", "0", "--no-preset", "--agent-kwargs", '{"n_steps": 64}'],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=environment(store))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Registry(url) as registry:
            if len(registry.models()) >= 5:
                break
        time.sleep(0.1)
    os.kill(trainer.pid, signal.SIGKILL)
    trainer.wait()
    with Registry(url) as registry:
        rows = registry.models()
    assert len(rows) >= 5
    for model in rows:
        path = Path(model.model_path)
        local = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256
        assert local or remote_copy_is_intact(model, s3_server), model


def served_id(server: Server) -> int | None:
    status, body = server.request("GET", "/model")
    return body.get("id") if status == 200 else None
