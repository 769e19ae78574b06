"""Logs: the run's events through Python's standard logging, filtered by logs.level: on stderr for
people, in the run's train.log, and — with logs.enable — through OpenTelemetry's logs bridge, where
each event carries its name (otel.event.name) and structured attributes:

    rl.run.started  rl.run.finished  rl.checkpoint.saved  rl.eval.finished
    rl.model.registered  rl.model.validated  rl.model.rejected (rl.validation.failing)  rl.model.pruned
    rl.model.hotswapped  rl.error
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import Config
from .redact import Filter

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
LOGGER = "rl_module"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr as it is when a record is written (not when the handler was made), so that redirecting
    sys.stderr (tests, embedding) is honoured."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def event(name: str, **attributes: Any) -> dict[str, Any]:
    """`extra` for a log call: the event's name and its attributes (rl.<key>), for the logs bridge."""
    return {"otel.event.name": name, **{f"rl.{key}": value for key, value in attributes.items()}}


def setup(config: Config) -> logging.Logger:
    """The package logger, writing to stderr at logs.level (once per process). The logger itself passes
    info events on even when the console shows fewer: metrics count registry events from them."""
    logger = logging.getLogger(LOGGER)
    level = LEVELS[config.logs.level]
    logger.setLevel(min(level, logging.INFO))
    logger.propagate = False
    console = next((h for h in logger.handlers if isinstance(h, _Console)), None)
    if console is None:
        console = _Console()
        console.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        console.addFilter(Filter())
        logger.addHandler(console)
    console.setLevel(level)
    return logger


def bridge(logger_provider: Any, config: Config) -> Callable[[], None]:
    """Send the package's log records at logs.level to OpenTelemetry; returns how to stop."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    class Bridge(LoggingHandler):
        def flush(self) -> None:
            """Nothing: the provider's shutdown flushes, within the telemetry deadline. The handler's own
            flush starts a non-daemon thread, which would hold the process when a backend is down."""

    handler = Bridge(level=LEVELS[config.logs.level], logger_provider=logger_provider)
    handler.addFilter(Filter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    return lambda: logger.removeHandler(handler)


@contextmanager
def to_file(path: Path, level: str = "info") -> Iterator[None]:
    """Also write the events at `level` and above to `path` (the run's train.log) while the run lasts."""
    handler = logging.FileHandler(path, encoding="utf-8")
    os.chmod(path, 0o600)  # the run's events may name its servers: owner-only, like config.json
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(Filter())
    handler.setLevel(LEVELS[level])
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
