"""rl-infer: answer observations with a model's actions — JSON lines in (stdin, or --obs), JSON lines out;
or, with --serve, over HTTP with live hotswap (see rl_module.server).

Each input line is one observation or a batch of them; each output line is the action (or the batch of
actions). A line that is not a valid observation gets {"error": "..."} in its place, so that output
lines stay paired with input lines, and the command exits 2 at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config
from ..infer import model_layer  # the named model's options, for --print-config too
from . import EXIT_OK, EXIT_USAGE, run


def _infer(config: Config, args: argparse.Namespace) -> int:
    from .. import infer, logs

    logs.setup(config)
    follow_best = config.infer.modelPath is None and config.infer.modelId is None
    if config.infer.serve and follow_best:
        # The first model comes through the hotswap path too: a host with no validated model yet waits for
        # one (503 on /readyz), and a best model that fails to load is passed over, not fatal.
        return _serve(config, None, follow_best=True)
    located = infer.locate(config, load_best=args.load_best)
    if config.infer.serve:
        return _serve(config, located, follow_best=False)
    predictor = infer.predictor(located)
    where = f"registry model {located.model.id}" if located.model else "file"
    print(f"rl-infer: {located.config.agent.algorithm} on {located.config.env.envId}, {where} {located.path}",
          file=sys.stderr)
    lines = [args.obs] if args.obs is not None else sys.stdin
    failed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            answer = predictor.predict(json.loads(line))
        except (ValueError, OverflowError, RecursionError) as error:  # malformed JSON, a wrong shape or type
            failed += 1
            reason = str(error) or type(error).__name__
            print(f"rl-infer: line {number}: {reason}", file=sys.stderr)
            print(json.dumps({"error": reason}), flush=True)
            continue
        print(json.dumps(answer), flush=True)
    return EXIT_USAGE if failed else EXIT_OK


def _serve(config: Config, located: object, follow_best: bool) -> int:
    import os

    from .. import server, telemetry

    with telemetry.session(config, f"serve-{os.getpid()}", None) as signals:
        server.serve(config, located, follow_best, signals.meter_provider)  # type: ignore[arg-type]
    return EXIT_OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load-best", action="store_true",
                        help="the registry's best validated model (the default when no model is named)")
    parser.add_argument("--obs", metavar="JSON", help="one observation (or a batch) instead of stdin")


COMMAND = Command(prog="rl-infer", description=__doc__.split("\n\n")[0], features=ALL_FEATURES, action=_infer,
                  add_arguments=_arguments, layer=model_layer,
                  uses=("env", "obs", "feature", "agent", "eval.deterministic", "infer", "store", "registry",
                        "metrics", "traces", "logs"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
