"""Metrics: OpenTelemetry instruments fed by stable-baselines3's own numbers.

    rl.env.steps            counter    {step}     environment steps       -> rl_env_steps_total
    rl.episode.reward       histogram  {reward}   per finished episode    -> rl_episode_reward
    rl.episode.length       histogram  {step}     per finished episode    -> rl_episode_length
    rl.env.step.reward      histogram  {reward}   per step (granularity = step)
    rl.train.policy_loss, rl.train.value_loss, rl.train.loss    gauges (trackLoss)
    rl.train.entropy_loss   gauge (trackEntropy)   rl.train.steps_per_second  gauge (trackFps)
    rl.eval.mean_reward, rl.eval.mean_episode_length           gauges (trackReward)
    rl.registry.events      counter    {event}    rl.registry.event = registered | validated | rejected | pruned

Episode rewards and lengths are the Monitor wrapper's (`info["episode"]`), losses and FPS are what SB3's
logger records (a KVWriter beside its csv and json writers): nothing is computed twice. Curly-brace units
are OpenTelemetry's annotations; they vanish in Prometheus names, so the names above read as written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .config import Config

# Symmetric around zero: Pendulum, MuJoCo and trading rewards are negative, CartPole's reach 500.
REWARD_BUCKETS = (-2000, -1000, -500, -250, -100, -50, -10, 0, 10, 50, 100, 200, 300, 400, 475, 500, 1000, 2500, 5000)
LENGTH_BUCKETS = (1, 10, 25, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000)
# SB3 logger keys -> gauge, by family (the option that switches it).
LOGGER_KEYS = {
    "train/policy_gradient_loss": ("rl.train.policy_loss", "trackLoss"),
    "train/policy_loss": ("rl.train.policy_loss", "trackLoss"),
    "train/actor_loss": ("rl.train.policy_loss", "trackLoss"),
    "train/value_loss": ("rl.train.value_loss", "trackLoss"),
    "train/critic_loss": ("rl.train.value_loss", "trackLoss"),
    "train/loss": ("rl.train.loss", "trackLoss"),
    "train/entropy_loss": ("rl.train.entropy_loss", "trackEntropy"),
    "time/fps": ("rl.train.steps_per_second", "trackFps"),
    "eval/mean_reward": ("rl.eval.mean_reward", "trackReward"),
    "eval/mean_ep_length": ("rl.eval.mean_episode_length", "trackReward"),
}
UNITS = {"rl.train.steps_per_second": "{step}/s", "rl.eval.mean_reward": "{reward}",
         "rl.eval.mean_episode_length": "{step}"}
REGISTRY_EVENTS = {"rl.model.registered": "registered", "rl.model.validated": "validated",
                   "rl.model.rejected": "rejected", "rl.model.pruned": "pruned"}


def views() -> list[Any]:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    return [
        View(instrument_name="rl.episode.reward", aggregation=ExplicitBucketHistogramAggregation(REWARD_BUCKETS)),
        View(instrument_name="rl.env.step.reward", aggregation=ExplicitBucketHistogramAggregation(REWARD_BUCKETS)),
        View(instrument_name="rl.episode.length", aggregation=ExplicitBucketHistogramAggregation(LENGTH_BUCKETS)),
    ]


def prometheus_reader(address: str, port: int) -> tuple[Any, Callable[[], None]]:
    """A reader serving /metrics for Prometheus to scrape, and how to stop serving."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()  # one per run: a second run in a process must not clash with the first
    server, thread = start_http_server(port, addr=address, registry=registry)
    logging.getLogger(__name__).info("metrics for Prometheus on http://%s:%d/metrics", address,
                                     server.server_address[1])
    reader = PrometheusMetricReader(registry=registry)

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=1)

    return reader, close


class Instruments:
    """The instruments of one run, created on the run's MeterProvider; None where a family is off."""

    def __init__(self, meter: Any, config: Config) -> None:
        m = config.metrics
        self.steps = meter.create_counter("rl.env.steps", unit="{step}", description="Environment steps taken")
        self.episode_reward = self.episode_length = self.step_reward = None
        if m.trackReward:
            self.episode_reward = meter.create_histogram("rl.episode.reward", unit="{reward}",
                                                         description="Reward of each finished episode")
            self.episode_length = meter.create_histogram("rl.episode.length", unit="{step}",
                                                         description="Length of each finished episode")
            if m.granularity == "step":
                self.step_reward = meter.create_histogram("rl.env.step.reward", unit="{reward}",
                                                          description="Reward of every environment step")
        self.gauges = {
            name: meter.create_gauge(name, unit=UNITS.get(name, "1"), description=f"SB3 logger's {key}")
            for key, (name, family) in LOGGER_KEYS.items() if getattr(m, family)
        }


def callback(meter_provider: Any, config: Config) -> Any:
    """An SB3 callback recording steps and finished episodes (per step too, when asked)."""
    from stable_baselines3.common.callbacks import BaseCallback

    instruments = Instruments(meter_provider.get_meter("rl_module"), config)

    per_step = config.metrics.granularity == "step"

    class MetricsCallback(BaseCallback):
        """Steps are added to the counter at the end of each rollout (or every step with granularity =
        step): the exported value is the same at every export, for a fraction of the cost per step."""

        def _on_training_start(self) -> None:
            self.logger.output_formats.append(logger_writer(instruments))
            self.pending = 0

        def _flush(self) -> None:
            if self.pending:
                instruments.steps.add(self.pending)
                self.pending = 0

        def _on_rollout_end(self) -> None:
            self._flush()

        def _on_training_end(self) -> None:
            self._flush()

        def _on_step(self) -> bool:
            self.pending += self.training_env.num_envs
            if per_step:
                self._flush()
            if instruments.episode_reward is not None:
                for info in self.locals.get("infos", ()):
                    episode = info.get("episode")
                    if episode is not None:
                        instruments.episode_reward.record(float(episode["r"]))
                        instruments.episode_length.record(int(episode["l"]))  # type: ignore[union-attr]
            if instruments.step_reward is not None:
                for reward in self.locals.get("rewards", ()):
                    instruments.step_reward.record(float(reward))
            return True

    return MetricsCallback()


def logger_writer(instruments: Instruments) -> Any:
    """A KVWriter beside SB3's csv/json writers: each dump sets the gauges of the keys it knows."""
    from stable_baselines3.common.logger import KVWriter

    class GaugeWriter(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            for key, value in key_values.items():
                known = LOGGER_KEYS.get(key)
                if known is not None and known[0] in instruments.gauges and isinstance(value, (int, float)):
                    instruments.gauges[known[0]].set(float(value))

        def close(self) -> None:
            pass

    return GaugeWriter()


def count_events(meter_provider: Any) -> Callable[[], None]:
    """Count the registry's events (registered, validated, rejected, pruned) as they are logged; the log
    is the one place they are announced. Returns how to stop counting."""
    from .logs import LOGGER

    counter = meter_provider.get_meter("rl_module").create_counter(
        "rl.registry.events", unit="{event}", description="Registry events by kind")

    class EventCounter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kind = REGISTRY_EVENTS.get(getattr(record, "otel.event.name", ""))
            if kind is not None:
                counter.add(1, {"rl.registry.event": kind})

    handler = EventCounter(logging.INFO)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    return lambda: logger.removeHandler(handler)
