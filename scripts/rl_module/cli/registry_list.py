"""rl-registry-list: list the models in the registry."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Command, Config
from . import Failure, run


def _registry_list(config: Config, args: argparse.Namespace) -> int:
    raise Failure("rl-registry-list is not built yet")


COMMAND = Command(
    prog="rl-registry-list", description=__doc__.splitlines()[0], features=("registry",),
    action=_registry_list,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
