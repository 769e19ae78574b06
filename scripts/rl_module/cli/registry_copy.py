"""rl-registry-copy: copy the registry (registry.dbPath) into another, empty one, every row, evaluation and
id as it is: the way from a SQLite file on one machine to a PostgreSQL registry for many."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Command, Config
from ..databases import check_target
from ..registry import copy_registry, existing, open_target
from . import run


def _copy(config: Config, args: argparse.Namespace) -> int:
    check_target(args.target, "TARGET")  # before the source is opened: a typo never becomes a file
    with existing(config) as source, open_target(args.target) as target:
        models, evaluations = copy_registry(source, target)
        print(f"copied {models} model{'s' if models != 1 else ''} and {evaluations} evaluation"
              f"{'s' if evaluations != 1 else ''} from {source.where} to {target.where}")
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET",
                        help="the registry to fill: a PostgreSQL URL (postgresql://user@host/db) or a SQLite file; "
                             "it must hold no models yet")


COMMAND = Command(
    prog="rl-registry-copy",
    description=__doc__.split("\n\n")[0],
    features=("registry",),
    action=_copy,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
