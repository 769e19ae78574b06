"""Graceful stop: what `systemctl stop`, a preempted VM and Ctrl-C send (SIGTERM, SIGINT).

The first signal asks the work to stop at its next safe point (training: the next environment step) and
to save where it is. A second one stops at once: `Stopped` is raised where the program is, and unwinds
through the code that writes files and registry rows — an atomic write removes its temporary file, a
registry transaction rolls back — so nothing partial is left. Exit status 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by it.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from .logs import event

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A second signal: stop at once. A BaseException, as KeyboardInterrupt is: `except Exception` in a
    library must not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulStop:
    """Signal handlers for the duration of a `with` block (in the main thread; elsewhere it only reports
    what it was told by `request`)."""

    def __init__(self, what: str = "stopping at the next step and saving") -> None:
        self.what = what
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def request(self, signum: int) -> None:
        """The first signal (or a caller) asks for a stop; the second one stops at once."""
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum
        log.warning("%s: %s (send it again to stop at once)", signal.Signals(signum).name, self.what,
                    extra=event("rl.run.stopping", signal=signal.Signals(signum).name))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request(signum)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
