"""One option space: every option has one env var and one flag, env and flags agree with each other and
with the Nix renderer, precedence holds, and every bad value is one clear line with exit status 2."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BIN, MODULE_DIR, command, environment
from rl_module import spec as spec_module
from rl_module.cli import run
from rl_module.cli.train import COMMAND as TRAIN
from rl_module.config import ALL_FEATURES, Config, resolve

SPEC = spec_module.load()
OPTIONS = list(SPEC.options())


# rl-train without its training presets: the option space alone.
PLAIN = dataclasses.replace(TRAIN, layer=None)


def configure(argv: list[str], environ: dict[str, str]) -> Config:
    config, _ = PLAIN.configure(argv, environ)
    return config


def test_every_option_has_exactly_one_env_var_and_one_flag_and_back():
    envs = [o.env for o in OPTIONS]
    flags = [o.flag for o in OPTIONS] + [o.neg_flag for o in OPTIONS if o.neg_flag]
    assert len(set(envs)) == len(envs)
    assert len(set(flags)) == len(flags)
    assert all((o.neg_flag is not None) == o.is_bool for o in OPTIONS)
    # Back: from an env var or a flag to its option.
    by_env = {o.env: o.path for o in OPTIONS}
    by_flag = {o.flag: o.path for o in OPTIONS}
    assert sorted(by_env.values()) == sorted(by_flag.values()) == sorted(o.path for o in OPTIONS)


def test_the_seeds_names_are_kept():
    names = {o.path: (o.env, o.flag) for o in OPTIONS}
    assert names["store.trackingUri"] == ("RL_STORE_TRACKING_URI", "--tracking-uri")
    assert names["store.experimentName"] == ("RL_STORE_EXPERIMENT_NAME", "--experiment-name")
    assert names["store.backend"] == ("RL_STORE_BACKEND", "--backend")
    assert names["registry.dbPath"] == ("RL_REGISTRY_DB", "--registry-db")
    assert names["registry.minReward"] == ("RL_REGISTRY_MIN_REWARD", "--min-reward")
    assert names["metrics.enable"] == ("RL_METRICS_ENABLE", "--metrics")
    assert names["metrics.endpoint"][1] == "--metrics-endpoint"
    assert names["traces.sampleRate"] == ("RL_TRACES_SAMPLE_RATE", "--trace-sample-rate")
    assert names["logs.level"] == ("RL_LOGS_LEVEL", "--log-level")
    # OpenTelemetry's own variables, not shadowed.
    assert SPEC.option("metrics.endpoint").env == "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
    assert SPEC.option("metrics.endpoint").env_fallbacks == ("OTEL_EXPORTER_OTLP_ENDPOINT",)


def _examples_rendered_by_nix(nix) -> dict[str, str]:
    expression = f"""
      let rl = import ./lib; universe = rl.read ./{MODULE_DIR};
          config = builtins.listToAttrs (map (f: {{ name = f.key; value = builtins.listToAttrs
            (map (o: {{ name = o.name; value = o.example; }}) f.options); }}) universe.features);
      in rl.envVars universe config"""
    return nix("-E", expression)


def test_nix_rendered_env_and_the_same_values_as_flags_give_the_same_configuration(nix):
    assert all(o.example is not None and o.example != o.default for o in OPTIONS), "every option needs an example"
    environ = _examples_rendered_by_nix(nix)
    assert set(environ) == {o.env for o in OPTIONS}
    from_env = configure([], environ)
    argv: list[str] = []
    for o in OPTIONS:
        if o.is_bool:
            argv.append(o.flag if o.example else o.neg_flag)
        else:
            argv += [o.flag, environ[o.env]]
    from_flags = configure(argv, {})
    assert from_env == from_flags
    # ... and both are exactly the examples written in the Universe.
    for o in OPTIONS:
        assert from_env[o.path] == spec_module.coerce(o.example, o.type), o.path
        assert from_env.source(o.path) == f"env {o.env}"
        assert from_flags.source(o.path).startswith("flag --")


def test_nix_renders_only_what_a_configuration_sets(nix):
    environ = nix("-E", f"let rl = import ./lib; in rl.envVars (rl.read ./{MODULE_DIR}) "
                        "{ train.gamma = 0.95; metrics.enable = false; env.seed = null; }")
    # Left-out options stay unset (so defaults and presets apply); a null is left unset, not spelled out.
    assert environ == {"RL_TRAIN_GAMMA": "0.95", "RL_METRICS_ENABLE": "false"}
    config = configure([], environ)
    assert config.values() == configure(["--gamma", "0.95"], {}).values()


def test_precedence_default_then_environment_then_flag():
    assert configure([], {})["env.nEnvs"] == 1
    config = configure([], {"RL_ENV_N_ENVS": "4"})
    assert (config["env.nEnvs"], config.source("env.nEnvs")) == (4, "env RL_ENV_N_ENVS")
    config = configure(["--n-envs", "8"], {"RL_ENV_N_ENVS": "4"})
    assert (config["env.nEnvs"], config.source("env.nEnvs")) == (8, "flag --n-envs")
    config = configure(["--no-registry"], {"RL_REGISTRY_ENABLE": "yes"})
    assert (config["registry.enable"], config.source("registry.enable")) == (False, "flag --no-registry")


def test_opentelemetry_generic_variables_are_fallbacks():
    config = configure([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4317",
                            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert config["metrics.endpoint"] == "http://collector:4317"
    assert config["traces.endpoint"] == "http://tempo:4317"
    assert config["metrics.protocol"] == "http"


@pytest.mark.parametrize("text,value", [("1", True), ("ON", True), ("yes", True), ("true", True),
                                        ("0", False), ("off", False), ("No", False), ("FALSE", False)])
def test_booleans_in_every_spelling(text, value):
    assert configure([], {"RL_METRICS_ENABLE": text})["metrics.enable"] is value


def test_values_in_the_notations_users_write():
    config = configure(["--total-timesteps", "1e6", "--net-arch", "[256, 256]", "--seed", "null",
                        "--learning-rate", "lin_1e-3", "--algorithm", "PPO"], {"RL_AGENT_NET_ARCH": "32 32"})
    assert config["train.totalTimesteps"] == 1_000_000
    assert config["agent.netArch"] == (256, 256)
    assert config["env.seed"] is None
    assert config["train.learningRate"] == "lin_1e-3"
    assert config["agent.algorithm"] == "ppo"


def bad_texts(type_: Any) -> list[str]:
    """Texts the type must refuse, derived from the type itself."""
    name, argument = spec_module._constructor(type_)
    bad = {
        "str": [], "nonEmptyStr": ["   "], "bool": ["maybe", "2"],
        "int": ["abc", "1.5"], "ints.positive": ["abc", "0", "-3", "1.5"], "ints.unsigned": ["abc", "-1"],
        "port": ["http", "-1", "65536"],
        "number": ["abc", "nan", "inf"], "numbers.positive": ["abc", "0", "-1", "inf"],
        "numbers.between": ["abc", "1.5", "-0.1"], "enum": ["bogus"], "strMatching": ["fast", "1e-3x"],
        "attrs": ["[1]", "{"],
    }
    if name == "nullOr":
        return [t for t in bad_texts(argument) if t]
    if name == "listOf":
        return [f"1,{t}" for t in bad_texts(argument) if t.strip()]
    return ["", *bad[name]]


CASES = [(o, text) for o in OPTIONS for text in bad_texts(o.type)]


@pytest.mark.parametrize("option,text", CASES, ids=[f"{o.path}={t!r}" for o, t in CASES])
def test_a_bad_value_is_one_line_naming_option_source_value_and_allowed(option, text, capsys):
    sources = [("env " + option.env, [], {option.env: text})]
    if not option.is_bool:
        sources.append(("flag " + option.flag, [option.flag, text], {}))
    for source, argv, environ in sources:
        assert run(TRAIN, ["--print-config", *argv], environ) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith("rl-train: error: option ")
        assert option.path in err and source in err and repr(text) in err and option.allowed in err


def test_an_unknown_rl_variable_is_a_warning_with_a_did_you_mean(capsys):
    assert run(TRAIN, ["--print-config"], {"RL_ENV_NENVS": "8"}) == 0
    err = capsys.readouterr().err
    assert "unknown variable RL_ENV_NENVS is ignored; did you mean RL_ENV_N_ENVS?" in err


def test_an_unknown_flag_is_one_line_with_exit_2(capsys):
    assert run(TRAIN, ["--totl-timesteps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unrecognized arguments: --totl-timesteps 5 did you mean --total-timesteps?" in err


def test_print_config_names_the_source_of_every_value():
    result = command("rl-train", "--print-config", "--gamma", "0.95", env={"RL_OBS_NORMALIZE": "both"})
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["train"]["gamma"] == {"value": 0.95, "source": "flag --gamma"}
    assert printed["obs"]["normalize"] == {"value": "both", "source": "env RL_OBS_NORMALIZE"}
    assert printed["env"]["envId"] == {"value": "CartPole-v1", "source": "default"}
    assert {f"{k}.{n}" for k, opts in printed.items() for n in opts} == {o.path for o in OPTIONS}


def test_a_console_scripts_output_reaches_a_pipe_whole_when_it_exits():
    """Console scripts exit without the interpreter's teardown (cli._leave): what they printed is flushed
    first, stdout block-buffered into a pipe included (PYTHONUNBUFFERED, if the caller set it, would hide a
    lost flush)."""
    environ = {k: v for k, v in environment({}).items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run([str(BIN / "rl-train"), "--print-config"], capture_output=True, text=True,
                            env=environ, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert {f"{k}.{n}" for k, opts in printed.items() for n in opts} == {o.path for o in OPTIONS}


def test_help_shows_each_options_env_var_and_default():
    result = command("rl-train", "--help-all")  # the whole option space; --help shows what rl-train reads
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for o in OPTIONS:
        assert o.flag in text
        assert f"[env {o.env}; default {spec_module.to_nix(o.default)}]" in text, o.path


def test_the_real_command_refuses_without_a_traceback():
    result = command("rl-eval", "--episodes", "-1", env={"RL_ENV_N_ENVS": "many"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_a_nul_character_is_refused_naming_the_option_not_a_crash(capsys):
    """Found by the test below: a NUL in a path option (train.resume) reached the filesystem and crashed."""
    assert run(TRAIN, ["--print-config"], {"RL_TRAIN_RESUME": "\x00"}) == 2
    assert "option train.resume from env RL_TRAIN_RESUME: '\\x00' is not allowed" in capsys.readouterr().err
    assert run(TRAIN, ["--print-config", "--model-dir=models\x00"], {}) == 2
    assert "option store.modelDir from flag --model-dir" in capsys.readouterr().err


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(option=st.sampled_from(OPTIONS), text=st.text(max_size=40), via_flag=st.booleans())
def test_random_strings_never_cause_a_traceback(option, text, via_flag, capsys):
    argv, environ = ["--print-config"], {}
    if via_flag and not option.is_bool:
        argv += [f"{option.flag}={text}"]
    else:
        environ[option.env] = text
    code = run(TRAIN, argv, environ)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "unexpected" not in err and "Traceback" not in err
    if code == 2:
        assert option.path in err or "unrecognized" in err


def test_resolve_only_reads_the_features_a_command_uses():
    args = TRAIN.parser(SPEC).parse_args([])
    config = resolve(SPEC, ("registry",), args, {"RL_ENV_N_ENVS": "not read"})
    assert {p.split(".")[0] for p in config.settings} == {"registry"}
    assert len(ALL_FEATURES) == 13


@pytest.mark.parametrize("name,args,env", [
    ("rl-train", ["--registry-db", "postgresq://rl@127.0.0.1:5432/rl"], {}),
    ("rl-registry-list", [], {"RL_REGISTRY_DB": "postgresq://rl@127.0.0.1:5432/rl"}),
    ("rl-registry-copy", ["--registry-db", "r.db", "postgresq://rl@127.0.0.1:5432/rl"], {}),
    ("rl-train", ["--registry-db", "sqlite:///r.db"], {}),
])
def test_a_database_url_with_an_unknown_scheme_is_refused_and_creates_nothing(name, args, env, tmp_path):
    """A typo in a URL's scheme never becomes a SQLite file (`./postgresq:/rl@127.0.0.1:5432/rl`): one line,
    exit 2, naming where the value came from, with a did-you-mean; the folder stays empty."""
    result = command(name, *args, env=env, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    scheme = "sqlite" if "sqlite" in " ".join(args) else "postgresq"
    assert f"has an unknown scheme {scheme}://" in result.stderr, result.stderr
    where = {"rl-train": "option registry.dbPath from flag --registry-db",
             "rl-registry-list": "option registry.dbPath from env RL_REGISTRY_DB",
             "rl-registry-copy": f"{name}: error: TARGET: "}[name]
    assert where in result.stderr, result.stderr
    hint = "(a SQLite registry is named by its file path alone)" if scheme == "sqlite" else "did you mean postgresql://?"
    assert hint in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
