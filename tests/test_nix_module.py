"""The Nix side: every .nix file parses; with real checkouts of nixpkgs lib and flake-parts (paths in
NIXPKGS_LIB_CHECKOUT and FLAKE_PARTS_CHECKOUT, never committed), the NixOS and home-manager modules
evaluate with typed settings, refuse a wrong type naming the option, render exactly the environment the
Python side parses back into the same configuration, and the flake evaluates through flake-parts."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from rl_module import spec
from rl_module.cli.train import COMMAND as TRAIN

SETTINGS = {
    "enable": True,
    "env": {"envId": "LunarLander-v3", "nEnvs": 8, "kwargs": {"continuous": True}},
    "agent": {"algorithm": "sac", "netArch": [256, 256]},
    "train": {"learningRate": "lin_7.3e-4", "gamma": 0.98, "stopOnReward": True},
    "registry": {"minReward": 200, "keepTopN": 5},
    "metrics": {"enable": True, "endpoint": "http://collector:4317", "protocol": "http"},
    "logs": {"level": "warn"},
}


def test_every_nix_file_parses(nix):
    files = subprocess.run(["git", "ls-files", "*.nix"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(files) > 30
    for file in files:
        result = subprocess.run(["nix-instantiate", "--parse", file], cwd=ROOT, capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, f"{file}: {result.stderr}"


def test_the_lock_pins_every_input_of_the_flake(nix):
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and set(lock["nodes"]["root"]["inputs"]) == {"nixpkgs", "flake-parts"}
    for name in ("nixpkgs", "flake-parts"):
        locked = lock["nodes"][name]["locked"]
        assert len(locked["rev"]) == 40 and locked["narHash"].startswith("sha256-") and locked["type"] == "github"
    assert lock["nodes"]["flake-parts"]["inputs"]["nixpkgs-lib"] == ["nixpkgs"]


CHECKOUTS = {"NIXPKGS_LIB_CHECKOUT": "nix-community/nixpkgs.lib", "FLAKE_PARTS_CHECKOUT": "hercules-ci/flake-parts"}
LOCK_NODES = {"NIXPKGS_LIB_CHECKOUT": "nixpkgs", "FLAKE_PARTS_CHECKOUT": "flake-parts"}


def checkout(variable: str) -> Path:
    """The checkout the variable names; else the revision flake.lock pins, fetched by Nix (with the
    network); else the tests skip, saying why."""
    path = os.environ.get(variable) or _fetched(variable)
    if path is None:
        pytest.skip(f"{variable} is not set and Nix could not fetch the revision flake.lock pins (offline?): it "
                    f"names a checkout of {CHECKOUTS[variable]}; docs/nix.md says how to run these tests")
    return Path(path)


@functools.cache
def _fetched(variable: str) -> str | None:
    """The path of the revision flake.lock pins, fetched once per session (None offline)."""
    locked = json.loads((ROOT / "flake.lock").read_text())["nodes"][LOCK_NODES[variable]]["locked"]
    tree = "builtins.fetchTree { " + " ".join(f'{key} = "{locked[key]}";' for key in (
        "type", "owner", "repo", "rev", "narHash")) + " }"
    try:
        fetched = subprocess.run(["nix-instantiate", "--extra-experimental-features", "flakes", "--eval", "--json",
                                  "--expr", f"({tree}).outPath"], capture_output=True, text=True, timeout=120,
                                 check=False)
    except (OSError, subprocess.TimeoutExpired):
        fetched = None
    return str(json.loads(fetched.stdout)) if fetched is not None and fetched.returncode == 0 else None


def evaluate(nix, target: str, settings: dict[str, Any]) -> dict[str, Any]:
    return nix(str(ROOT / "tests/nix/eval-module.nix"), "--arg", "nixpkgsLib", str(checkout("NIXPKGS_LIB_CHECKOUT")),
               "--argstr", "target", target, "--argstr", "settings", json.dumps(settings))


@pytest.mark.parametrize("target", ["nixos", "homeManager"])
def test_the_module_renders_what_python_parses_into_the_same_configuration(nix, target):
    evaluated = evaluate(nix, target, SETTINGS)
    assert evaluated["enabled"] is True
    assert {"enable", "environment", "package", "env", "agent", "train", "registry", "metrics", "logs"} <= set(
        evaluated["options"])
    assert evaluated["nEnvsType"] == "positive integer, meaning >0"
    environment = evaluated["environment"]
    # Only what the settings set is rendered: the rest keeps its default (or its training preset).
    expected_paths = {f"{feature}.{name}" for feature, options in SETTINGS.items() if isinstance(options, dict)
                      for name in options}
    by_env = {o.env: o.path for o in spec.load().options()}
    assert {by_env[name] for name in environment} == expected_paths
    plain = dataclasses.replace(TRAIN, layer=None)
    config, _ = plain.configure([], environment)
    for path in expected_paths:
        feature, name = path.split(".")
        assert config[path] == spec.coerce(SETTINGS[feature][name], spec.load().option(path).type), path
        assert config.source(path) == f"env {spec.load().option(path).env}"
    if target == "homeManager":
        assert evaluated["sessionVariables"] == environment


def test_serving_is_a_hardened_systemd_service_when_asked_for(nix):
    assert evaluate(nix, "nixos", {"enable": True})["service"] is None
    service = evaluate(nix, "nixos", {"enable": True, "infer": {"serve": True, "port": 8080}})["service"]
    assert service["wantedBy"] == ["multi-user.target"] and service["DynamicUser"] is True
    assert service["StateDirectory"] == "rl" and service["ProtectSystem"] == "strict"
    assert {"ExecStart", "NoNewPrivileges", "PrivateTmp", "RestrictAddressFamilies"} <= set(service["keys"])


@pytest.mark.parametrize("option,value,expected", [
    ("env.nEnvs", "eight", "positive integer"),
    ("logs.level", "loud", 'one of "debug", "info", "warn", "error"'),
    ("traces.sampleRate", 1.5, "between"),
    ("train.learningRate", "fast", "string matching the pattern"),
])
def test_a_wrong_type_is_rejected_by_the_module_system_naming_the_option(nix, option, value, expected):
    feature, name = option.split(".")
    with pytest.raises(RuntimeError) as refused:
        evaluate(nix, "nixos", {"enable": True, feature: {name: value}})
    message = str(refused.value)
    assert f"rl.{option}" in message and expected in message


def test_the_flake_evaluates_through_flake_parts(nix):
    overrides = ["--override-input", "nixpkgs", f"path:{checkout('NIXPKGS_LIB_CHECKOUT')}",
                 "--override-input", "flake-parts", f"path:{checkout('FLAKE_PARTS_CHECKOUT')}"]

    def flake_eval(attribute: str, apply: str) -> Any:
        result = subprocess.run(
            ["nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json",
             f"{ROOT}#{attribute}", "--apply", apply, "--no-write-lock-file", *overrides],
            capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert flake_eval("packages.x86_64-linux", "builtins.attrNames") == sorted(
        ["default", "introspect-options", "rl-eval", "rl-infer", "rl-keygen", "rl-load-best", "rl-registry-list",
         "rl-registry-convert", "rl-registry-copy", "rl-registry-prune", "rl-registry-rules", "rl-registry-validate",
         "rl-sweep", "rl-train"])
    assert flake_eval("apps.aarch64-darwin.rl-train", "app: app.type") == "app"
    assert flake_eval("nixosModules", "builtins.attrNames") == ["rl"]
    assert flake_eval("homeManagerModules", "builtins.attrNames") == ["rl"]
    assert flake_eval("flakeModules", "builtins.attrNames") == ["rl"]
    assert {"read", "envVars", "spec", "introspect"} <= set(flake_eval("lib", "builtins.attrNames"))


def rl_module_package(nix, serving: bool) -> dict[str, Any]:
    """Drv/rl-module/default.nix called with every formal argument it declares (builtins.functionArgs) standing
    in as its own name, so that its dependencies read as the nixpkgs names it lists; an argument added to the
    file needs no change here."""
    expression = (f"let lib = import {checkout('NIXPKGS_LIB_CHECKOUT')}/lib; "
                  f"package = import {ROOT}/Drv/rl-module/default.nix; "
                  "in package (builtins.mapAttrs (name: _: name) (builtins.functionArgs package) // { "
                  f"inherit lib; serving = {str(serving).lower()}; "
                  "buildPythonPackage = attrs: { inherit (attrs) pname dependencies doCheck; }; })")
    return nix("--expr", expression)


def nixpkgs_name(requirement: str) -> str:
    """The nixpkgs Python package a PyPI requirement names: the project name without extras or version,
    normalized as PyPI normalizes it (lowercase, each run of - _ . one -), which is how nixpkgs names its
    python-modules: "psycopg[binary]>=3.2" -> psycopg, "gymnasium[box2d]==1.4.0" -> gymnasium,
    "pyopenssl>=24" -> pyopenssl."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group()).lower()


