"""rl-load-best: print the path of the best validated model (exit 1 when there is none)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import Command, Config
from ..registry import RegistryError, existing
from . import run


def _load_best(config: Config, args: argparse.Namespace) -> int:
    with existing(config) as registry:
        best = registry.best_loadable(config.given("env.envId"), config.given("agent.algorithm"))
        if best is None:
            raise RegistryError(registry.nothing_loadable())
    print(best[1].path)
    return 0


COMMAND = Command(
    prog="rl-load-best",
    description=__doc__.split("\n\n")[0],
    features=("registry", "env", "agent", "store"),  # store: where model files are, or are fetched from
    action=_load_best,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
