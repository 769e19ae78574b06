"""rl-registry-validate: judge a registered model by the registry's validation rules (exit 0 valid, 1 not,
or not readable on this host).

The verdict is the registry's: its rules for the model's env (rl-registry-rules), on the evaluation it
records. Whether this host can read the model's file is said beside it, and never changes it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..config import Command, Config, UsageError
from ..registry import Check, Validation, existing, rules_for
from . import EXIT_FAILED, EXIT_OK, run


def _validate(config: Config, args: argparse.Namespace) -> int:
    with existing(config) as registry:
        model = registry.get(args.model_id)
        if model is None:  # a usage error, as rl-infer --model-id says it: exit 2, not "not valid"
            raise UsageError(f"no model with id {args.model_id} in the registry {registry.where}")
        validation = registry.validate(model.id, rules_for(config, model.env_id))
        file = registry.check_file(model)
    output = {**validation.as_dict(), "file_on_this_host": {"readable": file.passed, "detail": file.detail}}
    print(json.dumps(output, indent=2) if args.json else report(validation, model.model_path, file))
    return EXIT_OK if validation.valid and file.passed else EXIT_FAILED


def report(validation: Validation, path: str, file: Check | None = None) -> str:
    rules = validation.rules
    lines = [f"model {validation.model_id}: {path}",
             f"the registry's rules: {rules.describe()} (reward threshold from {rules.min_reward_source})"]
    checks = [*validation.checks, *([file] if file is not None else [])]
    width = max(len(c.rule) for c in checks)
    lines += [f"  {'✓' if c.passed else '✗'} {c.rule.ljust(width)}  {c.detail}" for c in checks]
    lines.append("valid" if validation.valid else f"not valid: {', '.join(validation.failing())}")
    if file is not None and not file.passed:
        lines.append("this host cannot read its file: the registry's verdict stands for every host; this host "
                     "cannot load the model until it can")
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
