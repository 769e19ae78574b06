"""rl-train: train a model on a Gymnasium environment, evaluate it, and record it.

SIGTERM or Ctrl-C stops it at the next step: the model is saved where it is, recorded, and the summary
printed (exit 143 or 130); `--resume RUN` (a run id, a run directory, or latest) continues the run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..config import ALL_FEATURES, Command, Config
from . import run


def _train(config: Config, args: argparse.Namespace) -> int:
    from .. import logs, train

    logs.setup(config)
    plan = train.prepare(config)  # every check before any work: a bad option exits 2 here
    result = train.train(plan)
    print(json.dumps(result.as_dict()) if args.json else summary(result))
    return result.exit_code


def summary(result: object) -> str:
    """One screen: where the model is and how good and how fast it was."""
    r = result.as_dict()  # type: ignore[attr-defined]
    e = r["evaluation"]
    interrupted = r["status"] == "interrupted"
    head = f"rl-train: {r['algorithm']} on {r['env_id']}, run {r['run_id']}"
    if interrupted:
        head += f", interrupted by {r['signal']} at {r['timesteps']:,} of {r['total_timesteps']:,} steps"
    lines = [head, f"  model        {r['model_path']}"]
    if r["resumed_from"] is not None:
        lines.append(f"  timesteps    {r['timesteps']:,} (resumed at {r['resumed_from']:,})")
    else:
        lines.append(f"  timesteps    {r['timesteps']:,}")
    if e is not None:
        lines += [f"  reward       {e['mean_reward']:.2f} ± {e['std_reward']:.2f} over {e['episodes']} episodes"
                  f" ({'deterministic' if e['deterministic'] else 'stochastic'})",
                  f"  episode len  {e['mean_episode_length']:.1f}"]
    else:
        last = r["evaluations"][-1] if r["evaluations"] else None
        seen = (f"; last periodic evaluation {last['mean_reward']:.2f} at {int(last['timesteps']):,} steps"
                if last else "")
        lines.append(f"  reward       not evaluated (stopped by {r['signal']}){seen}")
    lines += [
        f"  wall time    {r['wall_time']:.1f} s (learning {r['train_time']:.1f} s)",
        f"  fps          {r['fps']:,.0f}",
        f"  seed         {r['seed']}",
    ]
    if r["threshold"] is not None:
        if r["threshold_reached_at"] is not None:
            when = r["threshold_reached_at"] - r["started_at"]
            reached = f"reached at {r['threshold_reached_steps']:,} steps, {when:.1f} s in"
            if r["stopped_early"] and r.get("stop_reason"):  # when and why, which need not be where it was reached
                reached += f"; training stopped at {r['timesteps']:,} steps: {r['stop_reason']}"
        else:
            reached = "not reached"
        lines.append(f"  threshold    {r['threshold']:g}: {reached}")
    if r["store_backend"] != "local":
        if r["store_failure"]:
            missing = len(r["not_uploaded"])
            lines.append(f"  store        {r['store_backend']} failed: {r['store_failure']}; {missing} file"
                         f"{'s' if missing != 1 else ''} not uploaded (all are in the run directory)")
        else:
            lines.append(f"  store        {r['store_backend']}: everything uploaded")
    if r["model_id"] is not None:
        if interrupted:
            verdict = "interrupted (not evaluated)"
        else:
            verdict = "validated" if r["validated"] else f"not validated ({', '.join(r['failing_rules'])})"
        lines.append(f"  registry     model {r['model_id']}, {verdict}")
    if interrupted:
        lines.append(f"  resume       rl-train --resume {r['run_id']}")
    return "\n".join(lines)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the summary")


def _layer(config: Config) -> Config:
    """Presets over the defaults; a resumed run's own configuration over everything that may not change."""
    from ..train import apply_preset, resume_config

    config = apply_preset(config)
    return resume_config(config) if config.train.resume is not None else config


COMMAND = Command(prog="rl-train", description=__doc__.split("\n\n")[0], features=ALL_FEATURES, action=_train,
                  add_arguments=_arguments, layer=_layer,
                  uses=(*(f for f in ALL_FEATURES if f not in ("sweep", "infer")), "infer.export"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
