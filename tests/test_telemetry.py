"""OpenTelemetry from real rl-train runs to real peers: an OTLP receiver built on opentelemetry-proto
(gRPC and HTTP), OTLP JSON lines files, and a real Prometheus scraping the metrics endpoint."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import Parse
from otlp_receiver import REQUESTS, Receiver

from conftest import BIN, command

STEPS = 4096  # 512 callback steps of 8 envs, whatever CartPole's preset
BUDGET = ("--total-timesteps", str(STEPS), "--eval-freq", "2048", "--checkpoint-freq", "2048", "--seed", "3",
          "--n-envs", "8", "--agent-kwargs", '{"n_steps": 32}', "--export-interval", "1", "--json")


def attributes(message: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in message.attributes}


def train(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    result = command("rl-train", *BUDGET, *args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def receiver():
    peer = Receiver()
    yield peer
    peer.stop()


def test_all_three_signals_over_grpc(receiver, tmp_path):
    port = receiver.start_grpc()
    endpoint = f"http://127.0.0.1:{port}"
    result, _ = train(tmp_path, "--metrics", "--traces", "--logs", "--metrics-endpoint", endpoint,
                      "--traces-endpoint", endpoint, "--logs-endpoint", endpoint, "--trace-steps",
                      "--trace-sample-rate", "0.5")
    spans = receiver.spans()
    names = Counter(span.name for _, span in spans)
    (run_resource, run), = [(r, s) for r, s in spans if s.name == "rl.train"]
    assert not run.parent_span_id
    expected = {"rl.run.id": result["run_id"], "rl.env.id": "CartPole-v1", "rl.algorithm": "ppo"}
    assert attributes(run).items() >= expected.items()
    resource = attributes(run_resource)
    assert resource["service.name"] == "rl-module" and resource["rl.run.id"] == result["run_id"]
    assert resource["rl.algorithm"] == "ppo" and resource["rl.env.id"] == "CartPole-v1"
    children = [s for _, s in spans if s.name in ("rl.episode", "rl.eval", "rl.checkpoint")]
    assert children and all(s.trace_id == run.trace_id and s.parent_span_id == run.span_id for s in children)
    assert names["rl.eval"] == 3 and names["rl.checkpoint"] == 2  # two periodic evaluations and the final one
    episodes = [s for _, s in spans if s.name == "rl.episode"]
    assert sorted(attributes(s)["rl.episode.index"] for s in episodes) == list(range(len(episodes)))
    assert all(attributes(s)["rl.episode.length"] > 0 and s.end_time_unix_nano > s.start_time_unix_nano
               for s in episodes)
    # Step spans: roots of their own traces, linked to the run, sampled at 0.5 of 512 steps.
    steps = [s for _, s in spans if s.name == "rl.step"]
    assert 0.3 * 512 < len(steps) < 0.7 * 512
    assert all(not s.parent_span_id and s.trace_id != run.trace_id and s.links[0].span_id == run.span_id
               for s in steps)

    metrics = receiver.metrics()
    assert {"rl.env.steps", "rl.episode.reward", "rl.episode.length", "rl.train.policy_loss", "rl.train.value_loss",
            "rl.train.loss", "rl.train.entropy_loss", "rl.train.steps_per_second", "rl.eval.mean_reward",
            "rl.registry.events"} <= set(metrics)
    assert metrics["rl.env.steps"][-1].sum.data_points[0].as_int == result["timesteps"]
    assert metrics["rl.env.steps"][-1].unit == "{step}" and metrics["rl.episode.reward"][-1].unit == "{reward}"
    histogram = metrics["rl.episode.reward"][-1].histogram.data_points[0]
    assert histogram.count == len(episodes)
    assert histogram.sum == pytest.approx(sum(attributes(s)["rl.episode.reward"] for s in episodes))
    events = {attributes(p)["rl.registry.event"]: p.as_int for p in metrics["rl.registry.events"][-1].sum.data_points}
    assert events["registered"] == 3 and events.get("validated", 0) + events.get("rejected", 0) == 3
    assert metrics["rl.eval.mean_reward"][-1].gauge.data_points[0].as_double == pytest.approx(
        result["evaluations"][-1]["mean_reward"])

    records = receiver.logs()
    events_logged = Counter(r.event_name for r in records)
    assert {"rl.run.started", "rl.checkpoint.saved", "rl.model.registered", "rl.eval.finished",
            "rl.run.finished"} <= set(events_logged)
    assert events_logged["rl.model.registered"] == 3
    assert all(r.severity_text == "INFO" for r in records)
    rejected = [r for r in records if r.event_name == "rl.model.rejected"]
    assert all(attributes(r)["rl.validation_failing"] for r in rejected)
    # Log records inside the run carry its trace.
    assert any(r.trace_id == run.trace_id for r in records if r.event_name == "rl.checkpoint.saved")


def test_http_with_opentelemetrys_own_variables(receiver, tmp_path):
    port = receiver.start_http()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
           "OTEL_SERVICE_NAME": "cartpole-trainer", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
           "RL_METRICS_ENABLE": "1", "RL_TRACES_ENABLE": "1", "RL_LOGS_ENABLE": "1"}
    result, _ = train(tmp_path, "--trace-steps", "--trace-sample-rate", "0", env=env)
    assert all(receiver.received[signal] for signal in REQUESTS), {k: len(v) for k, v in receiver.received.items()}
    spans = receiver.spans()
    resource = attributes(spans[0][0])
    assert resource["service.name"] == "cartpole-trainer" and resource["deployment.environment"] == "test"
    assert resource["rl.run.id"] == result["run_id"]
    names = Counter(span.name for _, span in spans)
    assert names["rl.train"] == 1 and names["rl.step"] == 0  # sampleRate 0 keeps no step span
    assert names["rl.episode"] > 0
    assert any(r.event_name == "rl.run.finished" for r in receiver.logs())


def otlp_request(signal: str, line: str) -> Any:
    """Parse a line of an OTLP JSON file (ids in hex, as OTLP JSON writes them) into its request."""

    def ids_to_base64(node: Any) -> Any:
        if isinstance(node, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in node and node[key]:
                    raw = bytes.fromhex(node[key])
                    assert len(raw) == (16 if key == "traceId" else 8)
                    node[key] = base64.b64encode(raw).decode()
            for value in node.values():
                ids_to_base64(value)
        elif isinstance(node, list):
            for value in node:
                ids_to_base64(value)
        return node

    return Parse(json.dumps(ids_to_base64(json.loads(line))), REQUESTS[signal][0]())


def test_without_an_endpoint_every_signal_is_an_otlp_json_lines_file(tmp_path):
    result, _ = train(tmp_path, "--metrics", "--traces", "--logs", "--trace-steps", "--trace-sample-rate", "1",
                      "--log-level", "warn")
    run_dir = tmp_path / result["run_dir"]
    parsed: dict[str, list[Any]] = {}
    for signal in REQUESTS:
        path = run_dir / f"{signal}.otlp.jsonl"
        assert path.exists(), signal
        parsed[signal] = [otlp_request(signal, line) for line in path.read_text().splitlines()]
    assert parsed["metrics"] and parsed["traces"]
    spans = [s for r in parsed["traces"] for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert Counter(s.name for s in spans)["rl.step"] == STEPS // 8  # sampleRate 1: every step
    # logs.level = warn: no info records, yet the registry events are still counted as metrics.
    records = [lr for r in parsed["logs"] for rl in r.resource_logs for sl in rl.scope_logs for lr in sl.log_records]
    assert all(r.severity_number >= 13 for r in records)
    events = [m for r in parsed["metrics"] for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "rl.registry.events"]
    assert {attributes(p)["rl.registry.event"]: p.as_int for p in events[-1].sum.data_points}["registered"] == 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_unreachable_endpoint_is_reported_once_and_the_run_completes(protocol, tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    args = ["--metrics", "--traces", "--logs"]
    for signal in ("metrics", "traces", "logs"):
        args += [f"--{signal}-endpoint", endpoint, f"--{signal}-protocol", protocol]
    result, stderr = train(tmp_path, *args)
    assert (tmp_path / result["model_path"]).is_file()
    reports = [line for line in stderr.splitlines() if "export to" in line and "failed" in line]
    signals = [line.split(" export to")[0].rsplit(" ", 1)[-1] for line in reports]
    assert signals and len(set(signals)) == len(signals), stderr  # reported, and at most once per signal
    assert set(signals) <= {"metrics", "traces", "logs"} and all(endpoint in line for line in reports), stderr
    assert "Traceback" not in stderr


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (./dev test installs Debian's prometheus)")
    target, web = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rl\n"
                      f"    static_configs:\n      - targets: ['127.0.0.1:{target}']\n")
    server = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{web}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{web}/-/ready", timeout=1)
            break
        except OSError:
            if time.time() > deadline:
                server.kill()
                raise
            time.sleep(0.2)
    yield target, f"http://127.0.0.1:{web}"
    server.terminate()
    server.wait(timeout=10)


def query(api: str, promql: str) -> list[Any]:
    url = f"{api}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


@pytest.mark.slow
@pytest.mark.service
def test_prometheus_scrapes_the_reward_during_a_run(prometheus, tmp_path):
    target, api = prometheus
    total = 40 * 1024  # whole rollouts, whatever CartPole's preset (8 x 32 or 32 x 32 steps): trained exactly
    run = subprocess.Popen([str(BIN / "rl-train"), "--total-timesteps", str(total), "--metrics", "--prometheus-port",
                            str(target), "--no-registry", "--eval-freq", "0"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    episodes: list[Any] = []
    try:
        deadline = time.time() + 60
        while not episodes and run.poll() is None and time.time() < deadline:
            time.sleep(0.5)
            episodes = query(api, 'rl_episode_reward_bucket{le="+Inf"}')
        # The last sample scraped, whenever the run ends: once a scrape of the ended run fails, Prometheus
        # marks its series stale, and a plain instant query then finds nothing. Waited for, not read once:
        # the scrape that held the first episode need not hold the step counter (a busy CI run's did not).
        steps: list[Any] = []
        deadline = time.time() + 60
        while not steps and time.time() < deadline:
            steps = query(api, "last_over_time(rl_env_steps_total[5m])")
            if not steps:
                time.sleep(0.5)
    finally:
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert episodes, "Prometheus saw no rl_episode_reward while the run was going"
    assert float(episodes[0]["value"][1]) > 0 and episodes[0]["metric"]["job"] == "rl"
    assert steps and 0 < float(steps[0]["value"][1]) <= total
