"""rl-infer: answer observations with a trained model's actions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config
from . import Failure, run


def _infer(config: Config, args: argparse.Namespace) -> int:
    raise Failure("rl-infer is not built yet")


COMMAND = Command(prog="rl-infer", description=__doc__.splitlines()[0], features=ALL_FEATURES, action=_infer)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
