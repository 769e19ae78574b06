"""rl-registry-prune: apply registry.keepTopN and registry.maxAge now, and say what was removed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Command, Config, UsageError
from ..registry import existing
from . import run


def _prune(config: Config, args: argparse.Namespace) -> int:
    keep, age = config.registry.keepTopN, config.registry.maxAge
    if keep is None and age is None:
        raise UsageError("nothing to prune by: set registry.keepTopN (--keep-top-n) or registry.maxAge (--max-age)")
    with existing(config) as registry:
        removed = registry.prune(keep, age, dry_run=args.dry_run, model_dir=config.store.modelDir)
    verb = "would remove" if args.dry_run else "removed"
    for model in removed:
        print(f"{verb} model {model.id}: {model.model_path}")
    print(f"{verb} {len(removed)} model{'s' if len(removed) != 1 else ''}"
          f" (keepTopN {keep if keep is not None else '-'}, maxAge {f'{age} days' if age is not None else '-'})")
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


COMMAND = Command(
    prog="rl-registry-prune",
    description=__doc__.split("\n\n")[0],
    features=("registry", "store"),  # store.modelDir: the only folder pruning deletes in
    action=_prune,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
