"""Time to a good model: wall time from the command's start until a CartPole-v1 model reaching the
reward threshold (Gymnasium's 475) is saved — rl-train with no flags against a raw stable-baselines3
script doing the same (rl-train's PPO preset, EvalCallback every 10k steps saving the best model), both
started as fresh processes in one run.

    python bench/time_to_good_model.py [--repeats 3]

With --against REVISION: our presets against those of the Presets file at REVISION (RL Zoo 2.9.2's, before
any re-tuning: each preset's `# source:` line says which it is), for each --pairs algorithm/envId, on the
held-out --seeds, the two alternating seed by seed; both are plain rl-train runs (the other's values as
flags over --no-preset), with train.stopOnReward, so each ends at its first model validated by the
registry's rules: its seconds from the start of learning (result.json's train_time) and steps.

    python bench/time_to_good_model.py --against cea3dd3 --seeds 100,101,102,103,104 --jobs 2 \
        --pairs ppo/CartPole-v1,ppo/Acrobot-v1,ppo/LunarLander-v3,td3/Pendulum-v1

(cea3dd3's Presets file has RL Zoo 2.9.2's values for all four pairs; --jobs 2 runs two at a time.)

With --against rl_zoo3: against RL Zoo 2.9.2 itself (python -m rl_zoo3.train on its own hyperparams files,
in bench/.zoo-venv, made on first use), the same protocol given to it as a callback (zoo_stop_on_validation).

    python bench/time_to_good_model.py --against rl_zoo3 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import median

RAW = """
import time, sys
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
import torch
sys.path.insert(0, {bench!r})
from common import preset_kwargs
torch.set_num_threads(1)
n_envs, kwargs = preset_kwargs("ppo", "CartPole-v1")
venv = make_vec_env("CartPole-v1", n_envs=n_envs, seed={seed})
eval_env = make_vec_env("CartPole-v1", n_envs=10, seed={seed} + 1)
stop = StopTrainingOnRewardThreshold(475, verbose=0)
callback = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=10000 // n_envs, callback_on_new_best=stop,
                        best_model_save_path={out!r}, verbose=0)
PPO("MlpPolicy", venv, seed={seed}, device="cpu", verbose=0, **kwargs).learn(100000, callback=callback)
print(time.time() if callback.best_mean_reward >= 475 else "never")
"""


def rl_train(seed: int) -> tuple[float | None, float]:
    with tempfile.TemporaryDirectory() as cwd:
        started = time.time()
        result = subprocess.run([str(Path(sys.executable).parent / "rl-train"), "--seed", str(seed), "--json"],
                                cwd=cwd, capture_output=True, text=True, check=True)
        total = time.time() - started
        reached = json.loads(result.stdout)["threshold_reached_at"]
        return (reached - started if reached else None), total


def raw(seed: int) -> float | None:
    with tempfile.TemporaryDirectory() as out:
        script = RAW.format(bench=str(Path(__file__).parent), seed=seed, out=out)
        started = time.time()
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = result.stdout.strip().splitlines()[-1]
        return None if line == "never" else float(line) - started


PRESETS = "Modules/Computation/Services/RL/Presets/default.nix"


def presets_at(revision: str) -> dict[tuple[str, str], dict[str, object]]:
    """The Presets file as it was at a git revision: (algorithm, envId) -> {option path: value}."""
    text = subprocess.run(["git", "show", f"{revision}:{PRESETS}"], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".nix") as file:
        file.write(text)
        file.flush()
        tree = json.loads(subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", file.name],
                                         capture_output=True, text=True, check=True).stdout)
    return {(algorithm, env_id): {f"{feature}.{name}": value for feature, options in preset.items()
                                  for name, value in options.items()}
            for algorithm, envs in tree.items() for env_id, preset in envs.items()}


def option_spec() -> Any:
    """The project's option spec (rl_module.spec), from its sources beside this folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from rl_module import spec

    return spec.load()


def as_flags(options: dict[str, object]) -> list[str]:
    flags: list[str] = []
    for path, value in options.items():
        shown = json.dumps(value) if isinstance(value, (dict, bool)) else \
            ",".join(map(str, value)) if isinstance(value, list) else str(value)
        flags += [option_spec().option(path).flag, shown]
    return flags


# The evaluation protocol, the same for both presets of a pair (given as flags, which win over a preset),
# where the defaults do not fit the env. Pendulum-v1 registers no threshold: -200, where SAC's and TD3's
# learning curves flatten; its budgets (20,000 steps) are shorter than three default evaluation periods
# (the registry validates after registry.convergenceWindow = 3 evaluations agreeing): one every 2,000; and
# a good policy's 10-episode means spread by 30-60 around -150 with the start angle, where the default
# tolerance (0.1 x |mean|) allows 15: 0.5.
PROTOCOL: dict[str, dict[str, object]] = {
    "Pendulum-v1": {"registry.minReward": -200, "train.evalFreq": 2000, "registry.convergenceTolerance": 0.5}}
