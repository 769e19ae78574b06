"""rl-registry-rules: the registry's validation rules, one set per env: list them, or set them for every host.

Every host judges a model by the registry's rules for its env, whatever its own registry.* options say:
the first command that judges a model of an env records the rules it was given, and only this command
changes them afterwards (judging that env's evaluated models again by the new rules).
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Sequence
from dataclasses import replace

from ..config import Command, Config
from ..registry import RULE_OPTIONS, Rules, existing, open_registry, rules_for
from . import run


def _rules(config: Config, args: argparse.Namespace) -> int:
    if args.set:
        return _set(config)
    env_id = config.given("env.envId")
    with existing(config) as registry:
        listed = [entry for entry in registry.all_rules() if env_id is None or entry[0] == env_id]
        where = registry.where
    if args.json:
        print(json.dumps([{"env_id": env, **rules.as_dict(), "set_by": set_by, "timestamp": timestamp}
                          for env, rules, set_by, timestamp in listed], indent=2))
    elif not listed:
        print(f"no validation rules in {where}{f' for {env_id}' if env_id else ''}: the first command that judges "
              "a model of an env records the rules it was given; rl-registry-rules --set --env-id ENV sets them")
    else:
        for env, rules, set_by, _ in listed:
            print(f"{env}: {rules.describe()}\n  reward threshold from {rules.min_reward_source}; set by {set_by}")
    return 0


def _set(config: Config) -> int:
    """The rules the options give for env.envId, over the registry's current ones (an option left unset
    keeps the registry's value), made the registry's; that env's models judged again."""
    env_id = config.env.envId
    proposed = rules_for(config, env_id)
    with open_registry(config) as registry:
        current = next((rules for env, rules, _, _ in registry.all_rules() if env == env_id), None)
        rules = proposed if current is None else _over(current, proposed)
        set_by = f"rl-registry-rules on {socket.gethostname()}"
        changed = registry.set_rules(env_id, rules, set_by)
        where = registry.where
    print(f"rules for {env_id} in {where} (env.envId from {config.source('env.envId')}): {rules.describe()}")
    if changed:
        verdicts = (f"model {m.id} now {'validated' if valid else 'rejected'}" for m, valid in changed)
        print(f"  judged again: {', '.join(verdicts)}")
    else:
        print("  no model of this env changed its verdict")
    return 0


def _over(current: Rules, proposed: Rules) -> Rules:
    """The registry's rules with the options the user gave laid over them."""
    given = {path for path in RULE_OPTIONS if any(g.startswith(path + " ") for g in proposed.given)}
    updated = replace(current, **{RULE_OPTIONS[path]: getattr(proposed, RULE_OPTIONS[path]) for path in given})
    if "registry.minReward" in given:
        updated = replace(updated, min_reward_source=proposed.min_reward_source)
    return updated


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="store_true",
                        help="make the given registry.* rules the registry's for env.envId (--env-id), for every host")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")


COMMAND = Command(
    prog="rl-registry-rules",
    description=__doc__.split("\n\n")[0],
    features=("registry", "env"),
    action=_rules,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
