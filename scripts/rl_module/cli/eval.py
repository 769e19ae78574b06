"""rl-eval: evaluate a model (by --model-path, --model-id or --load-best) with its run's env and wrappers.

A registry model gets the results written back and is validated again, unless the registry already holds
an evaluation over more episodes: a weaker evaluation never replaces a stronger one.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..config import ALL_FEATURES, Command, Config, UsageError
from ..infer import model_layer  # the named model's options, for --print-config too
from . import run


def _eval(config: Config, args: argparse.Namespace) -> int:
    from .. import eval, infer, logs
    from ..registry import open_registry, rules_for
    from .registry_validate import report

    logs.setup(config)
    if not args.load_best and config.infer.modelPath is None and config.infer.modelId is None:
        raise UsageError("name a model: --model-path PATH, --model-id ID or --load-best")
    located = infer.locate(config, load_best=args.load_best)
    config = located.config
    result = eval.evaluate_file(config, located.files, Path(args.video) if args.video else None)
    output: dict[str, object] = {"model_path": str(located.path), **result.as_dict()}
    text = (f"rl-eval: {config.agent.algorithm} on {config.env.envId}: {located.path}\n"
            f"  reward       {result.mean_reward:.2f} ± {result.std_reward:.2f} over {result.episodes} episodes"
            f" ({'deterministic' if result.deterministic else 'stochastic'})\n"
            f"  episode len  {result.mean_episode_length:.1f}")
    if args.video:
        videos = sorted(Path(args.video).glob("*.mp4"))
        output["videos"] = [str(v) for v in videos]
        text += f"\n  videos       {len(videos)} in {args.video}"
    if located.model is not None:
        recorded = located.model.eval_episodes or 0
        weaker = located.model.mean_reward is not None and result.episodes < recorded
        with open_registry(config) as registry:
            if not weaker:
                registry.set_evaluation(located.model.id, result.as_registry())
            validation = registry.validate(located.model.id, rules_for(config, located.model.env_id))
        output["written_back"] = not weaker
        output["validation"] = validation.as_dict()
        if weaker:
            text += (f"\n  registry     keeps its {recorded}-episode evaluation of model {located.model.id} "
                     f"(this one has {result.episodes}; --episodes {recorded} or more replaces it)")
        text += "\n" + report(validation, str(located.path))
    print(json.dumps(output) if args.json else text)
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load-best", action="store_true", help="the registry's best validated model")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--video", metavar="DIR", help="record every evaluation episode as MP4 in DIR")


COMMAND = Command(prog="rl-eval", description=__doc__.split("\n\n")[0], features=ALL_FEATURES, action=_eval,
                  add_arguments=_arguments, layer=model_layer,
                  uses=("env", "obs", "feature", "agent", "eval", "store", "registry", "logs", "infer.modelId",
                        "infer.modelPath"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
