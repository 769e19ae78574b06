"""Every preset states where its values came from, in the form the Presets file documents (a `# source:`
line right above its "<envId>" = {), so what a preset was tuned for, on which seeds and when can be read
by a program; and the file's presets are exactly those the module knows."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from rl_module import spec, sweep

PRESETS = Path(__file__).resolve().parent.parent / "Modules/Computation/Services/RL/Presets/default.nix"


def sources(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(algorithm, envId) -> the fields of its source line: kind, then key -> value."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    algorithm, previous = None, ""
    for line in text.splitlines():
        if match := re.fullmatch(r"  ([a-z0-9]+) = \{", line):
            algorithm = match.group(1)
        elif match := re.fullmatch(r'    "([^"]+)" = \{', line):
            assert algorithm is not None, line
            said = re.fullmatch(r"\s*# source: (.+)", previous)
            assert said, f"preset {algorithm}/{match.group(1)} has no '# source:' line right above it"
            kind, *pairs = [part.strip() for part in said.group(1).split(";")]
            fields = {"kind": kind}
            for pair in pairs:
                key, _, value = pair.partition(" ")
                assert key and value, f"preset {algorithm}/{match.group(1)}: {pair!r} is not '<key> <value>'"
                fields[key] = value
            found[(algorithm, match.group(1))] = fields
        previous = line
    return found


def seeds(text: str) -> set[int]:
    return {int(seed) for seed in text.split(",")}


def test_every_preset_states_a_source_that_parses():
    found = sources(PRESETS.read_text(encoding="utf-8"))
    assert set(found) == set(spec.load().presets)  # every preset the module knows, and no other
    for (algorithm, env_id), fields in found.items():
        kind, where = fields["kind"], f"preset {algorithm}/{env_id}"
        if kind.startswith("rl-zoo "):
            assert kind == f"rl-zoo 2.9.2 hyperparams/{algorithm}.yml", where
        elif kind.startswith("study "):
            assert re.fullmatch(r"study [\w.-]+", kind), where
            assert fields["objective"] in sweep.OBJECTIVES, where
            tuned, held_out = seeds(fields["seeds"]), seeds(fields["held-out"])
            assert tuned and held_out and not tuned & held_out, f"{where}: measured on seeds it was tuned on"
            datetime.date.fromisoformat(fields["date"])
        elif kind == "hand-set":
            datetime.date.fromisoformat(fields["date"])
            assert fields["why"], where
        else:
            pytest.fail(f"{where}: unknown source kind {kind!r}")


def test_the_source_parser_refuses_a_preset_without_one():
    text = '{\n  ppo = {\n    # source: rl-zoo 2.9.2 hyperparams/ppo.yml\n    "A-v0" = {\n    };\n    "B-v0" = {\n'
    with pytest.raises(AssertionError, match="preset ppo/B-v0 has no '# source:' line"):
        sources(text)
    assert sources(text.split('    "B-v0"')[0]) == {("ppo", "A-v0"): {"kind": "rl-zoo 2.9.2 hyperparams/ppo.yml"}}


def test_a_zoo_preset_states_what_stable_baselines3_gives_the_zoo():
    """RL Zoo's hyperparams files leave unset what stable-baselines3's own defaults give (SAC's and TD3's
    batches of 256, A2C's learning rate of 7e-4). rl-train passes its train.* options to every algorithm, so
    a preset taken from the zoo states each one whose default here is not the algorithm's own."""
    from rl_module.agent import own_defaults

    assert own_defaults("sac") == {"train.batchSize": 256}  # the rule finds what it is for
    known = spec.load()
    for (algorithm, env_id), fields in sources(PRESETS.read_text(encoding="utf-8")).items():
        if fields["kind"].startswith("rl-zoo "):
            unstated = set(own_defaults(algorithm)) - set(known.presets[(algorithm, env_id)])
            assert not unstated, (f"preset {algorithm}/{env_id} leaves {sorted(unstated)} at rl-train's defaults; "
                                  f"the zoo's runs take stable-baselines3's {own_defaults(algorithm)}")
