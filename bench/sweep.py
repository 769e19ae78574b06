"""Hyperparameter sweeps against RL Zoo's own `-optimize`, in the same run: PPO on CartPole-v1, TPE and the
median pruner, the same number of trials, steps per trial and parallel jobs.

    python bench/sweep.py [--trials 10] [--steps 20000] [--workers 2] [--tpm-trials 16] [--tpm-steps 5000]
                          [--seed 0 [1 ...]] [--zoo-venv bench/.zoo-venv] [--workdir DIR]
                          [--skip-zoo | --skip-main] [--skip-tpm] [--same-trials N] [--save FILE]
    python bench/sweep.py --combine FILE [FILE ...]

A quick smoke run: --trials 3 --steps 2048 --tpm-trials 2 --tpm-steps 1024 (about a minute).

1. Three rows, one after another, each a fresh process in a fresh working folder:
   - RL Zoo: `python -m rl_zoo3.train --algo ppo --env CartPole-v1 -n STEPS -optimize --n-trials TRIALS
     --n-jobs WORKERS --sampler tpe --pruner median --n-evaluations EVALUATIONS --eval-episodes EPISODES`
     (5 episodes per evaluation, the zoo's default, and rl-sweep is given the same; its study in a SQLite
     storage of its own, one torch thread: --num-threads 1 and OMP_NUM_THREADS=1). rl_zoo3==2.9.2 runs from
     a virtual environment of its own (--zoo-venv; created on first use: torch==2.13.0, the CPU build,
     first, then rl_zoo3==2.9.2 and pandas, which its report needs), never from the project's.
   - rl-sweep with the zoo's PPO space (--base-space ppo-zoo), and with our default PPO space; the same
     trials, steps, workers and pruner; the study in the folder's ./rl_registry.db.
   Columns: wall time of the command, time from its start until the first trial with a value >= 475
   (Gymnasium's threshold) finished, the best value, finished and pruned trials; read from each study's
   Optuna storage after the run (the trials' own completion times), so nothing polls while it runs.
   Targets: both times <= 0.5 x the zoo's, the best value as good.
   With several seeds (--seed 0 1 2 3 4), the three rows run once per seed, and then each column's
   median over the seeds: ten sampled trials are mostly the luck of their draws (in single runs, the zoo's
   first trial >= 475 came 49-566 s in, or never). Beside it, pooled over the seeds, the trials'
   durations summed per trial that reached 475: what finding one costs, wherever it falls in the order.
   --save writes the rows as JSON; --combine prints the medians over the seeds of several such files.
2. Trials per minute of rl-sweep with 1 and with 2 workers: --tpm-trials trials of --tpm-steps steps,
   --pruner none, our default space. So that both runs train the very same configurations (trials of
   one space differ in cost by 10x and more), the configurations are drawn once from that space (Optuna's
   RandomSampler, --seed) and queued in each study before rl-sweep starts. Target: >= 1.7x with 2 workers.
3. With --same-trials N: the zoo and rl-sweep on the very same N configurations of the zoo's space (drawn
   once, queued in both studies under each tool's parameter names), no pruning: rl-sweep as it trains by
   default, and with --no-fused-optimizer (SB3's optimizer as SB3 builds it, the zoo's): the machinery alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
THRESHOLD = 475.0
ZOO = "rl_zoo3==2.9.2"
TORCH = "torch==2.13.0"
# No ambient RL_/OTEL_ options; one torch (OpenMP) thread per process, as rl-train uses.
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("RL_", "OTEL_"))} | {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


# -- RL Zoo's environment ----------------------------------------------------------------------------

def zoo_python(venv: Path) -> Path:
    """The zoo's interpreter, its venv created and filled on first use (not counted in any time)."""
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m, pandas, Box2D; print(m.version('rl_zoo3'))"
    if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True, text=True
                                          ).stdout.strip() == ZOO.split("==")[1]:
        return python
    print(f"installing {ZOO} into {venv} (once) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    (venv / ".gitignore").write_text("*\n", encoding="utf-8")  # never part of the project
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)  # the CPU build first: a bare torch would pull CUDA's
    subprocess.run([*pip, ZOO, "pandas", "gymnasium[box2d]"], check=True)  # box2d: LunarLander-v3
    return python


# -- one row -----------------------------------------------------------------------------------------