# What else the protocol is: rl-train's defaults for these options (an evaluation every 10,000 steps of
# 10 deterministic episodes; validated when the last 3 agree within 0.1 x |their mean| and reach the env's
# threshold). Given to RL Zoo's own runs, which evaluate by other defaults (`--against rl_zoo3`).
PROTOCOL_OPTIONS = ("train.evalFreq", "eval.episodes", "eval.deterministic", "registry.minReward",
                    "registry.convergenceWindow", "registry.convergenceTolerance")


def protocol(env_id: str) -> dict[str, object]:
    """The protocol's every value for an env: rl-train's defaults, but for PROTOCOL's."""
    return {path: PROTOCOL.get(env_id, {}).get(path, option_spec().option(path).default) for path in PROTOCOL_OPTIONS}


def validated(algorithm: str, env_id: str, seed: int, flags: list[str]) -> tuple[float | None, int | None]:
    """One rl-train run ending at its first validated model: (seconds of learning, steps), or Nones."""
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([str(Path(sys.executable).parent / "rl-train"), "--algorithm", algorithm,
                                 "--env-id", env_id, "--seed", str(seed), "--stop-on-reward",
                                 *as_flags(PROTOCOL.get(env_id, {})), *flags, "--json"],
                                cwd=cwd, capture_output=True, text=True, check=True)
        outcome = json.loads(result.stdout)
        if outcome["status"] == "finished" and outcome["stopped_early"]:
            return outcome["train_time"], outcome["timesteps"]
        return None, None


# -- RL Zoo itself (--against rl_zoo3) -------------------------------------------------------------------

ZOO_VENV = Path(__file__).parent / ".zoo-venv"


def zoo_stop_on_validation(result: str, env_id: str, seed: int, protocol: dict[str, object]) -> Any:
    """A callback for rl_zoo3's `callback` hyperparameter (the zoo calls this with these keywords): the
    protocol's evaluations as rl-train runs them (copies of the env seeded apart from the training's, the
    training's observation statistics copied in, SB3's evaluate_policy), and rl-train's stop rule with the
    registry's own functions: this evaluation reaches the threshold and the last window of them agree.
    Writes `result`: the seconds from the start of learning and the steps at that evaluation, or nulls."""
    import copy
    import statistics

    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, unwrap_vec_normalize

    from rl_module import registry
    from rl_module.eval import MAX_EVAL_ENVS
    from rl_module.train import EVAL_SEED_OFFSET

    episodes, deterministic = int(protocol["eval.episodes"]), bool(protocol["eval.deterministic"])
    window, tolerance = protocol["registry.convergenceWindow"], float(protocol["registry.convergenceTolerance"])
    threshold = protocol["registry.minReward"]
    threshold = registry.reward_threshold(env_id) if threshold is None else float(threshold)

    class StopOnValidation(BaseCallback):
        def _on_training_start(self) -> None:
            self.started, self.history, self.written = time.perf_counter(), [], False
            self.every = max(int(protocol["train.evalFreq"]) // self.training_env.num_envs, 1)
            # No render mode, as rl-train's (make_vec_env's own default, rgb_array, has LunarLander-v3 make
            # the particles it draws: 5-7 s an evaluation instead of under 1).
            copies = make_vec_env(env_id, n_envs=min(episodes, MAX_EVAL_ENVS), seed=seed + EVAL_SEED_OFFSET,
                                  env_kwargs={"render_mode": None})
            self.normalize = unwrap_vec_normalize(self.training_env)
            self.eval_env = copies if self.normalize is None else VecNormalize(copies, training=False,
                                                                                norm_reward=False)

        def _on_step(self) -> bool:
            if self.n_calls % self.every:
                return True
            if self.normalize is not None:
                self.eval_env.obs_rms = copy.deepcopy(self.normalize.obs_rms)
            rewards, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=episodes,
                                         deterministic=deterministic, return_episode_rewards=True, warn=False)
            self.history.append(statistics.fmean(rewards))
            if threshold is not None and self.history[-1] >= threshold and \
                    registry.converged(self.history, window, tolerance):
                self.write(time.perf_counter() - self.started, self.num_timesteps)
                return False
            return True

        def _on_training_end(self) -> None:
            if not self.written:
                self.write(None, None)

        def write(self, seconds: float | None, steps: int | None) -> None:
            self.written = True
            Path(result).write_text(json.dumps({"train_time": seconds, "timesteps": steps,
                                                "evaluations": self.history}), encoding="utf-8")

    return StopOnValidation()


def zoo_validated(python: Path, algorithm: str, env_id: str, seed: int) -> tuple[float | None, int | None]:
    """One run of RL Zoo 2.9.2 itself (`python` -m rl_zoo3.train, its own hyperparams file for the pair, one
    torch thread, its own evaluations off) ending at its first model validated by the protocol."""
    from sweep import ENV

    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        callback = [{f"{Path(__file__).stem}.zoo_stop_on_validation": {
            "result": str(result), "env_id": env_id, "seed": seed, "protocol": protocol(env_id)}}]
        paths = os.pathsep.join([str(Path(__file__).resolve().parent),
                                 str(Path(__file__).resolve().parent.parent / "scripts")])
        ran = subprocess.run([str(python), "-m", "rl_zoo3.train", "--algo", algorithm, "--env", env_id, "--seed",
                              str(seed), "--eval-freq", "-1", "--num-threads", "1", "--device", "cpu", "--verbose",
                              "0", "-f", folder, "--hyperparams", f"callback:{callback!r}"],
                             cwd=folder, env={**ENV, "PYTHONPATH": paths}, capture_output=True, text=True)
        if not result.exists():
            raise RuntimeError(f"rl_zoo3 on {algorithm}/{env_id}, seed {seed}, left no result: {ran.stderr[-2000:]}")
        outcome = json.loads(result.read_text(encoding="utf-8"))
        return outcome["train_time"], outcome["timesteps"]


