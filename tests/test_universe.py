"""The Universe is the one source of truth: the spec, the options table and the option tree are
generated from it by the real Nix evaluator, and the committed copies must not drift."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import MODULE_DIR, ROOT, command
from rl_module import spec as spec_module
from rl_module.cli.introspect import render_from_spec

FEATURES = ["Env", "Obs", "Feature", "Agent", "Train", "Sweep", "Eval", "Infer", "Store", "Registry", "Metrics",
            "Traces", "Logs"]


def test_committed_spec_is_what_nix_generates(nix):
    generated = nix("lib/spec.nix")
    committed_text = (ROOT / "scripts/rl_module/spec.json").read_text(encoding="utf-8")
    assert json.loads(committed_text) == generated, "spec.json is stale: run ./dev generate"
    assert committed_text == json.dumps(generated, indent=2, ensure_ascii=False) + "\n"


def test_options_reference_table_is_what_nix_generates(nix):
    table = nix("lib/options-table.nix")
    page = (ROOT / "docs/options.md").read_text(encoding="utf-8")
    section = page.split("<!-- options:begin -->\n")[1].split("\n<!-- options:end -->")[0]
    assert section == table, "the options table in docs/options.md is stale: run ./dev generate"
    assert len(table.splitlines()) == 2 + sum(1 for _ in spec_module.load().options())


def test_universe_lists_thirteen_features_each_with_options_and_bindings(nix):
    listed = nix(f"{MODULE_DIR}/Universe/default.nix")
    assert listed == FEATURES
    for feature in FEATURES:
        options = nix(f"{MODULE_DIR}/Universe/{feature}/Options/default.nix")
        bindings = nix(f"{MODULE_DIR}/Universe/{feature}/Bindings/default.nix")
        assert options, feature
        assert set(bindings) == {"module", "binding", "envPrefix", "env", "envFallbacks", "flags", "aliases"}
        assert bindings["module"] == f"rl_module.{feature.lower()}"
        for name, option in options.items():
            assert {"type", "default", "description"} <= set(option), f"{feature}.{name}"


def test_introspect_options_prints_all_thirteen_features(nix):
    result = command("introspect-options", MODULE_DIR, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    headers = re.findall(r"^🔹 (\w+)$", result.stdout, flags=re.M)
    assert headers == FEATURES
    assert result.stdout.startswith(f"📋 Features in {MODULE_DIR}/Universe/\n")
    assert '    • envId : nonEmptyStr = "CartPole-v1"' in result.stdout
    # The Python rendering (used where Nix is absent) is the same text as the Nix one.
    assert render_from_spec(f"{MODULE_DIR}/Universe/") == result.stdout


def test_introspect_options_refuses_a_directory_without_universe(tmp_path):
    result = command("introspect-options", str(tmp_path))
    assert result.returncode == 2
    assert "has no Universe/default.nix" in result.stderr


def test_nix_refuses_two_options_bound_to_one_env_var(nix, tmp_path):
    universe = tmp_path / "M" / "Universe"
    for feature, env in (("A", "RL_SAME"), ("B", "RL_SAME")):
        (universe / feature / "Options").mkdir(parents=True)
        (universe / feature / "Bindings").mkdir(parents=True)
        (universe / feature / "Options" / "default.nix").write_text(
            '{ x = { type = "int"; default = 1; description = "x"; }; }')
        (universe / feature / "Bindings" / "default.nix").write_text(
            f'{{ module = "m"; binding = "b"; envPrefix = "RL_{feature}_"; env = {{ x = "{env}"; }};'
            ' envFallbacks = { }; flags = { }; aliases = { }; }')
    (universe / "default.nix").write_text('[ "A" "B" ]')
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E",
         f"(import {ROOT}/lib).spec ((import {ROOT}/lib).read {tmp_path / 'M'})"],
        capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "more than one option to the env var RL_SAME" in result.stderr
