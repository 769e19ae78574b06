"""rl-keygen: make an EC P-256 key pair for signing models (registry.signingKeyFile) and trusting them
(registry.trustedKeys): PREFIX.pem, owner-only, and PREFIX.pub.pem."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..config import Command, Config, UsageError
from . import run


def _keygen(config: Config, args: argparse.Namespace) -> int:
    from ..artifact import generate_key_pair

    private, public = Path(f"{args.prefix}.pem"), Path(f"{args.prefix}.pub.pem")
    for path in (private, public):
        if path.exists():
            raise UsageError(f"{path} exists: rl-keygen never overwrites a key; choose another PREFIX")
    if not private.parent.is_dir():
        raise UsageError(f"PREFIX: the folder {private.parent} does not exist")
    key_id = generate_key_pair(private, public)
    print(f"private key {private} (owner-only: registry.signingKeyFile of the hosts that train)\n"
          f"public key  {public} (registry.trustedKeys of the hosts that load)\nkey id      {key_id}")
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", metavar="PREFIX", help="where to write PREFIX.pem and PREFIX.pub.pem")


COMMAND = Command(prog="rl-keygen", description=__doc__.split("\n\n")[0], features=(), action=_keygen,
                  add_arguments=_arguments)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