# The extras the NixOS module's units import: rl-sweep (sweep), signing under registry.signingKeyFile and
# verifying under registry.trustedKeys (signing), a PostgreSQL registry.dbPath (postgres), models kept in and
# fetched from S3 or MLflow (s3, mlflow), infer.runtime onnx and exporting for it (onnx).
UNIT_EXTRAS = ("sweep", "signing", "postgres", "s3", "mlflow", "onnx")
# Those `rl-infer --serve --runtime onnx` imports with registry.trustedKeys, a PostgreSQL registry and models
# fetched from S3 or MLflow (whose tracking client alone, mlflow-skinny, downloads them).
SERVING_EXTRAS = ("signing", "postgres", "s3", "mlflow", "onnx")
SERVED_AS = {"mlflow": "mlflow-skinny"}
# The server runs the policy on onnxruntime: it trains, plots and exports nothing, so it never imports torch,
# stable-baselines3, matplotlib or onnx (which only torch's exporter imports).
NOT_SERVED = {"torch", "stable-baselines3", "matplotlib", "onnx"}


def needed_by(extras: tuple[str, ...]) -> set[str]:
    """The nixpkgs names of pyproject.toml's runtime dependencies and of those extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [requirement for extra in extras
                                              for requirement in project["optional-dependencies"][extra]]
    return {nixpkgs_name(requirement) for requirement in requirements}


def test_the_nix_packages_depend_on_what_pyproject_and_the_nixos_units_import(nix):
    """rl-module lists every runtime dependency of pyproject.toml and of the extras the units use (rl-sweep,
    signing, a PostgreSQL registry, ONNX); rl-module-serve lists those a server on onnxruntime imports when it
    verifies signatures under trustedKeys and reads a PostgreSQL registry, and none it never imports."""
    needed = needed_by(UNIT_EXTRAS)
    served = {SERVED_AS.get(name, name) for name in needed_by(SERVING_EXTRAS)} - NOT_SERVED
    assert {"optuna", "optuna-dashboard", "model-signing", "pyopenssl", "psycopg", "onnxruntime"} <= needed
    assert {"model-signing", "pyopenssl", "psycopg", "boto3", "mlflow-skinny", "onnxruntime", "uvicorn"} <= served
    full, serve = (rl_module_package(nix, serving) for serving in (False, True))
    assert (full["pname"], serve["pname"]) == ("rl-module", "rl-module-serve")
    assert needed - set(full["dependencies"]) == set(), "rl-module lacks these"
    assert served - set(serve["dependencies"]) == set(), "rl-module-serve lacks these"
    assert NOT_SERVED & set(serve["dependencies"]) == set(), "rl-module-serve needs none of these"


SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize("option,value", [
    ("registry.dbPath", f"postgresql://rl:{SECRET}@db.internal:5432/rl"),
    ("store.trackingUri", f"https://user:{SECRET}@mlflow.internal"),
    ("traces.endpoint", f"https://otel.internal/v1/traces?token={SECRET}"),
    ("metrics.endpoint", f"https://otel.internal/v1/metrics?api_key={SECRET}"),
])
def test_an_option_that_may_carry_a_credential_is_refused_with_one(nix, option, value):
    feature, name = option.split(".")
    with pytest.raises(RuntimeError) as refused:
        evaluate(nix, "nixos", {"enable": True, feature: {name: value}})
    message = str(refused.value)
    assert f"rl.{option} carries a credential" in message and "rl.environmentFile" in message
    assert SECRET not in message


def test_secrets_come_from_an_environment_file_never_from_the_store(nix):
    """The same option, without its credential, renders; the credential lives in the environment file,
    whose path (never its content) reaches the unit and every wrapper."""
    assert spec.load().option("registry.dbPath").secret and not spec.load().option("env.envId").secret
    settings = {"enable": True, "environmentFile": "/run/secrets/rl.env",
                "registry": {"dbPath": "postgresql://rl@db.internal:5432/rl"}, "infer": {"serve": True}}
    evaluated = evaluate(nix, "nixos", settings)
    assert evaluated["environment"]["RL_REGISTRY_DB"] == "postgresql://rl@db.internal:5432/rl"
    assert evaluated["service"]["EnvironmentFile"] == "/run/secrets/rl.env"
    with pytest.raises(RuntimeError, match="not of type `null or absolute path not in the Nix store"):
        evaluate(nix, "nixos", {**settings, "environmentFile": "relative/rl.env"})
    wrappers = nix(str(ROOT / "tests/nix/wrappers.nix"), "--arg", "nixpkgsLib", str(checkout("NIXPKGS_LIB_CHECKOUT")),
                   "--argstr", "environment", json.dumps(evaluated["environment"]), "--arg", "environmentFile",
                   "/run/secrets/rl.env")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(wrappers) == len(scripts)  # every console script is wrapped
    assert all("/run/secrets/rl.env" in text and SECRET not in text for text in wrappers)
    assert all("--set-default RL_REGISTRY_DB" in text for text in wrappers)


def test_a_wrapper_reads_the_environment_file_and_the_users_environment_wins(nix, tmp_path):
    """The loader a wrapper runs, run by a real bash on a real file."""
    secrets_file = tmp_path / "rl.env"
    secrets_file.write_text(f"# credentials\nPGPASSWORD={SECRET}\nRL_REGISTRY_DB=postgresql://rl:{SECRET}@db/rl\n\n"
                            "RL_ENV_ENV_ID=Acrobot-v1\n")
    (wrapper,) = nix(str(ROOT / "tests/nix/wrappers.nix"), "--arg", "nixpkgsLib",
                     str(checkout("NIXPKGS_LIB_CHECKOUT")), "--argstr", "environment", "{}", "--arg",
                     "environmentFile", str(secrets_file))[:1]
    loader = wrapper.split("--run ", 1)[1].strip()
    script = f"eval {loader}\necho \"$PGPASSWORD|$RL_REGISTRY_DB|$RL_ENV_ENV_ID\""
    shown = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                           env={"RL_ENV_ENV_ID": "CartPole-v1", "PATH": os.environ["PATH"]}).stdout.strip()
    assert shown == f"{SECRET}|postgresql://rl:{SECRET}@db/rl|CartPole-v1"


def environment_file_loader(nix, secrets_file: Path) -> str:
    """The loader as a wrapper holds it (unquoted from its --run argument): code for a real bash."""
    (wrapper,) = nix(str(ROOT / "tests/nix/wrappers.nix"), "--arg", "nixpkgsLib",
                     str(checkout("NIXPKGS_LIB_CHECKOUT")), "--argstr", "environment", "{}", "--arg",
                     "environmentFile", str(secrets_file))[:1]
    return wrapper.split("--run ", 1)[1].strip()


# Each line as systemd's EnvironmentFile= reads it: the variable and its value (None: the line sets nothing).
ENVIRONMENT_FILE_LINES = [
    ("A=plain", "A", "plain"),
    ("B = spaced  ", "B", "spaced"),
    ("  C=  leading and inner  blanks  ", "C", "leading and inner  blanks"),
    ("export D=exported", "D", "exported"),
    ('E="quoted value"', "E", "quoted value"),
    ("F='single $HOME `x` \\n'", "F", "single $HOME `x` \\n"),
    ('G="esc \\" \\\\ \\$HOME \\` \\n"', "G", 'esc " \\ $HOME ` \\n'),
    ("H=back\\slash\\ kept\\ ", "H", "backslash kept "),
    ("I=$(touch pwned) `touch pwned` $HOME", "I", "$(touch pwned) `touch pwned` $HOME"),
    ("J=a=b;c#d", "J", "a=b;c#d"),
    ("K=", "K", ""),
    ("PATH[$(touch pwned)0]=1", None, None),
    ("1ABC=x", None, None),
    ("L M=x", None, None),
    ("; a comment", None, None),
    ("# a comment", None, None),
    ("   # an indented comment", None, None),
    ("no equals sign", None, None),
]


@pytest.mark.parametrize("line,name,value", ENVIRONMENT_FILE_LINES, ids=[line for line, _, _ in ENVIRONMENT_FILE_LINES])
def test_the_environment_file_loader_reads_each_line_as_systemd_does(nix, tmp_path, line, name, value):
    """One line in the file, the loader run by a real bash (with -e, as a wrapper runs it): the variable it
    sets, with systemd's value; nothing it reads is run ($(...), backquotes, array subscripts in names); a
    line systemd skips is skipped with a warning that names the line, never its content."""
    secrets_file = tmp_path / "rl.env"
    secrets_file.write_text(f"{line}\nAFTER=still read\n")
    script = f"eval {environment_file_loader(nix, secrets_file)}\nenv -0"
    done = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": os.environ["PATH"]}, check=False)
    assert done.returncode == 0, done.stderr
    seen = dict(entry.split("=", 1) for entry in done.stdout.split("\0") if "=" in entry)
    assert seen["AFTER"] == "still read"
    assert not (tmp_path / "pwned").exists()
    if name is not None:
        assert seen[name] == value
        assert done.stderr == ""
    else:
        assert set(seen) - {"PATH", "PWD", "SHLVL", "_", "OLDPWD"} == {"AFTER"}, seen
        assert seen["PATH"] == os.environ["PATH"]
        if not line.lstrip().startswith(("#", ";")):
            assert "rl.env, line 1:" in done.stderr and line not in done.stderr, done.stderr


def test_the_environment_file_loader_stops_at_a_value_that_goes_on_past_its_line(nix, tmp_path):
    """A quoted value left open (systemd reads on into the next line): outside the subset, so the command
    stops with exit 2 naming the line, rather than run with a value other than the service's."""
    secrets_file = tmp_path / "rl.env"
    secrets_file.write_text('A=1\nPGPASSWORD="s3cret\nmore"\n')
    done = subprocess.run(["bash", "-e", "-c", f"eval {environment_file_loader(nix, secrets_file)}\necho ran"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=False)
    assert done.returncode == 2 and "ran" not in done.stdout
    assert "rl.env, line 2: the value of PGPASSWORD goes on past its line" in done.stderr
    assert "s3cret" not in done.stderr


def test_a_later_line_wins_and_the_environment_wins_over_the_file(nix, tmp_path):
    secrets_file = tmp_path / "rl.env"
    secrets_file.write_text("A=first\nA=second\nB=from the file\n")
    script = f"eval {environment_file_loader(nix, secrets_file)}\necho \"$A|$B\""
    done = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, check=True,
                          env={"B": "from the environment", "PATH": os.environ["PATH"]})
    assert done.stdout.strip() == "second|from the environment"


