"""rl-sweep as real processes: a small sweep with two workers on SQLite; one study driven by two hosts on a
real PostgreSQL; a host killed with kill -9 mid-trial (its trial failed and retried, the total still
reached); SIGTERM then the same command again (the study continues); and every bad input refused before
anything starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, command, environment
from rl_module.registry import Registry

pytestmark = pytest.mark.slow

# Small trials over a small space: fast, and every trial different.
SPACE = {"train.learningRate": {"float": [1e-4, 3e-3], "log": True}, "agent.kwargs.n_epochs": {"choices": [1, 2, 4]},
         "train.gamma": {"float": [0.9, 0.999]}}
SMALL = ("--trial-timesteps", "1024", "--evaluations", "2", "--episodes", "2", "--no-preset", "--agent-kwargs",
         '{"n_steps": 128}', "--base-space", "empty", "--space", json.dumps(SPACE), "--pruner", "none", "--seed", "3")


def sweep(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    result = command("rl-sweep", *SMALL, *args, "--json", cwd=cwd, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def run_config(cwd: Path, run_id: str) -> dict[str, Any]:
    return json.loads((cwd / "models" / run_id / "config.json").read_text())


def test_a_small_sweep_with_two_workers_records_every_trial_and_hands_back_the_best(tmp_path):
    out = sweep(tmp_path, "--trials", "4", "--sweep-workers", "2", "--study-name", "small")
    trials = [t for t in out["trials"] if t["state"] == "complete"]
    assert out["counts"]["finished"] == 4 and sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    assert len({json.dumps(t["params"], sort_keys=True) for t in trials}) == 4  # each worker samples its own
    assert all({p.removesuffix(".schedule") for p in t["params"]} == set(SPACE) for t in trials)  # SPACE alone
    with Registry(tmp_path / "rl_registry.db") as registry:
        finals = {m.trial: m for m in registry.models() if m.kind == "final"}
    assert sorted(finals) == [0, 1, 2, 3] and {m.study for m in finals.values()} == {"small"}
    for t in trials:  # an ordinary run, whose config.json says which values the sweep set
        assert finals[t["number"]].id == t["model_id"] and finals[t["number"]].run_id == t["run_id"]
        options = run_config(tmp_path, t["run_id"])["options"]
        assert options["train"]["learningRate"]["source"] == f"sweep small trial {t['number']}"
        assert options["train"]["totalTimesteps"] == {"value": 1024, "source": f"sweep small trial {t['number']}"}
        assert options["agent"]["kwargs"]["value"]["n_epochs"] == t["params"]["agent.kwargs.n_epochs"]
        assert options["env"]["envId"]["source"] == "default"
    best = max(trials, key=lambda t: t["value"])
    assert out["best"]["trial"] == best["number"] and out["best"]["value"] == best["value"]
    assert f'train.gamma = {json.dumps(best["params"]["train.gamma"])};' in out["nix"]
    assert out["flags"][:4] == ["--env-id", "CartPole-v1", "--algorithm", "ppo"] and "--gamma" in out["flags"]
    folder = tmp_path / "models" / "sweeps" / "small"
    assert (folder / "history.png").stat().st_size > 1000 and json.loads((folder / "report.json").read_text())
    # The flags train that configuration as they say.
    trained = command("rl-train", *out["flags"], "--total-timesteps", "256", "--no-preset", "--print-config",
                      cwd=tmp_path)
    assert json.loads(trained.stdout)["train"]["gamma"]["value"] == best["params"]["train.gamma"]
    report = command("rl-sweep", *SMALL, "--study-name", "small", "--report", cwd=tmp_path)
    assert report.returncode == 0 and "best: trial" in report.stdout and "as Nix:" in report.stdout
    assert_the_dashboard_serves(tmp_path / "rl_registry.db", "small", [t["number"] for t in trials])


def assert_the_dashboard_serves(db: Path, study: str, finished: list[int]) -> None:
    """optuna-dashboard (the sweep extra), started on the study's database, serves its finished trials."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = subprocess.Popen([str(BIN / "optuna-dashboard"), f"sqlite:///{db}", "--port", str(port), "--quiet"],
                                 env=environment({}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            assert dashboard.poll() is None and time.monotonic() < deadline, dashboard.stderr.read() if \
                dashboard.stderr and dashboard.poll() is not None else "optuna-dashboard did not answer in 60 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as answer:
                    studies = json.load(answer)["study_summaries"]
            except OSError:
                time.sleep(0.2)
        (listed,) = [s for s in studies if s["study_name"] == study]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{listed['study_id']}", timeout=30) as answer:
            served = json.load(answer)["trials"]
        assert sorted(t["number"] for t in served if t["state"] == "Complete") == sorted(finished)
    finally:
        dashboard.kill()
        dashboard.wait(timeout=30)


def test_one_study_on_postgresql_driven_by_two_hosts_has_unique_trials_and_the_exact_total(postgres, tmp_path):
    url = postgres.url(postgres.new_database())
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    processes = []
    for host in hosts:
        host.mkdir()
        processes.append(subprocess.Popen(
            [str(BIN / "rl-sweep"), *SMALL, "--trials", "5", "--study-name", "fleet", "--json"], cwd=host,
            env=environment({"RL_REGISTRY_DB": url}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-3000:] for _, err in outputs]
    final = json.loads(outputs[-1][0])
    numbers = [t["number"] for t in final["trials"] if t["state"] == "complete"]
    assert sorted(numbers) == list(range(len(numbers))) and final["counts"]["finished"] == 5
    with Registry(url) as registry:
        finals = [m for m in registry.models() if m.kind == "final" and m.study == "fleet"]
    assert sorted(m.trial for m in finals) == sorted(numbers)
    assert {Path(m.model_path).parent.parent.parent for m in finals} == set(hosts)  # both hosts trained
    assert postgres.password not in outputs[0][1] + outputs[1][1] + outputs[0][0]


def test_a_host_killed_mid_trial_has_its_trial_failed_and_retried(tmp_path):
    """Host A dies (kill -9 of its process group) mid-trial; host B, on the same SQLite study, fails that
    trial once its heartbeat is stale (3 x 1 s), runs it again with the same values, and reaches the total."""
    hosts = {name: tmp_path / name for name in ("a", "b")}
    for host in hosts.values():
        host.mkdir()
    db = str(tmp_path / "shared.db")
    args = [str(BIN / "rl-sweep"), *SMALL, "--trial-timesteps", "8192", "--trials", "3", "--study-name", "crash",
            "--heartbeat", "1", "--registry-db", db, "--json"]
    doomed = subprocess.Popen(args, cwd=hosts["a"], env=environment({}), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((hosts["a"] / "models").glob("*/progress.csv")):  # host A is inside its first trial
        assert time.monotonic() < deadline and doomed.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    survivor = command("rl-sweep", *args[1:], cwd=hosts["b"], timeout=300)
    assert survivor.returncode == 0, survivor.stderr[-3000:]
    out = json.loads(survivor.stdout)
    failed = [t for t in out["trials"] if t["state"] == "fail"]
    assert out["counts"]["finished"] == 3 and len(failed) == 1
    retried = [t for t in out["trials"] if t["state"] == "complete" and t["params"] == failed[0]["params"]]
    assert len(retried) == 1 and retried[0]["number"] > failed[0]["number"]


ASKS = 100


def _ask_queued(db: str, ready: Any, answers: Any) -> None:
    """A worker's asks of a study's queue, as sweep.work makes them, from the moment both askers are ready."""
    import optuna

    from rl_module import sweep as sweeping
    from rl_module.cli.sweep import COMMAND

    config, _ = COMMAND.configure(["--registry-db", db], {})
    study = optuna.load_study(study_name="queue", storage=sweeping.storage(config))
    ready.wait()
    numbers = []
    for _ in range(ASKS):
        with sweeping.one_at_a_time(config):
            numbers.append(study.ask().number)
    answers.put(numbers)


def test_two_workers_asking_at_once_never_take_the_same_queued_trial(tmp_path):
    """Optuna's SQLite storage hands one queued trial to two processes that ask at once (without the lock,
    9 of 200 asks here); queued trials are common: enqueued by hand, a stopped trial queued again, a dead
    worker's retried. Two askers of a 200-trial queue: 200 different trials."""
    import multiprocessing

    import optuna

    db = str(tmp_path / "rl_registry.db")
    study = optuna.create_study(study_name="queue", storage=f"sqlite:///{db}", direction="maximize")
    for x in range(2 * ASKS):
        study.enqueue_trial({"x": float(x)})
    context = multiprocessing.get_context("spawn")
    ready, answers = context.Barrier(2), context.Queue()
    askers = [context.Process(target=_ask_queued, args=(db, ready, answers)) for _ in range(2)]
    for asker in askers:
        asker.start()
    taken = [answers.get(timeout=120) for _ in askers]
    for asker in askers:
        asker.join(timeout=30)
    assert [asker.exitcode for asker in askers] == [0, 0]
    assert sorted(taken[0] + taken[1]) == list(range(2 * ASKS)), set(taken[0]) & set(taken[1])


def test_sigterm_stops_the_trials_and_the_same_command_continues_the_study(tmp_path):
    args = [str(BIN / "rl-sweep"), *SMALL, "--trial-timesteps", "4096", "--trials", "3", "--study-name", "paused",
            "--json"]
    first = subprocess.Popen(args, cwd=tmp_path, env=environment({}), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "models").glob("*/progress.csv")):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 143, err[-3000:]
    stopped = json.loads(out)
    assert stopped["stopped_by"] == "SIGTERM" and stopped["counts"]["waiting"] == 1  # queued again
    assert any(t["error"] == "stopped by a signal" for t in stopped["trials"])
    again = command("rl-sweep", *args[1:], cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    continued = json.loads(again.stdout)
    assert continued["counts"]["finished"] == 3 and continued["counts"]["waiting"] == 0
    interrupted = next(t for t in continued["trials"] if t["error"] == "stopped by a signal")
    assert any(t["params"] == interrupted["params"] and t["state"] == "complete" for t in continued["trials"])


def test_powers_of_two_one_minus_and_the_activation_reach_the_runs_as_values(tmp_path):
    """RL Zoo's vocabulary (what its PPO space needs): an exponent searched for n_steps, 1 - gamma on a
    log scale, the activation; each run trains with the value, the report and the best say the value."""
    space = {"agent.kwargs.n_steps": {"int": [6, 7], "powerOf": 2},
             "train.gamma": {"float": [1e-3, 0.05], "log": True, "oneMinus": True},
             "agent.activation": {"choices": ["relu", "elu"]}}
    out = sweep(tmp_path, "--trials", "2", "--sweep-workers", "1", "--study-name", "zoo-words", "--space",
                json.dumps(space))
    from stable_baselines3 import PPO

    for t in out["trials"]:
        sampled, values = t["params"], t["values"]
        assert values["agent.kwargs.n_steps"] == 2 ** sampled["agent.kwargs.n_steps"] in (64, 128)
        assert values["train.gamma"] == pytest.approx(1 - sampled["train.gamma"]) and values["train.gamma"] > 0.95
        options = run_config(tmp_path, t["run_id"])["options"]
        assert options["agent"]["kwargs"]["value"]["n_steps"] == values["agent.kwargs.n_steps"]
        assert options["train"]["gamma"]["value"] == pytest.approx(values["train.gamma"])
        assert options["agent"]["activation"]["value"] == values["agent.activation"]
        model = PPO.load(tmp_path / "models" / t["run_id"] / "model.zip", device="cpu")
        assert type(model.policy.mlp_extractor.policy_net[1]).__name__ == {"relu": "ReLU", "elu": "ELU"}[
            values["agent.activation"]]
    best = next(t for t in out["trials"] if t["number"] == out["best"]["trial"])
    assert out["best"]["values"] == {k: v for k, v in best["values"].items()}
    assert f'agent.activation = "{best["values"]["agent.activation"]}";' in out["nix"]
    assert "--activation" in out["flags"]


def test_the_pruner_is_shown_only_evaluations_of_a_policy_that_has_learned(tmp_path):
    """A rollout longer than the evaluation period: the evaluations before the first update (and those with
    no update since the last) are recorded with the run but never reported to the study's pruner."""
    import optuna

    out = sweep(tmp_path, "--trials", "1", "--sweep-workers", "1", "--study-name", "rollouts", "--evaluations",
                "4", "--agent-kwargs", '{"n_steps": 768}')
    (t,) = out["trials"]
    import numpy as np

    evaluated = np.load(tmp_path / "models" / t["run_id"] / "evaluations.npz")["timesteps"].tolist()
    # Every 256 steps; one update at 768 (after that step's evaluation), the next at 1,536.
    assert evaluated == [256, 512, 768, 1024, 1280, 1536], evaluated
    study = optuna.load_study(study_name="rollouts", storage=f"sqlite:///{tmp_path / 'rl_registry.db'}")
    assert list(study.trials[0].intermediate_values) == [1024]


def test_a_pruned_trial_stops_at_once_and_is_recorded_as_pruned(tmp_path):
    """Successive halving prunes a trial below the best at its first rung: the run ends at that evaluation
    (no more steps, no final evaluation), its result and study say pruned, and its model is in the registry."""
    # Six trials: a trial is pruned unless it is the best so far at each rung (or tied with it), and which
    # values a worker draws differs from run to run (its sampler is seeded by its process too); with four,
    # one run in CI drew four that each matched or beat the ones before.
    out = sweep(tmp_path, "--trials", "6", "--sweep-workers", "1", "--study-name", "halving", "--pruner", "halving",
                "--evaluations", "4", "--agent-kwargs", '{"n_steps": 64}')
    pruned = [t for t in out["trials"] if t["state"] == "pruned"]
    assert out["counts"]["pruned"] == len(pruned) >= 1 and out["counts"]["finished"] + len(pruned) == 6, out["counts"]
    with Registry(tmp_path / "rl_registry.db") as registry:
        rows = {m.id: m for m in registry.models() if m.study == "halving"}
    for t in pruned:
        result = json.loads((tmp_path / "models" / t["run_id"] / "result.json").read_text())
        assert result["status"] == "pruned" and result["evaluation"] is None
        assert result["timesteps"] == result["evaluations"][-1]["timesteps"] < 1024  # at once, not at the end
        assert rows[t["model_id"]].trial == t["number"]


@pytest.mark.parametrize("space,expected", [
    ({"train.gamma": {"float": [0.999, 0.9]}}, "parameter train.gamma has low 0.999 >= high 0.9"),
    ({"train.batchSize": {"float": [2, 5], "powerOf": 2}}, "powerOf takes an integer >= 2"),
    ({"train.gamma": {"int": [1, 3], "oneMinus": True}}, "oneMinus = true applies to a float"),
    ({"agent.kwargs.ent_coef": {"float": [0, 0.1], "log": True}}, "log scale, so its low must be > 0"),
    ({"agent.kwargs.buffer_size": {"choices": [1000]}}, "is not an argument of ppo"),
    ({"agent.kwargs.n_epochs": {"choices": []}}, "has an empty choice list"),
    ({"train.gamma": {"int": [1, 2], "choices": [1]}}, "exactly one of"),
    ({"train.gamma": {"choices": [0.9, 1.5]}},
     "parameter train.gamma value 1.5 is not allowed: option train.gamma takes a number from 0 to 1"),
    ({"env.nEnvs": {"float": [1, 4]}},
     "parameter env.nEnvs value 2.5 is not allowed: option env.nEnvs takes an integer"),
])
def test_a_malformed_space_is_one_line_naming_the_option_and_nothing_starts(tmp_path, space, expected):
    result = command("rl-sweep", *SMALL, "--space", json.dumps(space), "--trials", "1", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "option sweep.space from flag --space: parameter" in result.stderr and expected in result.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "rl_registry.db").exists()


def test_a_space_may_search_what_agent_kwargs_takes_beyond_the_constructor(tmp_path):
    """RL Zoo's spelling of action noise (noise_type, noise_std) is agent.kwargs, as in the presets: a
    space searches it as it does the algorithm's own arguments."""
    space = {"agent.kwargs.noise_std": {"choices": [0.2, 0.3]}, "agent.kwargs.noise_type": {"choices": ["normal"]}}
    result = command("rl-sweep", "--algorithm", "td3", "--env-id", "Pendulum-v1", "--no-preset", "--trials", "1",
                     "--trial-timesteps", "400", "--evaluations", "1", "--episodes", "1", "--base-space", "empty",
                     "--space", json.dumps(space), "--agent-kwargs", '{"learning_starts": 100}', "--net-arch", "16",
                     "--pruner", "none", "--seed", "3", "--json", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    trial = json.loads(result.stdout)["trials"][0]
    assert trial["state"] == "complete" and trial["params"]["agent.kwargs.noise_std"] in (0.2, 0.3)
    kwargs = run_config(tmp_path, trial["run_id"])["options"]["agent"]["kwargs"]["value"]
    assert kwargs == {"learning_starts": 100, "noise_type": "normal",
                      "noise_std": trial["params"]["agent.kwargs.noise_std"]}
    misspelt = command("rl-sweep", "--algorithm", "td3", "--env-id", "Pendulum-v1", "--trials", "1", "--space",
                       json.dumps({"agent.kwargs.noise_sd": {"choices": [0.2]}}), cwd=tmp_path)
    assert misspelt.returncode == 2 and "parameter agent.kwargs.noise_sd is not an argument of td3" in misspelt.stderr
    assert "noise_std" in misspelt.stderr


def test_a_study_that_exists_with_another_space_and_an_unreachable_storage_are_refused(tmp_path):
    sweep(tmp_path, "--trials", "1", "--study-name", "taken")
    other = command("rl-sweep", *SMALL, "--trials", "1", "--study-name", "taken", "--space",
                    json.dumps({**SPACE, "train.gamma": {"float": [0.9, 0.95]}}), cwd=tmp_path)
    assert other.returncode == 2 and "option sweep.studyName from flag --study-name" in other.stderr
    assert 'parameter train.gamma is {"float": [0.9, 0.95]} here and {"float": [0.9, 0.999]} in the study' in \
        other.stderr, other.stderr
    down = command("rl-sweep", *SMALL, "--trials", "1", "--storage",
                   "postgresql://rl:hunter2@127.0.0.1:9/rl", cwd=tmp_path / "models")
    assert down.returncode == 2 and "option sweep.storage from flag --storage" in down.stderr, down.stderr
    assert "hunter2" not in down.stderr and "rl:***@" in down.stderr


@pytest.mark.parametrize("args,expected", [
    (("--study-name", "../../x"), "option sweep.studyName from flag --study-name: '../../x' is not a plain name"),
    (("--study-name", ".."), "option sweep.studyName from flag --study-name: '..' is not a plain name"),
    (("--storage", "postgresq://rl:hunter2@127.0.0.1:9/rl"), "option sweep.storage from flag --storage: "
     "'postgresq://rl:***@127.0.0.1:9/rl' has an unknown scheme postgresq:// (did you mean postgresql://?)"),
    (("--registry-db", "postgresq://rl:hunter2@127.0.0.1:9/rl"), "option registry.dbPath from flag --registry-db: "
     "'postgresq://rl:***@127.0.0.1:9/rl' has an unknown scheme postgresq:// (did you mean postgresql://?)"),
])
def test_a_name_that_leaves_its_folder_and_an_unknown_scheme_are_refused_creating_nothing(tmp_path, args, expected):
    work = tmp_path / "work"  # ../../x from here would be tmp_path's parent
    work.mkdir()
    result = command("rl-sweep", *SMALL, "--trials", "1", *args, cwd=work)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr and "hunter2" not in result.stderr
    assert list(tmp_path.rglob("*")) == [tmp_path / "work"]  # nothing made: no folder, no database, no report


def test_the_sweeps_own_process_never_imports_torch(tmp_path):
    """The checks run in the process the workers are forked from, which imports torch once for them all:
    rl-sweep itself, which only waits, draws progress and plots, stays light."""
    code = ("import json, sys; from rl_module.cli.sweep import main; "
            f"code = main([*{list(SMALL)!r}, '--trials', '1', '--json']); "
            "print(json.dumps([code, sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules)]))")
    result = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env=environment({}), timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [0, []]
    with Registry(tmp_path / "rl_registry.db") as registry:
        assert [m.trial for m in registry.models() if m.kind == "final"] == [0]  # the trial did train


def result_of(cwd: Path, run_id: str) -> dict[str, Any]:
    return json.loads((cwd / "models" / run_id / "result.json").read_text())


def test_to_the_threshold_a_trial_that_validates_scores_its_time_and_one_that_never_does_the_penalty(tmp_path):
    """sweep.objective time-to-threshold: a trial whose model validates (mean reward >= 20 and the last two
    evaluations agreeing, the registry's rules) ends there and scores the learning time its result.json
    records; steps-to-threshold with a threshold no trial reaches (1000) scores budget x (1 + gap), and
    showed the pruner that penalty as it stood at each evaluation. Both studies minimize; the report says
    which trials reached it; a study is not continued under another objective."""
    import optuna

    rules = ("--evaluations", "4", "--convergence-window", "2", "--convergence-tolerance", "2")
    quick, slow = tmp_path / "quick", tmp_path / "never"  # each its own registry: its rules for CartPole-v1
    quick.mkdir()
    slow.mkdir()
    out = sweep(quick, *rules, "--trials", "2", "--study-name", "ttt", "--objective", "time-to-threshold",
                "--min-reward", "20")
    assert out["objective"]["direction"] == "minimize" and out["objective"]["unit"] == "s"
    reached = [t for t in out["trials"] if t["reached"]]
    assert reached, out["trials"]
    learning: list[float] = []  # each trial's learning seconds, in the order one worker told them
    for t in out["trials"]:
        result = result_of(quick, t["run_id"])
        if t["reached"]:  # ended by train.stopOnReward at the evaluation that validated, not a lucky one before
            assert result["stop_reason"].startswith("train.stopOnReward") and result["status"] == "finished"
            assert t["value"] == result["train_time"] and result["timesteps"] == result["evaluations"][-1]["timesteps"]
            assert len(result["evaluations"]) >= 2 and result["timesteps"] < 1024
        else:  # charged at least the longest learning time of a trial before it
            best = max(e["mean_reward"] for e in result["evaluations"] + [result["evaluation"]])
            budget = max([result["train_time"], *learning])
            assert t["value"] == pytest.approx(budget * (1 + max(20 - best, 0) / 20))
        learning.append(result["train_time"])
    best = min(out["trials"], key=lambda t: t["value"])
    assert out["best"]["trial"] == best["number"] and out["best"]["reached"] == best["reached"]
    assert out["nix"].startswith(f"# study ttt, trial {best['number']}: wall time to the threshold ")
    assert (tmp_path / "quick" / "models" / "sweeps" / "ttt" / "history.png").stat().st_size > 1000
    from rl_module.cli.sweep import _summary  # what rl-sweep prints without --json

    printed = _summary(out, quick)
    assert "objective: wall time to the threshold (s, minimized)" in printed
    numbers = ", ".join(str(t["number"]) for t in reached)
    assert f"reached the threshold: {len(reached)} of 2 finished trials (trials {numbers})" in printed

    # A third trial of the same study, of one rollout and so one evaluation (the registry's rule wants the
    # last two agreeing), cannot validate, yet is charged at least the longest learning time before it: a
    # cheap miss never outscores a costlier trial that validated.
    more = sweep(quick, *rules, "--trials", "3", "--study-name", "ttt", "--objective", "time-to-threshold",
                 "--min-reward", "20", "--trial-timesteps", "128", "--evaluations", "1")
    (miss,) = [t for t in more["trials"] if t["number"] == 2]
    result = result_of(quick, miss["run_id"])
    assert miss["reached"] is False and result["timesteps"] == 128 and len(result["evaluations"]) <= 1
    assert miss["value"] == pytest.approx(max([result["train_time"], *learning]) * (1 + miss["gap"]))
    assert all(miss["value"] >= t["value"] for t in reached), (miss, reached)

    never = sweep(slow, *rules, "--trials", "1", "--study-name", "steps", "--objective", "steps-to-threshold",
                  "--min-reward", "1000")
    (t,) = never["trials"]
    result = result_of(slow, t["run_id"])
    rewards = [e["mean_reward"] for e in result["evaluations"]]
    assert t["reached"] is False and result["stop_reason"] is None and result["timesteps"] >= 1024
    best = max(rewards + [result["evaluation"]["mean_reward"]])
    assert t["value"] == pytest.approx(1024 * (1 + (1000 - best) / 1000)) and t["gap"] == pytest.approx(
        (1000 - best) / 1000)
    study = optuna.load_study(study_name="steps", storage=f"sqlite:///{slow / 'rl_registry.db'}")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    shown = study.trials[0].intermediate_values  # the penalty as it stood: 1024 x (1 + gap of the best so far)
    assert shown == {int(e["timesteps"]): pytest.approx(1024 * (1 + (1000 - max(rewards[:i + 1])) / 1000))
                     for i, e in enumerate(result["evaluations"])}

    other = command("rl-sweep", *SMALL, *rules, "--trials", "1", "--study-name", "ttt", "--min-reward", "20",
                    cwd=quick)
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert ("option sweep.studyName from flag --study-name: 'ttt' names a study that exists with objective "
            "time-to-threshold (minimized); this command's sweep.objective is reward (from default): give "
            "--objective time-to-threshold to continue it") in other.stderr
