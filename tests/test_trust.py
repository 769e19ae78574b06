"""Trust boundaries of model loading: a model file is code (pickle), so only the bytes whose checksum was
checked are loaded — the model and the normalization statistics beside it — and a file is never
reopened by name between the check and the load."""

from __future__ import annotations

import base64
import json
import pickle
import sqlite3
import subprocess
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
    stats = Path(result["model_path"]).with_name("model.stats.npz")
    import hashlib

    assert row.stats_sha256 == hashlib.sha256(stats.read_bytes()).hexdigest()


@pytest.mark.parametrize("name,args", [("rl-infer", ("--obs", "[0, 0, 0, 0]")), ("rl-eval", ("--episodes", "1")),
                                       ("rl-load-best", ())])
def test_crafted_statistics_beside_a_validated_model_are_refused_and_never_run(validated, name, args, tmp_path):
    db, model_id, result = validated
    marker = tmp_path / "payload-ran"
    Path(result["model_path"]).with_name("model.stats.npz").write_bytes(pickle.dumps(Payload(marker)))
    target = ("--model-id", str(model_id)) if name != "rl-load-best" else ()
    done = command(name, "--registry-db", str(db), *target, *args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "model.stats.npz does not match the checksum recorded" in done.stderr
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


@pytest.mark.slow
@pytest.mark.service
def test_no_secret_reaches_what_a_real_mlflow_server_received(mlflow_tracking, tmp_path):
    """A real MLflow tracking server, reached through a URI whose credential it ignores, and taking the run's
    traces at an OTLP endpoint with ?token=: the run is recorded there whole (params, tags, artifacts,
    traces), and the secret is in none of it, nor anywhere in what the server stored, nor in the run's own
    files; the OTLP log file is owner-only."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_tracking.uri)
    name = f"secrets-{tmp_path.name}"
    experiment = client.create_experiment(name)
    uri = mlflow_tracking.uri.replace("http://", f"http://alice:{SECRET}@")
    endpoint = f"{mlflow_tracking.uri}/v1/traces?token={SECRET}"
    done = command("rl-train", "--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"),
                   "--backend", "mlflow", "--tracking-uri", uri, "--experiment-name", name, "--traces",
                   "--traces-endpoint", endpoint, "--traces-protocol", "http", "--logs", "--no-preset",
                   "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "256", "--eval-freq", "0",
                   "--checkpoint-freq", "0", "--episodes", "1", "--json", cwd=tmp_path,
                   env={"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}"})
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["store_failure"] is None and result["not_uploaded"] == []  # the real URI reached the server

    (run,) = client.search_runs([experiment])
    assert run.info.run_name == result["run_id"] and run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    # The options are there, masked, so a leak would show.
    assert params["store.trackingUri"] == mlflow_tracking.uri.replace("http://", "http://alice:***@")
    assert "token=***" in params["traces.endpoint"]
    for key, value in [*params.items(), *tags.items()]:
        assert SECRET not in key and SECRET not in value, (key, value)
    download = tmp_path / "received"
    download.mkdir()

    def every_artifact(folder: str | None = None) -> list[str]:
        found = []
        for item in client.list_artifacts(run.info.run_id, folder):
            found.extend(every_artifact(item.path) if item.is_dir else [item.path])
        return found

    artifacts = every_artifact()
    assert "config.json" in artifacts and "model.zip" in artifacts
    for artifact in artifacts:
        received = Path(client.download_artifacts(run.info.run_id, artifact, str(download)))
        assert SECRET.encode() not in received.read_bytes(), artifact
    config = json.loads((download / "config.json").read_text())
    assert "alice:***@" in json.dumps(config) and "token=***" in json.dumps(config)
    traces = client.search_traces(locations=[experiment])
    assert traces and all(SECRET not in trace.to_json() for trace in traces)
    # Everything the server stored (its database, its artifact folder), byte for byte.
    stored = [p for p in mlflow_tracking.root.rglob("*") if p.is_file()]
    assert stored and all(SECRET.encode() not in p.read_bytes() for p in stored)

    run_dir = Path(result["run_dir"])
    otlp_logs = run_dir / "logs.otlp.jsonl"
    assert otlp_logs.is_file() and otlp_logs.stat().st_size > 0
    assert otlp_logs.stat().st_mode & 0o777 == 0o600
    for path in (p for p in tmp_path.rglob("*") if p.is_file() and download not in p.parents):
        assert SECRET.encode() not in path.read_bytes(), path
    with Registry(tmp_path / "r.db") as registry:
        assert all(SECRET not in (m.hyperparams or "") + (m.remote_uri or "") for m in registry.models())


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


def every_file_is_free_of(secret: str, folder: Path) -> None:
    written = [p for p in folder.rglob("*") if p.is_file()]
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


def test_an_otlp_endpoint_without_a_scheme_keeps_its_password_and_grpc_refuses_one(tmp_path):
    """`user:password@host:port`, as gRPC endpoints are written: over http the run uses it (the collector is
    down here) and its password reaches no printout, config.json, train.log or registry row; over gRPC,
    which can never send it, the option is refused before any work, saying how to pass a credential."""
    endpoint = f"otuser:{SECRET}@127.0.0.1:9"
    args = ("--model-dir", str(tmp_path / "models"), "--registry-db", str(tmp_path / "r.db"), "--traces",
            "--traces-endpoint", endpoint, "--logs", "--no-preset", "--agent-kwargs", '{"n_steps": 128}',
            "--total-timesteps", "128", "--eval-freq", "0", "--checkpoint-freq", "0", "--episodes", "1")
    refused = command("rl-train", *args, cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "option traces.endpoint from flag --traces-endpoint" in refused.stderr
    assert "OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=" in refused.stderr and SECRET not in refused.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "r.db").exists()
    done = command("rl-train", *args, "--traces-protocol", "http", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    assert "otuser:***@127.0.0.1:9" in (run_dir / "config.json").read_text()
    every_file_is_free_of(SECRET, tmp_path)


POSTGRES_PASSWORDS = {  # each as libpq cannot read it, and what it quoted of it
    "a space": "Sup3r S3cretPW",
    "a raw %": "Sup3r%zzS3cretPW",
    "a /": "se/cretPW",
    "an @": "s@cretPW",
    "a ?": "se?cretPW",
}


@pytest.mark.service
@pytest.mark.parametrize("written", [*POSTGRES_PASSWORDS, "an unclosed ["])
def test_a_postgresql_url_libpq_cannot_read_never_shows_its_password(postgres, written, tmp_path):
    """rl-train, rl-registry-list, rl-registry-copy and rl-sweep (its Optuna storage) given a URL whose password
    libpq would misread (and quote): one line, exit 2, the password masked, and what to do; nothing is created."""
    password = POSTGRES_PASSWORDS.get(written, "Sup3rS3cretPW")
    host = "[::1" if written == "an unclosed [" else "127.0.0.1"
    url = f"postgresql://rl:{password}@{host}:{postgres.port}/rl"
    secrets = {password, *password.replace(" ", "/").replace("%", "/").replace("@", "/").replace("?", "/").split("/")}
    runs = [command("rl-train", "--registry-db", url, "--model-dir", str(tmp_path / "models"), cwd=tmp_path),
            command("rl-registry-list", "--registry-db", url, cwd=tmp_path),
            command("rl-registry-copy", "--registry-db", str(tmp_path / "r.db"), url, cwd=tmp_path),
            command("rl-registry-list", cwd=tmp_path, env={"RL_REGISTRY_DB": url}),
            command("rl-sweep", "--storage", url, "--trials", "1", "--sweep-workers", "1", cwd=tmp_path)]
    for run in runs:
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert not any(piece in run.stderr for piece in secrets if len(piece) > 2), run.stderr
        assert "postgresql://rl:***@" in run.stderr, run.stderr
        if written != "an unclosed [":
            assert "percent-encode" in run.stderr and "PGPASSWORD" in run.stderr, run.stderr
    assert "from flag --registry-db" in runs[0].stderr and "TARGET" in runs[2].stderr
    assert "from env RL_REGISTRY_DB" in runs[3].stderr and "from flag --storage" in runs[4].stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.service
def test_a_postgresql_password_libpq_quotes_in_its_own_message_is_masked(postgres, tmp_path):
    """libpq quotes what it could not use (a host it could not resolve, a token it could not read); when a URL
    is misread in a way no check foresaw, that may be a piece of the password. Here the host repeats the
    password: every quoted token holding a piece of it is masked."""
    url = f"postgresql://rl:{SECRET}@{SECRET}.invalid:{postgres.port}/rl"
    listed = command("rl-registry-list", "--registry-db", url, cwd=tmp_path)
    assert listed.returncode == 1, listed.stderr
    assert f"cannot connect to postgresql://rl:***@{SECRET}.invalid" in listed.stderr  # the host, as written
    assert "failed to resolve host '***'" in listed.stderr and listed.stderr.count(SECRET) == 1, listed.stderr


@pytest.mark.slow
def test_the_wandb_run_file_holds_no_credential_from_the_command_line(tmp_path):
    """W&B keeps the command line it ran in with the run (the offline run file, uploaded by `wandb sync`):
    a registry password and an OTLP token given as flags are in neither it nor any file W&B wrote; the
    masked configuration is."""
    url = f"postgresql://rl:{SECRET}@127.0.0.1:9/rl"
    done = command("rl-train", "--model-dir", str(tmp_path / "models"), "--registry-db", url, "--no-registry",
                   "--backend", "wandb", "--experiment-name", "secrets", "--traces-endpoint",
                   f"http://127.0.0.1:9/v1/traces?token={SECRET}", "--traces-protocol", "http", "--no-preset",
                   "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "128", "--eval-freq", "0",
                   "--checkpoint-freq", "0", "--episodes", "1", "--json", cwd=tmp_path,
                   env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["store_failure"] is None
    (run_file,) = Path(result["run_dir"]).glob("wandb/offline-run-*/run-*.wandb")
    data = run_file.read_bytes()
    assert b"postgresql://rl:***@127.0.0.1:9/rl" in data and b"token=***" in data  # the configuration is there
    every_file_is_free_of(SECRET, tmp_path)


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


@pytest.mark.slow
def test_loading_refuses_rows_whose_files_lie_outside_the_model_folder(validated, tmp_path):
    """A row naming a file outside store.modelDir — by its path, by `..`, or through a link planted inside —
    is refused by id and skipped as the best, with the folder named, although its file and statistics match
    their checksums; with store.modelDir set to where the file is, the very same rows load."""
    import shutil

    from rl_module.registry import Evaluation, rules

    db, model_id, result = validated
    models = (tmp_path / "models").resolve()
    model = Path(result["model_path"])
    stats = model.with_name("model.stats.npz")
    elsewhere = (tmp_path / "elsewhere").resolve()
    elsewhere.mkdir()
    shutil.copy2(model, elsewhere / model.name)
    shutil.copy2(stats, elsewhere / stats.name)
    planted = models / "planted"
    planted.mkdir()
    (planted / model.name).symlink_to(elsewhere / model.name)
    (planted / stats.name).symlink_to(elsewhere / stats.name)
    paths = [elsewhere / model.name, models / ".." / "elsewhere" / model.name, planted / model.name]
    with Registry(db) as registry:
        row = registry.get(model_id)
        ids = [model_id]
        for _ in paths[1:]:
            ids.append(registry.register(model_path=elsewhere / model.name, sha256=row.sha256, algorithm="ppo",
                                         env_id="CartPole-v1", total_timesteps=256, run_id=None, kind="imported",
                                         hyperparams=None, git_commit=None, stats_sha256=row.stats_sha256,
                                         evaluation=Evaluation(1.0, 0.1, 10.0, 3)))
            assert registry.validate(ids[-1], rules(0.0, 1, None, 0.1, "CartPole-v1")).valid
    with sqlite3.connect(db) as connection:  # the paths as another tool (or a hand) wrote them: not resolved
        for row_id, path in zip(ids, paths, strict=True):
            connection.execute("UPDATE models SET model_path = ? WHERE id = ?", (str(path), row_id))
    where = ("--registry-db", str(db), "--model-dir", str(models))
    control = ("--registry-db", str(db), "--model-dir", str(elsewhere))
    by_id = [("rl-infer", *flags, "--model-id", str(row_id), "--obs", "[0, 0, 0, 0]")
             for flags in (where, control) for row_id in ids]
    *refused, best, found = in_parallel(*by_id[:len(ids)], ("rl-load-best", *where), ("rl-load-best", *control),
                                          cwd=tmp_path)
    for row_id, path, done in zip(ids, paths, refused, strict=True):
        assert done.returncode == 1 and done.stdout == "", (path, done.stderr)
        assert f"model {row_id} refused: its file {path} is outside store.modelDir {models}" in done.stderr
    assert best.returncode == 1 and best.stdout == "" and "none can be loaded here" in best.stderr, best.stderr
    assert all(f"model {row_id} refused" in best.stderr for row_id in ids)
    assert best.stderr.count(f"is outside store.modelDir {models}") >= len(ids)  # and the best's, summed up
    # The control: the same rows, with store.modelDir where their files really are, load.
    assert found.returncode == 0 and found.stdout.strip() in map(str, paths), found.stderr
    for done in in_parallel(*by_id[len(ids):], cwd=tmp_path):
        assert done.returncode == 0 and json.loads(done.stdout) in (0, 1), done.stderr


def in_parallel(*calls: tuple[str, ...], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """conftest's command() for each (name, *args), all at once (each is mostly torch's import)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: command(*call, cwd=cwd), calls))