def units(nix, settings: dict[str, Any], target: str = "nixos") -> dict[str, Any]:
    evaluated = nix(str(ROOT / "tests/nix/eval-module.nix"), "--arg", "nixpkgsLib",
                    str(checkout("NIXPKGS_LIB_CHECKOUT")), "--argstr", "target", target, "--argstr", "settings",
                    json.dumps(settings), "--arg", "withPackage", "true")
    return evaluated


FLEET = {"enable": True, "environmentFile": "/run/secrets/rl.env",
         "registry": {"dbPath": "postgresql://rl@db.internal:5432/rl"}, "store": {"backend": "s3",
         "trackingUri": "s3://team-models/runs"}, "env": {"envId": "LunarLander-v3"},
         "sweep": {"studyName": "ppo-lunar", "trials": 200, "workers": 3}}
HARDENING = {"DynamicUser": True, "User": "rl", "StateDirectory": "rl", "WorkingDirectory": "/var/lib/rl",
             "NoNewPrivileges": True, "ProtectSystem": "strict", "ProtectHome": True, "PrivateTmp": True,
             "EnvironmentFile": "/run/secrets/rl.env"}


def test_a_worker_host_runs_one_hardened_sweep_unit_per_worker(nix):
    host = units(nix, {**FLEET, "services": {"sweep": {"enable": True}}, "train": {"device": "cuda"}})
    sweeps = {name: unit for name, unit in host["units"].items() if name.startswith("rl-sweep@")}
    assert sorted(sweeps) == ["rl-sweep@1", "rl-sweep@2", "rl-sweep@3"] and "rl-infer" not in host["units"]
    for unit in sweeps.values():
        config = unit["serviceConfig"]
        assert config["ExecStart"] == "/nix/store/00000000000000000000000000000000-rl-commands/bin/rl-sweep " \
                                      "--sweep-workers 1"
        assert HARDENING.items() <= config.items() and config["Restart"] == "on-failure"
        assert config["KillSignal"] == "SIGTERM" and config["TimeoutStopSec"] >= 60
        assert config["SuccessExitStatus"] == [130, 143]  # a graceful stop is not a failure
        assert config["PrivateDevices"] is False and "char-nvidia-uvm rw" in config["DeviceAllow"]  # cuda
        assert unit["wantedBy"] == ["multi-user.target"] and "network-online.target" in unit["after"]
    # What the units run with: the rendered configuration, credentials only through the file.
    assert host["environment"]["RL_SWEEP_STUDY_NAME"] == "ppo-lunar" and host["environment"]["RL_SWEEP_WORKERS"] == "3"
    assert host["environment"]["RL_REGISTRY_DB"] == "postgresql://rl@db.internal:5432/rl"
    assert host["postgresql"] == {}


