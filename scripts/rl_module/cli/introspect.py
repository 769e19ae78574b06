"""introspect-options [DIR]: the feature/option tree of a module's Universe.

The tree is rendered by the real Nix evaluator from introspect-options.nix when both are at hand (a
checkout with Nix installed); otherwise from the spec generated from that same file's Universe, which a
test keeps identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import spec as spec_module
from ..config import Parser, UsageError

DEFAULT_DIR = "Modules/Computation/Services/RL"


def render_from_spec(title: str) -> str:
    lines = [f"📋 Features in {title}"]
    for feature in spec_module.load().features:
        lines += ["", f"🔹 {feature.name}"]
        lines += [f"    • {o.name} : {o.type_text} = {spec_module.to_nix(o.default)}" for o in feature.options]
    return "\n".join(lines) + "\n"


def _introspect_nix(directory: Path) -> Path | None:
    """introspect-options.nix of the checkout that holds `directory`, if any."""
    for parent in [directory.resolve(), *directory.resolve().parents]:
        candidate = parent / "introspect-options.nix"
        if candidate.is_file():
            return candidate
    return None


def render_with_nix(directory: str) -> str | None:
    nix_file = _introspect_nix(Path(directory))
    if nix_file is None or shutil.which("nix-instantiate") is None:
        return None
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(nix_file), "--argstr", "dir", directory],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise UsageError(f"nix could not read {directory}: {result.stderr.strip().splitlines()[-1]}")
    return str(json.loads(result.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="introspect-options", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="module directory (holds Universe/)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as JSON and exit (it reads no option: {})")
    try:
        args = parser.parse_args(argv)
        if args.print_config:
            print("{}")
            return 0
        if not (Path(args.dir) / "Universe" / "default.nix").is_file() and args.dir.rstrip("/") != DEFAULT_DIR:
            raise UsageError(f"{args.dir} has no Universe/default.nix")
        text = render_with_nix(args.dir) if (Path(args.dir) / "Universe").is_dir() else None
    except UsageError as error:
        print(f"introspect-options: error: {error}", file=sys.stderr)
        return 2
    title = args.dir.rstrip("/") + "/Universe/"
    sys.stdout.write(text if text is not None else render_from_spec(title))
    return 0
