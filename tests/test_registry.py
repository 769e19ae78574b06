"""The registry on a real SQLite file: the seed's schema, migrations, validation rules, checksum-checked
hotswap, pruning, parametrized SQL, and the nushell helpers run by a real nu."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from postgres import free_port

from conftest import BIN, ROOT, command
from rl_module.databases import connect
from rl_module.registry import SCHEMA_VERSION, Evaluation, Model, Registry, RegistryError, check_model, rules, verify

SEED_SQL = """
CREATE TABLE models (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model_path TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  env_id TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  total_timesteps INTEGER,
  mean_reward REAL,
  std_reward REAL,
  mean_episode_length REAL,
  hyperparams TEXT,  -- JSON
  git_commit TEXT,
  validated BOOLEAN DEFAULT 0
);
CREATE INDEX idx_timestamp ON models(timestamp);
CREATE INDEX idx_mean_reward ON models(mean_reward);
CREATE INDEX idx_validated ON models(validated);
"""
SEED_COLUMNS = ["id", "model_path", "algorithm", "env_id", "timestamp", "total_timesteps", "mean_reward",
                "std_reward", "mean_episode_length", "hyperparams", "git_commit", "validated"]
# The helpers call rl-registry-list for a PostgreSQL registry: the console scripts must be on nu's PATH.
PATH = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
NU_SCRIPT = ROOT / "Modules/Computation/Services/RL/Universe/Registry/Bindings/Scripts/default.nu"


def described_zip(name: str, stats_sha256: str | None = None) -> bytes:
    """A model zip as rl-module writes one (SB3's `data` and the description), with nothing to load."""
    import io
    import zipfile

    from rl_module import artifact

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data", json.dumps({"name": name}))
    return artifact.with_description(buffer.getvalue(), {
        "format": artifact.FORMAT, "algorithm": "ppo", "entries": {}, "runtime_state": [], "undescribable": {},
        "stats_sha256": stats_sha256})


def add(registry: Registry, tmp_path: Path, name: str, reward: float | None, *, env_id: str = "CartPole-v1",
        algorithm: str = "ppo", steps: int = 100_000, std: float = 1.0, length: float = 200.0,
        run_id: str | None = None) -> int:
    """A real model file (a described zip that holds no weights: the registry checks that it is the registered
    one, and data, not what it computes) and its row."""
    path = tmp_path / f"{name}.zip"
    path.write_bytes(described_zip(name))
    evaluation = None if reward is None else Evaluation(reward, std, length, 10)
    return registry.register(model_path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                             algorithm=algorithm, env_id=env_id, total_timesteps=steps, run_id=run_id,
                             kind="final", hyperparams={"env": {"envId": env_id}}, git_commit=None,
                             evaluation=evaluation)


RELAXED = rules(0.0, 1, None, 0.1, "CartPole-v1")


def indexes(registry: Registry) -> set[str]:
    if registry.path is not None:
        return {row["name"] for row in registry.db.execute("PRAGMA index_list(models)")}
    rows = registry.db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'models'")
    return {row["indexname"] for row in rows}


def test_the_seeds_table_and_indexes_are_the_contract(registry_db):
    with Registry(registry_db) as registry:
        assert registry.db.columns("models")[: len(SEED_COLUMNS)] == SEED_COLUMNS
        assert {"idx_timestamp", "idx_mean_reward", "idx_validated", "idx_best_env_algorithm"} <= indexes(registry)
        assert registry.schema_version() == SCHEMA_VERSION
        if registry.path is not None:
            assert registry.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert registry.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        else:  # the migration state lives in the database, beside the tables it describes
            versions = registry.db.execute("SELECT version FROM registry_schema").fetchall()
            assert versions == [{"version": SCHEMA_VERSION}]
            types = {r["column_name"]: r["data_type"] for r in registry.db.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'models'")}
            assert (types["mean_reward"], types["total_timesteps"], types["validated"]) == \
                ("double precision", "bigint", "boolean")


def test_a_database_made_with_the_seeds_sql_is_migrated_in_place(registry_db):
    db = connect(registry_db)
    for statement in SEED_SQL.split(";"):
        if statement.strip():
            db.execute(db.ddl(statement.split("--")[0] + statement.split("--")[1].split("\n", 1)[1]
                              if "--" in statement else statement))
    db.execute("INSERT INTO models (model_path, algorithm, env_id, timestamp, mean_reward) "
               "VALUES ('m.zip', 'ppo', 'CartPole-v1', 1, 10.0)")
    db.close()
    with Registry(registry_db) as registry:
        assert registry.schema_version() == SCHEMA_VERSION
        (model,) = registry.models()
        assert (model.model_path, model.mean_reward, model.sha256, model.validated) == ("m.zip", 10.0, None, False)
        # A row without a checksum is never loaded.
        with pytest.raises(RegistryError, match="missing"):
            verify(model)


def test_a_database_from_a_newer_version_is_refused_and_left_as_it_was(registry_db):
    Registry(registry_db).close()
    db = connect(registry_db)
    db.set_schema_version(SCHEMA_VERSION + 1)
    db.close()
    with pytest.raises(RegistryError, match="upgrade rl-module"):
        Registry(registry_db)
    db = connect(registry_db)
    assert db.schema_version() == SCHEMA_VERSION + 1
    db.close()


def test_a_database_that_is_not_a_registry_is_refused_and_nothing_is_written(registry_db, tmp_path):
    db = connect(registry_db)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.close()
    with pytest.raises(RegistryError, match="is not a registry: it holds other tables"):
        Registry(registry_db)
    db = connect(registry_db)
    assert db.tables() == {"invoices"} and db.schema_version() == 0
    db.execute("DROP TABLE invoices")
    db.execute("CREATE TABLE models (id INTEGER, name TEXT)")  # a models table of someone else's
    db.close()
    with pytest.raises(RegistryError, match="is not a registry: its models table lacks model_path"):
        Registry(registry_db)


def model(mean: float | None, std: float = 1.0, length: float = 100.0, steps: int = 10_000) -> Model:
    return Model(1, "m.zip", "ppo", "X", 0, steps, mean, std, length, None, None, False, "x", "r", "final", 10, None,
                 None)


def verdicts(checks):
    return {c.rule: c.passed for c in checks}


def test_the_seeds_rules():
    r = rules(195.0, 10, None, 0.1, "CartPole-v1")
    assert all(verdicts(check_model(model(200.0, std=10.0, length=100.0, steps=1000), r, [])).values())
    assert not verdicts(check_model(model(194.9), r, []))["reward"]
    assert not verdicts(check_model(model(200.0, length=100.0, steps=999), r, []))["experience"]
    assert not verdicts(check_model(model(200.0, std=100.0), r, []))["stability"]
    assert verdicts(check_model(model(None), r, [])) == {"evaluated": False}


def test_stability_with_negative_rewards_uses_the_magnitude():
    r = rules(-200.0, 1, None, 0.1, "Pendulum-v1")
    assert verdicts(check_model(model(-150.0, std=30.0), r, []))["stability"]  # 30 < 0.5 * 150
    assert not verdicts(check_model(model(-150.0, std=80.0), r, []))["stability"]
    assert not verdicts(check_model(model(0.0, std=0.0), r, []))["stability"]


def test_convergence_over_the_last_evaluations():
    r = rules(None, 1, 3, 0.1, "Pendulum-v1")
    assert verdicts(check_model(model(500.0), r, [10.0, 495.0, 500.0, 500.0]))["convergence"]
    assert not verdicts(check_model(model(500.0), r, [100.0, 400.0, 500.0]))["convergence"]
    assert not verdicts(check_model(model(500.0), r, [500.0, 500.0]))["convergence"]


def test_the_threshold_defaults_to_the_envs_and_says_so():
    cartpole = rules(None, 10, 3, 0.1, "CartPole-v1")
    assert cartpole.min_reward == 475.0 and "Gymnasium's reward_threshold for CartPole-v1" in cartpole.min_reward_source
    pendulum = rules(None, 10, 3, 0.1, "Pendulum-v1")
    assert pendulum.min_reward is None and "registers no reward_threshold" in pendulum.min_reward_source
    assert rules(100, 10, 3, 0.1, "CartPole-v1").min_reward_source == "registry.minReward"


def test_best_is_the_validated_model_with_the_highest_reward_filtered_by_env_and_algorithm(registry_db, tmp_path):
    with Registry(registry_db) as registry:
        a = add(registry, tmp_path, "a", 100.0)
        b = add(registry, tmp_path, "b", 300.0)
        c = add(registry, tmp_path, "c", 900.0)  # never validated
        d = add(registry, tmp_path, "d", 200.0, algorithm="a2c")
        e = add(registry, tmp_path, "e", -50.0, env_id="Pendulum-v1", std=5.0)
        for model_id in (a, b, d, e):
            assert registry.validate(model_id, RELAXED if model_id != e else rules(-100, 1, None, 0.1, "")).valid
        assert registry.best().id == b
        assert registry.best(algorithm="a2c").id == d
        assert registry.best(env_id="Pendulum-v1").id == e
        assert registry.best(env_id="CartPole-v1'; DROP TABLE models; --") is None
        assert len(registry.models()) == 5 and c


def test_a_changed_or_missing_file_is_never_loaded(registry_db, tmp_path):
    with Registry(registry_db) as registry:
        good = add(registry, tmp_path, "good", 100.0)
        better = add(registry, tmp_path, "better", 200.0)
        for model_id in (good, better):
            registry.validate(model_id, RELAXED)
        (tmp_path / "better.zip").write_bytes(b"tampered")
        with pytest.raises(RegistryError, match="does not match the checksum"):
            verify(registry.get(better))
        chosen, files = registry.best_loadable()
        assert chosen.id == good and files.path == tmp_path / "good.zip"
        (tmp_path / "good.zip").unlink()
        assert registry.best_loadable() is None
        # A file this host cannot read is this host's problem, not the model's: the verdict stands (another
        # host may hold the genuine file), and the file check says what is wrong here.
        validation = registry.validate(better, RELAXED)
        assert validation.valid and registry.get(better).validated
        file = registry.check_file(registry.get(better))
        assert not file.passed and "does not match the checksum" in file.detail


def test_pruning_keeps_the_top_n_per_env_and_algorithm_and_always_the_best(registry_db, tmp_path):
    with Registry(registry_db) as registry:
        best = add(registry, tmp_path, "best", 100.0)
        registry.validate(best, RELAXED)
        higher_unvalidated = [add(registry, tmp_path, f"u{i}", 200.0 + i) for i in range(3)]
        other = add(registry, tmp_path, "other", 1.0, algorithm="a2c")
        dry = registry.prune(1, None, dry_run=True)
        assert {m.id for m in dry} == set(higher_unvalidated[:2])
        assert all((tmp_path / f"u{i}.zip").exists() for i in range(3))
        removed = registry.prune(1, None)
        assert {m.id for m in removed} == set(higher_unvalidated[:2])
        kept = {m.id for m in registry.models()}
        assert kept == {best, higher_unvalidated[2], other}
        assert not (tmp_path / "u0.zip").exists() and (tmp_path / "best.zip").exists()
        # maxAge: everything is old, but the best validated model stays.
        registry.db.execute("UPDATE models SET timestamp = ?", (int(time.time()) - 10 * 86_400,))
        registry.prune(None, 5)
        assert [m.id for m in registry.models()] == [best]


def test_registry_list_imports_neither_torch_nor_stable_baselines3(tmp_path):
    code = ("import sys; from rl_module.cli.registry_list import main; "
            f"main(['--registry-db', {str(tmp_path / 'r.db')!r}]); "
            "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("[]")


def test_registry_commands_on_unknown_ids_and_empty_registries(registry_db, postgres_password):
    result = command("rl-load-best", "--registry-db", registry_db)
    nothing = f"no registry at {registry_db}" if "://" not in registry_db else "no registry in postgresql://rl:***@"
    assert result.returncode == 1 and nothing in result.stderr, result.stderr
    Registry(registry_db).close()  # an empty registry
    result = command("rl-load-best", "--registry-db", registry_db)
    assert result.returncode == 1 and "no validated model" in result.stderr
    result = command("rl-registry-validate", "42", "--registry-db", registry_db)
    assert result.returncode == 2 and "no model with id 42" in result.stderr
    result = command("rl-registry-validate", "forty-two", "--registry-db", registry_db)
    assert result.returncode == 2
    result = command("rl-registry-prune", "--registry-db", registry_db)
    assert result.returncode == 2 and "--keep-top-n" in result.stderr
    result = command("rl-registry-list", "--json", env={"RL_REGISTRY_DB": registry_db})
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert postgres_password not in result.stdout + result.stderr


def test_a_registry_on_postgresql_that_cannot_be_used_is_one_line_naming_the_option(postgres, tmp_path):
    """Unreachable, misspelled, a wrong password, not a registry, from the future: each one line that names
    registry.dbPath and where its value came from, with the password masked, within 5 s; nothing written."""
    database = postgres.new_database()
    Registry(postgres.url(database)).close()
    newer = postgres.url(postgres.new_database())
    with Registry(newer) as registry:
        registry.db.set_schema_version(SCHEMA_VERSION + 1)
    foreign = postgres.new_database()
    postgres.admin("CREATE TABLE invoices (id INTEGER)", foreign)
    postgres.admin("ALTER TABLE invoices OWNER TO rl", foreign)
    port = free_port()
    cases = {
        f"postgresql://rl:{postgres.password}@127.0.0.1:{port}/rl": "Connection refused",
        postgres.url("no_such_registry"): 'database "no_such_registry" does not exist',
        postgres.url(database).replace(":" + postgres.password, ":wrong-" + postgres.password):
            "password authentication failed",
        postgres.url(foreign): "is not a registry: it holds other tables (invoices)",
        newer: "upgrade rl-module",
    }
    for url, reason in cases.items():
        ways = [("RL_REGISTRY_DB", {"RL_REGISTRY_DB": url}, [])] if "Connection refused" in reason else []
        for how, env, flags in [*ways, ("--registry-db", {}, ["--registry-db", url])]:
            started = time.monotonic()
            result = command("rl-train", "--total-timesteps", "64", "--model-dir", str(tmp_path / "models"), *flags,
                             env=env, cwd=tmp_path)
            lines = result.stderr.strip().splitlines()
            assert time.monotonic() - started < 5 + 10  # the 5 s budget, plus starting Python and gymnasium
            assert result.returncode in (1, 2), result.stderr
            assert any("option registry.dbPath from" in line and how in line and reason in line for line in lines), \
                result.stderr
            assert postgres.password not in result.stderr and "rl:***@" in result.stderr
            assert not (tmp_path / "models").exists()  # refused before any run was written
    assert postgres.admin("SELECT count(*) FROM invoices", foreign) == [(0,)]
    tables = postgres.admin("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", foreign)
    assert tables == [("invoices",)]


def test_libpq_passwords_come_from_pgpassword_and_pgpassfile(postgres, tmp_path):
    url = postgres.url(postgres.new_database(), password=False)
    result = command("rl-registry-list", "--registry-db", url, env={"PGPASSWORD": postgres.password}, cwd=tmp_path)
    assert result.returncode == 1 and "no registry in" in result.stderr  # connected: an empty database
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres.port}:*:rl:{postgres.password}\n")
    passfile.chmod(0o600)
    Registry(postgres.url(url.rsplit("/", 1)[1])).close()
    result = command("rl-registry-list", "--json", "--registry-db", url, env={"PGPASSFILE": str(passfile)},
                     cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stderr
    result = command("rl-registry-list", "--registry-db", url, env={"PGPASSFILE": str(tmp_path / "none")}, cwd=tmp_path)
    assert result.returncode == 1 and "registry.dbPath from flag --registry-db: cannot connect to postgresql://rl@" \
        in result.stderr


def _register_many(target: str, folder: str, prefix: str, count: int) -> None:
    """One writer process: `count` models, each with an evaluation, a validation and a prune."""
    with Registry(target) as registry:
        for i in range(count):
            path = Path(folder) / f"{prefix}-{i}.zip"
            path.write_bytes(f"{prefix}{i}".encode())
            model_id = registry.register(model_path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                         algorithm="ppo", env_id="CartPole-v1", total_timesteps=1000, run_id=prefix,
                                         kind="checkpoint", hyperparams=None, git_commit=None,
                                         evaluation=Evaluation(float(i), 0.1, 10.0, 10))
            registry.record_evaluation(prefix, i, Evaluation(float(i), 0.1, 10.0, 10))
            registry.validate(model_id, RELAXED)
            registry.prune(None, 365)


def test_concurrent_writer_processes_lose_nothing(registry_db, tmp_path):
    Registry(registry_db).close()
    writers = [subprocess.Popen([sys.executable, "-c", "import sys; sys.path.insert(0, 'tests'); "
                                 "from test_registry import _register_many; "
                                 f"_register_many({registry_db!r}, {str(tmp_path)!r}, 'w{n}', 40)"], cwd=ROOT)
               for n in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    with Registry(registry_db) as registry:
        models = registry.models()
        assert len(models) == 160 and len({m.id for m in models}) == 160
        assert sum(m.validated for m in models) == 4 * 39  # a mean reward of 0 is never stable
        assert all(len(registry.history(f"w{n}", None)) == 40 for n in range(4))
        assert registry.best().mean_reward == 39.0


@pytest.fixture(scope="session")
def nu() -> str:
    found = shutil.which("nu")
    if found is None:
        pytest.skip("nu is not installed (./dev test installs nushell from npm)")
    return found


@pytest.mark.service
def test_nushell_helpers_list_best_and_report_over_the_same_database(nu, registry_db, tmp_path):
    db = registry_db
    with Registry(db) as registry:
        ids = [add(registry, tmp_path, f"m{i}", float(r), env_id="Acrobot-v1" if i == 2 else "CartPole-v1")
               for i, r in enumerate((50, 400, 300))]
        for model_id in ids[:2]:
            registry.validate(model_id, RELAXED)
        registry.validate(ids[2], rules(1000.0, 1, None, 0.1, ""))  # the registry's rules for Acrobot-v1: strict

    def nu_json(expression: str) -> object:
        result = subprocess.run([nu, "-c", f"use {NU_SCRIPT} *; {expression} | to json -r"],
                                capture_output=True, text=True, check=False, env={"RL_REGISTRY_DB": db, "PATH": PATH})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    listed = nu_json("registry list")
    assert [row["id"] for row in listed] == [ids[1], ids[2], ids[0]]
    assert [row["validated"] for row in listed] == [True, False, True]
    assert [row["id"] for row in nu_json("registry list --validated --top-n 1")] == [ids[1]]
    assert nu_json("registry list --algorithm a2c") == []
    assert nu_json("registry best")["id"] == ids[1]
    report = nu_json(f"registry report {ids[2]}")
    assert {row["rule"]: row["passed"] for row in report}["reward"] is False
    (tmp_path / "m1.zip").write_bytes(b"tampered")
    result = subprocess.run([nu, "-c", f"use {NU_SCRIPT} *; registry best --db {db}"], capture_output=True, text=True,
                            check=False, env={"PATH": PATH})
    assert result.returncode != 0 and "does not match its recorded checksum" in result.stderr
    # A script file of the user's, in another folder, finds the helpers as the README says: by the library path.
    script = tmp_path / "elsewhere" / "my-report.nu"
    script.parent.mkdir()
    script.write_text(f"use default.nu *\nregistry list --db {db} --algorithm PPO | length | print\n")
    found = subprocess.run([nu, "--include-path", str(NU_SCRIPT.parent), str(script)], capture_output=True,
                           text=True, check=False, cwd=script.parent, env={"PATH": PATH})
    assert found.returncode == 0 and found.stdout.strip() == "3", found.stderr  # algorithm names ignore case


def test_a_sqlite_registry_moves_to_postgresql_with_its_ids_rows_and_evaluations(postgres, tmp_path):
    source = tmp_path / "one-machine.db"
    with Registry(source) as registry:
        ids = [add(registry, tmp_path, f"m{i}", float(r), run_id="run-a") for i, r in enumerate((50, 400, 300))]
        for step, reward in ((1000, 10.0), (2000, 300.0), (3000, 400.0)):
            registry.record_evaluation("run-a", step, Evaluation(reward, 1.0, 20.0, 10))
        registry.validate(ids[1], RELAXED)
        registry.prune(None, None)
        registry.db.execute("DELETE FROM models WHERE id = ?", (ids[0],))  # ids with a gap stay as they are
    target = postgres.url(postgres.new_database())
    copied = command("rl-registry-copy", target, "--registry-db", str(source), cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.strip() == (f"copied 2 models and 3 evaluations from {source} to "
                                      f"{target.replace(postgres.password, '***')}")
    with Registry(source) as before, Registry(target) as after:
        assert after.models() == before.models() and after.best().id == ids[1]
        assert after.history("run-a", None) == [10.0, 300.0, 400.0]
        new = add(after, tmp_path, "after-the-move", 10.0)  # the next id comes after the copied ones
        assert new > ids[-1]
    listed = command("rl-registry-list", "--json", "--registry-db", target, cwd=tmp_path)
    assert [m["id"] for m in json.loads(listed.stdout)] == [ids[1], ids[2], new]
    again = command("rl-registry-copy", target, "--registry-db", str(source), cwd=tmp_path)
    assert again.returncode == 1 and "already holds models" in again.stderr and postgres.password not in again.stderr