# Imported once, untimed, before each row, so that each starts with its interpreter's libraries in the
# page cache: on this machine a cold `import torch` after the other venv's had read the disk took 8-11 s
# against 3-4 s warm, and whichever tool ran second paid it.
ZOO_IMPORTS = "import rl_zoo3.train, rl_zoo3.exp_manager, optuna, torch._dynamo, stable_baselines3, gymnasium"
OUR_IMPORTS = ("import rl_module.train, rl_module.sweep, stable_baselines3, gymnasium, torch._dynamo, "
               "optuna.storages._rdb.models, alembic.migration, optuna.importance, optuna.visualization.matplotlib")


def warm(python: Path, imports: str) -> None:
    subprocess.run([str(python), "-c", imports], env=ENV, check=True, capture_output=True)


def adopt_orphans() -> None:
    """Become the subreaper of what the commands start (Linux prctl PR_SET_CHILD_SUBREAPER): rl-sweep's
    workers are forked from a server process that outlives rl-sweep by a moment, and reparented to this
    process, not to init, their CPU time is counted in RUSAGE_CHILDREN once they are waited for."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed: CPU times would miss workers")


def launch(argv: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run a command to its end: its start (epoch and local datetime, as Optuna stamps trials), wall
    time, CPU time of it and all its descendants (see adopt_orphans), and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_dt, started = dt.datetime.now(), time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        result = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.perf_counter() - started
    while True:  # the descendants it left behind, reparented here: waited for, so that their CPU time counts
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"start": start_dt, "wall": wall, "cpu": cpu, "stdout": result.stdout}


def study_trials(db: Path, name: str) -> list[Any]:
    """The study's trials, less rl-sweep's surplus asks (closed at once as FAIL, not counted)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return study.get_trials(deepcopy=False)


def summarize(label: str, run: dict[str, Any], trials: list[Any], asked_steps: int,
              trained: list[tuple[int, int]]) -> dict[str, Any]:
    from optuna.trial import TrialState

    surplus = [t for t in trials if t.user_attrs.get("surplus")]
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    complete = [t for t in counted if t.state == TrialState.COMPLETE and t.value is not None]
    good = sorted((t.datetime_complete - run["start"]).total_seconds() for t in complete if t.value >= THRESHOLD)
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in counted
                 if t.datetime_complete and t.datetime_start]
    starts = [t.datetime_start for t in counted if t.datetime_start]
    ends = [t.datetime_complete for t in counted if t.datetime_complete]
    return {
        "label": label, "wall": run["wall"], "cpu": run["cpu"],
        "first_good": good[0] if good else None, "good": len(good),
        "best": max((t.value for t in complete), default=None),
        "finished": len(complete), "pruned": sum(t.state == TrialState.PRUNED for t in counted),
        "failed": sum(t.state == TrialState.FAIL for t in counted), "surplus": len(surplus),
        "trial_s": sum(durations), "durations": durations,
        "first_start": (min(starts) - run["start"]).total_seconds() if starts else None,
        "last_end": (max(ends) - run["start"]).total_seconds() if ends else None,
        "asked_steps": asked_steps, "trained": trained,
        "values": [(t.number, t.state.name.lower(), t.value) for t in counted],
    }


def zoo_row(python: Path, folder: Path, args: argparse.Namespace, pruner: str = "median") -> dict[str, Any]:
    from optuna.trial import TrialState

    db = folder / "zoo.db"
    argv = [str(python), "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-n", str(args.steps),
            "-optimize", "--n-trials", str(args.trials), "--n-jobs", str(args.workers), "--sampler", "tpe",
            "--pruner", pruner, "--n-evaluations", str(args.evaluations), "--storage", f"sqlite:///{db}",
            "--study-name", "zoo", "--seed", str(args.seed), "--eval-episodes", str(args.eval_episodes),
            "-f", str(folder / "logs"), "--num-threads", "1", "--no-optim-plots", "--verbose", "1"]
    if args.zoo_startup_trials is not None:
        argv += ["--n-startup-trials", str(args.zoo_startup_trials)]
    warm(python, ZOO_IMPORTS)
    run = launch(argv, folder, folder / "zoo.log")
    (folder / "zoo.out").write_text(run["stdout"], encoding="utf-8")
    trials = study_trials(db, "zoo")
    # Steps the finished trials trained: SB3 learns whole rollouts of n_steps x n_envs (8, the zoo's
    # CartPole-v1 preset), so a trial trains the asked steps rounded up to a rollout.
    trained = []
    for t in trials:
        if t.state == TrialState.COMPLETE and "n_steps_pow" in t.params:
            rollout = 2 ** t.params["n_steps_pow"] * 8
            trained.append((args.steps, math.ceil(args.steps / rollout) * rollout))
    return summarize(f"RL Zoo {ZOO.split('==')[1]} -optimize (--n-jobs {args.workers})", run, trials, args.steps,
                     trained)


