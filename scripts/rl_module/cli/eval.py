"""rl-eval: evaluate a trained model."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config, UsageError
from . import run


def _eval(config: Config, args: argparse.Namespace) -> int:
    from .. import eval, logs, store

    logs.setup(config)
    model_path = config.infer.modelPath
    if model_path is None:
        raise UsageError("name a model: --model-path PATH (infer.modelPath)")
    # The model's own run says which env, wrappers and algorithm it was trained with; what the user
    # sets explicitly still wins.
    found = store.run_config(model_path)
    if found is not None:
        run_id, values = found
        config = config.with_layer({k: v for k, v in values.items() if k.split(".")[0] in
                                    ("env", "obs", "agent", "feature")}, f"run {run_id}")
    result = eval.evaluate_file(config, model_path)
    if args.json:
        print(json.dumps({"model_path": str(model_path), **result.as_dict()}))
    else:
        print(f"rl-eval: {config.agent.algorithm} on {config.env.envId}: {model_path}\n"
              f"  reward       {result.mean_reward:.2f} ± {result.std_reward:.2f} over {result.episodes} episodes"
              f" ({'deterministic' if result.deterministic else 'stochastic'})\n"
              f"  episode len  {result.mean_episode_length:.1f}")
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


COMMAND = Command(prog="rl-eval", description=__doc__.splitlines()[0], features=ALL_FEATURES, action=_eval,
                  add_arguments=_arguments)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
