"""rl-registry-validate: check a registered model against the validation rules (exit 0 valid, 1 not)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..config import Command, Config, UsageError
from ..registry import Validation, existing, rules_for
from . import EXIT_FAILED, EXIT_OK, run


def _validate(config: Config, args: argparse.Namespace) -> int:
    with existing(config) as registry:
        model = registry.get(args.model_id)
        if model is None:  # a usage error, as rl-infer --model-id says it: exit 2, not "not valid"
            raise UsageError(f"no model with id {args.model_id} in the registry {registry.where}")
        validation = registry.validate(model.id, rules_for(config, model.env_id))
    print(json.dumps(validation.as_dict(), indent=2) if args.json else report(validation, model.model_path))
    return EXIT_OK if validation.valid else EXIT_FAILED


def report(validation: Validation, path: str) -> str:
    rules = validation.rules
    threshold = "none" if rules.min_reward is None else f"{rules.min_reward:g}"
    lines = [f"model {validation.model_id}: {path}",
             f"reward threshold {threshold}, from {rules.min_reward_source}"]
    width = max(len(c.rule) for c in validation.checks)
    lines += [f"  {'✓' if c.passed else '✗'} {c.rule.ljust(width)}  {c.detail}" for c in validation.checks]
    lines.append("valid" if validation.valid else f"not valid: {', '.join(validation.failing())}")
    return "\n".join(lines)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", type=int, help="registry id of the model")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")


COMMAND = Command(
    prog="rl-registry-validate",
    description=__doc__.split("\n\n")[0],
    features=("registry", "store"),  # store: where model files are, or are fetched from
    action=_validate,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