def ours_argv(args: argparse.Namespace, trials: int, workers: int, steps: int, pruner: str, *extra: str) -> list[str]:
    return [str(BIN / "rl-sweep"), "--env-id", "CartPole-v1", "--algorithm", "ppo", "--trials", str(trials),
            "--sweep-workers", str(workers), "--trial-timesteps", str(steps), "--sampler", "tpe", "--pruner", pruner,
            "--seed", str(args.seed), "--episodes", str(args.eval_episodes), "--json", *extra]


def ours_row(label: str, folder: Path, argv: list[str], steps: int) -> dict[str, Any]:
    warm(BIN / "python", OUR_IMPORTS)
    run = launch(argv, folder, folder / "rl-sweep.log")
    (folder / "rl-sweep.json").write_text(run["stdout"], encoding="utf-8")
    trials = study_trials(folder / "rl_registry.db", "rl-sweep")
    trained = []
    for result in sorted(folder.glob("models/*/result.json")):
        r = json.loads(result.read_text(encoding="utf-8"))
        if r.get("status") == "finished":
            trained.append((int(r["total_timesteps"]), int(r["timesteps"])))
    return summarize(label, run, trials, steps, trained)


# -- trials per minute -------------------------------------------------------------------------------

def fixed_configurations(count: int, seed: int, *extra: str) -> list[dict[str, Any]]:
    """`count` configurations of a PPO space (ours, or --base-space ppo-zoo in `extra`), drawn at random
    (seeded), as Optuna params."""
    import optuna

    from rl_module import sweep
    from rl_module.cli.sweep import COMMAND

    config, _ = COMMAND.configure(["--env-id", "CartPole-v1", "--algorithm", "ppo", *extra], {})
    space = sweep.space_of(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    draw = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    configurations = []
    for _ in range(count):
        trial = draw.ask()
        sweep.suggest(trial, space)
        configurations.append(dict(trial.params))
        draw.tell(trial, 0.0)
    return configurations


def queue(folder: Path, configurations: list[dict[str, Any]]) -> None:
    """The study rl-sweep will continue (./rl_registry.db, as it names it), with the configurations
    queued: each worker's first asks take them, in order."""
    import optuna

    from rl_module.registry import Registry

    db = (folder / "rl_registry.db").resolve()
    Registry(str(db)).close()  # the registry's tables first, as rl-sweep makes them: it refuses a foreign file
    study = optuna.create_study(study_name="rl-sweep", storage=f"sqlite:///{db}", direction="maximize")
    for params in configurations:
        study.enqueue_trial(params)


# ppo-zoo's parameters (Spaces/) by the names rl_zoo3 2.9.2's sample_ppo_params gives them; the sampled
# numbers are the same (exponents, 1 - gamma), only the net sizes have names there.
ZOO_NAMES = {"train.batchSize": "batch_size_pow", "agent.kwargs.n_steps": "n_steps_pow",
             "train.gamma": "one_minus_gamma", "agent.kwargs.gae_lambda": "one_minus_gae_lambda",
             "train.learningRate": "learning_rate", "agent.kwargs.ent_coef": "ent_coef",
             "agent.kwargs.clip_range": "clip_range", "agent.kwargs.n_epochs": "n_epochs",
             "agent.kwargs.max_grad_norm": "max_grad_norm", "agent.netArch": "net_arch",
             "agent.activation": "activation_fn"}
ZOO_NETS = {"[64]": "tiny", "[64, 64]": "small", "[256, 256]": "medium"}
ZOO_ATTEMPTS = 3


def same_rows(python: Path, base: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The zoo and rl-sweep on the very same configurations of the zoo's space, queued in both studies,
    no pruning: what the machinery costs, the draws taken out."""
    configurations = fixed_configurations(args.same_trials, args.seed, "--base-space", "ppo-zoo")
    zoo_params = [{ZOO_NAMES[k]: (ZOO_NETS[v] if k == "agent.netArch" else v) for k, v in c.items()
                   if k in ZOO_NAMES} for c in configurations]
    rows = []
    folder = base / "same-zoo"
    enqueue = ("import json, sys, optuna; study = optuna.create_study(study_name='zoo', storage=sys.argv[1], "
               "direction='maximize'); [study.enqueue_trial(p) for p in json.loads(sys.argv[2])]")
    trials, args.trials = args.trials, args.same_trials
    try:
        for attempt in range(1, ZOO_ATTEMPTS + 1):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            db = folder / "zoo.db"
            subprocess.run([str(python), "-c", enqueue, f"sqlite:///{db}", json.dumps(zoo_params)], check=True)
            try:
                row = zoo_row(python, folder, args, pruner="none")
                break
            except RuntimeError as error:
                # Optuna's n_jobs threads can both take one queued trial: the second's tell then fails
                # ("Cannot tell a COMPLETE trial") and the zoo exits 1. That run is the zoo's race, not a
                # measurement: it is run again from the start, and the attempts are shown.
                if "Cannot tell a" not in str(error) or attempt == ZOO_ATTEMPTS:
                    raise
                print(f"the zoo's run {attempt} ended in Optuna's race over a queued trial; again", file=sys.stderr)
    finally:
        args.trials = trials
    row["attempts"] = attempt
    row["label"] = f"RL Zoo {ZOO.split('==')[1]}, the same {args.same_trials} configurations"
    rows.append(row)
    # Ours as it trains by default, and with SB3's optimizer as SB3 builds it, the zoo's: the machinery alone.
    for name, extra in (("same-ours", ()), ("same-ours-unfused", ("--no-fused-optimizer",))):
        folder = base / name
        folder.mkdir()
        queue(folder, configurations)
        argv = ours_argv(args, args.same_trials, args.workers, args.steps, "none", "--base-space", "ppo-zoo", *extra)
        label = f"rl-sweep{''.join(' ' + e for e in extra)}, the same {args.same_trials} configurations"
        rows.append(ours_row(label, folder, argv, args.steps))
    return rows


def tpm_rows(base: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    configurations = fixed_configurations(args.tpm_trials, args.seed)
    rows = []
    for workers in (1, 2):
        folder = base / f"tpm-{workers}"
        folder.mkdir()
        queue(folder, configurations)
        argv = ours_argv(args, args.tpm_trials, workers, args.tpm_steps, "none")
        row = ours_row(f"rl-sweep, {workers} worker{'s' if workers > 1 else ''}", folder, argv, args.tpm_steps)
        row["configurations"] = configurations
        rows.append(row)
    return rows


# -- output ------------------------------------------------------------------------------------------

def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f} s"


def print_main(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nPPO CartPole-v1, {args.trials} trials x {args.steps:,} steps, {args.workers} parallel jobs, TPE + "
          f"median pruner, {args.evaluations} evaluations per trial")
    print("| run | wall time | first trial >= 475 finished | best value | finished / pruned / failed | "
          "CPU time (cores busy) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        best = "-" if r["best"] is None else f"{r['best']:.1f}"
        print(f"| {r['label']} | {r['wall']:.0f} s | {seconds(r['first_good'])} | {best} | "
              f"{r['finished']} / {r['pruned']} / {r['failed']} | {r['cpu']:.0f} s ({r['cpu'] / r['wall']:.2f}) |")
    zoo = next((r for r in rows if r["label"].startswith("RL Zoo")), None)
    print("\nwhere the time went (s from the command's start)")
    print("| run | first trial started | last trial finished | after it, to exit | trials' durations summed | "
          "finished trials over their steps (most trained) | surplus asks |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        over = [(a, t) for a, t in r["trained"] if t > a]
        most = max((t for _, t in r["trained"]), default=0)
        tail = "-" if r["last_end"] is None else f"{r['wall'] - r['last_end']:.1f}"
        print(f"| {r['label']} | {r['first_start'] or 0:.1f} | {r['last_end'] or 0:.0f} | {tail} | "
              f"{r['trial_s']:.0f} | {len(over)} of {len(r['trained'])} ({most:,} for {r['asked_steps']:,}) | "
              f"{r['surplus'] if not r['label'].startswith('RL Zoo') else '-'} |")
    if zoo is not None:
        print("\ntargets against the zoo (times <= 0.5 x, best value as good)")
        for r in rows:
            if r is zoo:
                continue
            wall = r["wall"] / zoo["wall"]
            good = None if r["first_good"] is None or zoo["first_good"] is None else r["first_good"] / zoo["first_good"]
            as_good = r["best"] is not None and zoo["best"] is not None and r["best"] >= zoo["best"]
            print(f"- {r['label']}: wall {wall:.2f}x ({'met' if wall <= 0.5 else 'missed'}); first >= 475 "
                  + ("n/a" if good is None else f"{good:.2f}x ({'met' if good <= 0.5 else 'missed'})")
                  + f"; best {'as good' if as_good else 'worse'} ({r['best']} vs {zoo['best']})")
    for r in rows:
        print(f"\n{r['label']}: trials (number, state, value): "
              + ", ".join(f"{n} {s} {'-' if v is None else f'{v:.1f}'}" for n, s, v in r["values"]))


def print_same(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nthe same {args.same_trials} configurations of the zoo's space in both, {args.steps:,} steps each, "
          f"{args.workers} parallel jobs, no pruning")
    print("| run | wall time | trial phase | trials' durations summed | CPU time (cores busy) | first trial >= 475 "
          "finished | best value |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        best = "-" if r["best"] is None else f"{r['best']:.1f}"
        print(f"| {r['label']} | {r['wall']:.0f} s | {r['last_end'] - r['first_start']:.0f} s | {r['trial_s']:.0f} s | "
              f"{r['cpu']:.0f} s ({r['cpu'] / r['wall']:.2f}) | {seconds(r['first_good'])} | {best} |")
    zoo, *ours = rows
    if zoo.get("attempts", 1) > 1:
        print(f"(the zoo's row is its attempt {zoo['attempts']}: the ones before ended in Optuna's race over a "
              "queued trial)")
    for row in ours:
        print(f"{row['label']} against the zoo: wall {row['wall'] / zoo['wall']:.2f}x, trials' durations summed "
              f"{row['trial_s'] / zoo['trial_s']:.2f}x")
    print("values (zoo, ours...) by configuration: " + "; ".join(
        ", ".join("-" if v is None else f"{v:.0f}" for _, _, v in values)
        for values in zip(*(sorted(r["values"]) for r in rows), strict=False)))


def print_tpm(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nrl-sweep trials per minute: {args.tpm_trials} trials x {args.tpm_steps:,} steps, --pruner none, the "
          f"default space ({args.tpm_trials} configurations drawn once, queued in both studies)")
    print("| run | wall time | trials/min (whole command) | trial phase (first start to last end) | "
          "trials/min (trial phase) | CPU time (cores busy) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        phase = r["last_end"] - r["first_start"]
        n = r["finished"] + r["pruned"]
        print(f"| {r['label']} | {r['wall']:.1f} s | {n / r['wall'] * 60:.2f} | {phase:.1f} s | {n / phase * 60:.2f} | "
              f"{r['cpu']:.0f} s ({r['cpu'] / r['wall']:.2f}) |")
    one, two = rows
    whole = one["wall"] / two["wall"]
    phase = (one["last_end"] - one["first_start"]) / (two["last_end"] - two["first_start"])
    durations = one["durations"]
    bound = max(sum(durations) / 2, max(durations))
    print(f"\n2 workers against 1: {whole:.2f}x whole command, {phase:.2f}x trial phase (target >= 1.7x: "
          f"{'met' if whole >= 1.7 else 'missed'} on the whole command)")
    most = (one["last_end"] - one["first_start"]) / bound
    print(f"the 1-worker trials took {sum(durations):.1f} s, the longest {max(durations):.1f} s: no schedule of them "
          f"on 2 workers ends sooner than {bound:.1f} s, a trial phase at most {most:.2f}x shorter")
    print("configurations (n_steps, batch size, n_epochs, net): " + "; ".join(
        f"{c.get('agent.kwargs.n_steps')}, {c.get('train.batchSize')}, {c.get('agent.kwargs.n_epochs')}, "
        f"{c.get('agent.netArch')}" for c in one["configurations"]))
    print("trained steps (asked, trained): " + ", ".join(f"{t:,}" for _, t in one["trained"]))


def median(values: list[float | None]) -> float | None:
    """The median, a run that never got there (None) counting as later than any that did."""
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    return None if low is None or high is None else (low + high) / 2


def print_seeds(by_seed: dict[int, list[dict[str, Any]]], title: str) -> None:
    """Each row over the seeds: its cells per seed, their median, and the median's ratio to the zoo's. One
    run of ten sampled trials is mostly the luck of its draws (the zoo's first trial >= 475 came 49-566 s
    in, or never, over single runs); the median over several seeds is the measure. Beside it, what finding
    a trial >= 475 costs wherever it falls in the order: the trials' durations summed over every seed, per
    trial that reached 475."""
    seeds = sorted(by_seed)
    labels = [r["label"] for r in by_seed[seeds[0]]]
    print(f"\n{title}, over seeds {', '.join(map(str, seeds))}: per seed, then the median")
    print("| run | wall time | median | first trial >= 475 finished | median | best value | median | "
          "trials' time per trial >= 475 (pooled) |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for label in labels:
        rows = [next(r for r in by_seed[s] if r["label"] == label) for s in seeds]
        good = sum(r["good"] for r in rows)
        summary[label] = (median([r["wall"] for r in rows]), median([r["first_good"] for r in rows]),
                          median([-math.inf if r["best"] is None else r["best"] for r in rows]),
                          sum(r["trial_s"] for r in rows) / good if good else None)
        walls = " · ".join(f"{r['wall']:.0f}" for r in rows)
        goods = " · ".join(seconds(r["first_good"]) for r in rows)
        bests = " · ".join("-" if r["best"] is None else f"{r['best']:.0f}" for r in rows)
        wall, first, best, cost = summary[label]
        trials = sum(len(r["values"]) for r in rows)
        print(f"| {label} | {walls} s | {seconds(wall)} | {goods} | {seconds(first)} | {bests} | {best:.1f} | "
              f"{seconds(cost)} ({good} of {trials} trials) |")
    zoo = next((v for label, v in summary.items() if label.startswith("RL Zoo")), None)
    if zoo is None:
        return
    print("\nagainst the zoo, the medians (times <= 0.5 x, best value as good)")
    for label, (wall, first, best, cost) in summary.items():
        if label.startswith("RL Zoo"):
            continue
        first_ratio = None if first is None or zoo[1] is None else first / zoo[1]
        cost_ratio = None if cost is None or zoo[3] is None else cost / zoo[3]
        print(f"- {label}: wall {wall / zoo[0]:.2f}x ({'met' if wall <= 0.5 * zoo[0] else 'missed'}); first >= 475 "
              + ("n/a" if first_ratio is None else f"{first_ratio:.2f}x ({'met' if first_ratio <= 0.5 else 'missed'})")
              + f"; best {best:.1f} vs {zoo[2]:.1f} ({'as good' if best >= zoo[2] else 'worse'})"
              + ("" if cost_ratio is None else f"; trials' time per trial >= 475 {cost_ratio:.2f}x"))


def print_over_seeds(saved: dict[str, Any]) -> None:
    """The medians over the seeds of what a run (or several, combined) saved, where it ran more than one."""
    if len(saved["main"]) > 1:
        print_seeds(saved["main"], f"PPO CartPole-v1, {saved['trials']} trials, each tool's own draws")
    if len(saved["same"]) > 1:
        print_seeds(saved["same"], f"the same {saved['same_trials']} configurations in both, no pruning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials of each sweep against the zoo")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per trial against the zoo")
    parser.add_argument("--workers", type=int, default=2, help="parallel jobs (zoo --n-jobs, --sweep-workers)")
    parser.add_argument("--evaluations", type=int, default=5,
                        help="intermediate evaluations per trial (zoo --n-evaluations; rl-sweep's default is 5)")
    parser.add_argument("--eval-episodes", type=int, default=5,
                        help="episodes per evaluation, in both (zoo --eval-episodes, its default; rl-sweep --episodes)")
    parser.add_argument("--zoo-startup-trials", type=int, default=None,
                        help="zoo --n-startup-trials (default: the zoo's own, 10)")
    parser.add_argument("--tpm-trials", type=int, default=16, help="trials of the trials-per-minute runs")
    parser.add_argument("--tpm-steps", type=int, default=5_000, help="steps per trial of the trials-per-minute runs")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], dest="seeds", metavar="SEED",
                        help="the samplers' seed (and the fixed configurations'); several: every row once per "
                             "seed, then the medians (the trials-per-minute pair runs with the first)")
    parser.add_argument("--zoo-venv", type=Path, default=Path(__file__).resolve().parent / ".zoo-venv",
                        help="RL Zoo's own virtual environment, created on first use")
    parser.add_argument("--workdir", type=Path, help="keep each row's working folder here (default: a temporary one)")
    parser.add_argument("--skip-zoo", action="store_true", help="our two rows only")
    parser.add_argument("--skip-main", action="store_true", help="the trials-per-minute runs only")
    parser.add_argument("--skip-tpm", action="store_true", help="no trials-per-minute runs")
    parser.add_argument("--same-trials", type=int, default=0, metavar="N",
                        help="also run the zoo and rl-sweep on the same N configurations of the zoo's space")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write each seed's rows here, as JSON")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="FILE",
                        help="run nothing: the medians over the seeds of several --save files")
    args = parser.parse_args()
    if args.combine:
        runs = [json.loads(f.read_text(encoding="utf-8")) for f in args.combine]
        print_over_seeds(runs[0] | {part: {int(seed): rows for run in runs for seed, rows in run[part].items()}
                                    for part in ("main", "same")})
        return
    adopt_orphans()

    python = None if args.skip_zoo or (args.skip_main and not args.same_trials) else zoo_python(args.zoo_venv)
    began = time.perf_counter()
    main_rows: dict[int, list[dict[str, Any]]] = {}
    same: dict[int, list[dict[str, Any]]] = {}
    tpm: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rl-bench-sweep-") as tmp:
        top = Path(tmp) if args.workdir is None else args.workdir.resolve()

        def seed_folder(seed: int) -> Path:
            return top / f"seed-{seed}" if len(args.seeds) > 1 else top

        for seed in args.seeds:
            args.seed = seed  # what each row's commands are given
            base = seed_folder(seed)
            base.mkdir(parents=True, exist_ok=True)
            if not args.skip_main:
                plans: list[tuple[str, list[str] | None]] = [("zoo", None)] if python is not None else []
                plans += [("ppo-zoo", ["--base-space", "ppo-zoo"]), ("default", [])]
                rows = main_rows.setdefault(args.seed, [])
                for name, extra in plans:
                    folder = base / name
                    if folder.exists():
                        shutil.rmtree(folder)
                    folder.mkdir()
                    print(f"seed {args.seed}: running {name} in {folder} ...", file=sys.stderr, flush=True)
                    if extra is None:
                        assert python is not None
                        rows.append(zoo_row(python, folder, args))
                    else:
                        label = "rl-sweep, " + ("the zoo's space (--base-space ppo-zoo)" if extra else
                                                "our default space")
                        rows.append(ours_row(label, folder, ours_argv(args, args.trials, args.workers, args.steps,
                                                                      "median", *extra), args.steps))
            if args.same_trials and python is not None:
                for name in ("same-zoo", "same-ours", "same-ours-unfused"):
                    if (base / name).exists():
                        shutil.rmtree(base / name)
                print(f"seed {args.seed}: running the zoo and rl-sweep on the same {args.same_trials} "
                      "configurations ...", file=sys.stderr, flush=True)
                same[args.seed] = same_rows(python, base, args)
        args.seed = args.seeds[0]
        if not args.skip_tpm:
            base = seed_folder(args.seed)
            for workers in (1, 2):
                if (base / f"tpm-{workers}").exists():
                    shutil.rmtree(base / f"tpm-{workers}")
            print("running the trials-per-minute pair ...", file=sys.stderr, flush=True)
            tpm = tpm_rows(base, args)
    for seed, rows in main_rows.items():
        print(f"\n## seed {seed}")
        print_main(rows, args)
    for seed, rows in same.items():
        print(f"\n## seed {seed}")
        print_same(rows, args)
    saved = {"trials": args.trials, "steps": args.steps, "same_trials": args.same_trials, "main": main_rows,
             "same": same, "tpm": tpm}
    print_over_seeds(saved)
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1), encoding="utf-8")
    if tpm:
        print_tpm(tpm, args)
    print(f"\nwhole benchmark: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
