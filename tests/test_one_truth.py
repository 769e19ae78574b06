"""One truth across hosts: a model is judged by the registry's rules, whatever the judging command's own
options say, and what one host cannot read never changes the verdict every host sees; a row's checksum
and file name are checked before they become a path in the fetch cache, and a fetched copy that fails its
checksum is deleted and fetched again. Real processes, a real SQLite file and PostgreSQL, moto's S3."""

from __future__ import annotations

import hashlib
import json

import pytest
from test_registry import add, described_zip

from conftest import boto_credentials, command
from rl_module.registry import Registry, rules

NO_CONVERGENCE = rules(0.0, 1, None, 0.1, "CartPole-v1")


def test_a_command_with_other_rules_does_not_judge_again_and_rl_registry_rules_changes_them(registry_db, tmp_path):
    with Registry(registry_db) as registry:
        # Trained with --convergence-window null: the first judgement records those rules for the env.
        model_id = add(registry, tmp_path, "trained", 100.0, run_id="run-1")
        assert registry.validate(model_id, NO_CONVERGENCE).valid
    db = ["--registry-db", registry_db, "--model-dir", str(tmp_path)]

    # Another host, its own defaults (convergenceWindow 3, the env's threshold 475): the verdict stands.
    other = command("rl-registry-validate", str(model_id), *db, "--json", cwd=tmp_path)
    assert other.returncode == 0, other.stderr + other.stdout
    shown = json.loads(other.stdout)
    assert shown["valid"] and shown["rules"]["convergence_window"] is None and shown["rules"]["min_reward"] == 0.0
    # The same with the rules given by flag: it says they are not used, and how to change the registry's.
    flagged = command("rl-registry-validate", str(model_id), *db, "--convergence-window", "3", cwd=tmp_path)
    assert flagged.returncode == 0, flagged.stderr
    assert "registry.convergenceWindow from flag --convergence-window" in flagged.stderr
    assert "rl-registry-rules --set --env-id CartPole-v1 --convergence-window 3" in flagged.stderr
    with Registry(registry_db) as registry:
        assert registry.get(model_id).validated and registry.best().id == model_id

    # The registry's rules, changed by the one command that changes them: the env's models judged again.
    listed = command("rl-registry-rules", "--registry-db", registry_db, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["convergence_window"] is None, listed.stderr
    changed = command("rl-registry-rules", "--registry-db", registry_db, "--set", "--env-id", "CartPole-v1",
                      "--convergence-window", "3")
    assert changed.returncode == 0, changed.stderr
    assert f"model {model_id} now rejected" in changed.stdout and "convergenceWindow 3" in changed.stdout
    with Registry(registry_db) as registry:
        assert not registry.get(model_id).validated and registry.best() is None
        (env_id, stored, set_by, _), = registry.all_rules()
        # Only the option given changed; the others stay the registry's.
        assert (env_id, stored.min_reward, stored.min_episodes, stored.convergence_window) == ("CartPole-v1", 0.0, 1, 3)
        assert set_by.startswith("rl-registry-rules on ")


def test_a_host_that_cannot_read_the_file_never_changes_the_verdict(registry_db, tmp_path):
    with Registry(registry_db) as registry:
        model_id = add(registry, tmp_path, "trained", 100.0)
        assert registry.validate(model_id, NO_CONVERGENCE).valid
    (tmp_path / "trained.zip").write_bytes(b"this host's copy went bad")
    checked = command("rl-registry-validate", str(model_id), "--registry-db", registry_db, "--model-dir",
                      str(tmp_path))
    assert checked.returncode == 1  # this host cannot load it, and says so
    assert "✗ file on this host" in checked.stdout and "the registry's verdict stands" in checked.stdout
    assert "\nvalid" in checked.stdout
    with Registry(registry_db) as registry:
        assert registry.get(model_id).validated and registry.best().id == model_id


def _s3(s3_server: dict[str, str]) -> tuple[object, dict[str, str]]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server["endpoint"], **boto_credentials(s3_server))
    env = {k: v for k, v in s3_server.items() if k != "endpoint"} | {"AWS_ENDPOINT_URL_S3": s3_server["endpoint"]}
    return client, env


