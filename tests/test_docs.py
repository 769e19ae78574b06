"""The documentation (README.md and docs/*.md), read by a real Markdown parser (markdown-it-py): every code
fence closes, every relative link leads to a file (and heading) that exists, and every example is run.

An example is a ```bash, ```sh, ```console or ```nu fence. Each is run as written, or carries its reason not
to be in an HTML comment right before it: `<!-- not run: needs a real S3 bucket -->`. A ```nix fence is parsed
by the real nix-instantiate (a fragment of attributes inside `{ }`), or carries such a reason. A fence in any
other language fails, unless it is text or data, or another test runs it (PYTHON).

The examples run in one folder, in document order (README.md first, then docs/ by name), so that they share
the model the README's training example makes, as a reader's shell would. What must change to run them here
is substituted, and only that:
- budgets: `--total-timesteps N` becomes 1,024 steps, `--trials N` one trial, `--sweep-workers N` one worker,
  a sweep's space (`--space`) gets PPO's n_steps fixed at 32 (a trial is then 256 steps); where a fence gives
  none of these, the environment does (RL_TRAIN_TOTAL_TIMESTEPS, RL_SWEEP_*), and
  RL_REGISTRY_MIN_REWARD=5 and RL_REGISTRY_CONVERGENCE_WINDOW=null let so short a run validate;
- ports: every port (`--port N`, `localhost:N`) is a free one, also RL_INFER_PORT for a server given none;
- model ids (`--model-id N`, `rl-registry-validate N`): the best validated model of this folder's registry;
- `pip install 'rl-module[extra]'` checks instead that the extra exists and its packages are installed;
- a command line already run in this folder, as written (the README's examples reappear in docs/), is not
  run again;
- `curl -s` fails on an HTTP error (`-f`), and a line starting `rl-infer --serve` runs in the background
  until its /readyz answers, and is stopped (SIGTERM) when the fence ends.
A ```console fence is `$ command` lines, each followed by its exact output.
A ```nu fence runs as `nu -c` in the same folder, standing in for the repository root: a `use` of one of the
repository's files names it by its absolute path, and `registry report N` gets the best validated model's id.
A fence of nix-instantiate commands runs in the repository, whose files it names."""

from __future__ import annotations

import importlib.metadata
import json
import queue
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from packaging.requirements import Requirement

from conftest import BIN, ROOT, environment

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->", re.S)
EXAMPLES = {"bash", "sh", "console", "nu"}
# A sweep's trial learns from whole rollouts of n_steps x 8 envs (up to 16,384 steps in PPO's space, whatever
# its trial budget): one of 32 keeps each trial at 256 steps.
SMALL_ROLLOUT = '"agent.kwargs.n_steps": {"choices": [32]}'
PARSED = {"nix"}
# Fences no test here runs, and why that is right: text and data are not programs; the one python fence is run
# by test_onnx.py (the onnxruntime example of docs/registry-and-serving.md).
TEXT = {"", "text", "json", "yaml", "toml"}
PYTHON = {"python"}


def parse(text: str) -> list:
    return MarkdownIt("commonmark").enable("table").parse(text)


@dataclass
class Fence:
    page: Path
    line: int  # 1-based, the opening fence's line
    lang: str
    text: str
    reason: str | None  # why it is not run, when it is not

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fences(page: Path) -> list[Fence]:
    tokens = parse(page.read_text(encoding="utf-8"))
    found = []
    for index, token in enumerate(tokens):
        if token.type != "fence":
            continue
        before = tokens[index - 1] if index else None
        mark = NOT_RUN.fullmatch(before.content.strip()) if before is not None and before.type == "html_block" else None
        found.append(Fence(page, token.map[0] + 1, token.info.strip().split(" ")[0], token.content,
                           mark.group(1) if mark else None))
    return found


def fence_problems(text: str) -> list[str]:
    """A fence that does not close runs on to the end of the page (or to a later bare fence line, swallowing
    the fences between): its last line is not a closing fence, or a fence line sits inside it."""
    lines = text.splitlines()
    problems = []
    for token in parse(text):
        if token.type != "fence":
            continue
        start, end = token.map
        marker = token.markup
        closing = re.compile(rf"\s*{re.escape(marker[0])}{{{len(marker)},}}\s*")
        if end - start < 2 or not closing.fullmatch(lines[end - 1]):
            body = lines[start + 1:end]
            problems.append(f"line {start + 1}: the fence does not close")
        else:
            body = lines[start + 1:end - 1]
        for offset, line in enumerate(body):
            if line.lstrip().startswith(marker):
                problems.append(f"line {start + 2 + offset}: a fence line inside the fence of line {start + 1} "
                                f"(a closing fence takes nothing after it)")
    return problems


def slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    tokens = parse(page.read_text(encoding="utf-8"))
    return {slug(tokens[i + 1].content) for i, token in enumerate(tokens) if token.type == "heading_open"}


def links(page: Path) -> list[str]:
    found = []
    for token in parse(page.read_text(encoding="utf-8")):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    root = root.resolve()
    broken = []
    for href in links(page):
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", href):
            continue  # a URL: not this repository's to check
        path, _, anchor = href.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or root not in [target, *target.parents]:
            broken.append(f"{href}: no such file in the repository")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{href}: no heading #{anchor} in {target.relative_to(root)}")
    return broken


ALL = [fence for page in PAGES for fence in fences(page)]
RUN = [fence for fence in ALL if fence.lang in EXAMPLES and fence.reason is None]


# The parser's view: fences close, links lead somewhere, every example is run or says why not ------------------

@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_fence_closes_and_every_relative_link_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    assert fence_problems(text) == []
    assert broken_links(page) == []


def test_the_checks_find_an_unclosed_fence_and_a_broken_link(tmp_path):
    """The README's Nix section once had a closing fence with text after it: the paragraph and the next
    fence rendered as code."""
    unclosed = "```bash\nnix flake check\n``` `Drv/` holds the derivations.\n\n```bash\nnix-instantiate\n```\n"
    assert fence_problems(unclosed) != []
    assert fence_problems("text\n\n```bash\nrl-train\n") == ["line 3: the fence does not close"]
    assert fence_problems("```bash\nrl-train\n```\n\n  ```console\n  $ rl-eval\n  ```\n") == []
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[here](page.md#title), [there](missing.md), [far](page.md#nowhere)\n")
    assert broken_links(page, tmp_path) == ["missing.md: no such file in the repository",
                                            "page.md#nowhere: no heading #nowhere in page.md"]


def test_every_example_is_run_or_says_why_not():
    for fence in ALL:
        if fence.reason is not None:
            assert len(fence.reason) >= 10, f"{fence.name}: a fence not run says why"
    assert any(fence.lang in EXAMPLES for fence in RUN)
    unknown = [f"{fence.name} ```{fence.lang}" for fence in ALL
               if fence.lang not in EXAMPLES | PARSED | TEXT | PYTHON and fence.reason is None]
    assert unknown == [], ("no test runs these fences' language: write shell examples as ```bash, ```sh, ```console "
                           "or ```nu (nushell), Nix as ```nix, text or data as ```text, ```json, ```yaml or "
                           "```toml, or say why it is not run (<!-- not run: reason -->)")


# The examples, run ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Workspace:
    """One folder, as a reader's shell: the README's training example first, the rest in document order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = environment({
            "PATH": f"{BIN}:{environment({})['PATH']}",
            "RL_TRAIN_TOTAL_TIMESTEPS": "1024", "RL_REGISTRY_MIN_REWARD": "5", "RL_REGISTRY_CONVERGENCE_WINDOW": "null",
            # Four updates of 8 envs in those 1,024 steps: a young policy whose episodes are alike enough to pass
            # the registry's stability rule (one update of CartPole's 32 envs is not).
            "RL_ENV_N_ENVS": "8",
            "RL_SWEEP_TRIALS": "1", "RL_SWEEP_TRIAL_TIMESTEPS": "256", "RL_SWEEP_WORKERS": "1",
            "RL_SWEEP_SPACE": "{" + SMALL_ROLLOUT + "}",
            "MPLBACKEND": "Agg",
        })
        self.results: dict[str, subprocess.CompletedProcess[str]] = {}
        self.commands: set[str] = set()  # run already in this folder, as written

    def best_id(self) -> str:
        database = self.folder / "rl_registry.db"
        if not database.exists():
            return "1"
        with sqlite3.connect(database) as connection:
            row = connection.execute(
                "SELECT id FROM models WHERE validated = 1 ORDER BY mean_reward DESC LIMIT 1").fetchone()
        return str(row[0]) if row else "1"

    def script(self, fence: Fence, port: int) -> str:
        text = fence.text
        text = re.sub(r"--total-timesteps \S+", "--total-timesteps 1024", text)
        text = re.sub(r"--trials \d+", "--trials 1", text)
        text = re.sub(r"--sweep-workers \d+", "--sweep-workers 1", text)
        text = text.replace("--space '{", "--space '{" + SMALL_ROLLOUT + ", ")
        text = re.sub(r"--port \d+", f"--port {port}", text)
        text = re.sub(r"\b(localhost|127\.0\.0\.1):\d+", rf"\1:{port}", text)
        text = re.sub(r"(--model-id|rl-registry-validate|rl-registry-convert) \d+", rf"\1 {self.best_id()}", text)
        text = text.replace("curl -s ", "curl -sSf ")
        lines = ["set -euo pipefail", "servers=()",
                 'trap \'for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait\' EXIT']
        for line in text.splitlines():
            extra = re.fullmatch(r"pip install '?rl-module\[([\w,-]+)\]'?.*", line.strip())
            if extra:
                check_extras(extra.group(1).split(","))
                continue
            if line.startswith("rl-infer --serve"):
                lines += [f"{line.split('#')[0].strip()} > server-{port}.log 2>&1 &", 'servers+=($!)',
                          # Wait for the condition, bounded: the server answers /readyz once it has a model.
                          f"for _ in $(seq 900); do curl -sf 127.0.0.1:{port}/readyz >/dev/null && break; "
                          f'kill -0 "${{servers[-1]}}" || {{ cat server-{port}.log; exit 1; }}; sleep 0.2; done',
                          f"curl -sSf 127.0.0.1:{port}/readyz >/dev/null || {{ cat server-{port}.log; exit 1; }}"]
            elif (command := re.sub(r"\s+#.*", "", line).strip()) not in self.commands or not command:
                lines.append(line)
                self.commands.add(command)
        return "\n".join(lines) + "\n"

    def nu_script(self, fence: Fence) -> str:
        """The fence's nushell, with what a reader at the repository root has that this folder has not: the
        repository's files (a `use` of one names it by its absolute path, so a path the docs get wrong fails)
        and the id of a model its registry holds."""
        text = re.sub(r"^(\s*use )(\S+)", lambda found: found.group(1) + (
            str(ROOT / found.group(2)) if (ROOT / found.group(2)).exists() else found.group(2)), fence.text, flags=re.M)
        return re.sub(r"(registry report) \d+", rf"\1 {self.best_id()}", text)

    def run(self, fence: Fence) -> subprocess.CompletedProcess[str]:
        if fence.name in self.results:
            return self.results[fence.name]
        if fence.lang == "nu":
            nu = shutil.which("nu")
            if nu is None:
                pytest.skip("nu is not installed (./dev test installs nushell from npm)")
            # nu -c stops at the first line that fails (a refused `registry best` too), with a nonzero exit.
            done = subprocess.run([nu, "-c", self.nu_script(fence)], cwd=self.folder, capture_output=True, text=True,
                                  env=self.env, timeout=300, check=False)
            self.results[fence.name] = done
            return done
        port = free_port()
        cwd = ROOT if fence.text.lstrip().startswith("nix-instantiate") else self.folder
        done = subprocess.run(["bash", "-c", self.script(fence, port)], cwd=cwd, capture_output=True, text=True,
                              env={**self.env, "RL_INFER_PORT": str(port)}, timeout=600, check=False)
        self.results[fence.name] = done
        return done


def check_extras(extras: list[str]) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert extra in declared, f"the docs install rl-module[{extra}], which pyproject.toml does not declare"
        for requirement in declared[extra]:
            name = Requirement(requirement).name
            assert importlib.metadata.version(name), name


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    here = Workspace(tmp_path_factory.mktemp("docs"))
    first = next(fence for fence in RUN if "rl-train" in fence.text)
    done = here.run(first)
    assert done.returncode == 0, f"{first.name}\n{done.stdout}\n{done.stderr}"
    return here


def run_console(fence: Fence, workspace: Workspace) -> None:
    text = "\n".join(line.strip() for line in fence.text.splitlines())
    for command, expected in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n?)*)", text, re.M):
        done = subprocess.run(["bash", "-c", command], cwd=workspace.folder, capture_output=True, text=True,
                              env=workspace.env, timeout=300, check=False)
        assert (done.stdout + done.stderr).strip() == expected.strip(), f"{fence.name}: $ {command}"


def marks(fence: Fence) -> list[pytest.MarkDecorator]:
    if fence.lang == "nu":
        return [pytest.mark.service]  # needs nu, a tool outside a build sandbox, as test_registry's nu test does
    return [pytest.mark.slow] if "rl-sweep" in fence.text or fence.text.count("\nrl-") > 4 else []


@pytest.mark.parametrize("fence", [pytest.param(fence, id=fence.name, marks=marks(fence)) for fence in RUN])
def test_the_example_runs_as_written(fence, workspace):
    if fence.lang == "console":
        run_console(fence, workspace)
        return
    done = workspace.run(fence)
    assert done.returncode == 0, f"{fence.name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("fence", [fence for fence in ALL if fence.lang in PARSED and fence.reason is None],
                         ids=lambda fence: fence.name)
def test_the_nix_example_parses(fence, nix):
    """As written, or as a fragment of a module (attributes, as inside `{ }`); either may name a flake's
    inputs, as the function a flake's `outputs` is binds them."""
    errors = []
    for form in ("{}", "{{\n{}\n}}", "{{ nixpkgs, rl-module, ... }}:\n{}", "{{ nixpkgs, rl-module, ... }}: {{\n{}\n}}"):
        parsed = subprocess.run(["nix-instantiate", "--parse", "-E", form.format(fence.text)], capture_output=True,
                                text=True, check=False)
        if parsed.returncode == 0:
            return
        errors.append(parsed.stderr.strip())
    pytest.fail(f"{fence.name} does not parse:\n" + "\n".join(errors))


# What the docs say the code does, checked against the running code -----------------------------------------

# docs/registry-and-serving.md: "with `--poll-interval 3`, after 1 s, 2 s, then every 3 s".
RETRY_SAID = re.compile(r"with `--poll-interval (\d+)`, after ((?:\d+ s, )+)then every (\d+) s")
# Loose rules, so that one tiny run validates and becomes the best model (its file is then taken away).
TINY = ("--no-preset", "--agent-kwargs", '{"n_steps": 128}', "--eval-freq", "0", "--checkpoint-freq", "0",
        "--episodes", "2", "--seed", "2", "--min-reward", "5", "--min-episodes", "1", "--convergence-window", "null")


def test_a_refused_model_is_tried_again_as_often_as_the_docs_say(tmp_path):
    """The waits between tries of a refused model, as the docs give them for one poll interval, are those a
    server with that poll interval logs for a best model whose file is gone (the backoff is capped by
    infer.pollInterval, server.py `_swap_to`)."""
    text = " ".join((ROOT / "docs" / "registry-and-serving.md").read_text(encoding="utf-8").split())
    said = RETRY_SAID.search(text)
    assert said, "docs/registry-and-serving.md no longer says, for one --poll-interval, when a refused model is tried"
    expected = [float(n) for n in re.findall(r"\d+", said.group(2))] + [float(said.group(3))] * 2
    env = environment({})
    trained = subprocess.run([str(BIN / "rl-train"), "--total-timesteps", "256", *TINY, "--json"], cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=600, check=False)
    assert trained.returncode == 0 and json.loads(trained.stdout)["validated"], trained.stderr
    for model in (tmp_path / "models").glob("*/model.zip"):
        model.unlink()
    server = subprocess.Popen([str(BIN / "rl-infer"), "--serve", "--port", str(free_port()), "--poll-interval",
                               said.group(1)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr or ()], daemon=True).start()
    waits: list[float] = []
    # Startup, then the waits themselves: a generous bound that only a server that stopped trying reaches.
    deadline = time.monotonic() + 120 + sum(expected)
    try:
        while len(waits) < len(expected):
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"the server logged {waits} and then no more tries")
            found = re.search(r"hotswap to model \d+ refused: .*; tried again in ([\d.]+) s$", line.strip())
            if found:
                waits.append(float(found.group(1)))
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert waits == expected, f"the docs say {expected}; the server waited {waits}"
