"""A model is data (issue 26): what a registry row names is loaded without unpickling anything. A model
file whose pickled entries carry a payload, registered with its true checksum, loads and predicts as the
genuine model and the payload never runs; statistics that are a pickle, and models saved before
descriptions, are refused (the latter with the command that converts them); with registry.trustedKeys,
only models a trusted key signed are loaded; and every kind of model loads as data and predicts the same
actions as before.

The attacks are an attacker's: they rewrite the model file (and its row: the checksum is always the
file's true one), never this project's code. The models are trained once per module, by rl-train."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_serve import Server, wait_until

from conftest import command
from rl_module.registry import Evaluation, Registry, rules

RELAXED = rules(0.0, 1, None, 0.1, "CartPole-v1")
# CartPole observations around upright, leaning both ways: the actions they get tell models apart.
OBSERVATIONS = np.random.default_rng(7).uniform([-1, -1, -0.2, -2], [1, 1, 0.2, 2], size=(16, 4)).round(3).tolist()
# Every entry of a PPO model's `data` (with observation normalization) that stable-baselines3 writes as a
# cloudpickle: the policy's parts, and the runtime state of the last rollout.
SERIALIZED = ("policy_class", "observation_space", "action_space", "lr_schedule", "clip_range", "rollout_buffer_class",
              "_last_obs", "_last_original_obs", "_last_episode_starts", "ep_info_buffer", "ep_success_buffer")
TRAIN = ("--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--total-timesteps", "256", "--eval-freq", "0",
         "--checkpoint-freq", "0", "--episodes", "2", "--min-reward", "0", "--convergence-window", "null",
         "--min-episodes", "1", "--json")


class Payload:
    """Unpickling this creates a file: proof that the bytes were run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stats_of(model: Path) -> Path | None:
    """The statistics beside a model, under whichever name the rl-module that saved it gives them."""
    for suffix in (".stats.npz", ".vecnormalize.pkl"):
        path = model.with_name(model.stem + suffix)
        if path.is_file():
            return path
    return None


