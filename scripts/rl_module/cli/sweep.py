"""rl-sweep: search hyperparameters on Optuna until the study has sweep.trials trials, on this host's
sweep.workers processes and on any other host running it with the same study and storage.

Every trial is an ordinary run (rl-train's, with the sampled values), recorded in the registry with its
study and trial number. SIGTERM or Ctrl-C stops the trials where they are; running the command again
continues the study. At the end: the trials, the best configuration as Nix and as rl-train flags, and
plots in <store.modelDir>/sweeps/<study>/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import ALL_FEATURES, Command, Config
from . import run


def _sweep(config: Config, args: argparse.Namespace) -> int:
    from .. import logs, registry, sweep

    logs.setup(config)
    sweep.check_names(config)
    if args.report:  # reading a study takes its name and storage alone
        study = sweep.existing_study(config)
        return _finish(config, args, study, None, None)
    # Every check before any work: a bad option exits 2 here. Each trial warns about its own sampled
    # configuration when it runs.
    space = sweep.check(config, forked=True)
    if config.sweep.storage is not None:  # a storage of its own: checked before anything is written
        study = sweep.open_study(config, space)
    if config.registry.enable:
        registry.open_registry(config).close()  # the registry's tables first: the study may share its database
    if config.sweep.storage is None:
        study = sweep.open_study(config, space)
    name, total = study.study_name, config.sweep.trials
    since = len(study.get_trials(deepcopy=False))  # the trials this command's failures are counted from
    seen: list[str] = []
    objective = sweep.objective_of(study)

    def progress() -> None:
        c = sweep.counts(study)
        sweep.warm_plots(c, total, config.sweep.workers)
        best = sweep.best_values(study)
        line = (f"rl-sweep: {name}: {c['finished'] + c['pruned']}/{total} trials ({c['finished']} finished, "
                f"{c['pruned']} pruned, {c['failed']} failed, {c['running']} running)"
                + (f"; best {objective.show(best['value'])} (trial {best['trial']})" if best else ""))
        if not seen or seen[-1] != line:
            seen.append(line)
            print(line, file=sys.stderr, flush=True)

    stopped, failure = sweep.run_workers(config, progress, study, since)
    if failure is None and stopped is None:
        first = sweep.failing_streak(study, since, config.sweep.failureLimit)
        ended = sum(sweep.counts(study)[k] for k in ("finished", "pruned"))
        if first is not None:
            failure = (f"{config.sweep.failureLimit} trials in a row failed (sweep.failureLimit from "
                       f"{config.source('sweep.failureLimit')}), the study stops here; the first, trial "
                       f"{first.number}: {first.user_attrs.get('error')}")
        elif ended < total:  # never done short of the total
            failure = f"the workers ended with {ended} of {total} trials done; run the same command again"
    return _finish(config, args, study, stopped, failure)


def _finish(config: Config, args: argparse.Namespace, study: Any, stopped: str | None, failure: str | None) -> int:
    """The report (printed, and report.json with the plots in the study's folder) and the exit status."""
    from .. import redact, sweep

    name = study.study_name
    folder = Path(config.store.modelDir) / "sweeps" / name
    best = sweep.best_values(study)
    objective = sweep.objective_of(study)
    result: dict[str, Any] = {
        "study": name, "storage": sweep.where(config),
        "objective": {"name": objective.name, "direction": objective.direction, "label": objective.label,
                      "unit": objective.unit},
        "trials": sweep.report(study), "counts": sweep.counts(study),
        "best": best, "stopped_by": stopped, "failure": failure,
        "plots": sweep.plot(study, folder) if best else [],
    }
    if best:
        result["nix"] = sweep.as_nix(study, best["values"], best)
        result["flags"] = sweep.as_flags(study, best["values"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(json.dumps(result, default=str) if args.json else _summary(result, folder))
    if failure:
        print(f"rl-sweep: {redact.text(failure)}", file=sys.stderr)
        return 1
    return 128 + signal.Signals[stopped].value if stopped else 0


def _summary(result: dict[str, Any], folder: Path) -> str:
    from .. import sweep

    objective = sweep.OBJECTIVES[result["objective"]["name"]]
    to_threshold = objective.to_threshold
    lines = [f"rl-sweep: study {result['study']} in {result['storage']}; objective: {objective.label}"
             + (f" ({objective.unit}, {objective.direction}d)" if objective.unit else f" ({objective.direction}d)"),
             f"  trial  state    {objective.unit or 'value':>13}     time  " + ("reached  " if to_threshold else "")
             + "run / model"]
    for t in result["trials"]:
        value = "-" if t["value"] is None else objective.show(t["value"]).removesuffix(" steps").removesuffix(" s")
        duration = "-" if t["duration_s"] is None else f"{t['duration_s']:.0f}s"
        reached = f"{ {True: 'yes', False: 'no'}.get(t.get('reached'), '-'):<9}" if to_threshold else ""
        lines.append(f"  {t['number']:>5}  {t['state']:<8} {value:>13} {duration:>7}  {reached}"
                     f"{t['run_id'] or '-'} / {t['model_id'] if t['model_id'] is not None else '-'}"
                     + (f"  ({t['error']})" if t["error"] else ""))
    if to_threshold:
        ended = [t for t in result["trials"] if t.get("reached") is not None]
        reached_by = [str(t["number"]) for t in ended if t["reached"]]
        lines.append(f"  reached the threshold: {len(reached_by)} of {len(ended)} finished trials"
                     + (f" (trials {', '.join(reached_by)})" if reached_by else "")
                     + "; a trial that did not scores the penalty: its budget x (1 + gap) (sweep.objective)")
    best = result["best"]
    if best is None:
        lines.append("  no trial has finished yet")
    else:
        said = objective.show(best["value"]) + (
            "" if not to_threshold else ", reached" if best.get("reached") else ", the penalty: none reached it")
        lines += [f"  best: trial {best['trial']}, {objective.label} {said}", "",
                  "  as Nix:", *("    " + line for line in result["nix"].splitlines()), "",
                  "  train with it:", "    rl-train " + shlex.join(result["flags"])]
    lines.append(f"  report and plots in {folder}")
    if result["stopped_by"]:
        lines.append(f"  stopped by {result['stopped_by']}: run the same command again to continue the study")
    return "\n".join(lines)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--report", action="store_true", help="report on the study as it is, running no trial")


def _layer(config: Config) -> Config:
    from ..train import apply_preset

    return apply_preset(config)


COMMAND = Command(prog="rl-sweep", description=__doc__.split("\n\n")[0], features=ALL_FEATURES, action=_sweep,
                  add_arguments=_arguments, layer=_layer)


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, argv)
