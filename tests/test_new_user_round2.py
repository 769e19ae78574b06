"""What a new user trips on, round 2 (issue 28), through the real commands: a resumed run is never another
run, a hyperparameter changed on resume is used as recorded, and summaries and messages say what is true."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import BIN, command, environment

# Loose rules, so that the one tiny model validates (rl-infer --load-best has something to find).
TINY = ("--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--eval-freq", "0", "--checkpoint-freq", "0",
        "--episodes", "2", "--seed", "2", "--min-reward", "5", "--min-episodes", "1", "--convergence-window", "null")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one finished 256-step PPO run (gamma 0.98) and its registry; tests that change it work on
    a copy (copy_of)."""
    folder = tmp_path_factory.mktemp("trained")
    done = command("rl-train", "--model-dir", "models", "--registry-db", "r.db", "--gamma", "0.98",
                   "--total-timesteps", "256", *TINY, "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["validated"], done.stdout
    return folder


def copy_of(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The trained folder copied, its run's config.json saying it started there: (folder, run directory)."""
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    run = next((folder / "models").iterdir())
    config = json.loads((run / "config.json").read_text())
    config["cwd"] = str(folder)
    (run / "config.json").write_text(json.dumps(config))
    return folder, run


def edit(run: Path, changes: dict[str, object], identity: bool = False) -> None:
    """Edit the run's config.json by hand, as a user would (and, with `identity`, its identity block too)."""
    config = json.loads((run / "config.json").read_text())
    for path, value in changes.items():
        feature, name = path.split(".")
        config["options"][feature][name]["value"] = value
        if identity:
            config["identity"][path] = value
    (run / "config.json").write_text(json.dumps(config))


def rows(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / "r.db") as db:
        return db.execute("SELECT env_id, algorithm FROM models ORDER BY id").fetchall()


def saved_data(model: Path) -> dict:
    with zipfile.ZipFile(model) as archive:
        return json.loads(archive.read("data"))


# -- resume ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "identity", "named", "said"), [
    ({"agent.algorithm": "a2c", "agent.kwargs": {}}, False, "agent.algorithm", "which was trained with 'ppo'"),
    ({"env.envId": "CartPole-v0"}, False, "env.envId", "which was trained with 'CartPole-v1'"),
    ({"env.envId": "Acrobot-v1"}, False, "env.envId", "which was trained with 'CartPole-v1'"),
    ({"agent.algorithm": "a2c"}, True, "agent.algorithm", "whose model model.zip is a ppo model"),
], ids=["algorithm", "same-spaces-env", "other-spaces-env", "identity-edited-too"])
def test_what_identifies_a_run_cannot_change_on_resume_even_in_its_config_json(trained, tmp_path, changes, identity,
                                                                                named, said):
    folder, run = copy_of(trained, tmp_path)
    edit(run, changes, identity)
    before = rows(folder)
    done = command("rl-train", "--resume", run.name, "--model-dir", "models", "--registry-db", "r.db",
                   "--total-timesteps", "512", cwd=folder)
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"rl-train: error: option {named} from config.json of run {run.name}"), error
    assert said in error and "Traceback" not in done.stderr
    assert rows(folder) == before and saved_data(run / "model.zip")["num_timesteps"] == 256