def zip_entries(model: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(model) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def payloads(data: dict[str, Any], keys: tuple[str, ...], markers: Path) -> dict[str, Any]:
    """The given pickled entries of a model's data, each a payload that creates markers/<key>."""
    markers.mkdir(parents=True, exist_ok=True)
    return {key: {":type:": data[key][":type:"],
                  ":serialized:": base64.b64encode(pickle.dumps(Payload(markers / key))).decode()} for key in keys}


def crafted(model: Path, *, data: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            description: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    """The model's zip with entries of its `data` replaced (the description beside them untouched unless
    `description` rewrites it too)."""
    entries = zip_entries(model)
    if data is not None:
        original = json.loads(entries["data"])
        entries["data"] = json.dumps({**original, **data(original)}).encode()
    if description is not None:
        described = json.loads(entries["rl_module.json"])
        description(described)
        entries["rl_module.json"] = json.dumps(described).encode()
    return zipped(entries)


@dataclass(frozen=True)
class World:
    root: Path  # every model of this module lies under it: the --model-dir of every loader
    db: Path
    model: Path  # the genuine model (PPO on CartPole, observations normalized)
    model_id: int
    hyperparams: dict[str, Any]
    actions: list[int]  # what rl-infer answers OBSERVATIONS with, from the genuine model
    evaluation: dict[str, Any]  # what rl-eval --episodes 2 --seed 3 says of it

    def plant(self, name: str, model_bytes: bytes, stats: bytes | None = None) -> Path:
        """An attacker's model file (and the genuine statistics beside it, unless `stats`), in its own folder."""
        folder = self.root / "planted" / name
        folder.mkdir(parents=True)
        path = folder / "model.zip"
        path.write_bytes(model_bytes)
        genuine_stats = stats_of(self.model)
        if genuine_stats is not None:
            (folder / genuine_stats.name).write_bytes(genuine_stats.read_bytes() if stats is None else stats)
        return path

    def load(self, loader: str, db: Path | str, model_id: int, *extra: str) -> Any:
        """One loader, as a real process, on the row `model_id` (or the best of `db`)."""
        common = ("--registry-db", str(db), "--model-dir", str(self.root), *extra)
        observations = ("--obs", json.dumps(OBSERVATIONS))
        if loader == "rl-infer --model-id":
            return command("rl-infer", *common, "--model-id", str(model_id), *observations, cwd=self.root)
        if loader == "rl-infer --load-best":
            return command("rl-infer", *common, "--load-best", *observations, cwd=self.root)
        if loader == "rl-eval --model-id":
            return command("rl-eval", *common, "--model-id", str(model_id), "--episodes", "2", "--seed", "3", "--json",
                           cwd=self.root)
        assert loader == "rl-load-best"
        return command("rl-load-best", *common, cwd=self.root)


def register(db: Path | str, path: Path, reward: float, *, hyperparams: dict[str, Any] | None = None,
             signature: str | None = None) -> int:
    """A validated row for the file, with its true checksums: what anyone who can write the registry writes."""
    stats = stats_of(path)
    signed = {"signature": signature} if signature is not None else {}
    with Registry(db) as registry:
        model_id = registry.register(model_path=path, sha256=sha256(path), algorithm="ppo", env_id="CartPole-v1",
                                     total_timesteps=256, run_id=None, kind="final", hyperparams=hyperparams,
                                     git_commit=None, evaluation=Evaluation(reward, 1.0, 20.0, 10),
                                     stats_sha256=sha256(stats) if stats is not None else None, **signed)
        assert registry.validate(model_id, RELAXED).valid
    return model_id


def answer(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def refusal(done: Any) -> str:
    """The one line a refused load prints (exit 1, no traceback)."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("model-is-data").resolve()
    db = root / "r.db"
    done = command("rl-train", "--model-dir", str(root / "models"), "--registry-db", str(db), "--normalize", "obs",
                   "--seed", "1", *TRAIN, cwd=root)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    with Registry(db) as registry:
        row = registry.get(result["model_id"])
    world = World(root, db, (root / result["model_path"]).resolve(), result["model_id"],
                  json.loads(row.hyperparams), [], {})
    world.actions.extend(answer(world.load("rl-infer --model-id", db, world.model_id)))
    world.evaluation.update(answer(world.load("rl-eval --model-id", db, world.model_id)))
    return world


# -- (a) payloads in the pickled entries of a genuine model -----------------------------------------------


@pytest.fixture(scope="module")
def every_entry_a_payload(world: World) -> tuple[Path, int, Path]:
    """The genuine model with a payload in every pickled entry of its data (its description, which names
    them all, untouched), registered alone in a registry with its true checksum."""
    markers = world.root / "markers" / "every-entry"
    data = json.loads(zip_entries(world.model)["data"])
    assert sorted(SERIALIZED) == sorted(k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v)
    path = world.plant("every-entry", crafted(world.model, data=lambda d: payloads(d, SERIALIZED, markers)))
    db = world.root / "every-entry.db"
    return db, register(db, path, 500.0, hyperparams=world.hyperparams), markers


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["rl-infer --model-id", "rl-infer --load-best", "rl-eval --model-id"])
def test_payloads_in_every_pickled_entry_never_run_and_the_model_predicts_as_before(world, every_entry_a_payload,
                                                                                    loader):
    db, model_id, markers = every_entry_a_payload
    result = answer(world.load(loader, db, model_id))
    assert sorted(p.name for p in markers.iterdir()) == []  # the entries whose payload ran
    if loader == "rl-eval --model-id":
        assert result["mean_reward"] == world.evaluation["mean_reward"], (result, world.evaluation)
    else:
        assert result == world.actions


@pytest.mark.parametrize("key", SERIALIZED)
def test_a_payload_in_any_one_entry_never_runs(world, key, tmp_path):
    """Each pickled entry in turn (in process: artifact.load is what every loader calls)."""
    from rl_module import artifact

    model = artifact.load(crafted(world.model, data=lambda d: payloads(d, (key,), tmp_path)), "ppo", device="cpu")
    assert not (tmp_path / key).exists()
    genuine = artifact.load(world.model.read_bytes(), "ppo", device="cpu")
    observations = np.array(OBSERVATIONS, dtype=np.float32)
    assert np.array_equal(model.predict(observations, deterministic=True)[0],
                          genuine.predict(observations, deterministic=True)[0])


def test_a_pickled_entry_the_description_does_not_name_is_refused(world, tmp_path):
    """An attacker adds a pickle where the genuine model had plain JSON (policy_kwargs): nothing in the
    description replaces it, so the model is refused before SB3 reads its data."""
    from rl_module import artifact

    def pickled_kwargs(data: dict[str, Any]) -> dict[str, Any]:
        return {"policy_kwargs": payloads({"policy_kwargs": {":type:": "<class 'dict'>"}}, ("policy_kwargs",),
                                          tmp_path)["policy_kwargs"]}

    with pytest.raises(artifact.ArtifactError, match="pickles the description does not replace.*policy_kwargs"):
        artifact.load(crafted(world.model, data=pickled_kwargs), "ppo", device="cpu")
    assert not (tmp_path / "policy_kwargs").exists()


FORGED_NAMES = [
    ("policy_class", {"class": "os:system"}),
    ("policy_class", {"class": "builtins:eval"}),
    ("lr_schedule", {"object": "builtins:eval", "state": {}}),
    ("clip_range", {"enum": "os:system", "value": "id"}),
    # A name under an allowed module that only imports the class: not one the module defines.
    ("rollout_buffer_class", {"class": "rl_module.registry:subprocess.Popen"}),
    ("policy_class", {"class": "stable_baselines3.common.utils:os.system"}),
]


@pytest.mark.parametrize("entry,forged", FORGED_NAMES, ids=[str(f)[:48] for _, f in FORGED_NAMES])
def test_a_description_that_names_a_class_outside_the_allow_list_is_refused(world, entry, forged, tmp_path):
    """The attacker rewrites the description too: the name is refused before anything is imported or
    called, and the payloads in the data never run."""
    from rl_module import artifact

    def forge(described: dict[str, Any]) -> None:
        described["entries"][entry] = forged

    model = crafted(world.model, data=lambda d: payloads(d, SERIALIZED, tmp_path), description=forge)
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.load(model, "ppo", device="cpu")
    name = forged.get("class") or forged.get("object") or forged.get("enum")
    assert repr(name) in str(refused.value) and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rewrite", [
    lambda entries: entries.__setitem__("rl_module.json", b"[]"),
    lambda entries: entries.__setitem__("data", b"[]"),
    lambda entries: entries.__setitem__("rl_module.json", json.dumps(
        {**json.loads(entries["rl_module.json"]), "entries": [["policy_class", {"class": "os:system"}]]}).encode()),
], ids=["description-a-list", "data-a-list", "entries-a-list"])
def test_a_description_that_is_not_what_rl_module_writes_is_refused(world, rewrite):
    from rl_module import artifact

    entries = zip_entries(world.model)
    rewrite(entries)
    with pytest.raises(artifact.ArtifactError, match="not a JSON object"):
        artifact.load(zipped(entries), "ppo", device="cpu")


@pytest.mark.slow
def test_rl_infer_refuses_a_description_naming_os_system_in_one_line(world, tmp_path):
    markers = tmp_path / "markers"

    def forge(described: dict[str, Any]) -> None:
        described["entries"]["policy_class"] = {"class": "os:system"}

    path = world.plant("os-system", crafted(world.model, data=lambda d: payloads(d, SERIALIZED, markers),
                                            description=forge))
    db = tmp_path / "r.db"
    model_id = register(db, path, 500.0, hyperparams=world.hyperparams)
    stderr = refusal(world.load("rl-infer --model-id", db, model_id))
    lines = [line for line in stderr.splitlines() if "os:system" in line]
    assert len(lines) == 1 and f"model {model_id}" in lines[0] and "refused" in lines[0], stderr
    assert list(markers.iterdir()) == []


def watched_registry(database: str, tmp_path: Path, request: Any) -> tuple[Path | str, tuple[str, ...]]:
    """A registry for a hotswapping server, and how it watches it: a SQLite file it polls, or a PostgreSQL
    database polled once an hour, so that only the NOTIFY of a new verdict can make it look."""
    if database == "sqlite":
        return tmp_path / "r.db", ()
    postgres = request.getfixturevalue("postgres")
    return postgres.url(postgres.new_database()), ("--poll-interval", "3600")


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_running_server_hotswaps_to_a_model_with_payloads_and_never_runs_them(world, database, tmp_path, request):
    """SQLite: the watcher polls; PostgreSQL: a poll interval of an hour, so only the NOTIFY of the new
    verdict can make it look."""
    db, watch = watched_registry(database, tmp_path, request)
    markers = tmp_path / "markers"
    path = world.plant(f"served-{database}", crafted(world.model, data=lambda d: payloads(d, SERIALIZED, markers)))
    first = register(db, world.model, 100.0, hyperparams=world.hyperparams)
    server = Server(db, "--model-dir", str(world.root), *watch, cwd=tmp_path)  # type: ignore[arg-type]
    try:
        assert server.get("/model")["id"] == first
        attacked = register(db, path, 200.0, hyperparams=world.hyperparams)
        assert wait_until(60, lambda: server.get("/model")["id"] == attacked), server.get("/healthz")
        for observation, expected in list(zip(OBSERVATIONS, world.actions, strict=True))[:6]:
            status, body = server.request("POST", "/predict", json.dumps(observation).encode())
            assert status == 200 and body == {"action": expected, "model_id": attacked}, body
        assert server.get("/healthz")["refused"] == []
    finally:
        stderr = server.stop()
    assert list(markers.iterdir()) == [], stderr
    assert f"hotswapped to model {attacked}" in stderr


# -- (b) statistics that are a pickle, and models saved before descriptions -------------------------------


@pytest.fixture(scope="module")
def pickled_statistics(world: World) -> tuple[Path, int, Path]:
    """The genuine model with a pickle as its statistics, the pickle's true checksum in the row."""
    marker = world.root / "markers" / "statistics"
    marker.parent.mkdir(parents=True, exist_ok=True)
    path = world.plant("pickled-statistics", world.model.read_bytes(), stats=pickle.dumps(Payload(marker)))
    db = world.root / "pickled-statistics.db"
    return db, register(db, path, 500.0, hyperparams=world.hyperparams), marker


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["rl-infer --model-id", "rl-infer --load-best", "rl-eval --model-id",
                                    "rl-load-best"])
def test_statistics_that_are_a_pickle_are_refused_and_never_run(world, pickled_statistics, loader):
    db, model_id, marker = pickled_statistics
    stderr = refusal(world.load(loader, db, model_id))
    refused = f"model {model_id} refused: the normalization statistics beside it are not the ones it was saved with"
    assert refused in stderr
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_running_server_refuses_to_hotswap_to_statistics_that_are_a_pickle_and_keeps_its_model(world, database,
                                                                                                tmp_path, request):
    """The genuine model with a pickle (a payload) as its statistics, its true checksum in a better row: the
    server refuses it, keeps serving its model and names the refusal in /healthz. SQLite: the watcher polls;
    PostgreSQL: a poll interval of an hour, so only the NOTIFY of the new verdict can make it look."""
    db, watch = watched_registry(database, tmp_path, request)
    marker = tmp_path / "statistics-ran"
    path = world.plant(f"served-statistics-{database}", world.model.read_bytes(), stats=pickle.dumps(Payload(marker)))
    first = register(db, world.model, 100.0, hyperparams=world.hyperparams)
    server = Server(db, "--model-dir", str(world.root), *watch, cwd=tmp_path)  # type: ignore[arg-type]
    try:
        assert server.get("/model")["id"] == first
        attacked = register(db, path, 200.0, hyperparams=world.hyperparams)
        assert wait_until(60, lambda: attacked in server.get("/healthz")["refused"]), server.get("/healthz")
        health = server.get("/healthz")
        assert server.get("/model")["id"] == first and health["status"] == "ok", health
        assert health["last_error"].startswith(f"model {attacked}: ") and \
            "the normalization statistics beside it are not the ones it was saved with" in health["last_error"], health
        status, body = server.request("POST", "/predict", json.dumps(OBSERVATIONS[0]).encode())
        assert status == 200 and body == {"action": world.actions[0], "model_id": first}, body
    finally:
        stderr = server.stop()
    assert (f"hotswap to model {attacked} refused: model {attacked} refused: the normalization statistics beside it "
            "are not the ones it was saved with") in stderr, stderr
    assert f"hotswapped to model {attacked}" not in stderr
    assert not marker.exists()


@dataclass(frozen=True)
class OldModel:
    path: Path
    actions: list[int]  # what the model itself (SB3, statistics applied) answers OBSERVATIONS with


@pytest.fixture(scope="module")
def old_model(world: World) -> OldModel:
    """A model as rl-module saved them before descriptions: SB3's model.save and a pickled VecNormalize."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0), norm_reward=False)
    model = PPO("MlpPolicy", venv, n_steps=128, seed=0, device="cpu").learn(256)
    folder = world.root / "models" / "old-format"
    folder.mkdir(parents=True)
    model.save(folder / "model.zip")
    venv.save(str(folder / "model.vecnormalize.pkl"))
    venv.training = False
    observations = venv.normalize_obs(np.array(OBSERVATIONS, dtype=np.float32))
    return OldModel(folder / "model.zip", model.predict(observations, deterministic=True)[0].tolist())


@pytest.fixture(scope="module")
def old_rows(world: World, old_model: OldModel) -> tuple[Path, int, Path]:
    """An older model's files (an attacker's: a payload in its lr_schedule) as the only row of a registry."""
    markers = world.root / "markers" / "old-format"
    path = world.root / "planted" / "old-format" / "model.zip"
    path.parent.mkdir(parents=True)
    path.write_bytes(crafted(old_model.path, data=lambda d: payloads(d, ("lr_schedule",), markers)))
    pickled = stats_of(old_model.path)
    assert pickled is not None
    (path.parent / pickled.name).write_bytes(pickled.read_bytes())
    db = world.root / "old-format.db"
    return db, register(db, path, 500.0), markers


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["rl-infer --model-id", "rl-infer --load-best", "rl-eval --model-id",
                                    "rl-load-best"])
def test_a_model_saved_before_descriptions_is_refused_with_the_command_that_converts_it(world, old_rows, loader):
    db, model_id, markers = old_rows
    stderr = refusal(world.load(loader, db, model_id))
    last = stderr.splitlines()[-1]  # the command's own line (a load-best logs each model it passes over first)
    assert f"model {model_id} refused" in last and f"rl-registry-convert {model_id}" in last, stderr
    assert list(markers.iterdir()) == []


@pytest.mark.slow
def test_rl_registry_convert_makes_an_older_model_load_and_predict_as_before(world, old_model, tmp_path):
    folder = world.root / "models" / "old-format-converted"
    folder.mkdir()
    for source in (old_model.path, stats_of(old_model.path)):
        assert source is not None
        (folder / source.name).write_bytes(source.read_bytes())
    db = tmp_path / "r.db"
    model_id = register(db, folder / "model.zip", 100.0)
    assert f"rl-registry-convert {model_id}" in refusal(world.load("rl-infer --model-id", db, model_id))
    done = command("rl-registry-convert", str(model_id), "--registry-db", str(db), "--model-dir", str(world.root),
                   cwd=tmp_path)
    assert done.returncode == 0 and f"model {model_id} converted" in done.stdout, done.stderr
    assert not (folder / "model.vecnormalize.pkl").exists() and (folder / "model.stats.npz").is_file()
    assert answer(world.load("rl-infer --model-id", db, model_id)) == old_model.actions


# -- (c) signatures -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    trusted: Path  # the trainers' private key (registry.signingKeyFile)
    trusted_public: Path  # registry.trustedKeys of the hosts that load
    other: Path  # a key the loading hosts do not trust: an attacker's


@pytest.fixture(scope="module")
def keys(world: World) -> Keys:
    for prefix in ("trusted", "other"):
        done = command("rl-keygen", str(world.root / prefix), cwd=world.root)
        assert done.returncode == 0, done.stderr
    return Keys(world.root / "trusted.pem", world.root / "trusted.pub.pem", world.root / "other.pem")


@dataclass(frozen=True)
class Signed:
    path: Path
    signature: str


@pytest.fixture(scope="module")
def signed(world: World, keys: Keys) -> Signed:
    """A model trained by a host that holds the trusted key: rl-train signs what it registers."""
    db = world.root / "signed.db"
    done = command("rl-train", "--model-dir", str(world.root / "models"), "--registry-db", str(db), "--seed", "2",
                   "--signing-key-file", str(keys.trusted), *TRAIN, cwd=world.root)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    with Registry(db) as registry:
        row = registry.get(result["model_id"])
    assert row.signature is not None and str(keys.trusted) not in row.signature
    return Signed((world.root / result["model_path"]).resolve(), row.signature)


def forged_rows(world: World, keys: Keys, db: Path, markers: Path) -> tuple[int, int]:
    """Rows a host without the trusted key writes, better than any other, for an attacker's file (payloads
    in every entry) with its true checksum: one unsigned, one signed with a key of its own."""
    from rl_module import artifact

    path = world.plant(f"forged-{db.parent.name}", crafted(world.model,
                                                           data=lambda d: payloads(d, SERIALIZED, markers)))
    unsigned = register(db, path, 200.0, hyperparams=world.hyperparams)
    forged = register(db, path, 300.0, hyperparams=world.hyperparams,
                      signature=artifact.sign(path.read_bytes(), keys.other).text)
    return unsigned, forged


@pytest.mark.slow
def test_with_trusted_keys_a_server_refuses_unsigned_and_forged_models_and_swaps_to_a_signed_one(world, keys, signed,
                                                                                                   tmp_path):
    from rl_module import artifact

    db = tmp_path / "r.db"
    markers = tmp_path / "markers"
    first = register(db, world.model, 100.0, hyperparams=world.hyperparams,
                     signature=artifact.sign(world.model.read_bytes(), keys.trusted).text)
    server = Server(db, "--model-dir", str(world.root), "--trusted-keys", str(keys.trusted_public), cwd=tmp_path)
    try:
        assert server.get("/model")["id"] == first
        unsigned, forged = forged_rows(world, keys, db, markers)
        assert wait_until(60, lambda: {unsigned, forged} <= set(server.get("/healthz")["refused"])), \
            server.get("/healthz")
        health = server.get("/healthz")
        assert server.get("/model")["id"] == first and health["status"] == "ok"
        assert health["last_error"].startswith((f"model {unsigned}: ", f"model {forged}: ")), health
        assert "not signed" in health["last_error"] or "verifies against none" in health["last_error"], health
        status, body = server.request("POST", "/predict", json.dumps(OBSERVATIONS[0]).encode())
        assert status == 200 and body == {"action": world.actions[0], "model_id": first}
        trusted = register(db, signed.path, 400.0, signature=signed.signature)
        assert wait_until(60, lambda: server.get("/model")["id"] == trusted), server.get("/healthz")
        status, body = server.request("POST", "/predict", json.dumps(OBSERVATIONS[0]).encode())
        assert status == 200 and body["model_id"] == trusted
    finally:
        stderr = server.stop()
    assert f"hotswap to model {unsigned} refused: model {unsigned} refused: it is not signed" in stderr, stderr
    assert f"hotswap to model {forged} refused: model {forged} refused: its signature verifies against none" in stderr
    assert f"hotswapped to model {trusted}" in stderr
    assert list(markers.iterdir()) == []


@pytest.mark.slow
def test_with_trusted_keys_rl_load_best_refuses_unsigned_and_forged_models(world, keys, signed, tmp_path):
    db = tmp_path / "r.db"
    markers = tmp_path / "markers"
    unsigned, forged = forged_rows(world, keys, db, markers)
    trust = ("--trusted-keys", str(keys.trusted_public))
    stderr = refusal(world.load("rl-load-best", db, 0, *trust))
    assert f"model {unsigned} refused: it is not signed" in stderr, stderr
    assert f"model {forged} refused: its signature verifies against none of registry.trustedKeys" in stderr, stderr
    trusted = register(db, signed.path, 100.0, signature=signed.signature)  # worse than both, and signed
    done = world.load("rl-load-best", db, 0, *trust)
    assert done.returncode == 0 and done.stdout.strip() == str(signed.path), done.stderr
    assert list(markers.iterdir()) == [] and trusted > forged


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["rl-eval --model-id", "rl-infer --model-id", "rl-registry-validate"])
def test_with_trusted_keys_every_loader_by_id_refuses_an_unsigned_model_in_one_line(world, keys, loader, tmp_path):
    """The genuine model, registered without a signature: with registry.trustedKeys set, loading it by id
    is refused in one line that names the model and the reason (rl-registry-validate: the line of its report
    on this host's file, the model named in the report's first line)."""
    db = tmp_path / "r.db"
    model_id = register(db, world.model, 100.0, hyperparams=world.hyperparams)
    trust = ("--trusted-keys", str(keys.trusted_public))
    reason = "it is not signed, and registry.trustedKeys is set: only signed models are loaded"
    if loader == "rl-registry-validate":
        done = command("rl-registry-validate", str(model_id), "--registry-db", str(db), "--model-dir", str(world.root),
                       *trust, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
        report = done.stdout.splitlines()
        assert report[0] == f"model {model_id}: {world.model}", done.stdout
        assert [line for line in report if reason in line] == [f"  ✗ file on this host  {reason}"], done.stdout
        return
    stderr = refusal(world.load(loader, db, model_id, *trust))
    assert stderr.strip().splitlines() == [f"{loader.split()[0]}: model {model_id} refused: {reason}"], stderr


@pytest.mark.slow
def test_rl_registry_list_shows_who_signed_a_signed_model_and_nothing_for_an_unsigned_one(world, keys, signed,
                                                                                           tmp_path):
    """The key id is model-signing's hint: the sha256 of the signer's public key (PEM), the file rl-keygen
    wrote for registry.trustedKeys."""
    db = tmp_path / "r.db"
    unsigned = register(db, world.model, 100.0, hyperparams=world.hyperparams)
    trusted = register(db, signed.path, 200.0, signature=signed.signature)
    key_id = sha256(keys.trusted_public)
    done = command("rl-registry-list", "--registry-db", str(db), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {row["id"]: row for row in json.loads(done.stdout)}
    assert (listed[trusted]["signed_by"], listed[trusted]["signature"]) == (key_id, "present"), listed[trusted]
    assert (listed[unsigned]["signed_by"], listed[unsigned]["signature"]) == (None, None), listed[unsigned]
    done = command("rl-registry-list", "--registry-db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    column = header.index("signed by")  # the columns are padded to the widest cell: each row's cell starts here
    cells = {int(row.split()[0]): row[column:].split()[0] for row in rows}
    assert cells == {trusted: key_id[:12], unsigned: "-"}, done.stdout


# -- (d) every kind of model loads as data and predicts as before ----------------------------------------------


def _case(name: str) -> tuple[Any, Any, Any]:
    """(algorithm class, env, keyword arguments) of one kind of model, small enough to train in a second."""
    import custom_parts
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

    from rl_module.feature import TransformerEncoder

    on_policy = {"n_steps": 64, "seed": 0, "device": "cpu"}
    epochs = {"n_epochs": 2}  # PPO's 10 epochs of NatureCNN would take most of the time
    off_policy = {"learning_starts": 192, "buffer_size": 1000, "batch_size": 32, "seed": 0, "device": "cpu"}
    small = {"policy_kwargs": {"net_arch": [64, 64]}}  # SAC's 256x256, TD3's 400x300: most of the time
    return {
        "ppo-mlp": (PPO, "CartPole-v1", {"policy": "MlpPolicy", "batch_size": 32, **on_policy, **epochs}),
        "a2c-mlp": (A2C, "CartPole-v1", {"policy": "MlpPolicy", **on_policy}),
        "dqn-mlp": (DQN, "CartPole-v1", {"policy": "MlpPolicy", **off_policy}),
        "sac-mlp": (SAC, custom_parts.ReachTarget, {"policy": "MlpPolicy", **off_policy, **small}),
        "td3-mlp": (TD3, custom_parts.ReachTarget, {"policy": "MlpPolicy", **off_policy, **small}),
        "ppo-cnn": (PPO, custom_parts.FindTheLight, {"policy": "CnnPolicy", "batch_size": 32, **on_policy, **epochs}),
        "ppo-multiinput": (PPO, custom_parts.ReachTargetDict, {"policy": "MultiInputPolicy", **on_policy, **epochs}),
        "ppo-transformer": (PPO, "CartPole-v1", {"policy": "MlpPolicy", **on_policy, **epochs, "policy_kwargs": {
            "features_extractor_class": TransformerEncoder, "features_extractor_kwargs": {"features_dim": 16}}}),
        # continuous actions: the same to 1e-6
        "ppo-normalized": (PPO, "Pendulum-v1", {"policy": "MlpPolicy", **on_policy, **epochs}),
    }[name]


KINDS = ["ppo-mlp", "a2c-mlp", "dqn-mlp", "sac-mlp", "td3-mlp", "ppo-cnn", "ppo-multiinput", "ppo-transformer",
         "ppo-normalized"]


def _batch(space: Any, count: int) -> Any:
    """`count` observations sampled from the space, as one batch."""
    space.seed(0)
    samples = [space.sample() for _ in range(count)]
    if isinstance(samples[0], dict):
        return {key: np.stack([s[key] for s in samples]) for key in samples[0]}
    return np.stack(samples)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_model_loads_as_data_and_predicts_the_same_actions(kind, monkeypatch):
    """Trained in process, saved as rl-module saves (artifact.model_bytes), loaded by artifact.load with
    every unpickler out of reach: the same deterministic actions on 1,000 observations as the model in
    memory and as stable-baselines3's own (pickle) load of the same zip, which is how it loaded before."""
    import pickle as pickle_module

    import cloudpickle
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from rl_module import artifact

    cls, env_id, kwargs = _case(kind)
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    observation_space = venv.observation_space
    if kind == "ppo-normalized":
        venv = VecNormalize(venv, norm_reward=False)
    model = cls(env=venv, **kwargs).learn(128 if kind == "ppo-transformer" else 256)  # its steps cost 20 ms each
    stats = artifact.stats_bytes(venv)
    saved = artifact.model_bytes(model, None if stats is None else hashlib.sha256(stats).hexdigest())
    observations = _batch(observation_space, 1000)

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("artifact.load unpickled something")

    with monkeypatch.context() as unpicklers:
        for module in (pickle_module, cloudpickle):
            unpicklers.setattr(module, "loads", refuse)
            unpicklers.setattr(module, "load", refuse)
        loaded = artifact.load(saved, cls.__name__.lower(), device="cpu")
        normalizer = artifact.normalizer(stats) if stats is not None else None
    before = cls.load(io.BytesIO(saved), device="cpu")  # stable-baselines3's own load: its data unpickled
    if normalizer is not None:
        assert isinstance(venv, VecNormalize)
        venv.training = False
        raw = observations
        observations = venv.normalize_obs(raw)
        assert np.array_equal(normalizer.normalize_obs(raw), observations)
    actions = {name: m.predict(observations, deterministic=True)[0]
               for name, m in (("in memory", model), ("SB3's load", before), ("artifact.load", loaded))}
    assert actions["artifact.load"].shape == actions["in memory"].shape and len(actions["in memory"]) == 1000
    for name in ("SB3's load", "artifact.load"):
        if actions[name].dtype.kind in "iu":
            assert np.array_equal(actions[name], actions["in memory"]), name
        else:
            assert np.max(np.abs(actions[name] - actions["in memory"])) <= 1e-6, name


