"""Traces: a span for the training run, and under it one per episode, per evaluation and per checkpoint;
step spans when asked for.

Sampling: step spans are each the root of their own trace, linked to the run's span, and sampled by
ParentBased(TraceIdRatioBased(sampleRate)) — OpenTelemetry's parent-based trace-id ratio — so that a
rate of 0.01 keeps one step in a hundred. The run's own trace (run, episodes, evaluations, checkpoints:
a few spans per thousand steps) is always kept when traces are on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link

from .config import Config

RUN_SPAN, EPISODE_SPAN, EVAL_SPAN, CHECKPOINT_SPAN, STEP_SPAN = (
    "rl.train", "rl.episode", "rl.eval", "rl.checkpoint", "rl.step")


class RunSampler(Sampler):
    """ParentBased(TraceIdRatioBased(rate)) for step traces, ParentBased(ALWAYS_ON) for the run's trace."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._steps = ParentBased(TraceIdRatioBased(rate))
        self._run = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str, *args: Any,
                      **kwargs: Any) -> SamplingResult:
        chosen = self._steps if name == STEP_SPAN else self._run
        return chosen.should_sample(parent_context, trace_id, name, *args, **kwargs)

    def get_description(self) -> str:
        return f"RunSampler{{steps={self._steps.get_description()}}}"


def sampler(rate: float) -> Sampler:
    return RunSampler(rate)


def callback(tracer_provider: Any, config: Config, run_span: Any) -> Any:
    """An SB3 callback making a span per finished episode (and per step when traceSteps), each with
    its real start and end times."""
    from stable_baselines3.common.callbacks import BaseCallback

    tracer = tracer_provider.get_tracer("rl_module")
    run_context = trace.set_span_in_context(run_span)
    run_link = [Link(run_span.get_span_context())]
    episodes, steps = config.traces.traceEpisodes, config.traces.traceSteps

    class TracesCallback(BaseCallback):
        def _on_training_start(self) -> None:
            now = time.time_ns()
            self.episode_started = [now] * self.training_env.num_envs
            self.episodes = 0
            self.last_step = now

        def _on_step(self) -> bool:
            now = time.time_ns()
            if steps:
                span = tracer.start_span(STEP_SPAN, context=Context(), links=run_link, start_time=self.last_step,
                                         attributes={"rl.timesteps": self.num_timesteps})
                span.end(end_time=now)
            self.last_step = now
            if episodes:
                for index, info in enumerate(self.locals.get("infos", ())):
                    episode = info.get("episode")
                    if episode is None:
                        continue
                    span = tracer.start_span(EPISODE_SPAN, context=run_context,
                                             start_time=self.episode_started[index], attributes={
                                                 "rl.episode.index": self.episodes, "rl.env.index": index,
                                                 "rl.episode.reward": float(episode["r"]),
                                                 "rl.episode.length": int(episode["l"]),
                                                 "rl.timesteps": self.num_timesteps})
                    span.end(end_time=now)
                    self.episodes += 1
                    self.episode_started[index] = now
            return True

    return TracesCallback()


def eval_callback(telemetry: Any, enabled: bool, stop: Callable[[], bool] | None = None, **kwargs: Any) -> Any:
    """SB3's EvalCallback, with each evaluation inside an rl.eval span (a child of the run's span); an
    evaluation is given up as soon as `stop()` is true (the run is stopping: it must not wait for
    episodes to end)."""
    from stable_baselines3.common.callbacks import EvalCallback

    from .eval import EvaluationCut, stopping_callback

    check_stop = stopping_callback(stop)

    class TracedEvalCallback(EvalCallback):
        def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
            if check_stop is not None:
                check_stop(locals_, globals_)
            super()._log_success_callback(locals_, globals_)

        def _on_step(self) -> bool:
            try:
                return self._evaluate()
            except EvaluationCut:
                return False

        def _evaluate(self) -> bool:
            if not (enabled and self.eval_freq > 0 and self.n_calls % self.eval_freq == 0):
                return super()._on_step()
            attributes = {"rl.timesteps": self.num_timesteps, "rl.eval.episodes": self.n_eval_episodes}
            with telemetry.span(EVAL_SPAN, attributes) as span:
                result = super()._on_step()
                if span is not None:
                    span.set_attribute("rl.eval.mean_reward", float(self.last_mean_reward))
                return result

    return TracedEvalCallback(**kwargs)
