"""rl-registry-list: list the models in the registry, best mean reward first."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..config import Command, Config, Failure
from ..registry import Model, existing
from . import run


def _list(config: Config, args: argparse.Namespace) -> int:
    with existing(config) as registry:
        models = registry.models(validated=args.validated, env_id=config.given("env.envId"),
                                 algorithm=config.given("agent.algorithm"), limit=args.top_n)
        where = registry.where
        # Nothing under a filter: name what the registry does hold, a filter's typo being the likely cause.
        held = _held(registry.models(limit=None), config) if not models else ""
    if args.plot is not None:
        from ..plots import plot, read_curve

        curves = [read_curve(run_dir, f"model {m.id}: {m.algorithm} {m.env_id}, {m.mean_reward or 0:.1f}")
                  for m in models if (run_dir := _run_dir(m)) is not None]
        if not curves:
            raise Failure("no learning curves: none of these models has its run directory")
        plot(curves, Path(args.plot))
        print(f"wrote {args.plot}: learning curves of {len(curves)} model{'s' if len(curves) != 1 else ''}",
              file=sys.stderr)
    if args.json:
        print(json.dumps([m.as_dict() for m in models], indent=2))
        if held:
            print(f"rl-registry-list: no models in {where}{held}", file=sys.stderr)
    else:
        print(table(models) if models else f"no models in {where}{held}")
    return 0


def _held(everything: list[Model], config: Config) -> str:
    """For an empty answer to a filter: the env ids (and algorithms) the registry holds, with a did-you-mean."""
    import difflib

    notes = []
    for path, field in (("env.envId", "env_id"), ("agent.algorithm", "algorithm")):
        wanted = config.given(path)
        if wanted is None:
            continue
        held = sorted({str(getattr(m, field)) for m in everything})
        if not held or str(wanted) in held:
            continue
        close = difflib.get_close_matches(str(wanted), held, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        notes.append(f"{path} {wanted!r} (from {config.source(path)}) matches none; it holds "
                     f"{', '.join(held)}{hint}")
    return f": {'; '.join(notes)}" if notes else ""


def _run_dir(model: Model) -> Path | None:
    """The run directory a model file lives in (a checkpoint is one folder deeper)."""
    path = Path(model.model_path).parent
    for candidate in (path, path.parent):
        if (candidate / "progress.csv").exists():
            return candidate
    return None


def _age(timestamp: int) -> str:
    seconds = max(0, int(time.time()) - timestamp)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(models: Sequence[Model]) -> str:
    def reward(m: Model) -> str:
        return "-" if m.mean_reward is None else f"{m.mean_reward:.2f} ± {m.std_reward or 0:.2f}"

    rows = [("id", "ok", "reward", "ep len", "timesteps", "algo", "env", "kind", "age", "signed by", "path")]
    # The signing key's id as the signature names it (verified against registry.trustedKeys when loading).
    rows += [(str(m.id), "✓" if m.validated else "✗", reward(m),
              "-" if m.mean_episode_length is None else f"{m.mean_episode_length:.1f}",
              f"{m.total_timesteps or 0:,}", m.algorithm, m.env_id, m.kind or "-", _age(m.timestamp),
              (m.signed_by or "-")[:12], m.model_path)
             for m in models]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {0, 2, 3, 4}
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))).rstrip() for row in rows)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validated", action="store_true", help="only validated models")
    parser.add_argument("--top-n", type=int, metavar="N", help="only the N best")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")
    parser.add_argument("--plot", metavar="FILE",
                        help="also draw the learning curves of these models side by side (PNG)")


COMMAND = Command(
    prog="rl-registry-list",
    description=__doc__.split("\n\n")[0],
    features=("registry", "env", "agent"),
    action=_list,
    add_arguments=_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
