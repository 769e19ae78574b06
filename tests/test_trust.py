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
    done = command("rl-infer", "--registry-db", str(db), "--model-id", str(model_id), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 1 and "the registry recorded no checksum for it" in done.stderr


def test_a_file_replaced_after_its_check_is_not_what_gets_loaded(validated, tmp_path):
    """The check-then-load race: the bytes are read once, checked, and loaded from memory; replacing the
    file in between (here: right after the check) changes nothing, and the replacement's payload never runs."""
    from rl_module.cli.infer import COMMAND
    from rl_module.infer import Located, Predictor

    db, model_id, result = validated
    path = Path(result["model_path"])
    config, _ = COMMAND.configure(["--model-id", str(model_id), "--registry-db", str(db)], {})
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
    done = command("rl-infer", "--registry-db", str(db), "--model-id", str(model_id), "--obs", "[0, 0, 0, 0]")
    assert done.returncode == 1 and not marker.exists()
