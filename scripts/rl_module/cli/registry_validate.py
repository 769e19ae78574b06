"""rl-registry-validate: check a registered model against the validation rules."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Command, Config
from . import Failure, run


def _registry_validate(config: Config, args: argparse.Namespace) -> int:
    raise Failure("rl-registry-validate is not built yet")


COMMAND = Command(
    prog="rl-registry-validate", description=__doc__.splitlines()[0], features=("registry",),
    action=_registry_validate,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