def test_sweep_workers_sign_with_a_key_outside_the_store_and_servers_never_hold_it(nix):
    keys = {"signingKeyFile": "/run/keys/rl-signing.pem",
            "trustedKeys": ["/etc/rl/gpu-1.pub.pem", "/etc/rl/gpu-2.pub.pem"]}
    host = units(nix, {**FLEET, "registry": {**FLEET["registry"], **keys}, "infer": {"serve": True},
                       "services": {"sweep": {"enable": True}}})
    worker = host["units"]["rl-sweep@1"]["serviceConfig"]
    assert worker["LoadCredential"] == ["rl-signing-key:/run/keys/rl-signing.pem"]
    assert worker["Environment"] == ["RL_REGISTRY_SIGNING_KEY_FILE=%d/rl-signing-key"]
    assert "LoadCredential" not in host["units"]["rl-infer"]["serviceConfig"]  # a server signs nothing
    assert host["environment"]["RL_REGISTRY_TRUSTED_KEYS"].split(",") == keys["trustedKeys"]
    with pytest.raises(RuntimeError, match="rl.registry.signingKeyFile: /nix/store/.* is in the Nix store"):
        units(nix, {**FLEET, "registry": {"signingKeyFile": "/nix/store/0000-key.pem"},
                    "services": {"sweep": {"enable": True}}})