CRASHING_ENV = """
import os
import time
from pathlib import Path

import gymnasium as gym


class Crash(gym.Env):
    def __init__(self):
        planted = Path(os.environ["CRASH_TEST_PLANTED"])
        while not planted.exists():  # until the test has planted its links
            time.sleep(0.01)
        raise RuntimeError("boom at http://bob:SECRET@db.example/x")
""".replace("SECRET", SECRET)


@pytest.mark.parametrize("planted_at", ["folder", "file"])
def test_a_crash_log_goes_to_a_private_folder_and_follows_no_planted_link(planted_at, tmp_path):
    """A real crash of a real CLI process: links planted where the crash folder would be (both of its
    predictable places), or at every name the crash file could have, are not followed; the planted targets
    are untouched, the log lands in a private folder, owner-only, without the secret the error carried."""
    import os
    import time

    from conftest import BIN, environment

    (tmp_path / "crash_test_env.py").write_text(CRASHING_ENV)
    state, temporary, victim = tmp_path / "state", tmp_path / "tmp", tmp_path / "victim"
    for folder in (state, temporary, victim):
        folder.mkdir(mode=0o700)
    (victim / "keep").write_text("keep")
    marker = tmp_path / "planted"
    path = os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH"))))  # a Nix build's too
    env = environment({"XDG_STATE_HOME": str(state), "TMPDIR": str(temporary), "PYTHONPATH": path,
                       "CRASH_TEST_PLANTED": str(marker)})
    if planted_at == "folder":  # both places the crash folder would be are links to the victim's folder
        (state / "rl-module").symlink_to(victim)
        (temporary / f"rl-module-{os.getuid()}").symlink_to(victim)
    else:
        (state / "rl-module").mkdir(mode=0o700)
    process = subprocess.Popen([str(BIN / "rl-train"), "--env-id", "crash_test_env:Crash", "--no-registry",
                                "--model-dir", str(tmp_path / "models")], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if planted_at == "file":  # a link at every name the crash file can have in the next two minutes
        now = time.time()
        for second in range(-2, 120):
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + second))
            (state / "rl-module" / f"rl-train-{stamp}-{process.pid}.log").symlink_to(victim / "keep")
    marker.touch()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "unexpected error: RuntimeError: boom at http://bob:***@db.example/x (full log: " in stderr, stderr
    assert SECRET not in stdout + stderr and "Traceback" not in stderr
    log = Path(stderr.split("(full log: ")[1].split(")")[0])
    folder = os.lstat(log.parent)
    assert not log.is_symlink() and not log.parent.is_symlink() and victim not in log.resolve().parents
    assert os.path.isdir(log.parent) and folder.st_uid == os.getuid() and folder.st_mode & 0o777 == 0o700
    assert log.stat().st_mode & 0o777 == 0o600
    assert "RuntimeError" in log.read_text() and SECRET not in log.read_text()
    assert sorted(p.name for p in victim.iterdir()) == ["keep"] and (victim / "keep").read_text() == "keep"
    if planted_at == "folder":
        assert log.parent.parent == temporary and log.parent.name.startswith("rl-module-")
    else:
        assert log.parent == state / "rl-module"


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
    stats = model.with_name("model.stats.npz")
    if stats.is_file():  # a model loads only with the statistics it was saved with
        (loose / stats.name).write_bytes(stats.read_bytes())
    done = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 0 and json.loads(done.stdout) in (0, 1), done.stderr
    (loose / "config.json").write_text("{}")  # its own folder, but not a run's configuration
    done = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 0 and "is not a run's configuration" in done.stderr


