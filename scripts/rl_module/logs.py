"""Logs: the run's events (run started, checkpoint saved, evaluation, run finished, errors) through
Python's standard logging, filtered by logs.level: on stderr for people, and in the run's train.log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import Config

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


def setup(config: Config) -> logging.Logger:
    """The package logger at logs.level, writing to stderr (once per process)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(LEVELS[config.logs.level])
    logger.propagate = False
    if not any(isinstance(h, _Console) for h in logger.handlers):
        console = _Console()
        console.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(console)
    return logger


@contextmanager
def to_file(path: Path) -> Iterator[None]:
    """Also write the events to `path` (the run's train.log) while the run lasts."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