def _remote_row(registry: Registry, *, name: str, sha256: str, key: str) -> int:
    model_id = registry.register(model_path=f"/elsewhere/{name}", sha256=sha256, algorithm="ppo",
                                 env_id="CartPole-v1", total_timesteps=100_000, run_id=None, kind="final",
                                 hyperparams=None, git_commit=None)
    registry.set_remote({f"/elsewhere/{name}": f"s3://runs/{key}"})
    return model_id


@pytest.mark.service
@pytest.mark.parametrize("sha256, name", [
    ("{outside}", "model.zip"),  # an absolute path as the checksum
    ("../../../../{outside_name}", "model.zip"),  # a climb out of the cache
    ("a" * 64, ".."),  # a file name that is no name
])
def test_a_rows_checksum_and_name_are_checked_before_they_become_a_path(s3_server, tmp_path, sha256, name):
    client, env = _s3(s3_server)
    body = b"whatever the row's writer chose"
    key = f"planted/{tmp_path.name}/model.zip"
    client.put_object(Bucket="runs", Key=key, Body=body)
    outside = tmp_path / "outside"
    sha256 = sha256.format(outside=outside, outside_name=outside.name)
    host = tmp_path / "host"
    host.mkdir()
    db = str(host / "registry.db")
    with Registry(db) as registry:
        model_id = _remote_row(registry, name=name, sha256=sha256, key=key)
        registry.db.execute("UPDATE models SET model_path = ? WHERE id = ?", (f"/elsewhere/{name}", model_id))
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    refused = command("rl-registry-validate", str(model_id), "--registry-db", db, cwd=host, env=env)
    assert refused.returncode == 1
    assert "is not 64 lowercase hex digits" in refused.stdout or "is not a plain file name" in refused.stdout
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - files
    assert all(p.name.startswith("registry.db") for p in written), written  # nothing fetched, anywhere
    assert not outside.exists()


@pytest.mark.service
def test_a_fetched_copy_that_fails_its_checksum_is_deleted_and_fetched_again(s3_server, tmp_path):
    client, env = _s3(s3_server)
    genuine = described_zip("the registered model")
    key = f"heals/{tmp_path.name}/model.zip"
    client.put_object(Bucket="runs", Key=key, Body=b"a bad copy")
    db = str(tmp_path / "registry.db")
    with Registry(db) as registry:
        model_id = _remote_row(registry, name="model.zip", sha256=hashlib.sha256(genuine).hexdigest(), key=key)
        registry.db.execute("UPDATE models SET mean_reward = 100, std_reward = 1, mean_episode_length = 200,"
                            " eval_episodes = 10 WHERE id = ?", (model_id,))
        assert registry.validate(model_id, NO_CONVERGENCE).valid
    cache = tmp_path / "models" / "fetched"

    refused = command("rl-registry-validate", str(model_id), "--registry-db", db, cwd=tmp_path, env=env)
    assert refused.returncode == 1
    # The refusal names the remote copy, not only this host's cache path; the bad copy is gone.
    assert f"s3://runs/{key}" in refused.stdout and "fetched again" in refused.stdout
    assert not list(cache.rglob("model.zip"))
    with Registry(db) as registry:
        assert registry.get(model_id).validated  # one host's bad copy is not the model's failure

    client.put_object(Bucket="runs", Key=key, Body=genuine)  # the genuine object restored
    healed = command("rl-registry-validate", str(model_id), "--registry-db", db, cwd=tmp_path, env=env)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert "✓ file on this host" in healed.stdout
    assert [p.read_bytes() for p in cache.rglob("model.zip")] == [genuine]