def test_a_model_by_path_loads_only_with_the_statistics_it_was_saved_with_and_never_under_trusted_keys(
        world, old_model, tmp_path):
    """--model-path names a file the registry never checked: it still loads only as data, with the
    statistics its description names; an older file is refused with the command that converts it; and with
    trusted keys set, a file by path (which carries no signature) is refused."""
    import shutil

    folder = tmp_path / "copy"
    folder.mkdir()
    copy = folder / "model.zip"
    shutil.copy2(world.model, copy)
    missing = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]", cwd=tmp_path)
    assert missing.returncode == 2 and "normalization statistics" in missing.stderr and "missing" in missing.stderr
    shutil.copy2(stats_of(world.model), folder / "model.stats.npz")
    loaded = command("rl-infer", "--model-path", str(copy), "--obs", "[0, 0, 0, 0]", cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    older = command("rl-infer", "--model-path", str(old_model.path), "--obs", "[0, 0, 0, 0]", cwd=tmp_path)
    assert older.returncode == 2 and f"rl-registry-convert --model-path {old_model.path}" in older.stderr
    key = tmp_path / "key"
    assert command("rl-keygen", str(key)).returncode == 0
    signed_only = command("rl-infer", "--model-path", str(copy), "--trusted-keys", f"{key}.pub.pem", "--obs",
                          "[0, 0, 0, 0]", cwd=tmp_path)
    assert signed_only.returncode == 2 and "carries no signature" in signed_only.stderr


class _Payload:
    """What unpickling would run: it makes a folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return os.mkdir, (str(self.marker),)


def test_a_replay_buffer_is_plain_arrays_and_a_pickled_one_is_never_loaded(tmp_path):
    """An off-policy run keeps its replay buffer beside its model as arrays (np.savez), which --resume reads
    back without pickle into the buffer the resumed model built; one of another shape is refused, naming
    the file, before any learning; an older rl-module's pickle beside the model is never loaded."""
    where = ("--algorithm", "sac", "--env-id", "Pendulum-v1", "--no-registry", "--model-dir", str(tmp_path / "models"),
             "--eval-freq", "0", "--episodes", "1", "--json")
    first = command("rl-train", *where, "--total-timesteps", "300",
                    "--agent-kwargs", '{"learning_starts": 50, "buffer_size": 1000}', cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    model = Path(json.loads(first.stdout)["model_path"])
    run_dir = model.parent
    replay = model.with_name("model.replay.npz")
    with np.load(replay, allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    assert str(arrays["buffer"]) == "ReplayBuffer" and int(arrays["pos"]) == 300 and not arrays["full"]
    assert arrays["observations"].shape == (1000, 1, 3) and np.any(arrays["observations"][299])
    assert not np.any(arrays["observations"][300:])
    assert not list(run_dir.glob("*.pkl"))

    resumed = command("rl-train", *where, "--resume", str(run_dir), "--total-timesteps", "400", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "replay buffer restored: 300 transitions" in resumed.stderr

    with np.load(replay, allow_pickle=False) as saved:  # the buffer beside the resumed run's model
        arrays = {key: saved[key] for key in saved.files}
    assert int(arrays["pos"]) == 400
    np.savez(replay, **{**arrays, "observations": arrays["observations"][:500]})
    refused = command("rl-train", *where, "--resume", str(run_dir), "--total-timesteps", "500", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"cannot resume from {replay}: its replay buffer" in refused.stderr and "observations" in refused.stderr
    assert "remove the file" in refused.stderr

    marker = tmp_path / "unpickled"
    replay.unlink()
    model.with_name("model.replay.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    older = command("rl-train", *where, "--resume", str(run_dir), "--total-timesteps", "500", cwd=tmp_path)
    assert older.returncode == 0, older.stderr
    assert "is a pickle (model.replay.pkl), which rl-module no longer loads" in older.stderr
    assert not marker.exists()