def against(revision: str, pairs: list[str], seeds: list[int], jobs: int = 1) -> None:
    """Every run is queued in one order, alternating ours and theirs seed by seed, so a slower stretch of the
    machine falls on both; `jobs` of them run at a time (with more than one, each shares the machine with
    other runs throughout, ours and theirs alike). Theirs: the presets at a git revision, run by rl-train, or
    with `rl_zoo3`, RL Zoo 2.9.2 itself on its own hyperparameters."""
    itself = revision == "rl_zoo3"
    theirs = {} if itself else presets_at(revision)
    if itself:
        from sweep import zoo_python

        interpreter = zoo_python(ZOO_VENV)  # found (or made) once, before any run is timed
    print(f"seconds of learning and steps to the first validated model; held-out seeds {seeds}; ours against "
          f"{'RL Zoo 2.9.2 itself' if itself else f'the presets at {revision}'}; {jobs} run(s) at a time")
    queued: dict[tuple[str, str, int], Future[tuple[float | None, int | None]]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads: each waits on its own training process
        for pair in pairs:
            algorithm, env_id = pair.split("/", 1)
            other = ["--no-preset", *as_flags(theirs.get((algorithm, env_id), {}))]
            for seed in seeds:
                queued[pair, "ours", seed] = pool.submit(validated, algorithm, env_id, seed, [])
                queued[pair, "theirs", seed] = (
                    pool.submit(zoo_validated, interpreter, algorithm, env_id, seed) if itself
                    else pool.submit(validated, algorithm, env_id, seed, other))
    print("| pair | ours: median s (each) | theirs: median s (each) | ours: steps | theirs: steps | reached |")
    print("|---|---|---|---|---|---|")
    for pair in pairs:
        if not itself and tuple(pair.split("/", 1)) not in theirs:  # no preset then: the defaults, said so
            print(f"({pair}: no preset at {revision}; theirs are rl-train's defaults)")
        ours = [queued[pair, "ours", seed].result() for seed in seeds]
        zoo = [queued[pair, "theirs", seed].result() for seed in seeds]

        def show(values: list[float | None], unit: str) -> str:
            shape = ",.0f" if unit == "steps" else ",.1f"
            done = [v for v in values if v is not None]
            return (format(median(done), shape) if done else "never") + \
                " (" + ", ".join("-" if v is None else format(v, shape) for v in values) + f") {unit}"

        reached = f"{sum(t is not None for t, _ in ours)} vs {sum(t is not None for t, _ in zoo)} of {len(seeds)}"
        print(f"| {pair} | {show([t for t, _ in ours], 's')} | {show([t for t, _ in zoo], 's')} | "
              f"{show([s for _, s in ours], 'steps')} | {show([s for _, s in zoo], 'steps')} | {reached} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", metavar="REVISION", help="compare our presets with the Presets file at this "
                        "git revision (RL Zoo 2.9.2's before re-tuning), or with rl_zoo3: RL Zoo 2.9.2 itself, "
                        "on --seeds, for --pairs")
    parser.add_argument("--seeds", default="100,101,102,103,104", help="held-out seeds, never tuned on")
    parser.add_argument("--pairs", default="ppo/CartPole-v1,ppo/Acrobot-v1,ppo/LunarLander-v3,td3/Pendulum-v1")
    parser.add_argument("--jobs", type=int, default=1, help="with --against: runs at a time (each trains on one "
                        "torch thread; more than one shares the machine among ours and theirs alike)")
    args = parser.parse_args()
    if args.against:
        against(args.against, args.pairs.split(","), [int(s) for s in args.seeds.split(",")], args.jobs)
        return
    ours, totals, baseline = [], [], []
    for seed in range(args.repeats):
        reached, total = rl_train(seed)
        ours.append(reached)
        totals.append(total)
        baseline.append(raw(seed))

    def show(values: list[float | None]) -> str:
        done = [v for v in values if v is not None]
        each = ", ".join(f"{v:.1f}" if v else "-" for v in values)
        return (f"{median(done):.1f} s" if done else "never") + f" ({each})"

    print(f"CartPole-v1 PPO, seeds 0..{args.repeats - 1}: seconds from process start to a saved model >= 475")
    print("| run | time to good model, median (each) |")
    print("|---|---|")
    print(f"| raw stable-baselines3 script | {show(baseline)} |")
    print(f"| rl-train (no flags) | {show(ours)} |")
    print(f"| rl-train whole command, 100k steps | {median(totals):.1f} s |")


if __name__ == "__main__":
    main()