def test_a_server_host_and_a_database_host(nix):
    server = units(nix, {**FLEET, "infer": {"serve": True, "port": 8000}})
    unit = server["units"]["rl-infer"]
    assert unit["serviceConfig"]["ExecStart"].endswith("/bin/rl-infer --serve")
    assert HARDENING.items() <= unit["serviceConfig"].items() and unit["serviceConfig"]["PrivateDevices"] is True
    assert not any(name.startswith("rl-sweep@") for name in server["units"])
    database = units(nix, {**FLEET, "registry": {"dbPath": "postgresql:///rl?host=/run/postgresql"},
                           "services": {"postgresql": {"enable": True}, "sweep": {"enable": True}}})
    assert database["postgresql"] == {"enable": True, "ensureDatabases": ["rl"],
                                      "ensureUsers": [{"name": "rl", "ensureDBOwnership": True}]}
    assert all("postgresql.service" in u["after"] for u in database["units"].values())
    # The database host makes its rl.registry rules the registry's, for every host (rl-registry-rules).
    rules = database["units"]["rl-registry-rules"]["serviceConfig"]
    assert rules["ExecStart"].endswith("/bin/rl-registry-rules --set") and rules["Type"] == "oneshot"
    assert HARDENING.items() <= rules.items() and "rl-registry-rules" not in server["units"]
    with pytest.raises(RuntimeError, match="rl.services.sweep.enable' is not of type `boolean'"):
        units(nix, {**FLEET, "services": {"sweep": {"enable": "yes"}}})


def test_a_workstation_lends_its_time_to_a_study_through_user_units(nix):
    home = units(nix, {**FLEET, "services": {"sweep": {"enable": True}}}, target="homeManager")
    assert sorted(home["userUnits"]) == ["rl-sweep@1", "rl-sweep@2", "rl-sweep@3"]
    service = home["userUnits"]["rl-sweep@2"]["Service"]
    assert service["ExecStart"].endswith("/bin/rl-sweep --sweep-workers 1") and service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"] == "/run/secrets/rl.env" and service["SuccessExitStatus"] == "130 143"
    assert home["userUnits"]["rl-sweep@2"]["Install"]["WantedBy"] == ["default.target"]
    assert home["sessionVariables"]["RL_SWEEP_STUDY_NAME"] == "ppo-lunar"
    assert units(nix, FLEET, target="homeManager")["userUnits"] == {}
