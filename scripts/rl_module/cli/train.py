"""rl-train: train a model on a Gymnasium environment, evaluate it, and record it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config
from . import Failure, run


def _train(config: Config, args: argparse.Namespace) -> int:
    raise Failure("training is not built yet")


COMMAND = Command(prog="rl-train", description=__doc__.splitlines()[0], features=ALL_FEATURES, action=_train)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
