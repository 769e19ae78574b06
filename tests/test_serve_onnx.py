"""rl-infer --runtime onnx (issue 27): a real server process on onnxruntime swaps between models under
steady requests with no failed request, refuses a model without an ONNX policy in one line and keeps
serving, answers as the torch server does, and never imports torch or stable-baselines3 (the process
writes its sys.modules as it exits)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from test_serve import Server, free_port, register, steady_requests, train_file, wait_until

from conftest import BIN

# rl-infer as its console script runs it, writing the names of the modules it has imported every 0.1 s (uvicorn
# ends the process with the signal it was stopped by: no exit handler runs).
RECORDING = """
import json, os, sys, threading, time
record = sys.argv.pop(1)
def watch():
    while True:
        with open(record + ".tmp", "w") as handle:
            json.dump(sorted(sys.modules), handle)
        os.replace(record + ".tmp", record)
        time.sleep(0.1)
threading.Thread(target=watch, daemon=True).start()
sys.argv[0] = "rl-infer"
from rl_module.cli.infer import main
main()
"""
HEAVY = ("torch", "stable_baselines3")


def onnx_server(db: Path, record: Path, cwd: Path, *args: str) -> Server:
    """A Server (test_serve.py's client side) whose process is rl-infer --serve --runtime onnx, recorded."""
    server = Server.__new__(Server)
    server.port = free_port()
    server.process = subprocess.Popen(
        [sys.executable, "-c", RECORDING, str(record), "--serve", "--runtime", "onnx", "--port", str(server.port),
         "--registry-db", str(db), "--poll-interval", "0.2", *args], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))})
    assert wait_until(60, lambda: _ready(server)), server.process.communicate(timeout=20)[1]
    return server


def _ready(server: Server) -> bool:
    if server.process.poll() is not None:
        return True  # the assertion after it says why
    try:
        return server.request("GET", "/readyz")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two models with an ONNX policy (the default, infer.export all), and one saved with --export none."""
    folder = tmp_path_factory.mktemp("onnx-models")

    class Captured:  # what train_file reads of capsys, for a module-scoped fixture
        def __init__(self) -> None:
            self.out, self.err = io.StringIO(), io.StringIO()

        def readouterr(self) -> tuple[str, str]:
            return self.out.getvalue(), self.err.getvalue()

    def train(seed: int, *extra: str) -> Path:
        captured = Captured()
        with contextlib.redirect_stdout(captured.out), contextlib.redirect_stderr(captured.err):
            return train_file(folder, captured, seed, *extra)

    return train(1), train(2), train(3, "--export", "none")


def test_an_onnx_server_swaps_under_load_refuses_a_model_without_onnx_and_never_imports_torch(onnx_models,
                                                                                            tmp_path):
    first_path, second_path, plain_path = onnx_models
    db, record = tmp_path / "r.db", tmp_path / "modules.json"
    first = register(db, first_path, 100.0)
    server = onnx_server(db, record, tmp_path, "--model-dir", str(first_path.parents[1]))
    try:
        described = server.get("/model")
        assert described["id"] == first and described["runtime"] == "onnx" and described["device"] == "cpu"
        answers: list[tuple[int, Any]] = []
        stop = threading.Event()

        threads = [threading.Thread(target=steady_requests, args=(server.port, answers, stop)) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert wait_until(30, lambda: len(answers) > 50)
        second = register(db, second_path, 200.0)  # a better model is validated while requests flow
        assert wait_until(30, lambda: server.get("/model")["id"] == second)
        count = len(answers)
        assert wait_until(30, lambda: len(answers) > count + 50)  # requests on the new model too
        # A better model without an ONNX policy: refused in one line, the current one keeps serving.
        plain = register(db, plain_path, 300.0)
        assert wait_until(30, lambda: plain in server.get("/healthz")["refused"])
        stop.set()
        for thread in threads:
            thread.join()
        assert server.get("/model")["id"] == second
        assert [a for a in answers if a[0] != 200] == []
        seen = record.stat().st_mtime_ns
        assert wait_until(30, lambda: record.stat().st_mtime_ns != seen)  # written after the swap and refusal
        assert {body["model_id"] for _, body in answers} == {first, second}
        assert all(body["action"] in (0, 1) for _, body in answers)
        # Bad input is answered as the torch server answers it.
        assert server.request("POST", "/predict", b"[1, 2]") == (400, {"error": "observation has shape [2]; "
                                                                       "expected [4] or a batch of them"})
        status, body = server.request("POST", "/predict", b"[[0, 0, 0, 0], [0.1, 0.2, 0.1, 0.2]]")
        assert status == 200 and len(body["action"]) == 2
    finally:
        stderr = server.stop()
    refusals = [line for line in stderr.splitlines() if f"model {plain} refused" in line]
    assert refusals and "has no ONNX policy" in refusals[0] and "infer.export none" in refusals[0], stderr
    modules = json.loads(record.read_text())
    assert "onnxruntime" in modules and "rl_module.server" in modules
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_rl_infer_on_onnx_answers_as_on_torch_and_refuses_a_model_without_onnx_in_one_line(onnx_models, tmp_path):
    first_path, _, plain_path = onnx_models
    batch = json.dumps([[0.01 * i, -0.02 * i, 0.03, -0.04 * i] for i in range(-20, 20)])
    answers = {}
    for runtime in ("torch", "onnx"):
        done = subprocess.run([str(BIN / "rl-infer"), "--runtime", runtime, "--model-path", str(first_path), "--obs",
                               batch], capture_output=True, text=True, check=False, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        answers[runtime] = json.loads(done.stdout)
    assert answers["onnx"] == answers["torch"] and len(answers["onnx"]) == 40
    done = subprocess.run([str(BIN / "rl-infer"), "--runtime", "onnx", "--model-path", str(plain_path), "--obs",
                           "[0, 0, 0, 0]"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no ONNX policy" in lines[0] and "infer.runtime torch" in lines[0], done.stderr


def test_the_nixos_serving_unit_runs_a_package_without_torch_for_the_onnx_runtime(nix):
    """With rl.infer.runtime = onnx the unit's ExecStart is rl.servePackage's rl-infer (rl-module-serve), whose
    dependencies have no torch, stable-baselines3 or matplotlib; with torch, the full package's, as before."""
    from test_nix_module import rl_module_package, units

    execs = {runtime: units(nix, {"enable": True, "infer": {"serve": True, "runtime": runtime}})["units"]["rl-infer"][
        "serviceConfig"]["ExecStart"] for runtime in ("torch", "onnx")}
    assert execs["onnx"].startswith("/nix/store/11111111111111111111111111111111-rl-infer/bin/rl-infer --serve")
    assert execs["torch"].startswith("/nix/store/00000000000000000000000000000000-rl-commands/bin/rl-infer --serve")
    # The derivation called with stand-ins for every argument it declares (each its own name).
    packages = {serving: rl_module_package(nix, serving) for serving in (True, False)}
    assert packages[True]["pname"] == "rl-module-serve" and packages[True]["doCheck"] is False
    assert {"onnxruntime", "uvicorn", "numpy", "gymnasium"} <= set(packages[True]["dependencies"])
    assert {"torch", "stable-baselines3", "matplotlib"}.isdisjoint(packages[True]["dependencies"])
    assert {"torch", "stable-baselines3", "onnx", "onnxruntime"} <= set(packages[False]["dependencies"])
