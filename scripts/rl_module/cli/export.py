"""rl-export: write a model's ONNX policy (saved inside its model file, infer.export) out as a standalone
.onnx file, for onnxruntime or any other ONNX runtime: the observation as the env gives it in (one input
per key of a Dict observation; images channel-first), the action as the env takes it out, normalization
included. Its metadata (rl_module.inputs, rl_module.observation_space, rl_module.action_space) names
them. The model is named as for rl-infer: --model-path, --model-id, or the registry's best (--load-best)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import Command, Config, UsageError
from ..infer import model_layer
from . import EXIT_OK, run


def _export(config: Config, args: argparse.Namespace) -> int:
    from .. import infer, portable, store

    target = Path(args.output)
    if target.suffix != ".onnx":
        raise UsageError(f"rl-export: the output {args.output} must end in .onnx")
    if not target.parent.is_dir():
        raise UsageError(f"rl-export: the output's folder {target.parent} does not exist")
    located = infer.locate(config, load_best=args.load_best)
    graph = portable.graph_of(located.files.model)
    if graph is None:
        raise portable.NoOnnx(f"rl-export: {located.path} has no ONNX policy (saved with infer.export none, by an "
                              "rl-module before ONNX export, or a policy the export does not cover)")
    store.atomic_write(target, graph)
    print(f"rl-export: {located.config.agent.algorithm} on {located.config.env.envId} ({located.path}) -> {target}",
          file=sys.stderr)
    return EXIT_OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="OUTPUT.onnx", help="the .onnx file to write")
    parser.add_argument("--load-best", action="store_true",
                        help="the registry's best validated model (the default when no model is named)")


COMMAND = Command(prog="rl-export", description=__doc__.split("\n\n")[0], features=("env", "obs", "feature", "agent",
                  "infer", "store", "registry", "logs"), action=_export, add_arguments=_arguments, layer=model_layer,
                  uses=("env", "agent", "infer.modelPath", "infer.modelId", "store", "registry", "logs"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