# -- a server that cannot be starved ----------------------------------------------------------------------------

DESCRIPTORS = 128  # the server's RLIMIT_NOFILE: 300 idle sockets would take every one without the limit


def probe_times(port: int, probes: int = 10) -> list[float]:
    """Seconds each of `probes` fresh requests took, alternately GET /healthz and GET /readyz (every one must
    answer 200)."""
    import http.client
    import time

    times = []
    for probe in range(probes):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/readyz" if probe % 2 else "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        connection.close()
        times.append(time.perf_counter() - started)
    return times


def few_descriptors() -> None:
    """In the server's process, before it starts: at most DESCRIPTORS open files."""
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


TIMEOUT_S = 6  # the server's request timeout in the test below


@pytest.mark.slow
def test_idle_and_half_sent_requests_and_big_batches_leave_healthz_prompt(validated, tmp_path):
    """A server that may open only DESCRIPTORS files: 300 idle sockets, then half-sent requests, then more big
    batches than its one worker and queue take. /healthz and /readyz answer every probe, long before a slot
    would be freed by the request timeout (their latency is measured in bench/serve_slow_clients.py, not
    here), the half-sent requests get 408, and the batches past the queue a clear 503."""
    import socket
    import threading
    import time

    from test_serve import Server

    db, _, _ = validated
    server = Server(db, "--max-connections", "32", "--request-timeout", str(TIMEOUT_S), "--infer-workers", "1",
                    cwd=tmp_path, preexec_fn=few_descriptors)
    held: list[socket.socket] = []
    try:
        # 300 sockets that never send a byte: the oldest idle ones make room, none lock /healthz out.
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        idle = probe_times(server.port)
        assert max(idle) < TIMEOUT_S / 2, idle  # answered, not let in by a timeout
        # 20 requests that declare a 1 MiB body and send a sliver of it: answered 408 once the timeout passes.
        slow = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n[0.1, ")
            slow.append(s)
        half_sent = probe_times(server.port)
        assert max(half_sent) < TIMEOUT_S / 2, half_sent
        for s in slow:  # each answered once its timeout passes
            s.settimeout(TIMEOUT_S * 6)
            assert s.recv(4096).split(b"\r\n")[0].startswith(b"HTTP/1.1 408 ")
        # Sixteen big batches at once, for one worker and its queue of four: inference runs off the event loop,
        # and what the queue cannot take is answered 503 at once.
        batch = json.dumps([[0.1, 0.2, 0.3, 0.4]] * 40_000).encode()  # about 1 MiB
        assert len(batch) < 1024 * 1024
        answers: list[tuple[int, dict]] = []

        def post() -> None:
            answers.append(server.request("POST", "/predict", batch))

        workers = [threading.Thread(target=post) for _ in range(16)]
        for worker in workers:
            worker.start()
        time.sleep(0.05)
        during = probe_times(server.port, probes=6)
        for worker in workers:
            worker.join()
        assert max(during) < TIMEOUT_S / 2, during
        statuses = [status for status, _ in answers]
        assert len(answers) == 16 and set(statuses) <= {200, 503} and 200 in statuses, statuses
        assert 503 in statuses, statuses
        busy = next(answer for status, answer in answers if status == 503)
        assert "busy" in busy["error"] and "infer.workers" in busy["error"], busy
    finally:
        for s in held:
            s.close()
        stderr = server.stop()
    assert "Traceback" not in stderr