def test_a_hyperparameter_changed_on_resume_is_the_one_that_learns_and_is_recorded_from_that_step(trained, tmp_path):
    folder, run = copy_of(trained, tmp_path)
    edit(run, {"train.gamma": 0.5})  # by hand in config.json; the learning rate by a flag
    done = command("rl-train", "--resume", run.name, "--model-dir", "models", "--registry-db", "r.db",
                   "--total-timesteps", "512", "--learning-rate", "0.001", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["segments"][-1]["from_timesteps"] == 256
    assert result["segments"][-1]["changed"] == {"train.gamma": {"from": 0.98, "to": 0.5},
                                                 "train.learningRate": {"from": "0.0003", "to": "0.001"}}
    learned = saved_data(run / "model.zip")  # what SB3 used, as it saved it
    assert learned["gamma"] == 0.5 and learned["learning_rate"] == 0.001 and learned["num_timesteps"] == 512
    recorded = json.loads((run / "config.json").read_text())["options"]
    assert recorded["train"]["gamma"]["value"] == 0.5 and recorded["train"]["learningRate"]["value"] == "0.001"
    with sqlite3.connect(folder / "r.db") as db:
        newest = json.loads(db.execute("SELECT hyperparams FROM models ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert newest["train"]["gamma"] == 0.5


def test_a_finished_run_says_its_step_count_comes_from_its_config_json(trained, tmp_path):
    folder, run = copy_of(trained, tmp_path)
    done = command("rl-train", "--resume", run.name, "--model-dir", "models", "--registry-db", "r.db", cwd=folder)
    assert done.returncode == 2, done.stderr
    assert (f"option train.totalTimesteps from config.json of run {run.name} (recorded there as from flag "
            f"--total-timesteps): 256 is reached") in done.stderr
    assert "from flag --total-timesteps: 256" not in done.stderr


# -- summaries and messages ------------------------------------------------------------------------------------

def test_stop_on_reward_says_when_and_why_training_stopped(tmp_path):
    # Reached at the first evaluation; stopped at the third, when the window of three is full.
    done = command("rl-train", "--model-dir", "models", "--registry-db", "r.db", "--no-preset", "--agent-kwargs",
                   '{"n_steps": 128}', "--n-envs", "1", "--total-timesteps", "2048", "--eval-freq", "256",
                   "--episodes", "2", "--seed", "3", "--checkpoint-freq", "0", "--stop-on-reward", "--min-reward", "5",
                   "--convergence-window", "3", "--convergence-tolerance", "10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(next((tmp_path / "models").glob("*/result.json")).read_text())
    assert result["stopped_early"] and result["threshold_reached_steps"] == 256 and result["timesteps"] == 768
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("threshold"))
    assert "reached at 256 steps" in line and "training stopped there" not in line
    assert ("training stopped at 768 steps: train.stopOnReward: the evaluation at 768 steps scored" in line
            and "the last 3 evaluations agree" in line), line


def test_suggestions_and_help_are_the_commands_own_and_help_all_shows_every_option():
    wrong = command("rl-infer", "--serve", "--workers", "4")
    assert wrong.returncode == 2 and "did you mean --infer-workers?" in wrong.stderr
    assert "--sweep-workers" not in wrong.stderr
    train_help = command("rl-train", "--help").stdout
    assert "--gamma" in train_help and "--help-all" in train_help
    assert not {"--serve", "--port", "--trials", "--infer-workers"} & set(train_help.split())
    everything = command("rl-train", "--help-all").stdout
    assert {"--serve", "--port", "--trials", "--gamma"} <= set(everything.split())
    infer_help = command("rl-infer", "--help").stdout
    assert "--infer-workers" in infer_help and "--total-timesteps" not in infer_help and "--trials" not in infer_help
    ignored = command("rl-train", "--trials", "3", "--print-config")
    assert ignored.returncode == 0 and "--trials (sweep.trials) is not read by rl-train" in ignored.stderr


@pytest.mark.parametrize("name", ["rl-registry-validate", "rl-registry-copy", "rl-keygen"])
def test_print_config_alone_works_for_a_command_with_a_positional_argument(name):
    done = command(name, "--print-config")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), dict)


def test_a_closed_pipe_ends_quietly(trained):
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first byte, as `| head -c 10` is after ten
    try:
        done = subprocess.run([str(BIN / "rl-registry-list"), "--registry-db", str(trained / "r.db"), "--json"],
                              stdout=writer, stderr=subprocess.PIPE, text=True, env=environment({}), timeout=120,
                              check=False)
    finally:
        os.close(writer)
    assert done.stderr == "" and done.returncode == 141
    piped = subprocess.run(["bash", "-c", f"{BIN / 'rl-registry-list'} --registry-db r.db --json | head -c 10"],
                           cwd=trained, capture_output=True, text=True, env=environment({}), timeout=120, check=False)
    assert piped.stderr == "" and piped.stdout == "[\n  {\n    "


def test_storage_urls_are_echoed_as_written_and_say_what_to_do(tmp_path):
    done = command("rl-registry-list", "--registry-db", "sqlite:////nonexistent/dir/x.db", cwd=tmp_path)
    assert done.returncode == 2
    assert "'sqlite:////nonexistent/dir/x.db'" in done.stderr
    assert done.stderr.strip().endswith("; give /nonexistent/dir/x.db")
    assert list(tmp_path.iterdir()) == []
    # A user without a password is a database role (its password in PGPASSFILE): shown, not masked.
    url = "postgresql+psycopg://alice@127.0.0.1:1/db"
    sweep = command("rl-sweep", "--storage", url, "--trials", "1", cwd=tmp_path, timeout=120)
    assert sweep.returncode == 2 and url in sweep.stderr and "***" not in sweep.stderr, sweep.stderr


@pytest.mark.parametrize("given", ["flag", "env"])
def test_a_misspelt_sqlite_url_is_echoed_as_written_with_a_did_you_mean_and_the_path_to_give(tmp_path, given):
    url = "sqlit:///x.db"
    done = (command("rl-registry-list", "--registry-db", url, cwd=tmp_path) if given == "flag"
            else command("rl-registry-list", cwd=tmp_path, env={"RL_REGISTRY_DB": url}))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    source = "flag --registry-db" if given == "flag" else "env RL_REGISTRY_DB"
    assert f"option registry.dbPath from {source}: 'sqlit:///x.db' has an unknown scheme sqlit:// (did you mean " \
           "sqlite://? a SQLite registry is named by its file path alone)" in done.stderr, done.stderr
    assert "expected a SQLite file path or a PostgreSQL URL" in done.stderr
    assert done.stderr.strip().endswith("; give x.db")
    assert list(tmp_path.iterdir()) == []  # no folder `sqlit:` and no file


@pytest.mark.parametrize(("url", "code"), [("postgresq://alice@127.0.0.1:1/db", 2),  # refused: the scheme
                                           ("postgresql://alice@127.0.0.1:1/db", 1)])  # nothing listens on port 1
def test_a_database_role_is_shown_and_only_a_password_is_masked(tmp_path, url, code):
    """A role is no secret (its password lives in PGPASSFILE): a misspelt scheme's refusal shows it too."""
    done = command("rl-registry-list", "--registry-db", url, cwd=tmp_path, timeout=120)
    assert done.returncode == code and done.stderr.count("\n") == 1, done.stderr
    assert "option registry.dbPath from flag --registry-db: " in done.stderr and url in done.stderr, done.stderr
    assert "***" not in done.stderr
    secret = url.replace("alice@", "alice:hunter2@")
    masked = command("rl-registry-list", "--registry-db", secret, cwd=tmp_path, timeout=120)
    assert "hunter2" not in masked.stderr and url.replace("alice@", "alice:***@") in masked.stderr, masked.stderr


def test_a_filter_that_matches_nothing_offers_what_the_registry_holds(trained):
    done = command("rl-registry-list", "--registry-db", "r.db", "--env-id", "CartPol-v1", cwd=trained)
    assert done.returncode == 0
    assert "it holds CartPole-v1; did you mean CartPole-v1?" in done.stdout


def test_load_best_from_another_folder_says_validated_models_exist_and_names_model_dir(trained, tmp_path):
    done = command("rl-infer", "--load-best", "--registry-db", str(trained / "r.db"), "--obs", "[0, 0, 0, 0]",
                   cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "validated model" in last and "none can be loaded here" in last and "--model-dir" in last, last
    assert "no validated model" not in last
    best = command("rl-load-best", "--registry-db", str(trained / "r.db"), cwd=tmp_path)
    assert best.returncode == 1 and "none can be loaded here" in best.stderr and "--model-dir" in best.stderr


def test_a_missing_s3_bucket_is_named_and_said_to_need_creating(s3_server, tmp_path):
    env = {k: v for k, v in s3_server.items() if k != "endpoint"}
    done = command("rl-train", "--model-dir", "models", "--registry-db", "r.db", "--total-timesteps", "256", *TINY,
                   "--backend", "s3", "--tracking-uri", "s3://no-such-bucket/runs", "--endpoint-url",
                   s3_server["endpoint"], "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    failure = json.loads(done.stdout)["store_failure"]
    assert "bucket 'no-such-bucket' does not exist" in failure and "must exist" in failure, failure


# -- the server ----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_taken_port_is_one_line_naming_infer_port_before_anything_claims_to_serve(trained):
    model = next((trained / "models").glob("*/model.zip"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = command("rl-infer", "--serve", "--model-path", str(model), "--port", str(port), cwd=trained,
                       timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "serving" not in done.stderr
    assert f"rl-infer: error: option infer.port from flag --port: {port} is already in use" in done.stderr


def test_a_body_that_is_not_json_is_told_what_the_body_must_be(trained):
    model = next((trained / "models").glob("*/model.zip"))
    port = free_port()
    server = subprocess.Popen([str(BIN / "rl-infer"), "--serve", "--model-path", str(model), "--port", str(port)],
                              cwd=trained, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=environment({}))
    try:
        deadline = time.monotonic() + 120
        while True:  # until it answers (or has died)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()[1]
                time.sleep(0.1)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=b"foo", method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 400
        error = json.loads(answer.value.read())["error"]
        assert error.startswith("the body must be a JSON array of numbers") and "not JSON" in error, error
    finally:
        server.terminate()
        server.communicate(timeout=30)
