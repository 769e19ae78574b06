"""Shared fixtures: the repository, the real Nix evaluator, the real console scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import postgres as postgres_server
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = "Modules/Computation/Services/RL"
# Where the console scripts are: beside the interpreter in a virtual environment, on PATH in a Nix build.
BIN = Path(shutil.which("rl-train") or sys.executable).parent


@pytest.fixture(autouse=True)
def own_option_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests see only the options they set: a developer's own RL_* or OTEL_* variables would
    otherwise change the configuration a test builds (and warn about names it does not know)."""
    for name in list(os.environ):
        if name.startswith(("RL_", "OTEL_")):
            monkeypatch.delenv(name)


def nix_eval(*args: str, cwd: Path = ROOT) -> object:
    """Evaluate with the real nix-instantiate and decode its JSON."""
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", *args],
                            cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def nix() -> object:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed (./dev test installs Debian's nix-bin)")
    return nix_eval


def environment(extra: dict[str, str]) -> dict[str, str]:
    """A process's environment: this one's without RL_*/OTEL_* (a test sets the options it means), plus
    `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))}, **extra}


def command(name: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run one of the project's console scripts as a real process."""
    environ = environment(env or {})
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, env=environ,
                          cwd=cwd, input=input, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[postgres_server.Server]:
    """A real PostgreSQL server for the session (./dev test installs Debian's postgresql)."""
    bin_dir = postgres_server.binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (./dev test installs Debian's postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    server = postgres_server.Server(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry target: a SQLite file, or a fresh database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.db")
    server = request.getfixturevalue("postgres")
    return server.url(server.new_database())


@pytest.fixture
def postgres_password(registry_db: str, request: pytest.FixtureRequest) -> str:
    """On PostgreSQL, the test server's password (which must appear nowhere); on SQLite, a string that
    appears nowhere either."""
    if "://" in registry_db:
        return str(request.getfixturevalue("postgres").password)
    return "no-password-on-sqlite"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto's standalone server) with a bucket `runs`: its credentials and
    endpoint."""
    binary = shutil.which("moto_server", path=str(BIN))
    if binary is None:
        pytest.skip("moto_server is not installed (./dev test installs moto[server])")
    port = postgres_server.free_port()
    server = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        wait_for(f"{endpoint}/moto-api/", server)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, **boto_credentials(env)).create_bucket(Bucket="runs")
        yield {**env, "endpoint": endpoint}
    finally:
        server.terminate()
        server.wait(timeout=10)


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until a server started as `process` answers at `url`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(url)


def boto_credentials(env: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_DEFAULT_REGION"]}


@dataclass(frozen=True)
class Tracking:
    """A real MLflow tracking server: its URI, and the folder it keeps everything it received in."""

    uri: str
    root: Path


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """A real MLflow tracking server on loopback for the session (its runs in SQLite, its artifacts in a
    folder), stopped with its whole process group."""
    binary = BIN / "mlflow"
    if not binary.is_file():
        pytest.skip("mlflow is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("mlflow")
    port = postgres_server.free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(binary), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health", server)
        yield Tracking(uri, root)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def mlflow_server(mlflow_tracking: Tracking) -> str:
    """The URI of the session's MLflow tracking server."""
    return mlflow_tracking.uri
