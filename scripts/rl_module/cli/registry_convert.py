"""rl-registry-convert: rewrite a model saved by an older rl-module (pickled data and statistics) as data.

Loading such a model would unpickle it, which runs whatever it says; every loader refuses it. This
command loads it that way once, on your say-so, for a model you trust (one you trained), and saves it as
every model is saved now: a description, plain-array statistics, signed when registry.signingKeyFile is
set. A registry model is converted where it was trained (its file under store.modelDir), its checksums
and signature recorded again; a file by path (--model-path) is converted in place.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

from ..config import Command, Config, Failure, UsageError
from . import run


def _convert(config: Config, args: argparse.Namespace) -> int:
    from .. import artifact
    from ..registry import existing
    from ..store import atomic_write

    if (args.model_id is None) == (config.infer.modelPath is None):
        raise UsageError("name one model: a registry id, or --model-path PATH")
    if config.infer.modelPath is not None:
        path, algorithm, model = Path(config.infer.modelPath), config.agent.algorithm, None
        if not path.is_file():
            raise config.refuse("infer.modelPath", "is not a file")
    with existing(config) if args.model_id is not None else _no_registry() as registry:
        if registry is not None:
            model = registry.get(args.model_id)
            if model is None:
                raise UsageError(f"no model with id {args.model_id} in the registry {registry.where}")
            path, algorithm = Path(model.model_path), model.algorithm
            files = registry.files
            if files is None or not path.is_file() or not path.resolve().is_relative_to(files.model_dir):
                raise Failure(f"model {model.id}: its file {path} is not under store.modelDir on this host: convert it "
                              "on the host that trained it (or set --model-dir)")
        data = path.read_bytes()
        pickled = artifact.pickled_stats_path(path)
        stats = pickled.read_bytes() if pickled.is_file() else None
        if model is not None:  # only the very bytes that were registered
            if hashlib.sha256(data).hexdigest() != model.sha256:
                raise Failure(f"model {model.id}: {path} does not match its recorded checksum; not converted")
            if stats is not None and hashlib.sha256(stats).hexdigest() != model.stats_sha256:
                raise Failure(f"model {model.id}: {pickled} does not match its recorded checksum; not converted")
        try:
            artifact.read_description(data)
            print(f"{path} is already data (it carries its description): nothing to convert")
            return 0
        except artifact.ArtifactError:
            pass
        converted, new_stats = artifact.convert_trusting(data, stats, algorithm)
        stats_digest = atomic_write(artifact.stats_path(path), new_stats) if new_stats is not None else None
        digest = atomic_write(path, converted)
        signature = None
        if config.registry.signingKeyFile is not None:
            signature = artifact.sign(converted, config.registry.signingKeyFile).text
        if model is not None and registry is not None:
            registry.converted(model.id, digest, stats_digest, signature)
        pickled.unlink(missing_ok=True)
    what = f"model {model.id}" if model is not None else str(path)
    print(f"{what} converted: {path} (sha256 {digest[:12]}…)" + (", signed" if signature else "")
          + (f", statistics {artifact.stats_path(path).name}" if stats_digest else ""))
    return 0


class _no_registry:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", type=int, nargs="?", help="registry id of the model (or --model-path)")


COMMAND = Command(
    prog="rl-registry-convert",
    description=__doc__.split("\n\n")[0],
    features=("registry", "store", "infer", "agent", "feature"),
    action=_convert,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
