"""rl-eval: evaluate a trained model."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config
from . import Failure, run


def _eval(config: Config, args: argparse.Namespace) -> int:
    raise Failure("rl-eval is not built yet")


COMMAND = Command(prog="rl-eval", description=__doc__.splitlines()[0], features=ALL_FEATURES, action=_eval)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
